"""Tests of the MTD-like dataset builder (mirsearch.datasets).

The fixture dataset (four short works, two versions each) is built once per session with FluidSynth;
the other tests use it, or copies of it, or small synthetic scores.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from mirsearch.datasets.corpus import PartData, ScoreData
from mirsearch.datasets.render import fluidsynth_available

pytestmark = pytest.mark.skipif(not fluidsynth_available(), reason="fluidsynth not installed")

HERE = Path(__file__).resolve().parent
TIMGM = Path("/usr/share/sounds/sf2/TimGM6mb.sf2")


@pytest.fixture(scope="session")
def fixture_dir(tmp_path_factory) -> Path:
    from mirsearch.datasets import build_fixture

    out = tmp_path_factory.mktemp("fixture") / "ds"
    build_fixture(out, seed=0, jobs=2)
    return out


@pytest.fixture(scope="session")
def dataset(fixture_dir):
    from mirsearch.datasets import Dataset

    return Dataset.load(fixture_dir)


def _score(parts: list[list[tuple[int, float, float]]], *, work_id: str = "w", bpm: float = 100.0) -> ScoreData:
    pds = tuple(PartData(f"p{i}", tuple((p, o, d, False) for p, o, d in notes)) for i, notes in enumerate(parts))
    end = max(o + d for notes in parts for _, o, d in notes)
    return ScoreData(
        work_id=work_id,
        source=f"test:{work_id}",
        title=work_id,
        composer="",
        category="user",
        parts=pds,
        tempo_bpm=bpm,
        time_signature="4/4",
        measure_starts=tuple(float(x) for x in np.arange(0.0, end, 4.0)),
        duration_q=end,
    )


# --------------------------------------------------------------------------------------------------
# symbolic parts (fast)


def test_key_estimate_and_shift_to_c():
    from mirsearch.datasets.themes import estimate_key

    g_major = [(p, i, 1.0) for i, p in enumerate([67, 69, 71, 72, 74, 76, 78, 79, 74, 71, 67])]
    key = estimate_key(g_major)
    assert (key.tonic, key.mode) == (7, "major")
    assert key.shift_to_c == 5  # G -> C up a fourth (shift kept in [-6, 5])
    d_minor = [(p, i, 1.0) for i, p in enumerate([62, 64, 65, 67, 69, 70, 73, 74, 69, 65, 62])]
    key = estimate_key(d_minor)
    assert (key.tonic, key.mode) == (2, "minor")
    assert key.shift_to_c == -5  # D minor -> A minor


def test_themes_found_with_transposed_repeat():
    from mirsearch.datasets.themes import extract_themes

    phrase = [(64, 0, 1), (62, 1, 1), (60, 2, 1), (62, 3, 1), (64, 4, 1), (64, 5, 1), (64, 6, 2)]
    other = [(67, 0, 0.5), (69, 0.5, 0.5), (71, 1, 1), (72, 2, 1), (71, 3, 1), (69, 4, 2), (67, 6, 2)]
    melody = []
    t = 0.0
    for ph, shift in ((phrase, 0), (other, 0), (phrase, 7), (phrase, 0)):
        melody += [(p + shift, t + o, d) for p, o, d in ph]
        t += 8.0 + 1.0  # a rest between phrases
    bass = [(48, float(q), 1.0) for q in range(int(t))]
    score = _score([melody, bass], work_id="mary")
    themes = extract_themes([score])["mary"]
    opening = themes[0]
    assert opening.kind == "opening"
    assert len(opening.notes) == 7
    # C major: the opening is already in C, shift 0
    assert [n[0] for n in opening.notes] == [64, 62, 60, 62, 64, 64, 64]
    starts = [(o.start, o.shift) for o in opening.occurrences]
    assert starts == [(0.0, 0), (18.0, 7), (27.0, 0)]
    # the second phrase is a theme of its own, found once
    assert any(len(t.occurrences) == 1 and t.occurrences[0].start == 9.0 for t in themes[1:])


def test_assign_splits_keeps_families_together_and_is_stable():
    from mirsearch.datasets.selection import assign_splits

    families = {f"w{i}": f"f{i // 3}" for i in range(60)}  # 20 families of 3 works
    fr = {"train": 0.6, "validation": 0.15, "test": 0.25}
    a = assign_splits(families, fr, seed=1)
    assert a == assign_splits(dict(reversed(list(families.items()))), fr, seed=1)
    for fam in set(families.values()):
        assert len({a[w] for w, f in families.items() if f == fam}) == 1
    counts = {s: sum(1 for w in a if a[w] == s) // 3 for s in fr}
    assert counts == {"train": 12, "validation": 3, "test": 5}
    assert a != assign_splits(families, fr, seed=2)


def _crash_on_five(x: int) -> int:
    import os
    import signal

    if x == 5:
        os.kill(os.getpid(), signal.SIGSEGV)
    return 2 * x


def test_worker_crash_is_isolated_and_reported():
    from mirsearch.datasets.workers import Workers

    workers = Workers(2)
    try:
        results = dict(workers.run(_crash_on_five, list(range(8)), crashed=lambda x: "crashed"))
    finally:
        workers.close()
    assert results == {0: 0, 1: 2, 2: 4, 3: 6, 4: 8, 5: "crashed", 6: 12, 7: 14}


def test_tempo_map_is_monotonic_and_invertible():
    from mirsearch.datasets.performance import build_tempo_map, sample_params

    score = _score([[(60 + i % 7, float(i), 1.0) for i in range(64)]])
    params = sample_params(score, seed=3, version=0, soundfonts=[str(TIMGM)], top_part=0)
    tm = build_tempo_map(score, params)
    assert tm.score[0] == 0 and tm.audio[0] == pytest.approx(params.lead_in_s, abs=1e-4)
    assert np.all(np.diff(tm.audio) > 0)
    q = np.linspace(0, 63, 200)
    assert np.allclose(tm.inverse(tm(q)), q, atol=1e-6)
    nominal = 64 * 60.0 / (params.base_bpm * params.tempo_factor)
    assert 0.8 * nominal < tm.audio[-1] - tm.audio[0] < 1.5 * nominal


# --------------------------------------------------------------------------------------------------
# the fixture dataset


def test_fixture_contents(dataset, fixture_dir):
    assert len(dataset.works) == 4
    assert len(dataset.versions) == 8
    for v in dataset.versions.values():
        assert v.path.is_file() and v.midi_path.is_file()
        assert not Path(v.audio).is_absolute()
        assert v.sample_rate == 22050
        assert -40 <= v.tuning_cents <= 40 and 0.7 <= v.tempo_factor <= 1.4
    for t in dataset.themes.values():
        assert 6 <= len(t.notes) <= 25
        assert dataset.relevant_versions(t.theme_id), t.theme_id
    info = json.loads((fixture_dir / "build_info.json").read_text())
    assert info["versions_failed"] == 0


def test_splits_do_not_leak(dataset):
    seen: dict[str, str] = {}
    for name in ("train", "validation", "test"):
        view = dataset.split(name)
        assert view.works, name
        for wid in view.works:
            assert wid not in seen, f"{wid} in {seen.get(wid)} and {name}"
            seen[wid] = name
        for v in view.versions.values():
            assert v.split == name and v.work_id in view.works
        for tid in view.themes:
            # every version where a theme of this split occurs is in the same split
            for vid in dataset.relevant_versions(tid):
                assert dataset.versions[vid].split == name
    assert set(seen) == set(dataset.works)


def test_annotated_onsets_match_the_performed_midi(dataset):
    import pretty_midi

    checked = 0
    for v in dataset.versions.values():
        pm = pretty_midi.PrettyMIDI(str(v.midi_path))
        top = v.params["top_part"]
        notes = pm.instruments[top].notes
        for occ in v.occurrences:
            theme = dataset.themes[occ.theme_id]
            for (pitch, _, _), onset in zip(theme.notes, occ.onsets, strict=True):
                want = pitch + occ.transposition
                hits = [n for n in notes if abs(n.start - onset) < 0.002 and n.pitch % 12 == want % 12]
                assert hits, f"{v.version_id} {occ.theme_id}: no note {want} at {onset:.3f} s"
                checked += 1
    assert checked > 50


def _detect_onsets(y: np.ndarray, sr: int, times: list[float]) -> np.ndarray:
    """Onset near each expected time: first rise of a 32-sample energy envelope above 10 % of its peak."""
    out = []
    for t in times:
        a, b = int((t - 0.06) * sr), int((t + 0.12) * sr)
        seg = np.convolve(y[max(a, 0) : b] ** 2, np.ones(32) / 32, mode="same")
        base = np.median(seg[: int(0.03 * sr)])
        k = int(np.argmax(seg > base + 0.1 * (seg.max() - base)))
        out.append((max(a, 0) + k) / sr)
    return np.array(out)


def test_theme_rendered_alone_with_the_tempo_map_lines_up(dataset, tmp_path):
    """Render a theme (xylophone) at tempo-map times; its onsets match the annotation within 20 ms."""
    import pretty_midi

    from mirsearch.datasets.render import render_midi

    sr = 22050
    errors = []
    for vid in sorted(dataset.versions)[::2]:
        v = dataset.versions[vid]
        for occ in v.occurrences[:2]:
            theme = dataset.themes[occ.theme_id]
            pm = pretty_midi.PrettyMIDI(resolution=960)
            inst = pretty_midi.Instrument(program=13)
            times = []
            for pitch, onset_q, dur_q in theme.notes:
                start = v.score_to_audio(occ.score_start + onset_q)
                end = v.score_to_audio(occ.score_start + onset_q + dur_q)
                inst.notes.append(pretty_midi.Note(velocity=110, pitch=pitch + occ.transposition, start=start, end=end))
                times.append(start)
            pm.instruments.append(inst)
            mid = tmp_path / f"{vid}.mid"
            pm.write(str(mid))
            y = render_midi(mid, soundfont=TIMGM, sr=sr)
            detected = _detect_onsets(y, sr, times)
            errors.extend(detected - np.asarray(occ.onsets))
    errors = np.abs(np.asarray(errors))
    assert len(errors) > 30
    assert errors.max() < 0.020, f"max onset error {errors.max() * 1000:.1f} ms"


def _chroma(y: np.ndarray, sr: int, hop: int) -> np.ndarray:
    """Plain STFT chroma (12, n_frames): magnitudes of bins 60-2000 Hz summed per pitch class."""
    n_fft = 4096
    y = np.pad(y, n_fft // 2)
    frames = np.lib.stride_tricks.sliding_window_view(y, n_fft)[::hop] * np.hanning(n_fft)
    mag = np.abs(np.fft.rfft(frames, axis=1)).T
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sr)
    keep = (freqs >= 60) & (freqs <= 2000)
    pcs = np.round(12 * np.log2(freqs[keep] / 440.0) + 69).astype(int) % 12
    chroma = np.zeros((12, mag.shape[1]))
    np.add.at(chroma, pcs, mag[keep] ** 2)
    return chroma / (np.linalg.norm(chroma, axis=0, keepdims=True) + 1e-9)


def _theme_corr(chroma, fr, pcs, onsets, end, *, shift=0, dt=0.0) -> float:
    """Mean chroma energy of the expected pitch class (+ shift) between consecutive note onsets."""
    vals = []
    for pc, a, b in zip(pcs, onsets, [*onsets[1:], end], strict=True):
        fa, fb = int((a + dt) * fr) + 2, int((b + dt) * fr)
        if 0 <= fa < fb <= chroma.shape[1]:
            vals.append(chroma[(pc + shift) % 12, fa:fb].mean())
    return float(np.mean(vals))


def test_occurrence_segment_correlates_with_theme_chroma(dataset):
    """In the polyphonic version, the annotated span carries the theme's pitch classes."""
    import soundfile as sf

    fr = 50.0
    good = total = 0
    for v in dataset.versions.values():
        y, sr = sf.read(v.path, dtype="float32")
        chroma = _chroma(y, sr, int(sr / fr))
        for occ in v.occurrences:
            pcs = [(p + occ.transposition) % 12 for p in dataset.themes[occ.theme_id].pitches]
            args = (chroma, fr, pcs, occ.onsets, occ.end)
            scores = [_theme_corr(*args, shift=k) for k in range(12)]
            total += 1
            good += int(
                np.argmax(scores) == 0
                and scores[0] > _theme_corr(*args, dt=0.4)
                and scores[0] > _theme_corr(*args, dt=-0.4)
            )
    assert total >= 15
    assert good >= 0.85 * total, f"{good}/{total} occurrences match the theme chroma"


