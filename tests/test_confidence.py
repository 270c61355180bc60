"""Confidence of theme matches: the shipped model, the per-query null and the service's use of them."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit

from mirsearch.errors import ParameterError
from mirsearch.scores import Note, Theme
from mirsearch.search import confidence as conf

RATE = 10.0


def _theme(pitches, *, beat: float = 1.0, tempo: float = 120.0) -> Theme:
    notes = tuple(Note(int(p), i * beat, beat) for i, p in enumerate(pitches))
    return Theme(notes, tempo, "t")


def _one_hot(pcs, frames_per_note: int) -> np.ndarray:
    """Learned-chroma-like frames (12, n): one pitch class per note."""
    X = np.full((12, len(pcs) * frames_per_note), 1e-3, np.float32)
    for i, pc in enumerate(pcs):
        X[pc % 12, i * frames_per_note : (i + 1) * frames_per_note] = 1.0
    return X


def test_shipped_models_load_with_thresholds_in_range():
    models = conf.load_models()
    assert {"learned", "chroma", "cens"} <= set(models)
    for kind, m in models.items():
        assert 0 <= conf.DEFAULT_THRESHOLDS[kind] == m.threshold <= 1
        # cheaper matches (the background and the null fixed) and longer themes: more confident
        assert m.w_cost + m.w_standout + m.w_null < 0 < m.w_notes, kind
    with pytest.raises(ParameterError, match="mfcc"):
        conf.match_confidences([0.1], features="mfcc", notes=8)


def test_probability_is_the_logistic_of_log_cost_and_log_notes():
    m = conf.ConfidenceModel(bias=1.0, w_cost=-2.0, w_notes=3.0, eps=0.01, notes_range=(1, 12), threshold=0.4)
    costs = np.array([0.0, 0.05, 0.3])
    want = expit(1.0 - 2.0 * np.log(costs + 0.01) + 3.0 * np.log(8))
    np.testing.assert_allclose(m.probability(costs, 8), want, rtol=1e-12)
    assert np.all(np.diff(m.probability(costs, 8)) < 0)
    assert m.probability(0.1, 20) == m.probability(0.1, 12)  # clipped to notes_range
    assert m.probability(0.1, 3) < m.probability(0.1, 6)
    assert conf.ConfidenceModel.from_dict(m.to_dict()) == m
    with pytest.raises(ParameterError):
        conf.ConfidenceModel(bias=0, w_cost=-1, w_notes=1, eps=0.0, notes_range=(1, 2), threshold=0.5)


def test_null_chance_is_the_share_of_null_costs_reaching_each_cost():
    np.testing.assert_allclose(conf.null_chance([0.05, 0.2], [0.1, 0.15, 0.3, 0.05]), [0.25, 0.75])
    np.testing.assert_array_equal(conf.null_chance([0.05, 0.2], []), [0.0, 0.0])
    null = [0.1, 0.15, 0.3, 0.05]
    q = conf.match_confidences([0.05, 0.2], features="learned", notes=8, null=null, background=0.3)
    m = conf.load_models()["learned"]  # the model's probability (with the best null, if it uses it) times the chance
    np.testing.assert_allclose(q, m.probability([0.05, 0.2], 8, 0.3, min(null)) * [0.75, 0.25])


def test_null_themes_permute_pitch_classes_and_keep_rhythm():
    theme = _theme([60, 62, 64, 60, 72, 67], beat=0.5)
    nulls = conf.null_themes(theme, 4)
    assert [[n.pitch for n in t.notes] for t in nulls] == [
        [n.pitch for n in t.notes] for t in conf.null_themes(theme)[:4]
    ]
    for t in nulls:
        assert [(n.onset, n.duration) for n in t.notes] == [(n.onset, n.duration) for n in theme.notes]
        pcs = [n.pitch % 12 for n in t.notes]
        assert pcs[0] == pcs[3] == pcs[4] and len(set(pcs)) == 4  # one pitch class -> one pitch class
        assert all(abs(n.pitch - o.pitch) < 12 for n, o in zip(t.notes, theme.notes, strict=True))  # octave kept
    assert conf.theme_notes(_theme([60, 60, 72, 62, 62])) == 2  # C C C8va merged, then D D


@pytest.fixture(scope="module")
def coll(tmp_path_factory):
    """Three 'recordings' of one-hot chroma: the first plays a theme, the others other melodies."""
    from mirsearch.collection import Collection
    from mirsearch.collection.extract import FileResult, sha1_of

    root = tmp_path_factory.mktemp("conf")
    rng = np.random.default_rng(1)
    melodies = {"hit.wav": [5, 9, 7, 2, 4, 0, 11, 7, 5, 2, 0], "a.wav": rng.integers(0, 12, 60).tolist(),
                "b.wav": rng.integers(0, 12, 60).tolist()}  # fmt: skip
    melodies["hit.wav"] = rng.integers(0, 12, 20).tolist() + melodies["hit.wav"] + rng.integers(0, 12, 20).tolist()
    for name in melodies:
        (root / name).write_bytes(name.encode())

    def produce(todo, configs):
        for path, _ in todo:
            X = _one_hot(melodies[path.rsplit("/", 1)[1]], 5)
            yield FileResult("ok", path, sha1_of(path), X.shape[1] / RATE, [(X, RATE) for _ in configs])

    c = Collection.create(root / "c.mirs", features=["learned"])
    c.add([str(root / n) for n in sorted(melodies)], producer=produce)
    yield c
    c.close()


def test_a_single_note_is_never_a_confident_match(coll):
    from mirsearch.search.theme import search_theme

    for pitches, confident in (([60], False), ([65, 69, 67, 62, 64, 60, 71, 67, 65], True)):
        theme = _theme(pitches, beat=1.0, tempo=120.0)  # a note per 0.5 s = 5 frames, as the recordings
        matches = search_theme(coll, theme, features="learned", top=5, per_recording=1)
        c = conf.search_confidences(coll, theme, matches, features="learned")
        assert len(c) == len(matches) and np.all((0 <= c) & (c <= 1))
        assert (c[0] >= conf.DEFAULT_THRESHOLDS["learned"]) == confident, (pitches, c)
        if confident:
            assert matches[0].recording.endswith("hit.wav") and matches[0].cost < 0.01
            null = conf.null_costs(coll, theme, matches[0], features="learned")
            assert null.shape == (conf.NULL_THEMES,) and null.min() > matches[0].cost
        else:
            assert c.max() == 0.0  # its nulls are the same note transposed: they reach every cost it reaches
    assert len(conf.search_confidences(coll, _theme([60, 62]), [], features="learned")) == 0


def test_theme_task_shows_confident_matches_and_rejects_the_rest(coll):
    from mirsearch.search.query import ThemeQuery
    from mirsearch.service.core import Context
    from mirsearch.service.theme import ThemeRequest, run_theme

    query = ThemeQuery(_theme([65, 69, 67, 62, 64, 60, 71, 67, 65]))
    result = run_theme(Context(collection=coll), ThemeRequest(query=query, top=3, cascade="exhaustive"))
    assert [m.recording.rsplit("/", 1)[1] for m in result.matches] == ["hit.wav"]
    assert all(m.extra["confidence"] < conf.DEFAULT_THRESHOLDS["learned"] for m in result.rejected)
    assert result.stats["confidence_ms"] >= 0
    everything = run_theme(Context(collection=coll), ThemeRequest(query=query, top=3, show_all=True))
    assert len(everything.matches) == 3 and not everything.rejected


# -- theme: the standout over the query's background ------------------------------------------------------------
def test_theme_background_is_the_median_best_cost_of_the_other_recordings():
    ids = [1, 1, 2, 3, 3, 4, 5, 6, 7, 8, 9, 10]
    costs = [0.01, 0.02, 0.3, 0.2, 0.25, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    # best of each recording but the best one (1): 0.3 0.2 0.4 ... 1.0 (9 recordings) -> median 0.6
    assert conf.theme_background(ids, costs, null=[9.0]) == pytest.approx(0.6)
    # fewer than MIN_BACKGROUND other recordings: the null themes' median cost stands in
    assert conf.theme_background([1, 2, 2], [0.1, 0.3, 0.2], null=[0.5, 0.7, 0.9]) == pytest.approx(0.7)
    assert np.isnan(conf.theme_background([1], [0.1], null=[]))


def test_chroma_confidence_rises_with_the_standouts_and_falls_with_the_cost():
    m = conf.load_models()["chroma"]
    assert m.w_standout < 0 and m.w_null < 0  # a match far below its background / its nulls is more likely true
    p = [float(m.probability(0.1, 8, background, 0.2)) for background in (0.1, 0.2, 0.4)]
    assert p[0] < p[1] < p[2]
    q = [float(m.probability(0.1, 8, 0.3, null_best)) for null_best in (0.1, 0.2, 0.4)]
    assert q[0] < q[1] < q[2]
    assert np.all(np.diff(m.probability(np.array([0.02, 0.05, 0.1, 0.2]), 8, 0.3, 0.3)) < 0)
    with pytest.raises(ParameterError, match="background"):
        m.probability(0.1, 8)
    with pytest.raises(ParameterError, match="null"):
        m.probability(0.1, 8, 0.3)
    # through match_confidences: the null's best cost comes from the null costs
    got = conf.match_confidences([0.1], features="chroma", notes=8, null=[0.3, 0.2, 0.5], background=0.3)
    assert got[0] == pytest.approx(float(m.probability(0.1, 8, 0.3, 0.2)))


# -- audio-query matches ----------------------------------------------------------------------------------------
def test_audio_model_is_monotone_and_round_trips():
    m = conf.load_audio_model()
    assert 0 <= m.threshold <= 1 and m.w_cost <= 0 and m.w_standout <= 0
    costs = np.array([0.01, 0.05, 0.1, 0.2, 0.4])
    assert np.all(np.diff(m.probability(costs, 0.35)) < 0)  # cheaper: more confident
    assert m.probability(0.1, 0.2) < m.probability(0.1, 0.4)  # the same cost standing out more: more confident
    np.testing.assert_allclose(m.probability(costs, np.nan), m.probability(costs, m.background))  # none
    assert conf.AudioConfidenceModel(**m.to_dict()) == m
    want = expit(1.0 - 2.0 * np.log(0.1 + 0.01) - 1.5 * (np.log(0.1 + 0.01) - np.log(0.3 + 0.01)))
    toy = conf.AudioConfidenceModel(bias=1.0, w_cost=-2.0, w_standout=-1.5, eps=0.01, threshold=0.5)
    assert float(toy.probability(0.1, 0.3)[0]) == pytest.approx(want, rel=1e-12)


def test_audio_background_statistics():
    from mirsearch.search.audio import MatchingCurve
    from mirsearch.search.results import Match

    curves = [
        MatchingCurve(1, "a", 2.0, np.array([0.1, 0.5, np.inf, 0.3])),
        MatchingCurve(2, "b", 2.0, np.array([0.4, 0.6, 0.2])),
        MatchingCurve(3, "c", 2.0, np.array([np.inf])),
    ]
    best = Match("a", 1, 0.0, 1.0, 0.1, 0)
    bg = conf.audio_background(curves, best)
    # the best match's neighbourhood (starts 0-1 s of recording 1, at 2 frames per second) is left out
    assert bg.frames == 4 and bg.median == pytest.approx(np.median([0.3, 0.4, 0.6, 0.2]))
    assert bg.q01 == pytest.approx(np.quantile([0.3, 0.4, 0.6, 0.2], 0.01))
    assert bg.recordings_median == pytest.approx(0.2)  # recording 2's best; 1 is the match's, 3 has no frame
    assert bg.to_dict()["frames"] == 4
    later = conf.audio_background(curves, Match("b", 2, 1.0, 1.5, 0.2, 0))  # recording 2, frames 1-1.5 s out
    assert later.frames == 4 and later.recordings_median == pytest.approx(0.1)


def _melody(rng, seconds: float, sr: int) -> np.ndarray:
    """Harmonic tones of random pitches (0.25-0.5 s each) with a little noise."""
    out = []
    while sum(len(x) for x in out) < seconds * sr:
        n = int(rng.uniform(0.25, 0.5) * sr)
        f0 = 440.0 * 2 ** ((int(rng.integers(48, 72)) - 69) / 12)
        t = np.arange(n) / sr
        tone = sum(0.6**h * np.sin(2 * np.pi * f0 * (h + 1) * t) for h in range(4)) * np.hanning(n)
        out.append(tone)
    y = np.concatenate(out)[: int(seconds * sr)]
    return (0.3 * y / np.abs(y).max() + 0.003 * rng.standard_normal(y.size)).astype(np.float32)


@pytest.fixture(scope="module")
def audio_coll(tmp_path_factory):
    """Three 40 s recordings of random harmonic melodies; the excerpts' sources."""
    import soundfile as sf

    from mirsearch.collection import Collection

    root = tmp_path_factory.mktemp("audioconf")
    rng = np.random.default_rng(7)
    sr = 22050
    signals = {f"r{i}.wav": _melody(rng, 40.0, sr) for i in range(3)}
    for name, y in signals.items():
        sf.write(root / name, y, sr)
    c = Collection.create(root / "c.mirs", features=["chroma"])
    c.add([str(root / n) for n in sorted(signals)])
    absent = _melody(rng, 15.0, sr)  # a melody no recording holds
    yield c, signals, absent, sr
    c.close()


