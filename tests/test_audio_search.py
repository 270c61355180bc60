"""Audio matching and version identification on FluidSynth renderings with known tempo maps.

The collection holds the same three chorales played faster with a tempo swing on an organ (B), the
same transposed up 2 semitones and slower (C), and two distractor recordings of other chorales. Queries
are cut from a piano rendering at a steady tempo (A, not in the collection), so the true position of
every query in B and C is known.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from mirsearch.errors import InputError, ParameterError
from mirsearch.features.audio_match import ALL_KEYS, PASSAGE_MATCH, VERSION_MATCH, scale_tempo
from mirsearch.features.matching_chroma import matching_chroma, matching_config
from mirsearch.index.audio_database import prepare_database
from mirsearch.matching.diagonal import diagonal_costs, diagonal_costs_shifts
from mirsearch.search.audio import PassageOptions, search_audio
from mirsearch.search.audio_query import AudioQuery
from mirsearch.search.versions import VersionOptions, identify_versions
from synth_versions import TempoMap, chorale_notes, have_fluidsynth, render_version

PIECES = ["bach/bwv66.6", "bach/bwv153.1", "bach/bwv86.6"]
ALL_KEYS_MATCH = PASSAGE_MATCH.replace(transpositions=ALL_KEYS)
MATCHING = PASSAGE_MATCH.replace(features="matching")
LEAD_IN = 3.0
Q0, Q1 = 20.0, 35.0  # query span in A (s)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    if not have_fluidsynth():
        pytest.fail("FluidSynth and the fluid / TimGM6mb SoundFonts are required (make setup installs them)")
    from mirsearch.collection import Collection

    out = tmp_path_factory.mktemp("matching")
    notes = chorale_notes(PIECES)
    ta = TempoMap.curve(notes.length, bpm=100.0)
    tb = TempoMap.curve(notes.length, bpm=130.0, depth=0.1, period=16.0)
    tc = TempoMap.curve(notes.length, bpm=80.0)
    a = render_version(notes, ta, out / "a_piano.wav", program=0, soundfont="fluid")
    b = render_version(notes, tb, out / "b_organ.wav", program=19, soundfont="timgm", lead_in=LEAD_IN)
    c = render_version(notes, tc, out / "c_up2.wav", program=0, soundfont="timgm", transpose=2)
    d_notes = chorale_notes(["bach/bwv269", "bach/bwv10.7"])
    e_notes = chorale_notes(["bach/bwv101.7", "bach/bwv102.7"])
    d = render_version(d_notes, TempoMap.curve(d_notes.length, bpm=100.0), out / "d_other.wav", program=0)
    e = render_version(e_notes, TempoMap.curve(e_notes.length, bpm=110.0), out / "e_other.wav", program=48)
    coll = Collection.create(out / "c.mirs", features=["chroma"])
    coll.add([b, c, d, e])
    ids = {rec.path.split("/")[-1].split("_")[0]: rec.id for rec in coll.recordings()}
    y, sr = sf.read(a, dtype="float32")
    # true span of the query in B and C: quarter positions of the query's ends, through each tempo map
    qa = np.interp([Q0, Q1], ta.t, ta.q)
    return {
        "coll": coll,
        "ids": ids,
        "a": AudioQuery.from_file(a),
        "a_path": a,
        "query": AudioQuery.from_samples(y[int(Q0 * sr) : int(Q1 * sr)], sr),
        "query_samples": (y[int(Q0 * sr) : int(Q1 * sr)], sr),
        "truth_b": tb.time(qa) + LEAD_IN,
        "truth_c": tc.time(qa),
        "dir": out,
    }


def _best_in(matches, rec_id):
    return next(m for m in matches if m.recording_id == rec_id)


@pytest.mark.parametrize("method", ["scaling", "sdtw"])
def test_excerpt_found_in_version_at_other_tempo(setup, method):
    matches = search_audio(setup["coll"], setup["query"], PassageOptions(top=5, method=method)).matches
    best = matches[0]
    assert best.recording_id == setup["ids"]["b"], [m.to_dict() for m in matches]
    s, e = setup["truth_b"]
    assert abs(best.start - s) <= 1.0 and abs(best.end - e) <= 1.5, (best.start, best.end, s, e)
    assert 1.1 < best.extra["tempo_factor"] < 1.7  # B plays 1.3x as fast as A
    assert best.cost < 0.15
    assert [m.extra["rank"] for m in matches] == list(range(1, len(matches) + 1))
    refined = [m.extra["refined_cost"] for m in matches if "refined_cost" in m.extra]
    assert refined and refined == sorted(refined)  # the second stage orders its candidates
    one = search_audio(setup["coll"], setup["query"], PassageOptions(top=5, method=method, refine=0)).matches
    assert all("refined_cost" not in m.extra for m in one)
    assert all(m.cost <= n.cost for m, n in zip(one, one[1:], strict=False))


def test_transposed_version_needs_shifts(setup):
    cid = setup["ids"]["c"]
    options = PassageOptions(top=20, per_recording=1)
    plain = search_audio(setup["coll"], setup["query"], options).matches
    shifted = search_audio(setup["coll"], setup["query"], options.replace(match=ALL_KEYS_MATCH)).matches
    m = _best_in(shifted, cid)
    assert m.transposition == 2
    s, e = setup["truth_c"]
    assert abs(m.start - s) <= 1.0 and abs(m.end - e) <= 1.5, (m.start, m.end, s, e)
    assert m.cost < _best_in(plain, cid).cost - 0.1
    assert shifted[0].recording_id in (setup["ids"]["b"], cid)


def test_neighbourhood_suppression_and_curves(setup, tmp_path):
    db = prepare_database(setup["coll"])
    result = search_audio(db, setup["query"], PassageOptions(top=10, max_overlap=0.0, curves=True))
    matches, curves = result.matches, result.curves
    for m in matches:  # no two matches of one recording overlap
        for n in matches:
            if m is not n and m.recording_id == n.recording_id:
                assert m.end <= n.start + 1e-9 or n.end <= m.start + 1e-9
    assert len(curves) == len(db.recordings)
    for c, (a, b) in zip(curves, zip(db.offsets[:-1], db.offsets[1:], strict=True), strict=True):
        assert c.cost.shape == (b - a,)
    bc = next(c for c in curves if c.recording_id == setup["ids"]["b"])
    k = int(np.argmin(bc.cost))
    assert abs(bc.times[k] - setup["truth_b"][0]) <= 1.0
    assert search_audio(db, setup["query"], PassageOptions(top=3)).curves == []  # one result type, no curves
    from mirsearch.viz.passages import plot_passages

    png = tmp_path / "curve.png"
    plot_passages(search_audio(db, setup["query"], PassageOptions(top=3, curves=True)), out=png)
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_identify_versions(setup):
    ranked = identify_versions(setup["coll"], setup["a"], VersionOptions(top=10))
    ids = setup["ids"]
    assert {ranked[0].recording_id, ranked[1].recording_id} == {ids["b"], ids["c"]}, [r.to_dict() for r in ranked]
    c = _best_in(ranked, ids["c"])
    assert c.transposition == 2
    assert max(r.cost for r in ranked[:2]) < min(r.cost for r in ranked[2:]) - 0.05
    assert ranked[0].extra["coverage"] > 0.7
    plain = identify_versions(
        setup["coll"], setup["a"], VersionOptions(match=VERSION_MATCH.replace(transpositions=(0,)))
    )
    assert _best_in(plain, ids["c"]).cost > c.cost + 0.05


def test_bad_queries(setup, tmp_path):
    coll = setup["coll"]
    y, sr = setup["query_samples"]
    with pytest.raises(InputError, match="too short"):
        search_audio(coll, AudioQuery.from_samples(y[: 2 * sr], sr))
    with pytest.raises(InputError, match="silent"):
        search_audio(coll, AudioQuery.from_samples(np.zeros(10 * sr, dtype=np.float32), sr))
    full, sr = sf.read(setup["a_path"], dtype="float32")
    long_query = np.tile(full.mean(axis=1), 4)  # ~5 min: longer than every recording even at tempo 1.5
    with pytest.raises(InputError, match="longer than every recording"):
        search_audio(coll, AudioQuery.from_samples(long_query, sr))
    with pytest.raises(ParameterError, match="method"):
        search_audio(coll, setup["query"], PassageOptions(method="fast"))
    with pytest.raises(ParameterError, match="sr is required"):
        search_audio(coll, AudioQuery.from_samples(y, None))


def test_diagonal_costs_and_scale_tempo():
    rng = np.random.default_rng(0)
    Q = rng.random((7, 12)).astype(np.float32)
    Y = rng.random((50, 12)).astype(np.float32)
    Q /= np.linalg.norm(Q, axis=1, keepdims=True)
    Y /= np.linalg.norm(Y, axis=1, keepdims=True)
    got = diagonal_costs(Q, Y)
    want = [1 - np.mean([Q[n] @ Y[m + n] for n in range(7)]) for m in range(44)]
    np.testing.assert_allclose(got[:44], want, atol=1e-5)
    assert np.all(np.isinf(got[44:]))
    shifted = diagonal_costs_shifts(Q, Y, shifts=[0, 3, 11])
    for row, k in zip(shifted, [0, 3, 11], strict=True):
        np.testing.assert_allclose(row[:44], diagonal_costs(np.roll(Q, k, axis=1), Y)[:44], atol=1e-5)
        assert np.all(np.isinf(row[44:]))
    assert scale_tempo(np.ones((12, 100)), tempo_factor=1.25).shape == (12, 80)
    assert scale_tempo(np.ones((12, 100)), tempo_factor=0.5).shape == (12, 200)


def test_cli_versions_json(setup, capsys):
    from mirsearch.cli.main import main

    assert main(["versions", "--collection", str(setup["coll"].root), "--audio", str(setup["a_path"]), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    top2 = {v["recording_id"] for v in payload["matches"][:2]}
    assert top2 == {setup["ids"]["b"], setup["ids"]["c"]}


@pytest.mark.parametrize("method", ["scaling", "sdtw"])
def test_matching_features_find_transposed_excerpt(setup, method, tmp_path, monkeypatch):
    monkeypatch.setenv("MIRSEARCH_CACHE", str(tmp_path))
    db = prepare_database(setup["coll"], MATCHING)
    cached = sorted((tmp_path / "matching").glob("*.npy"))
    assert len(cached) == len(db.recordings) == 4  # one cached array per recording, by content hash
    assert db.chroma_config["kind"] == "matching_chroma"
    ids = setup["ids"]
    options = PassageOptions(top=10, per_recording=1, method=method, match=ALL_KEYS_MATCH)
    matches = search_audio(db, setup["query"], options).matches
    assert {matches[0].recording_id, matches[1].recording_id} == {ids["b"], ids["c"]}, [m.to_dict() for m in matches]
    c = _best_in(matches, ids["c"])
    assert c.transposition == 2
    s, e = setup["truth_c"]
    assert abs(c.start - s) <= 1.0 and abs(c.end - e) <= 1.5, (c.start, c.end, s, e)
    # a second database comes from the cache and is identical
    again = prepare_database(setup["coll"], MATCHING)
    np.testing.assert_array_equal(again.Y, db.Y)


def test_matching_chroma_full_range_is_the_standard_chroma(setup):
    """With every pitch band the matching chroma is the collection's chroma (same recipe)."""
    from mirsearch.features.chroma import chroma

    y, sr = setup["query_samples"]
    y = y.mean(axis=1) if y.ndim == 2 else y
    ref, rate = chroma(y, sr=sr, feature_rate=10.0, gamma=10.0, register_centre=None)
    C, r = matching_chroma(y, sr=sr, config=matching_config(midi_range=(21, 108), gamma=10.0))
    assert r == rate and C.shape == ref.shape
    # frames near silence may follow another silence rule (uniform vector); all others must agree
    sounding = ~np.all(np.isclose(C, 1 / np.sqrt(12)), axis=0)
    assert sounding.mean() > 0.9
    np.testing.assert_allclose(C[:, sounding], ref[:, sounding], atol=1e-5)
    # the default range drops the bands below E2 and above C7: different, still unit frames
    D, _ = matching_chroma(y, sr=sr)
    assert D.shape == ref.shape and np.abs(D - ref).max() > 1e-3
    np.testing.assert_allclose(np.linalg.norm(D, axis=0), 1.0, atol=1e-5)
    with pytest.raises(ParameterError, match="midi_range"):
        matching_config(midi_range=(60, 40))
    with pytest.raises(ParameterError, match="features"):
        prepare_database(setup["coll"], PASSAGE_MATCH.replace(features="mfcc"))


