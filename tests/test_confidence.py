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
        assert m.w_cost < 0 < m.w_notes, kind  # cheaper matches and longer themes: more confident
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
    p = conf.match_confidences([0.05, 0.2], features="learned", notes=8)
    q = conf.match_confidences([0.05, 0.2], features="learned", notes=8, null=[0.1, 0.15, 0.3, 0.05])
    np.testing.assert_allclose(q, p * [0.75, 0.25])


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