def test_same_seed_gives_identical_manifest(fixture_dir, tmp_path):
    from mirsearch.datasets import build_fixture

    other = tmp_path / "again"
    build_fixture(other, seed=0, jobs=2)
    assert (other / "manifest.json").read_bytes() == (fixture_dir / "manifest.json").read_bytes()


def test_resume_does_not_duplicate_or_lose_versions(fixture_dir, tmp_path):
    from mirsearch.datasets import Dataset
    from mirsearch.datasets.build import build_dataset

    work = tmp_path / "resume"
    shutil.copytree(fixture_dir, work)
    original = (fixture_dir / "manifest.json").read_bytes()
    # an interrupted build: one version missing, one with audio but no record, a stale temp file,
    # and no manifest
    ds = Dataset.load(work)
    vids = sorted(ds.versions)
    (work / "records" / f"{vids[0]}.json").unlink()
    ds.versions[vids[0]].path.unlink()
    (work / "records" / f"{vids[1]}.json").unlink()
    (work / "manifest.json").unlink()
    (work / "audio" / "train" / ".x.tmp123.flac").write_bytes(b"partial")
    report = build_dataset(work, preset="fixture", seed=0, jobs=1, progress=False)
    assert (report.rendered, report.reused, report.failed) == (2, 6, 0)
    assert (work / "manifest.json").read_bytes() == original
    ds = Dataset.load(work)
    assert sorted(ds.versions) == vids
    audio = [p for p in (work / "audio").rglob("*") if p.is_file() and not p.name.startswith(".")]
    assert len(audio) == len(vids)
    # nothing left to do
    report = build_dataset(work, preset="fixture", seed=0, jobs=1, progress=False)
    assert (report.rendered, report.reused) == (0, 8)


