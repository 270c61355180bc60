"""Hardening: a seeded fuzz corpus of malformed audio, scores and note strings against every command.

Every bad input gives a one-line error naming it (never a traceback, never a hang); a batch goes on past bad
files and keeps every good one; no input poisons a collection (searches still work afterwards). The long
campaign (hundreds of inputs, subprocesses, kill -9) is ``benchmarks/fuzz.py``.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from fuzz_corpus import make_corpus
from mirsearch.audio import display_name
from mirsearch.cli.main import main
from mirsearch.collection import Collection

#: seconds one command may take on one fuzz input
LIMIT = 20


def _run(capsys, *args) -> tuple[int, str, str]:
    def alarm(*_):
        raise TimeoutError(f"mirsearch {' '.join(map(str, args))[:200]} took more than {LIMIT} s")

    sys.stderr.reconfigure(errors="backslashreplace")  # as a real stderr is (file names with undecodable bytes)
    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(LIMIT)
    try:
        code = main([os.fsdecode(a) if isinstance(a, bytes) else str(a) for a in args])
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    out, err = capsys.readouterr()
    return code, out, err


def _error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("mirsearch ")]
    assert "Traceback" not in err, err
    assert len(lines) == 1, err
    return lines[0]


def _label(case) -> str:
    """The part of the input's name every message must show (up to the first undecodable byte)."""
    return Path(case.path).name.split("\udce9")[0] if case.path else case.text


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz")
    cases = make_corpus(folder, seed=1234, n_mutations=4)
    sr = 22050
    t = np.arange(sr * 4) / sr
    for i, root in enumerate((60, 65)):  # two good recordings of a C major and an F major scale
        y = np.concatenate(
            [np.sin(2 * np.pi * 440 * 2 ** ((root + d - 69) / 12) * t[: sr // 2]) for d in (0, 2, 4, 5, 7, 9, 11, 12)]
        )
        sf.write(folder / "audio" / f"scale{i}.wav", (0.3 * y).astype(np.float32), sr)
    return folder, cases


@pytest.fixture(scope="module")
def indexed(corpus, tmp_path_factory):
    folder, cases = corpus
    root = tmp_path_factory.mktemp("coll") / "c.mirs"
    with Collection.create(root, features=["chroma"]) as coll:
        report = coll.add(folder / "audio", jobs=1)
        odd = [c.path for c in cases if c.name == "latin1 name"]
        assert coll.remove(odd).removed == odd  # stored and removed losslessly; its JSON output: test below
    return root, report


def test_json_output_of_a_recording_with_an_undecodable_name(capsys, corpus, tmp_path):
    folder, cases = corpus
    odd = next(c.path for c in cases if c.name == "latin1 name")
    with Collection.create(tmp_path / "c.mirs", features=["chroma"]) as coll:
        coll.add([odd])
    code, out, err = _run(capsys, "search", "-c", tmp_path / "c.mirs", "--theme", "C D E F G", "--json", "--all")
    assert code == 0 and "caf" in out


def test_a_batch_keeps_every_good_file_and_reports_each_bad_one(corpus, indexed):
    folder, cases = corpus
    root, report = indexed
    added = set(report.added)
    for case in cases:
        if case.kind != "audio" or not Path(case.path).parent == folder / "audio":
            continue
        if case.good:
            assert str(Path(case.path).resolve()) in added, f"good file lost: {case.name}"
    assert len(added) >= 2 + sum(c.good for c in cases if c.kind == "audio") - 1
    assert report.failed and not report.aborted
    for path, msg in report.failed:
        assert "\n" not in msg and display_name(path) in msg, msg
    with Collection.open(root, readonly=True) as coll:  # not poisoned: every stored array finite
        Y = coll.database()[0]
        assert np.all(np.isfinite(Y))


def test_searches_still_work_after_the_fuzz_batch(capsys, indexed):
    root, _ = indexed
    code, out, err = _run(capsys, "search", "-c", root, "--theme", "C D E F G", "--json", "--all")
    assert code == 0 and "Traceback" not in err


def test_every_bad_audio_query_is_a_one_line_error(capsys, corpus, indexed):
    folder, cases = corpus
    root, _ = indexed
    for case in cases:
        if case.kind != "audio":
            continue
        t0 = time.perf_counter()
        code, out, err = _run(capsys, "search", "-c", root, "--audio", case.path, "--json")
        if code != 0:
            line = _error_line(err)
            assert _label(case) in line or "no such file" in line, line
            assert not case.good or "too short" in line, f"{case.name}: {line}"
        assert time.perf_counter() - t0 < LIMIT


def test_every_bad_score_and_note_string_is_a_one_line_error(capsys, corpus, indexed):
    folder, cases = corpus
    root, _ = indexed
    for case in cases:
        if case.kind == "audio" or case.name == "many-notes.musicxml":  # seconds of parsing: benchmarks/fuzz.py
            continue
        flag, value = ("--theme-file", case.path) if case.kind == "score" else ("--theme", case.text)
        code, out, err = _run(capsys, "search", "-c", root, flag, value, "--json", "--all")
        if code == 0:
            continue
        line = _error_line(err)
        assert code in (1, 2), line
        if case.kind == "score":
            assert _label(case) in line, line
        assert not case.good, f"{case.name}: {line}"


def test_alignment_refuses_bad_scores_and_audio_in_one_line(capsys, corpus):
    folder, cases = corpus
    good = folder / "audio" / "scale0.wav"
    picked = [c for c in cases if c.kind == "score" and not c.good][::3]
    picked += [c for c in cases if c.kind == "audio" and not c.good][::6]
    for case in picked:
        args = ("align", case.path, good) if case.kind == "score" else ("align", good, case.path)
        code, out, err = _run(capsys, *args, "--json")
        if code != 0:
            assert _label(case) in _error_line(err)
    for option in ("--out", "--plot"):  # an output that cannot be written
        code, out, err = _run(capsys, "align", good, good, option, "/proc/nowhere/x.png")
        assert code == 1 and "/proc/nowhere/x.png: cannot write" in _error_line(err)


def test_the_index_command_goes_on_past_every_bad_path(capsys, corpus, tmp_path):
    folder, cases = corpus
    long_path = next(c.path for c in cases if c.name == "path > 4096 bytes")
    good = folder / "audio" / "scale0.wav"
    paths = (long_path, folder / "audio" / "random.wav", good)
    code, out, err = _run(capsys, "index", *paths, "-c", tmp_path / "c.mirs", "--features", "chroma")
    assert code == 3 and "Traceback" not in err and "1 added" in out
    assert "File name too long" in err and "random.wav: unreadable audio" in err