def test_outdated_stored_chroma_is_refused(setup, monkeypatch):
    """Query chroma follows the current recipe: stored chroma from another recipe must not be mixed in."""
    import mirsearch.features.registry as registry

    monkeypatch.setattr(registry, "CHROMA_VERSION", registry.CHROMA_VERSION + 100)
    with pytest.raises(InputError, match="another chroma configuration"):
        prepare_database(setup["coll"])


class _Chroma:
    """A stand-in collection: stored chroma by recording id."""

    def __init__(self, chroma: dict):
        self.chroma = chroma

    def load_features(self, recording_id, kind="chroma"):
        return self.chroma[recording_id], 10.0


def test_refine_separates_repeats_of_a_loop():
    """Two repeats of a passage that differ in 2 s: the first stage's cheaper candidate is the wrong repeat; the
    second stage (5 Hz) puts the repeat the query was cut from first, with its span."""
    from mirsearch.search.audio import refine_matches
    from mirsearch.search.results import Match

    rng = np.random.default_rng(0)
    block = np.repeat(rng.random((12, 40)) ** 4, 5, axis=1)  # 40 chords of 0.5 s at 10 Hz: 20 s
    other = block.copy()
    other[:, 80:100] = np.roll(other[:, 80:100], 5, axis=0)  # the second repeat differs in 8-10 s
    R = np.concatenate([block, other, block[:, :100]], axis=1).astype(np.float32)  # repeats at 0 and 20 s
    Q = R[:, 205:355]  # 15 s of the second repeat (20.5-35.5 s), over its different part
    wrong = Match("r", 1, start=0.5, end=15.5, cost=0.01, transposition=0, extra={})
    right = Match("r", 1, start=20.5, end=35.5, cost=0.02, transposition=0, extra={})
    out = refine_matches(_Chroma({1: R}), Q, [wrong, right], options=PassageOptions(refine=2), chroma_rate=10.0)
    assert out[0].cost == 0.02 and abs(out[0].start - 20.5) <= 0.5 and abs(out[0].end - 35.5) <= 0.5
    assert out[0].extra["refined_cost"] < out[1].extra["refined_cost"]
    with pytest.raises(ParameterError):
        PassageOptions(refine=-1)


