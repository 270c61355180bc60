"""Synchronisation: DTW kernels against librosa and by hand, multiresolution memory, TimeMap, and
alignment of FluidSynth renderings of one score played with different tempo maps (known ground truth).

Stated accuracy (checked below): two renderings of two chorales (piano at a steady 100 bpm against a
harpsichord whose tempo swings +-20 % around 125 bpm, other SoundFont, 1.5 s lead-in) align with a mean
onset error below 40 ms and a 95th percentile below 100 ms (measured: about 10 ms and 25 ms); the same
for the transposed pair and for score-to-audio alignment of the MusicXML / MIDI score.
"""

from __future__ import annotations

import json

import librosa
import numpy as np
import pytest
import soundfile as sf

from mirsearch.errors import InputError, ParameterError
from mirsearch.matching.dtw import SYNC_STEPS, dtw, dtw_band, path_cost
from mirsearch.matching.subsequence import cosine_cost
from mirsearch.matching.sync import project_band, sync_dtw
from mirsearch.sync import TimeMap as Map
from mirsearch.sync import align_audio, align_score, load_score_notes
from synth_versions import TempoMap, chorale_notes, error_stats, have_fluidsynth, render_version

PIECES = ["bach/bwv66.6", "bach/bwv153.1"]
LEAD_IN = 1.5  # seconds of silence before version B
LEAD_IN_A = 0.5  # and before version A

# ------------------------------------------------------------------------------------------ kernels


def test_dtw_hand_computed():
    # steps (1,1), (1,0), (0,1), weights 1: D[n,m] = C[n,m] + min(D[n-1,m-1], D[n-1,m], D[n,m-1])
    C = np.array([[0, 2, 3], [1, 0, 2], [4, 1, 0]], dtype=float)
    r = dtw(C=C)
    assert r.cost == 0.0
    np.testing.assert_array_equal(r.path, [[0, 0], [1, 1], [2, 2]])
    C = np.array([[1, 5, 5], [1, 5, 5], [5, 1, 1]], dtype=float)
    r = dtw(C=C)
    # best path: (0,0) 1 -> (1,0) 1 -> (2,1) 1 -> (2,2) 1  = 4
    assert r.cost == 4.0
    np.testing.assert_array_equal(r.path, [[0, 0], [1, 0], [2, 1], [2, 2]])


@pytest.mark.parametrize("shape", [(7, 9), (40, 25), (1, 6), (6, 1)])
@pytest.mark.parametrize("weights", [(1.0, 1.0, 1.0), (2.0, 1.0, 1.0)])
def test_dtw_equals_librosa(shape, weights):
    rng = np.random.default_rng(sum(shape))
    X, Y = rng.random((12, shape[0])), rng.random((12, shape[1]))
    D, wp = librosa.sequence.dtw(C=cosine_cost(X, Y), step_sizes_sigma=SYNC_STEPS, weights_mul=np.array(weights))
    r = dtw(X, Y, weights=np.array(weights))
    assert r.cost == pytest.approx(D[-1, -1], rel=1e-9)
    np.testing.assert_array_equal(r.path, wp[::-1])
    # generic kernel (steps in another order) gives the same cost
    r2 = dtw_band(X, Y, steps=SYNC_STEPS[[2, 1, 0]], weights=np.array(weights)[[2, 1, 0]])
    assert r2.cost == pytest.approx(r.cost, rel=1e-9)


