"""Collection on disk: incremental and resumable indexing, atomic writes, failures, read-only use."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mirsearch.collection import Collection
from mirsearch.collection.collection import DEFAULT_FEATURES
from mirsearch.errors import CollectionError

#: these tests are about storage, not features: plain chroma only (a new collection also stores learned chroma)
CHROMA = ["chroma"]
CHROMA_CLI = ["--features", "chroma"]


def _write_chords(folder: Path, n: int, seconds: float = 3.0, seed: int = 0) -> list[Path]:
    """Short recordings of random triads (distinct content per file)."""
    rng = np.random.default_rng(seed)
    sr = 22050
    t = np.arange(int(sr * seconds)) / sr
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        root = 48 + rng.integers(0, 24)
        y = sum(np.sin(2 * np.pi * 440 * 2 ** ((root + d - 69) / 12) * t) for d in (0, 4, 7)) * 0.2
        y *= np.exp(-t * rng.uniform(0.1, 1.0))
        path = folder / f"rec{i:03d}.flac"
        sf.write(path, y.astype(np.float32), sr)
        paths.append(path)
    return paths


def test_new_collection_stores_chroma_and_learned_unless_told(tmp_path):
    with Collection.create(tmp_path / "new.mirs") as coll:
        assert coll.feature_kinds == list(DEFAULT_FEATURES) == ["chroma", "learned", "chroma_upper"]
    with Collection.create(tmp_path / "new.mirs") as coll:  # reopened: unchanged
        assert coll.feature_kinds == ["chroma", "learned", "chroma_upper"]
    with Collection.create(tmp_path / "plain.mirs", features=["chroma"]) as coll:
        assert coll.feature_kinds == ["chroma"]
    from mirsearch.service import Archive

    with Archive.create(tmp_path / "api.mirs") as archive:  # the Python API: the same default
        assert archive.collection.feature_kinds == ["chroma", "learned", "chroma_upper"]


def test_add_is_incremental_and_detects_changes(tmp_path):
    files = _write_chords(tmp_path / "audio", 4)
    coll = Collection.create(tmp_path / "c.mirs", features=CHROMA)
    assert coll.generation() == 0
    r1 = coll.add(tmp_path / "audio")
    assert len(r1.added) == 4 and not r1.failed
    assert coll.generation() == 4
    Y1 = coll.database()[0]
    r2 = coll.add(tmp_path / "audio")
    assert len(r2.unchanged) == 4 and not r2.added
    assert coll.generation() == 4 and coll.database()[0] is Y1  # nothing changed: the memoised database
    # touched but same content: not re-extracted; new content: updated, same id
    os.utime(files[0], (time.time() + 5, time.time() + 5))
    before = {r.path: r.id for r in coll.recordings()}
    _write_chords(tmp_path / "other", 2, seed=9)[1].replace(files[1])
    r3 = coll.add(tmp_path / "audio")
    assert r3.updated == [str(files[1].resolve())]
    assert str(files[0].resolve()) in r3.unchanged
    assert {r.path: r.id for r in coll.recordings()} == before
    assert coll.generation() == 5  # the update moved the generation (touching did not) ...
    with Collection.open(tmp_path / "c.mirs", readonly=True) as reader:
        assert reader.generation() == 5  # ... as another connection sees it
    Y3 = coll.database()[0]  # ... and the memoised database was rebuilt with the new content
    assert Y3 is not Y1 and not np.array_equal(Y3, Y1)
    assert len(list((tmp_path / "c.mirs" / "features").rglob("*.npy"))) == 4  # old array of rec001 removed
    coll.close()


def test_changed_feature_configuration_re_extracts(tmp_path):
    _write_chords(tmp_path / "audio", 2)
    with Collection.create(tmp_path / "c.mirs", features=CHROMA) as coll:
        coll.add(tmp_path / "audio")
        X, rate = coll.load_features(coll.recordings()[0].id)
        assert rate == 10.0 and X.shape == (12, 30)
    with Collection.create(tmp_path / "c.mirs", feature_rate=5.0, features=CHROMA) as coll:
        report = coll.add(tmp_path / "audio")
        assert len(report.updated) == 2
        X, rate = coll.load_features(coll.recordings()[0].id)
        assert rate == 5.0 and X.shape == (12, 15)


def test_bad_files_are_reported_and_the_batch_goes_on(tmp_path):
    _write_chords(tmp_path / "audio", 2)
    (tmp_path / "audio" / "broken.wav").write_bytes(b"RIFF....WAVEfmt nonsense")
    sf.write(tmp_path / "audio" / "silent.wav", np.zeros(22050 * 2, dtype=np.float32), 22050)
    with Collection.create(tmp_path / "c.mirs", features=CHROMA) as coll:
        report = coll.add([tmp_path / "audio", tmp_path / "missing.flac"])
        assert len(report.added) == 2
        reasons = sorted(msg for _, msg in report.failed)
        assert len(reasons) == 3
        assert any("broken.wav: unreadable audio" in m for m in reasons)
        assert any("silent.wav: audio is silent" in m for m in reasons)
        assert any("missing.flac: no such file" in m for m in reasons)
        assert len(coll.info()["failures"]) == 2


def test_parallel_jobs_give_the_same_features(tmp_path):
    _write_chords(tmp_path / "audio", 3)
    with (
        Collection.create(tmp_path / "a.mirs", features=CHROMA) as a,
        Collection.create(tmp_path / "b.mirs", features=CHROMA) as b,
    ):
        a.add(tmp_path / "audio", jobs=1)
        b.add(tmp_path / "audio", jobs=2)
        for ra, rb in zip(a.recordings(), b.recordings(), strict=True):
            assert ra.path == rb.path
            np.testing.assert_array_equal(a.load_features(ra.id)[0], b.load_features(rb.id)[0])


def _index_command(folder, root, *, jobs: int) -> list[str]:
    """``mirsearch index FOLDER -c ROOT -j JOBS`` (plain chroma) as a subprocess command line."""
    return [sys.executable, "-m", "mirsearch.cli.main", "index", str(folder), "-c", str(root), "-j", str(jobs),
            *CHROMA_CLI]  # fmt: skip


def test_interrupted_index_resumes_without_loss_or_duplicates(tmp_path):
    files = _write_chords(tmp_path / "audio", 30, seconds=2.0)
    root = tmp_path / "c.mirs"
    cmd = _index_command(tmp_path / "audio", root, jobs=1)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    count = 0
    while time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
        try:
            with sqlite3.connect(f"file:{root / 'catalog.sqlite'}?mode=ro", uri=True) as db:
                count = db.execute("SELECT COUNT(*) FROM recordings").fetchone()[0]
        except sqlite3.Error:
            continue
        if count >= 3:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 3 <= count < 30, "the run was not interrupted in the middle"
    with Collection.open(root) as coll:
        partial = coll.recordings()
        assert len(partial) < 30
        for rec in partial:  # every committed recording is complete
            assert coll.load_features(rec.id)[0].shape == (12, 20)
        report = coll.add(tmp_path / "audio")
        assert len(report.unchanged) == len(partial)
        assert len(report.added) == 30 - len(partial)
        paths = [r.path for r in coll.recordings()]
        assert sorted(paths) == sorted(str(f.resolve()) for f in files) and len(set(paths)) == 30


def test_readonly_and_single_writer(tmp_path):
    _write_chords(tmp_path / "audio", 1)
    with Collection.create(tmp_path / "c.mirs", features=CHROMA) as writer:
        writer.add(tmp_path / "audio")
        with Collection.open(tmp_path / "c.mirs", readonly=True) as reader:
            assert len(reader.recordings()) == 1
            with pytest.raises(CollectionError, match="read-only"):
                reader.add(tmp_path / "audio")
        with Collection.open(tmp_path / "c.mirs") as second, pytest.raises(CollectionError, match="another process"):
            second.add(tmp_path / "audio")


def test_open_errors(tmp_path):
    with pytest.raises(CollectionError, match="not a mirsearch collection"):
        Collection.open(tmp_path / "nothing")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.txt").write_text("x")
    with pytest.raises(CollectionError, match="not empty"):
        Collection.create(tmp_path / "full", features=CHROMA)


# -- upkeep, hardening of the catalogue ------------------------------------------------------------------


def _cli(*args) -> int:
    from mirsearch.cli.main import main

    return main([str(a) for a in args])


def test_paths_are_stored_relative_and_a_moved_archive_keeps_working(tmp_path):
    _write_chords(tmp_path / "arch" / "audio", 2)
    with Collection.create(tmp_path / "arch" / "c.mirs", features=CHROMA) as coll:
        coll.add(tmp_path / "arch" / "audio")
        assert sorted(coll.catalog.stored_paths().values()) == ["audio/rec000.flac", "audio/rec001.flac"]
    (tmp_path / "arch").rename(tmp_path / "moved")  # archive and collection moved together
    with Collection.open(tmp_path / "moved" / "c.mirs") as coll:
        assert all(Path(r.path).is_file() for r in coll.recordings())
        report = coll.add(tmp_path / "moved" / "audio")
        assert len(report.unchanged) == 2 and not report.added


def test_renamed_folder_relocate_prune_remove_and_list(tmp_path, capsys):
    _write_chords(tmp_path / "audio", 3)
    root = tmp_path / "c.mirs"
    with Collection.create(root, features=CHROMA) as coll:
        coll.add(tmp_path / "audio")
        arrays = sorted(p.name for p in (root / "features").rglob("*.npy"))
        ids = [r.id for r in coll.recordings()]
    (tmp_path / "audio").rename(tmp_path / "renamed")
    assert _cli("list", "-c", root) == 0 and capsys.readouterr().out.count("!") == 3
    assert _cli("relocate", tmp_path / "audio", tmp_path / "renamed", "-c", root, "--json") == 0
    assert '"moved"' in capsys.readouterr().out
    with Collection.open(root) as coll:
        recs = coll.recordings()
        assert [r.id for r in recs] == ids and all("renamed" in r.path for r in recs)
        assert sorted(p.name for p in (root / "features").rglob("*.npy")) == arrays  # nothing recomputed
        assert len(coll.add(tmp_path / "renamed").unchanged) == 3
    (tmp_path / "renamed" / "rec000.flac").unlink()
    assert _cli("prune", "-c", root) == 0
    assert _cli("remove", tmp_path / "renamed" / "rec001.flac", tmp_path / "nothing.flac", "-c", root) == 3
    with Collection.open(root) as coll:
        assert [Path(r.path).name for r in coll.recordings()] == ["rec002.flac"]
        assert len(list((root / "features").rglob("*.npy"))) == 1


def test_index_after_a_rename_moves_recordings_without_recomputing(tmp_path):
    _write_chords(tmp_path / "audio", 2)
    with Collection.create(tmp_path / "c.mirs", features=CHROMA) as coll:
        coll.add(tmp_path / "audio")
        (tmp_path / "audio").rename(tmp_path / "new")
        report = coll.add(tmp_path / "new")
        assert len(report.moved) == 2 and not report.added and report.audio_seconds == 0
        assert len(coll.recordings()) == 2 and all("/new/" in r.path for r in coll.recordings())


def test_undecodable_file_names_are_stored_losslessly(tmp_path):
    folder = tmp_path / "audio"
    _write_chords(folder, 1)
    odd = os.fsdecode(os.fsencode(str(folder)) + b"/caf\xe9-latin1.flac")
    (folder / "rec000.flac").rename(odd)
    with Collection.create(tmp_path / "c.mirs", features=CHROMA) as coll:
        report = coll.add(folder)
        assert report.added == [odd] and not report.failed
        assert coll.recordings()[0].path == odd and Path(odd).is_file()
        assert "\\xe9" in coll.recordings()[0].to_dict()["path"]
        assert len(coll.add(folder).unchanged) == 1


def test_failed_files_are_not_retried_and_do_not_count_again(tmp_path):
    _write_chords(tmp_path / "audio", 1)
    (tmp_path / "audio" / "broken.wav").write_bytes(b"RIFF....WAVEfmt nonsense")
    (tmp_path / "audio" / "notes.txt").write_text("x")
    root = tmp_path / "c.mirs"
    assert _cli("index", tmp_path / "audio", "-c", root, "-j", "1", *CHROMA_CLI) == 3
    assert _cli("index", tmp_path / "audio", "-c", root, "-j", "1", *CHROMA_CLI) == 0  # nothing new failed
    with Collection.open(root) as coll:
        report = coll.add(tmp_path / "audio")
        assert len(report.known_failures) == 1 and not report.failed and report.skipped == {".txt": 1}


def test_bad_stored_features_skip_one_recording_not_the_search(tmp_path, caplog):
    _write_chords(tmp_path / "audio", 3)
    with Collection.create(tmp_path / "c.mirs", features=CHROMA) as coll:
        coll.add(tmp_path / "audio")
        recs = coll.recordings()
        entries = coll.catalog.features("chroma")
        np.save(tmp_path / "c.mirs" / entries[recs[0].id].file, np.full((12, 30), np.nan, np.float32))
        (tmp_path / "c.mirs" / entries[recs[1].id].file).write_bytes(b"\x93NUMPY garbage")
        coll.views.clear()
        Y, offsets, kept, _ = coll.database()
        assert [r.id for r in kept] == [recs[2].id] and np.all(np.isfinite(Y))
        assert "rec000.flac" in caplog.text and "rec001" in caplog.text
        with pytest.raises(CollectionError, match="rec000.flac: stored 'chroma' features contain NaN"):
            coll.load_features(recs[0].id)


def test_corrupt_catalogue_and_read_only_folder(tmp_path, monkeypatch):
    (tmp_path / "bad.mirs").mkdir()
    (tmp_path / "bad.mirs" / "catalog.sqlite").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(CollectionError, match="catalog.sqlite: cannot open catalogue .*corrupt"):
        Collection.open(tmp_path / "bad.mirs")
    _write_chords(tmp_path / "audio", 2)
    with Collection.create(tmp_path / "c.mirs", features=CHROMA) as coll:
        coll.add(tmp_path / "audio")
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p).endswith("c.mirs") else real_access(p, mode))
    with Collection.open(tmp_path / "c.mirs", readonly=True) as coll:  # opened immutable: no WAL files needed
        assert len(coll.database()[2]) == 2
    with pytest.raises(CollectionError, match="read-only"):
        Collection.create(tmp_path / "c.mirs", features=CHROMA)


def test_disk_full_stops_the_run_cleanly(tmp_path, monkeypatch):
    import errno

    from mirsearch._util import files

    _write_chords(tmp_path / "audio", 3)
    with Collection.create(tmp_path / "c.mirs", features=CHROMA) as coll:
        calls = []

        def full(path, X):
            calls.append(path)
            if len(calls) > 1:
                raise OSError(errno.ENOSPC, "No space left on device")
            return files.atomic_save_npy(path, X)

        monkeypatch.setattr("mirsearch.collection.store.atomic_save_npy", full)
        report = coll.add(tmp_path / "audio")
        assert report.aborted and "disk full" in report.aborted and len(report.added) == 1
        monkeypatch.undo()
        assert len(coll.database()[2]) == 1  # what was committed stays usable
        assert len(coll.add(tmp_path / "audio", retry_failed=True).added) == 2


def _children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (from /proc)."""
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.parent.name))
    return kids


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc and PR_SET_PDEATHSIG")
def test_kill_9_leaves_no_orphaned_workers_and_an_intact_catalogue(tmp_path):
    files = _write_chords(tmp_path / "audio", 16, seconds=2.0)
    root = tmp_path / "c.mirs"
    cmd = _index_command(tmp_path / "audio", root, jobs=2)
    for attempt in range(2):
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        workers: list[int] = []
        while time.time() < deadline and proc.poll() is None:  # wait for the pool to be busy
            workers = [k for k in _children(proc.pid) if "spawn_main" in Path(f"/proc/{k}/cmdline").read_text()]
            if len(workers) >= 2:
                time.sleep(1.0 + attempt)
                break
            time.sleep(0.1)
        descendants = _children(proc.pid)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert len(workers) >= 2, "the pool never started"
        deadline = time.time() + 10
        while time.time() < deadline and any(_alive(p) for p in descendants):
            time.sleep(0.1)
        assert not [p for p in descendants if _alive(p)], "orphaned worker processes"
    with Collection.open(root) as coll:
        for rec in coll.recordings():
            assert coll.load_features(rec.id)[0].shape == (12, 20)
        coll.add(tmp_path / "audio")
        paths = [r.path for r in coll.recordings()]
        assert sorted(paths) == sorted(str(f.resolve()) for f in files) and len(set(paths)) == 16