def test_equalise_bands_restores_a_channel_and_leaves_a_typical_spectrum():
    """A typical spectrum (the reference tilt) is left alone; a high-pass channel's attenuation is undone up to
    the largest gain, never beyond it and never as a cut."""
    from mirsearch.features.matching_chroma import EQ_REFERENCE_DB, equalise_bands

    rng = np.random.default_rng(1)
    midi = np.arange(21, 109)
    typical = 10 ** (np.concatenate([np.full(19, EQ_REFERENCE_DB[0]), EQ_REFERENCE_DB]) / 10.0)
    P = (typical[:, None] * rng.uniform(0.5, 1.5, (88, 200))).astype(np.float32)
    P[:, 0] = typical  # the long-term spectrum stays near the tilt
    flat = equalise_bands(P, max_gain_db=20.0, gate_db=-np.inf)
    low = (midi >= 40) & (midi <= 100)
    assert np.median(np.abs(10 * np.log10(flat[low].mean(axis=1) / P[low].mean(axis=1)))) < 1.0
    assert np.all(flat >= P)  # boost only
    for atten_db, expected in ((12.0, 12.0), (40.0, 20.0)):
        Q = P.copy()
        Q[midi < 56] *= 10 ** (-atten_db / 10)  # a high-pass channel below G#3
        gain = 10 * np.log10(equalise_bands(Q, max_gain_db=20.0, gate_db=0.0).mean(axis=1) / Q.mean(axis=1))
        inner = (midi >= 40) & (midi <= 50)
        np.testing.assert_allclose(gain[inner], expected, atol=1.5)
        assert gain.max() <= 20.0 + 1e-4 and np.all(gain[midi < 40] == 0)
        # a smaller deficit than min_deficit_db is the music's own (a quiet register), not a channel
        kept = equalise_bands(Q, max_gain_db=20.0, min_deficit_db=15.0, gate_db=0.0)
        assert (np.all(kept[inner] == Q[inner])) == (atten_db < 15)
        # the gate (default): only a bass far below the typical spectrum is a channel's doing
        gated = equalise_bands(Q, max_gain_db=20.0)
        assert (np.all(gated == Q)) == (atten_db < 20)
    np.testing.assert_array_equal(equalise_bands(P, max_gain_db=0.0), P)
    with pytest.raises(ParameterError, match="max_gain_db"):
        equalise_bands(P, max_gain_db=-1.0)
    with pytest.raises(ParameterError, match="bands"):
        equalise_bands(P[:12])
    with pytest.raises(ParameterError, match="max_gain_db"):
        PassageOptions(max_gain_db=-3.0)