def test_band_restricts_path_and_full_band_is_full_dtw():
    rng = np.random.default_rng(1)
    X, Y = rng.random((12, 60)), rng.random((12, 80))
    full = dtw(X, Y)
    lo = np.clip(np.arange(60) * 80 // 60 - 3, 0, 79)
    hi = np.clip(np.arange(60) * 80 // 60 + 4, 1, 80)
    lo[0], hi[-1] = 0, 80
    band = dtw_band(X, Y, lo=lo, hi=hi)
    n, m = band.path[:, 0], band.path[:, 1]
    assert np.all((m >= lo[n]) & (m < hi[n]))
    assert band.cost >= full.cost - 1e-9
    assert band.n_cells == int((hi - lo).sum()) < 60 * 80
    with pytest.raises(ParameterError):
        dtw_band(X, Y, lo=lo + 1, hi=hi)  # (0, 0) outside the band


def test_project_band_is_connected_and_covers_the_path():
    path = np.array([[0, 0], [1, 1], [1, 2], [2, 3], [3, 3], [4, 4]])
    lo, hi = project_band(path, shape=(50, 50), ratio=10, radius=2)
    assert lo[0] == 0 and hi[-1] == 50
    assert np.all(np.diff(lo) >= 0) and np.all(np.diff(hi) >= 0)
    assert np.all(lo[1:] <= hi[:-1])
    for i, j in path:  # the fine cell at each coarse cell's centre lies in the band
        assert lo[i * 10] <= j * 10 < hi[i * 10]


def test_multiresolution_two_20_minute_sequences_without_full_matrix():
    """20 min vs 22 min at 50 Hz: 3.96e9 cells in full; the band must stay below 0.5 % of it."""
    rng = np.random.default_rng(0)
    N = 20 * 60 * 50
    bounds = np.cumsum(rng.integers(10, 50, size=N // 10))
    labels = np.searchsorted(bounds[bounds < N], np.arange(N), side="right")
    X = (rng.random((labels.max() + 1, 12)) ** 4)[labels].T.astype(np.float32)
    M = int(N * 1.1)
    m = np.arange(M)
    warp = np.clip(m / 1.1 + 200 * np.sin(2 * np.pi * 3 * m / M), 0, N - 1)  # truth: Y frame m = X frame warp[m]
    Y = (X[:, np.round(warp).astype(int)] + 0.05 * rng.random((12, M))).astype(np.float32)
    r = sync_dtw(X, Y, feature_rate=50.0)
    assert r.peak_cells < 0.005 * N * M
    assert [lv["rate"] for lv in r.levels] == [1.0, 5.0, 50.0]
    err = np.abs(r.path[:, 0] - warp[r.path[:, 1]])
    assert np.median(err) <= 3 and np.percentile(err, 95) <= 10  # frames of 20 ms
    assert tuple(r.path[0]) == (0, 0) and tuple(r.path[-1]) == (N - 1, M - 1)


def test_path_cost_and_transposition_search():
    rng = np.random.default_rng(2)
    X = rng.random((12, 300)) ** 3
    Y = np.roll(np.repeat(X, 2, axis=1), -5, axis=0)  # twice as slow, 5 semitones down
    r = sync_dtw(X, Y, feature_rate=10.0, factors=(5, 1), shifts=range(12))
    assert r.transposition == 5
    assert path_cost(r.path, X, np.roll(Y, 5, axis=0)).mean() < 0.05


def test_options_objects_equal_keyword_overrides():
    from mirsearch.matching.sync import SyncOptions
    from mirsearch.sync import AlignOptions
    from mirsearch.sync.audio import resolve_options

    rng = np.random.default_rng(3)
    X = rng.random((12, 120)) ** 3
    Y = np.roll(np.repeat(X, 2, axis=1), 2, axis=0)
    a = sync_dtw(X, Y, feature_rate=10.0, factors=(5, 1), shifts=range(12))
    b = sync_dtw(X, Y, feature_rate=10.0, options=SyncOptions(factors=(5, 1), shifts=range(12)))
    np.testing.assert_array_equal(a.path, b.path)
    assert a.cost == b.cost and a.transposition == b.transposition == 10
    with pytest.raises(TypeError):
        sync_dtw(X, Y, feature_rate=10.0, factor=(5, 1))  # a typo is no silent no-op
    assert resolve_options(AlignOptions(onsets=False), {"transpose": False}) == AlignOptions(
        onsets=False, transpose=False
    )
    with pytest.raises(ParameterError, match="feature_rate"):
        resolve_options(None, {"feature_rate": 0.0})
    with pytest.raises(TypeError):
        resolve_options(None, {"w_onsets": 1.0})


def test_fine_chroma_is_used_at_the_finest_level_only():
    rng = np.random.default_rng(4)
    X = rng.random((12, 300)) ** 3
    Y = np.roll(np.repeat(X, 2, axis=1), -3, axis=0)
    kw = dict(feature_rate=10.0, factors=(5, 1), shifts=range(12))
    plain = sync_dtw(X, Y, **kw)
    same = sync_dtw(X, Y, fine=(X, Y), **kw)  # the same chroma twice: the same result
    np.testing.assert_array_equal(plain.path, same.path)
    assert same.transposition == plain.transposition == 3
    # a flat fine chroma: the coarse path (and so the criterion and the shift) is kept, the finest path changes
    flat = sync_dtw(X, Y, fine=(np.ones_like(X), np.ones_like(Y)), **kw)
    assert flat.transposition == 3 and flat.coarse_path_cost == pytest.approx(plain.coarse_path_cost)
    assert not np.array_equal(flat.path, plain.path)
    with pytest.raises(ParameterError, match="shapes"):
        sync_dtw(X, Y, fine=(X[:, :-1], Y), **kw)


def test_warp_pass_follows_the_tempo_where_nothing_changes():
    """Chords held three times as long as the rest (each repeated twice: no change to align to), the second
    version 1.5x slower. A plain DTW crosses each held stretch in slope-1 runs and a jump (errors up to the
    stretch's length); the tempo-following pass puts it on the straight line of the local tempo."""
    rng = np.random.default_rng(7)
    chords = rng.random((40, 12)) ** 3
    chords[1::3] = chords[0::3][: len(chords[1::3])]
    chords[2::3] = chords[0::3][: len(chords[2::3])]
    X = chords[np.repeat(np.arange(40), 25)].T.astype(np.float32)
    N, M = X.shape[1], int(X.shape[1] * 1.5)
    truth = np.arange(M) / 1.5  # frame of X that frame m of Y shows
    Y = X[:, np.round(truth).astype(int).clip(0, N - 1)]
    plain = sync_dtw(X, Y, feature_rate=50.0)
    warped = sync_dtw(X, Y, feature_rate=50.0, warp_seconds=2.0)
    err_plain = np.abs(plain.path[:, 0] - truth[plain.path[:, 1]])
    err = np.abs(warped.path[:, 0] - truth[warped.path[:, 1]])
    assert err_plain.max() > 15 and err.max() <= 5 and err.mean() < 1.0  # frames of 20 ms
    assert tuple(warped.path[0]) == (0, 0) and tuple(warped.path[-1]) == (N - 1, M - 1)
    assert {tuple(d) for d in np.diff(warped.path, axis=0)} <= {(1, 1), (1, 0), (0, 1)}
    assert warped.coarse_path_cost == plain.coarse_path_cost  # the mismatch criterion is not touched


def test_tempo_warp_and_unwarp_path():
    from mirsearch.matching.sync import tempo_warp, unwarp_path

    rng = np.random.default_rng(8)
    N, M = 400, 620
    steps = np.array([[1, 1], [1, 0], [0, 1]])[rng.choice(3, size=900, p=[0.5, 0.15, 0.35])]
    path = np.concatenate([[[0, 0]], np.cumsum(steps, axis=0)])
    path = path[(path[:, 0] < N) & (path[:, 1] < M)]  # a monotonic path that ends short of the corner
    pa, pb = tempo_warp(path, shape=(N, M), sigma=30.0)
    assert pa.size == pb.size == M
    assert (pa[0], pb[0], pa[-1], pb[-1]) == (0.0, 0.0, N - 1.0, M - 1.0)  # the corners are kept
    assert np.all(np.diff(pa) >= 0) and np.all(np.diff(pb) >= 0)
    # any path on the common axis (here one with long runs) comes back as a valid path of the two sequences
    u = np.concatenate([[[0, 0]], np.cumsum(np.array([[1, 0], [0, 1], [1, 1]])[rng.choice(3, 2 * M)], axis=0)])
    u = np.concatenate([u[(u[:, 0] < M) & (u[:, 1] < M)], [[M - 1, M - 1]]])
    out = unwarp_path(u, (pa, pb))
    assert out.dtype == np.int64 and tuple(out[0]) == (0, 0) and tuple(out[-1]) == (N - 1, M - 1)
    assert {tuple(d) for d in np.diff(out, axis=0)} <= {(1, 1), (1, 0), (0, 1)}


def test_attack_time_of_sharp_and_soft_onsets():
    from mirsearch.features.onset import attack_time

    sharp = np.zeros(500)
    sharp[25::50] = 1.0  # every onset within one frame
    soft = np.zeros(500)
    for p in range(25, 500, 50):
        soft[p - 4 : p + 1] = [0.2, 0.4, 0.6, 0.8, 1.0]  # rising over five frames (100 ms at 50 Hz)
    assert attack_time(sharp, feature_rate=50.0) == 0.0
    # from the first frame above 0.3 of the peak (0.4) to the centroid of 0.4 .. 1.0: 5.2 / 2.8 frames
    assert attack_time(soft, feature_rate=50.0) == pytest.approx(5.2 / 2.8 / 50.0, abs=1e-6)
    assert attack_time(np.zeros(100), feature_rate=50.0) == 0.0  # no onset


def test_audio_recipe_counts_a_soft_attack_from_its_start():
    """A note fading in over 120 ms in a band that already holds some energy (another note's partial):
    with the audio recipe (rise over 40 ms, no peak picking) the onset feature starts within a frame of the
    true onset; the score recipe's one-frame difference with peak picking puts its single impulse later, at
    the steepest rise of the log energy."""
    from mirsearch.features.onset import SyncRecipe, sync_features_from_bands
    from mirsearch.sync.audio import AUDIO_RECIPE

    rate, n, on = 50.0, 200, 100  # frames
    P = np.full((88, n), 1e-9, dtype=np.float32)
    P[39, 20:] = 1.0  # C4 sounding throughout ...
    P[43, 20:] = 0.05  # ... with some energy in the band of E4
    ramp = np.clip((np.arange(n) - on + 1) / 6.0, 0.0, 1.0) ** 2  # E4 fades in over 6 frames (120 ms)
    P[43] += 0.5 * ramp.astype(np.float32)
    first = {}
    for name, recipe in (("audio", AUDIO_RECIPE), ("score", SyncRecipe(onset_lead=0.0))):
        F = sync_features_from_bands(P, None, n_frames=n, feature_rate=rate, recipe=recipe)
        assert all(X.shape == (12, n) and X.dtype == np.float32 for X in F[:3])
        first[name] = int(np.flatnonzero(F.dlnco[4, 30:] > 0.05)[0]) + 30  # pitch class E after C's onset
        np.testing.assert_allclose(np.linalg.norm(F.sharp[:, 30:], axis=0), 1.0, atol=1e-5)
    assert abs(first["audio"] - on) <= 1
    assert first["score"] > first["audio"]


# ------------------------------------------------------------------------------------------ TimeMap


def test_time_map_monotonic_inverse_and_io(tmp_path):
    path = np.array([[0, 0], [1, 0], [2, 1], [2, 2], [3, 3], [4, 5], [5, 6]])
    tm = Map.from_path(path, feature_rate=10.0, duration_a=0.7, duration_b=0.8, name_a="x", name_b="y")
    assert np.all(np.diff(tm.a) > 0) and np.all(np.diff(tm.b) > 0)
    assert tm.map(0.0) == 0.0 and tm.map(0.7) == pytest.approx(0.8)
    assert tm.inverse.map(0.0) == pytest.approx(0.1)  # the leading vertical run maps to its last frame
    t = np.linspace(0, 0.7, 50)
    mapped = tm.map(t)
    assert isinstance(mapped, np.ndarray) and np.all(np.diff(mapped) >= 0)
    inside = t[t >= tm.a[0]]  # before a[0], a maps to b's start (clamped)
    np.testing.assert_allclose(tm.inverse.map(tm.map(inside)), inside, atol=1e-9)
    assert tm.map(-1.0) == 0.0 and tm.map(5.0) == pytest.approx(0.8)  # clamped
    tm.to_csv(tmp_path / "m.csv")
    back = Map.from_csv(tmp_path / "m.csv")
    np.testing.assert_allclose(back.map(t), tm.map(t), atol=2e-3)
    d = json.loads(tm.to_json())
    assert d["a"] == "x" and len(d["time_a"]) == len(tm)
    np.testing.assert_allclose(Map.from_dict(d).map(t), tm.map(t), atol=2e-3)
    with pytest.raises(ParameterError):
        Map([0.0, 1.0, 1.0], [0.0, 1.0, 2.0])
    with pytest.raises(ParameterError):
        Map.from_path(np.array([[0, 0], [2, 1], [1, 2]]), feature_rate=10.0)


# ------------------------------------------------------------------------------------------ renderings


@pytest.fixture(scope="module")
def versions(tmp_path_factory):
    if not have_fluidsynth():
        pytest.fail("FluidSynth and the fluid / TimGM6mb SoundFonts are required (make setup installs them)")
    out = tmp_path_factory.mktemp("sync_versions")
    notes = chorale_notes(PIECES)
    ta = TempoMap.curve(notes.length, bpm=100.0)
    tb = TempoMap.curve(notes.length, bpm=125.0, depth=0.2, period=20.0, phase=1.0)
    tc = TempoMap.curve(notes.length, bpm=85.0, depth=0.15, period=30.0)
    a = render_version(notes, ta, out / "a.wav", program=0, soundfont="fluid", lead_in=LEAD_IN_A)
    b = render_version(notes, tb, out / "b.wav", program=6, soundfont="timgm", lead_in=LEAD_IN)
    c = render_version(notes, tc, out / "c.wav", program=0, soundfont="timgm", transpose=3)
    other_notes = chorale_notes(["bach/bwv269", "bach/bwv86.6"])
    other = render_version(other_notes, TempoMap.curve(other_notes.length, bpm=110.0), out / "other.wav")
    q = np.unique(notes.onset)
    return {
        "notes": notes,
        "q": q,
        "a": (a, ta.time(q) + LEAD_IN_A),
        "b": (b, tb.time(q) + LEAD_IN),
        "c": (c, tc.time(q)),
        "other": other,
        "dir": out,
    }


def test_align_audio_recovers_tempo_map(versions):
    (a, ta), (b, tb) = versions["a"], versions["b"]
    tm = align_audio(a, b)
    stats = error_stats(tm.map(ta), tb)
    assert stats["mean"] < 40 and stats["p95"] < 100, stats
    assert tm.meta["transposition"] == 0
    assert tm.meta["cost_ratio"] < 0.5
    # covers both recordings (starts on an axis, ends at an end) and is monotonic
    assert min(tm.a[0], tm.b[0]) == 0.0
    assert tm.a[-1] == pytest.approx(tm.duration_a) or tm.b[-1] == pytest.approx(tm.duration_b)
    assert np.all(np.diff(tm.a) > 0) and np.all(np.diff(tm.b) > 0)
    assert abs(tm.map(ta[0]) - tb[0]) < 0.1  # first notes after different lead-ins
    back = error_stats(tm.inverse.map(tb), ta)
    assert back["mean"] < 40, back


def test_align_audio_long_silence_at_both_ends(versions):
    """With trim_silence, seconds of silence before and after one recording map onto the other's start and end.

    (Without it the last note lands about 0.7 s early, pulled into the trailing silence.)
    """
    (a, ta), (b, tb) = versions["a"], versions["b"]
    ya, sra = sf.read(a, dtype="float32")
    ya = ya.mean(axis=1) if ya.ndim == 2 else ya
    head, tail = 4.0, 6.0
    padded = np.concatenate([np.zeros(int(head * sra), np.float32), ya, np.zeros(int(tail * sra), np.float32)])
    tm = align_audio((padded, sra), b, trim_silence=True)
    ta = ta + head
    stats = error_stats(tm.map(ta), tb)
    assert stats["mean"] < 40 and stats["p95"] < 100, stats
    # the whole leading silence (and lead-in) of A maps before B's first note, the trailing one after its last
    assert np.all(tm.map(np.linspace(0.0, ta[0] - 0.2, 20)) <= tb[0] + 0.05)
    end_a = padded.size / sra
    assert np.all(tm.map(np.linspace(end_a - tail + 1.0, end_a, 20)) >= tb[-1])
    assert abs(tm.map(ta[0]) - tb[0]) < 0.1 and abs(tm.map(ta[-1]) - tb[-1]) < 0.15
    # and back: B's first and last notes land on A's, not in A's silence
    assert abs(tm.inverse.map(tb[0]) - ta[0]) < 0.1 and abs(tm.inverse.map(tb[-1]) - ta[-1]) < 0.15
    assert np.all(np.diff(tm.a) > 0) and np.all(np.diff(tm.b) > 0)


def test_align_audio_transposed_pair(versions):
    (a, ta), (c, tc) = versions["a"], versions["c"]
    tm = align_audio(a, c)
    assert tm.meta["transposition"] == 3
    stats = error_stats(tm.map(ta), tc)
    assert stats["mean"] < 40 and stats["p95"] < 100, stats
    with pytest.raises(InputError, match="same piece"):  # without the shift search the chroma disagree
        align_audio(a, c, transpose=False)


def test_align_audio_arrays_and_no_onsets(versions):
    (a, ta), (b, tb) = versions["a"], versions["b"]
    ya, sra = sf.read(a, dtype="float32")
    tm = align_audio((ya, sra), b, onsets=False)
    stats = error_stats(tm.map(ta), tb)
    assert stats["mean"] < 80, stats  # chroma alone: less precise, still right


@pytest.mark.parametrize("kind", ["musicxml", "midi"])
def test_align_score_note_times(versions, kind, tmp_path):
    import music21
    import pretty_midi

    (b, tb) = versions["b"]
    if kind == "musicxml":  # the first chorale as notated (partitura), against a rendering of it alone
        score = music21.corpus.getWork(PIECES[0])
        notes = chorale_notes(PIECES[:1])
        tempo = TempoMap.curve(notes.length, bpm=90.0, depth=0.2, period=12.0)
        audio = render_version(notes, tempo, tmp_path / "single.wav", program=0, soundfont="timgm")
        truth_of_quarter = tempo.time
    else:  # a deadpan MIDI of both chorales (constant 100 bpm) against the swinging harpsichord
        notes = versions["notes"]
        score = tmp_path / "score.mid"
        pm = pretty_midi.PrettyMIDI(initial_tempo=100.0)
        inst = pretty_midi.Instrument(0)
        for p, o, d in zip(notes.pitch, notes.onset, notes.duration, strict=True):
            inst.notes.append(pretty_midi.Note(80, int(p), o * 0.6, (o + d) * 0.6))
        pm.instruments.append(inst)
        pm.write(str(score))
        audio = b
        q_grid, t_grid = versions["q"], tb
        truth_of_quarter = lambda q: np.interp(q, q_grid, t_grid)  # noqa: E731
    result = align_score(score, audio)
    n = result.notes
    # score positions in quarter notes: notated, or the deadpan MIDI's seconds / 0.6
    q = n.onset_quarter if kind == "musicxml" else load_score_notes(score).onset / 0.6
    stats = error_stats(result.audio_onset, truth_of_quarter(q))
    assert stats["mean"] < 50 and stats["p95"] < 120, stats
    assert np.all(np.diff(result.time_map.a) > 0)
    csv = result.to_csv(tmp_path / "notes.csv").splitlines()
    assert csv[0].startswith("pitch,part,onset_quarter") and len(csv) == len(n) + 1


# ------------------------------------------------------------------------------------------ bad input


def test_bad_inputs(versions, tmp_path):
    a, _ = versions["a"]
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(22050 * 5, dtype=np.float32), 22050)
    with pytest.raises(InputError, match="silent"):
        align_audio(a, silent)
    y, sr = sf.read(a, dtype="float32")
    short = tmp_path / "short.wav"
    sf.write(short, y[: 6 * sr], sr)
    with pytest.raises(InputError, match="shorter than"):
        align_audio(a, short)
    with pytest.raises(InputError, match="same piece"):
        align_audio(a, versions["other"])
    with pytest.raises(InputError, match="no such file"):
        align_audio(a, tmp_path / "missing.wav")
    with pytest.raises(ParameterError, match="sr is required"):
        align_audio(y, a)
    bad_score = tmp_path / "bad.mid"
    bad_score.write_bytes(b"not a midi file")
    with pytest.raises(InputError, match="bad.mid"):
        align_score(bad_score, a)


def test_cli_align(versions, tmp_path, capsys):
    from mirsearch.cli.main import main

    (a, ta), (b, tb) = versions["a"], versions["b"]
    out, png = tmp_path / "map.csv", tmp_path / "align.png"
    assert main(["align", str(a), str(b), "--out", str(out), "--plot", str(png), "--at", "10.0", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    expected = float(np.interp(10.0, ta, tb))
    assert abs(payload["at"][0]["b"] - expected) < 0.1
    assert out.read_text().startswith("time_a,time_b\n0.000,")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["align", str(a), str(versions["other"])]) == 1
    assert "same piece" in capsys.readouterr().err