def _read_only_mount(src: Path, target: Path) -> bool:
    target.mkdir()
    ok = subprocess.run(["mount", "--bind", str(src), str(target)], capture_output=True).returncode == 0
    if ok and subprocess.run(["mount", "-o", "remount,ro,bind", str(target)], capture_output=True).returncode == 0:
        return True
    if ok:
        subprocess.run(["umount", str(target)], capture_output=True)
    return False


@pytest.mark.skipif(os.geteuid() != 0, reason="a read-only bind mount needs root")
def test_a_collection_on_a_read_only_file_system_answers_searches(tmp_path):
    _write_chords(tmp_path / "src" / "audio", 2)
    with Collection.create(tmp_path / "src" / "c.mirs", features=CHROMA) as coll:
        coll.add(tmp_path / "src" / "audio")
    for extra in (tmp_path / "src" / "c.mirs").glob("catalog.sqlite-*"):
        extra.unlink()  # as after a copy: no WAL index beside the catalogue
    if not _read_only_mount(tmp_path / "src", tmp_path / "ro"):
        pytest.skip("bind mounts are not permitted here")
    try:
        with Collection.open(tmp_path / "ro" / "c.mirs", readonly=True) as coll:
            assert len(coll.database()[2]) == 2 and all(Path(r.path).is_file() for r in coll.recordings())
        with pytest.raises(CollectionError, match="read-only"):
            Collection.create(tmp_path / "ro" / "c.mirs", features=CHROMA)
    finally:
        subprocess.run(["umount", "-l", str(tmp_path / "ro")], capture_output=True)  # lazy: memory maps may linger