def test_equalised_query_chroma_undoes_a_telephone_band(setup):
    """The chroma of a 300-3400 Hz band-passed excerpt is closer to the clean excerpt's (what the collection
    stores) with the query equalisation than without."""
    import scipy.signal

    from mirsearch.features.registry import feature_config

    y, sr = setup["query_samples"]
    y = y.mean(axis=1) if y.ndim == 2 else y
    config = feature_config("chroma", feature_rate=10.0)
    clean = AudioQuery.from_samples(y, sr).chroma_for(config)
    sos = scipy.signal.butter(4, [300, 3400], btype="bandpass", fs=sr, output="sos")
    phone = AudioQuery.from_samples(scipy.signal.sosfilt(sos, y).astype(np.float32), sr)
    plain = phone.chroma_for(config)
    equalised = phone.chroma_for(config, max_gain_db=20.0)
    assert equalised.shape == clean.shape
    err_plain = np.mean(1 - np.sum(plain * clean, axis=0))
    err_eq = np.mean(1 - np.sum(equalised * clean, axis=0))
    assert err_eq < 0.8 * err_plain


def test_upper_chroma_is_the_chroma_above_g3():
    """The upper-register chroma is the stored chroma's recipe without the bands below G3: the full range gives
    the stored chroma itself, and a bass note under a melody note leaves only the melody's pitch class."""
    from mirsearch.features.chroma import chroma
    from mirsearch.features.matching_chroma import UPPER_MIDI_LOW, register_chroma
    from mirsearch.features.registry import extract, feature_config

    sr = 22050
    t = np.arange(3 * sr) / sr
    bass = 4.0 * np.sin(2 * np.pi * 82.41 * t)  # E2, far louder than the melody
    y = (bass + 0.5 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)  # A4
    config = feature_config("chroma_upper", feature_rate=10.0)
    assert config["lowest_midi"] == UPPER_MIDI_LOW == 55
    U, rate = extract(y, sr=sr, config=config)
    full, _ = chroma(y, sr=sr, feature_rate=10.0)
    assert rate == 10.0 and U.shape == full.shape == (12, 30)
    mid = slice(5, 25)
    assert np.all(np.argmax(full[:, mid], axis=0) == 4)  # E: the bass dominates the stored chroma
    assert np.all(np.argmax(U[:, mid], axis=0) == 9) and U[9, mid].min() > 0.95  # A alone
    same, _ = register_chroma(y, sr=sr, config={**config, "lowest_midi": 21})
    np.testing.assert_allclose(same, full, atol=1e-6)
    # indexing extracts both kinds from one computation of the pitch bands (a memo), with the same result
    memo: dict = {}
    stored, _ = extract(y, sr=sr, config=feature_config("chroma", feature_rate=10.0), memo=memo)
    np.testing.assert_array_equal(stored, full)
    np.testing.assert_array_equal(extract(y, sr=sr, config=config, memo=memo)[0], U)
    assert set(memo) == {("pitch_features", None)}  # one entry: the estimated tuning