def test_malformed_scores_are_skipped_and_counted(tmp_path):
    import pretty_midi

    from mirsearch.datasets import Dataset
    from mirsearch.datasets.build import build_dataset

    folder = tmp_path / "scores"
    folder.mkdir()
    pm = pretty_midi.PrettyMIDI(initial_tempo=90.0)
    inst = pretty_midi.Instrument(program=0)
    melody = [60, 62, 64, 65, 67, 65, 64, 62, 64, 67, 72, 71, 69, 67, 65, 64, 62, 60]
    t = 0.0
    for k, p in enumerate(melody):
        inst.notes.append(pretty_midi.Note(velocity=90, pitch=p, start=t, end=t + 0.6))
        t += 2 / 3 if k != 8 else 2.0  # quarter notes at 90 bpm, a rest after the first phrase
    pm.instruments.append(inst)
    pm.write(str(folder / "good.mid"))
    (folder / "broken.mid").write_bytes(b"MThd\x00\x00\x00\x06garbage")
    (folder / "broken.musicxml").write_text("<score-partwise><part id='P1'><measure>")
    out = tmp_path / "ds"
    report = build_dataset(out, scores=folder, versions=1, seed=0, jobs=1, progress=False, soundfonts=[str(TIMGM)])
    skipped = {Path(s).name for s, _ in report.skipped_scores}
    assert skipped == {"broken.mid", "broken.musicxml"}
    assert report.works == 1 and report.rendered == 1
    info = json.loads((out / "build_info.json").read_text())
    assert len(info["skipped_scores"]) == 2
    ds = Dataset.load(out)
    (work,) = ds.works.values()
    assert work.source == "good.mid"
    assert ds.themes