def test_long_files_are_analysed_in_windows_with_the_frames_of_a_whole_file(tmp_path, monkeypatch):
    from mirsearch.collection import extract
    from mirsearch.features import fingerprint, registry

    sr, rng = 22050, np.random.default_rng(3)
    t = np.arange(2 * sr) / sr
    chords = [sum(np.sin(2 * np.pi * 440 * 2 ** ((r + d - 69) / 12) * t) for d in (0, 4, 7)) * 0.2 * np.exp(-t)
              for r in 48 + rng.integers(0, 24, 35)]  # fmt: skip
    path = tmp_path / "long.flac"  # 70 s: a chord every 2 s
    sf.write(path, np.concatenate(chords).astype(np.float32), sr)
    configs = [registry.feature_config("chroma"), registry.feature_config("fingerprint")]
    _, whole = extract.extract_features(path, configs)
    monkeypatch.setattr(extract.windows, "__kwdefaults__", {"block": 20, "overlap": 4})  # 20-s windows
    duration, parts = extract.extract_features(path, configs)
    assert duration == 70.0
    (C1, r1), (P1, f1) = whole
    (C2, r2), (P2, f2) = parts
    assert C1.shape == C2.shape == (12, 700) and r1 == r2 and not np.array_equal(C1, C2)
    cos = (C1 * C2).sum(0) / np.maximum(1e-9, np.linalg.norm(C1, axis=0) * np.linalg.norm(C2, axis=0))
    assert np.percentile(cos, 5) > 0.95 and np.median(cos) > 0.999
    config = registry.feature_config("fingerprint")
    (K1, S1), (K2, S2) = fingerprint.split_stored(P1, config=config), fingerprint.split_stored(P2, config=config)
    assert f1 == f2 and abs(K1.shape[1] - K2.shape[1]) <= 0.02 * K1.shape[1]
    assert np.all(np.diff(K2[0]) >= 0)  # peak times stay sorted across the seams
    # the change signs of the windows line up with the whole file's, frame by frame
    assert S1.shape[1] > 0 and abs(S1.shape[1] - S2.shape[1]) <= 2
    n = min(S1.shape[1], S2.shape[1])
    known = (S1[:, :n] != 0) & (S2[:, :n] != 0)
    assert known.mean() > 0.9 and (S1[:, :n] == S2[:, :n])[known].mean() > 0.95