def test_audio_search_shows_a_present_excerpt_and_rejects_an_absent_one(audio_coll):
    from mirsearch.search.audio_query import AudioQuery
    from mirsearch.service.audio import PassagesRequest, run_passages
    from mirsearch.service.core import Context

    coll, signals, absent, sr = audio_coll
    rng = np.random.default_rng(3)
    y = signals["r1.wav"][10 * sr : 25 * sr]
    present = AudioQuery.from_samples(y + 0.02 * rng.standard_normal(y.size).astype(np.float32), sr, name="p")
    found = run_passages(Context(collection=coll), PassagesRequest(query=present, top=3))
    assert found.matches and found.matches[0].recording.endswith("r1.wav")
    assert abs(found.matches[0].start - 10.0) < 1.5
    assert found.matches[0].extra["confidence"] >= conf.load_audio_model().threshold
    d = found.to_dict()
    assert set(d) >= {"matches", "rejected", "query"} and d["query"]["min_confidence"] is None

    query = AudioQuery.from_samples(absent, sr, name="absent")
    none = run_passages(Context(collection=coll), PassagesRequest(query=query, top=3))
    assert none.matches == [] and none.rejected, "an absent excerpt: no confident match, candidates kept aside"
    assert all(m.extra["confidence"] < conf.load_audio_model().threshold for m in none.rejected)
    everything = run_passages(Context(collection=coll), PassagesRequest(query=query, top=3, show_all=True))
    assert len(everything.matches) == 3 and not everything.rejected
    assert [m.extra["confidence"] for m in everything.matches] == [m.extra["confidence"] for m in none.rejected]


def test_audio_search_with_the_shingle_index_has_no_confidence(audio_coll):
    from mirsearch.search.audio_query import AudioQuery
    from mirsearch.service.audio import PassagesRequest, run_passages
    from mirsearch.service.core import Context

    coll, signals, _, sr = audio_coll
    query = AudioQuery.from_samples(signals["r2.wav"][5 * sr : 25 * sr], sr, name="p")
    found = run_passages(Context(collection=coll), PassagesRequest(query=query, top=3, index="exact"))
    assert found.matches and not found.rejected and "no confidence" in found.warnings[0]
    assert all("confidence" not in m.extra for m in found.matches)