def test_theme_info_converts_to_core_theme(dataset):
    scores = pytest.importorskip("mirsearch.scores")
    info = next(iter(dataset.themes.values()))
    theme = info.to_theme()
    assert isinstance(theme, scores.Theme)
    assert [n.pitch for n in theme.notes] == list(info.pitches)
    assert theme.notes[0].onset == 0.0


def test_cli_info(fixture_dir, capsys):
    from mirsearch.cli.main import main

    assert main(["dataset", "info", str(fixture_dir), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["splits"]["test"]["versions"] == 2
    assert main(["dataset", "info", str(fixture_dir / "nope")]) == 1


def test_score_folder_of_symbolic_links(tmp_path):
    """A folder of links to scores elsewhere lists the links (not their targets), with ids relative to it."""
    from mirsearch.datasets.corpus import user_sources, work_id_for

    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "deep").mkdir(parents=True)
    target = elsewhere / "deep" / "tune.krn"
    target.write_text("**kern\n*M4/4\n4c\n4d\n4e\n4f\n*-\n")
    folder = tmp_path / "scores"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "linked.krn").symlink_to(target)
    (folder / "notes.txt").write_text("not a score")
    sources = user_sources(folder)
    assert sources == [str(folder.resolve() / "sub" / "linked.krn")]
    assert work_id_for(sources[0], root=folder.resolve()) == "sub-linked"