def test_passage_search_matches_on_the_upper_chroma_when_stored(setup, tmp_path, caplog):
    """A collection storing the upper-register chroma is searched on it (both stages; the excerpt is found in
    its versions); one without it is searched on its chroma and says once how to add it."""
    import logging

    from mirsearch.collection import Collection
    from mirsearch.search.audio import UPPER_KIND, resolve_kind

    ids = setup["ids"]
    with Collection.create(tmp_path / "u.mirs", features=["chroma", UPPER_KIND]) as coll:
        coll.add([str(setup["dir"] / "b_organ.wav"), str(setup["dir"] / "d_other.wav")])
        options = PassageOptions(top=3, match=ALL_KEYS_MATCH)
        assert resolve_kind(coll, options).match.features == UPPER_KIND
        assert resolve_kind(coll, options.replace(upper=False)).match.features == "chroma"
        m = search_audio(coll, setup["query"], options).matches[0]
        assert Collection.open(tmp_path / "u.mirs", readonly=True).feature_kinds == ["chroma", UPPER_KIND]
    b = next(r for r in Collection.open(tmp_path / "u.mirs", readonly=True).recordings() if "b_organ" in r.path)
    assert m.recording_id == b.id and "refined_cost" in m.extra
    assert abs(m.start - setup["truth_b"][0]) < 2.0 and abs(m.end - setup["truth_b"][1]) < 2.0
    with caplog.at_level(logging.WARNING, logger="mirsearch.search.audio"):
        for _ in range(2):
            plain = search_audio(setup["coll"], setup["query"], PassageOptions(top=1, match=ALL_KEYS_MATCH))
    assert plain.matches[0].recording_id == ids["b"]
    told = [r for r in caplog.records if UPPER_KIND in r.getMessage()]
    assert len(told) <= 1 and all("--features chroma,chroma_upper" in r.getMessage() for r in told)


def test_coarse_proposer_adds_other_places_with_first_stage_costs(setup):
    """The 1 Hz proposer finds the excerpt's place in its version on its own; the candidates it adds start more
    than the second stage's margin away from the first stage's and carry the first stage's (2 Hz) cost at their
    place; a search with it finds the place."""
    from mirsearch.search.audio import REFINE_MARGIN, coarse_candidates, database_for, query_chroma

    coll, options = setup["coll"], PassageOptions(top=3, match=ALL_KEYS_MATCH, coarse=4, curves=True)
    C = query_chroma(setup["query"], database_for(coll, options.match))
    first = search_audio(coll, setup["query"], options.replace(refine=0))
    curves = {c.recording_id: c for c in first.curves}
    alone = coarse_candidates(coll, C, [], options, first_stage=curves)
    assert 1 <= len(alone) <= 4 and all(m.extra["proposer"] == "coarse" for m in alone)
    best = _best_in(alone, setup["ids"]["b"])
    assert abs(best.start - setup["truth_b"][0]) < 3.0
    curve = curves[best.recording_id]
    j = int(round(best.start * curve.feature_rate))
    assert best.cost == pytest.approx(float(curve.cost[j - 1 : j + 2].min()))
    added = coarse_candidates(coll, C, first.matches, options, first_stage=curves)
    for m in added:
        assert all(k.recording_id != m.recording_id or abs(k.start - m.start) > REFINE_MARGIN for k in first.matches)
    assert coarse_candidates(coll, C, first.matches, options.replace(coarse=0), first_stage=curves) == []
    m = search_audio(coll, setup["query"], options).matches[0]
    assert m.recording_id == setup["ids"]["b"] and abs(m.start - setup["truth_b"][0]) < 2.0
    with pytest.raises(ParameterError):
        PassageOptions(coarse=-1)


def test_tuning_hypotheses_recover_a_query_whose_tuning_estimate_is_off(setup):
    """An excerpt whose own tuning estimate is 0.45 semitone off (what a short degraded excerpt can give) has its
    energy between the stored chroma's bands; the quarter-tone hypotheses bring its chroma back towards the clean
    excerpt's, and the search (best of the hypotheses in every stage) finds its place in the version at a lower
    cost than the estimate alone."""
    from mirsearch.features.registry import feature_config
    from mirsearch.search.audio import QUARTER_TONE_OFFSETS, query_chromas

    y, sr = setup["query_samples"]
    y = y.mean(axis=1) if y.ndim == 2 else y
    config = feature_config("chroma", feature_rate=10.0)
    good = AudioQuery.from_samples(y, sr)
    clean = good.chroma_for(config)
    off = AudioQuery.from_samples(y, sr)
    off.__dict__["tuning"] = good.tuning + 0.45  # a wrong estimate (the cached property, set as a bad estimator would)
    assert QUARTER_TONE_OFFSETS == (0.0, -0.25, 0.25)
    Cs = query_chromas(off, None, config=config, tuning_offsets=QUARTER_TONE_OFFSETS)
    assert Cs.shape == (3, *clean.shape)
    err = [float(np.mean(1 - np.sum(C * clean, axis=0))) for C in Cs]
    assert err[1] < 0.5 * err[0] and err[1] < err[2]
    assert query_chromas(AudioQuery.from_chroma(clean), None, config=config).shape == (1, *clean.shape)

    coll, options = setup["coll"], PassageOptions(top=3, match=ALL_KEYS_MATCH, tuning_offsets=QUARTER_TONE_OFFSETS)
    b = setup["ids"]["b"]
    one = _best_in(search_audio(coll, off, options.replace(tuning_offsets=(0.0,))).matches, b)
    both = search_audio(coll, off, options).matches
    assert both[0].recording_id == b and abs(both[0].start - setup["truth_b"][0]) < 2.0
    assert both[0].cost < one.cost
    sdtw = search_audio(coll, off, options.replace(method="sdtw")).matches[0]
    assert sdtw.recording_id == b and abs(sdtw.start - setup["truth_b"][0]) < 2.0
    for bad in ((), (0.7,)):
        with pytest.raises(ParameterError):
            PassageOptions(tuning_offsets=bad)


def test_a_query_computes_its_pitch_bands_in_one_pass_for_all_tuning_hypotheses(setup, monkeypatch):
    """The hypotheses share one STFT pass, the stages of a search share the bands, and the shared bands give the
    chroma a fresh query computes at each tuning."""
    import mirsearch.features.chroma as chroma_mod
    from mirsearch.features.registry import feature_config
    from mirsearch.search.audio import QUARTER_TONE_OFFSETS, query_chromas

    y, sr = setup["query_samples"]
    y = y.mean(axis=1) if y.ndim == 2 else y
    full, upper = feature_config("chroma", feature_rate=10.0), feature_config("chroma_upper", feature_rate=10.0)
    expected = [AudioQuery.from_samples(y, sr).chroma_for(upper, tuning_offset=t) for t in QUARTER_TONE_OFFSETS]
    q = AudioQuery.from_samples(y, sr)
    bands, _ = chroma_mod.pitch_features_tunings(q.samples, sr=q.sr, tunings=[q.tuning + t for t in (0.0, 0.25)])
    for P, t in zip(bands, (0.0, 0.25), strict=True):
        np.testing.assert_array_equal(P, chroma_mod.pitch_features(q.samples, sr=q.sr, tuning=q.tuning + t)[0])
    calls = []
    for name in ("pitch_features", "pitch_features_tunings"):
        original = getattr(chroma_mod, name)
        monkeypatch.setattr(chroma_mod, name, lambda *a, _f=original, _n=name, **k: calls.append(_n) or _f(*a, **k))
    first = query_chromas(q, None, config=full, tuning_offsets=QUARTER_TONE_OFFSETS)
    again = query_chromas(q, None, config=upper, tuning_offsets=QUARTER_TONE_OFFSETS, max_gain_db=20.0)
    assert calls == ["pitch_features_tunings"]  # one pass; the second kind and the equalised pass reuse the bands
    np.testing.assert_array_equal(query_chromas(q, None, config=upper, tuning_offsets=QUARTER_TONE_OFFSETS),
                                  np.stack(expected))  # fmt: skip
    assert first.shape == again.shape and not np.allclose(first, again)  # other kind, equalised: another chroma
    assert calls == ["pitch_features_tunings"]
