"""Theme search on real renderings: transposition, tempo and polyphony, through the search function and the
Python API (:class:`mirsearch.service.Archive`)."""

from __future__ import annotations

import numpy as np
import pytest

from mirsearch.collection import Collection
from mirsearch.errors import ParameterError
from mirsearch.search.results import signed_semitones
from mirsearch.search.theme import search_theme
from mirsearch.service import Archive
from mirsearch.service.theme import PLAIN_CHROMA_WARNING

from conftest import theme_of


@pytest.fixture(scope="module")
def collection(renderings, tmp_path_factory):
    root = tmp_path_factory.mktemp("coll") / "c.mirs"
    coll = Collection.create(root, features=["chroma"])  # plain chroma: "auto" then means exhaustive chroma DTW
    report = coll.add([r.path for r in renderings.values()])
    assert not report.failed and len(report.added) == len(renderings)
    yield coll
    coll.close()


def _find(matches, path):
    return [m for m in matches if m.recording == str(path.resolve())]


@pytest.mark.parametrize("k", [0, 3, -5])
def test_transposed_theme_matches_at_shift_minus_k(collection, renderings, k):
    r = renderings["a"]
    theme, (t0, t1) = theme_of(r, 8, 12)
    matches = search_theme(collection, theme.transposed(k), top=3, per_recording=1)
    best = matches[0]
    assert best.recording == str(r.path.resolve()) or best.recording in {
        str(renderings[x].path.resolve()) for x in ("a_slow", "a_fast")
    }
    assert best.transposition == signed_semitones(-k)  # -6..+5: the recording relative to the query


@pytest.mark.parametrize("key", ["a", "a_slow", "a_fast"])
def test_found_at_the_right_place_at_other_tempi(collection, renderings, key):
    r = renderings[key]
    theme, (t0, t1) = theme_of(renderings["a"], 8, 12)  # notated durations; the recording is faster/slower
    matches = search_theme(collection, theme, top=10, per_recording=3)
    hits = _find(matches, r.path)
    assert hits, f"{key} not among the matches"
    true_start, true_end = t0, t1
    if key != "a":
        true_start, true_end = r.soprano[8][1], r.soprano[19][2]
    assert any(abs(h.start - true_start) < 0.6 and abs(h.end - true_end) < 0.6 for h in hits), (
        key,
        [(h.start, h.end) for h in hits],
        (true_start, true_end),
    )


def test_transposed_recording_reports_its_key(collection, renderings):
    r = renderings["c"]  # rendered 2 semitones up; theme notated in the original key
    theme, (t0, t1) = theme_of(r, 0, 10)
    matches = search_theme(collection, theme, top=5, per_recording=2)
    hits = _find(matches, r.path)
    assert hits and hits[0].transposition == 2
    assert any(abs(h.start - t0) < 0.6 for h in hits)


def test_note_string_and_per_recording_limit(collection, renderings):
    theme, _ = theme_of(renderings["b"], 0, 8)
    text = theme.to_string()
    result = Archive(collection).search_theme(text, top=20, per_recording=2, show_all=True)
    assert result.query["features"] == "chroma" and result.query["cascade"] == "exhaustive"
    assert result.warnings == [PLAIN_CHROMA_WARNING]  # "auto" on a plain-chroma collection says what it lacks
    explicit = Archive(collection).search_theme(text, top=1, features="chroma")
    assert explicit.warnings == []  # asked for plain chroma: nothing to say
    matches = result.matches
    per_rec = {}
    for m in matches:
        per_rec[m.recording_id] = per_rec.get(m.recording_id, 0) + 1
    assert max(per_rec.values()) <= 2
    costs = [m.cost for m in matches]
    assert costs == sorted(costs)
    assert matches[0].recording == str(renderings["b"].path.resolve())
    d = matches[0].to_dict()
    assert set(d) >= {"recording", "recording_id", "start", "end", "cost", "transposition"}
    assert d["start"] < d["end"]


def test_database_is_unit_rows_with_offsets(collection):
    Y, offsets, recs, rate = collection.database("chroma")
    assert Y.shape[1] == 12 and offsets[-1] == Y.shape[0] and len(recs) == 5
    assert np.allclose(np.linalg.norm(Y, axis=1), 1.0, atol=1e-5)


def _random_database(rng, lengths, query):
    """Unit-row database of random chroma with the query planted (transposed, stretched) in some recordings."""
    from mirsearch.matching.subsequence import unit_columns

    recs = []
    for i, n in enumerate(lengths):
        X = rng.random((12, n)).astype(np.float32) ** 4
        if i % 2 == 0 and n > 3 * query.shape[1]:
            planted = np.repeat(np.roll(query, i % 12, axis=0), 1 + i % 3, axis=1)
            at = int(rng.integers(0, n - planted.shape[1]))
            noise = rng.random(planted.shape).astype(np.float32) * (0.05 + 0.05 * i)  # distinct costs
            X[:, at : at + planted.shape[1]] = planted + noise
        recs.append(X)
    offsets = np.cumsum([0] + [X.shape[1] for X in recs])
    return recs, unit_columns(np.concatenate(recs, axis=1)), offsets


def _brute_force(query, recs, *, top, per_recording):
    """Per recording and per shift with the public generic kernel, then all matches sorted."""
    from mirsearch.matching.subsequence import find_matches, subsequence_dtw

    found = []
    for r, X in enumerate(recs):
        if X.shape[1] == 0:
            continue
        best = np.full(X.shape[1], np.inf)
        start = np.zeros(X.shape[1], dtype=np.int64)
        shift = np.zeros(X.shape[1], dtype=np.int64)
        for k in range(12):
            res = subsequence_dtw(np.roll(query, k, axis=0), X)
            better = res.matching_function < best - 1e-9
            best[better], start[better], shift[better] = res.matching_function[better], res.start_frames[better], k
        for s, e, c in find_matches(best, start, top=per_recording):
            found.append((c, r, s, e, int(shift[e])))
    found.sort()
    return found[:top]


@pytest.mark.parametrize("block_frames", [1, 150, 10**9])
def test_rank_occurrences_equals_brute_force_for_any_block_size(block_frames):
    from mirsearch.matching.subsequence import unit_columns
    from mirsearch.search.theme import rank_occurrences

    rng = np.random.default_rng(7)
    query = rng.random((12, 12)).astype(np.float32) ** 4
    recs, Y, offsets = _random_database(rng, [80, 5, 200, 0, 120, 64, 300, 90], query)
    expected = _brute_force(query, recs, top=7, per_recording=2)
    got = rank_occurrences([unit_columns(query).copy()], Y, offsets, top=7, per_recording=2, block_frames=block_frames)
    assert len(got) == len(expected) == 7
    for o, (c, r, s, e, k) in zip(got, expected, strict=True):
        assert (o.recording, o.start, o.end, o.shift, o.query) == (r, s, e, k, 0)
        assert o.cost == pytest.approx(c, abs=1e-5)
    # planted copies are found first at the shift they were planted with
    assert got[0].recording % 2 == 0 and got[0].shift == got[0].recording % 12


def test_rank_occurrences_keeps_the_best_query_version_and_checks_parameters():
    from mirsearch.errors import ParameterError
    from mirsearch.matching.subsequence import unit_columns
    from mirsearch.search.theme import rank_occurrences

    rng = np.random.default_rng(3)
    query = rng.random((12, 10)).astype(np.float32) ** 4
    recs, Y, offsets = _random_database(rng, [100, 150, 90], query)
    other = rng.random((12, 10)).astype(np.float32) ** 4
    Qs = [unit_columns(other).copy(), unit_columns(query).copy()]
    best = rank_occurrences(Qs, Y, offsets, top=1)[0]
    assert best.query == 1 and best.cost == pytest.approx(rank_occurrences(Qs[1:], Y, offsets, top=1)[0].cost)
    with pytest.raises(ParameterError, match="block_frames"):
        rank_occurrences(Qs, Y, offsets, block_frames=0)


def test_search_takes_parsed_themes_only(collection):
    with pytest.raises(ParameterError, match="parsed Theme"):
        search_theme(collection, "C D E F G")


def test_fused_features_give_the_weighted_sum_of_the_two_cosine_costs():
    """The benchmark's early cost fusion (bench_learned_chroma.py --fusion; measured, not in the product)."""
    import importlib.util
    from pathlib import Path

    from mirsearch.matching.subsequence import best_over_shifts, cosine_cost, unit_columns

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_learned_chroma.py"
    spec = importlib.util.spec_from_file_location("bench_learned_chroma", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    fuse_features, fused_shifts = bench.fuse_features, bench.fused_shifts

    rng = np.random.default_rng(11)
    A, B = rng.random((12, 40)) ** 3, rng.random((12, 41)) ** 3
    qa, qb = rng.random((12, 9)) ** 3, rng.random((12, 9)) ** 3
    A[:, 5] = 0.0  # a silent frame is the uniform vector in both costs
    w = 0.7
    F, Q = fuse_features(A, B, weight=w), fuse_features(qa, qb, weight=w)
    assert F.shape == (24, 40) and F.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(F, axis=0), 1.0, atol=1e-6)
    expected = w * cosine_cost(qa, A) + (1 - w) * cosine_cost(qb, B[:, :40])
    np.testing.assert_allclose(cosine_cost(Q, F), expected, atol=1e-5)
    # a shift of s semitones of both kinds is a shift of 2 s of the fused axis
    s = 5
    Qs = fuse_features(np.roll(qa, s, axis=0), np.roll(qb, s, axis=0), weight=w)
    np.testing.assert_allclose(np.roll(unit_columns(Q), 2 * s, axis=1), unit_columns(Qs), atol=1e-6)
    # weight 1: the same matching function and shifts as A alone
    F1, Q1 = fuse_features(A, B, weight=1.0), fuse_features(qa, qb, weight=1.0)
    c1, _, k1 = best_over_shifts(unit_columns(Q1), unit_columns(F1), fused_shifts(range(12)))
    c0, _, k0 = best_over_shifts(unit_columns(qa), unit_columns(A), range(12))
    np.testing.assert_allclose(c1, c0, atol=1e-5)
    np.testing.assert_array_equal(k1 // 2, k0)
    with pytest.raises(ParameterError, match="weight"):
        fuse_features(A, B, weight=1.5)
    with pytest.raises(ParameterError, match="chroma"):
        fuse_features(A[:6], B, weight=0.5)


class _TwoKindCollection:
    """A stand-in collection with learned and plain chroma (unit rows), the theme planted in recording 11."""

    def __init__(self, rng, lengths, plant):
        from types import SimpleNamespace

        from mirsearch.matching.subsequence import unit_columns

        self.recs = [SimpleNamespace(id=10 + i, path=f"/r{i}.flac") for i in range(len(lengths))]
        self.kinds = {}
        for kind, extra in (("learned", 0), ("chroma", 1)):  # the two kinds need not have one length
            mats = []
            for i, n in enumerate(lengths):
                X = rng.random((12, n + extra)) ** 4
                if i == 1:  # the theme, transposed 3 semitones up, at frame 20
                    X[:, 20 : 20 + plant.shape[1]] = np.roll(plant, 3, axis=0) + 0.05 * X[:, 20 : 20 + plant.shape[1]]
                mats.append(unit_columns(X))
            off = np.r_[0, np.cumsum([len(m) for m in mats])].astype(np.int64)
            self.kinds[kind] = (np.concatenate(mats), off, self.recs, 10.0)
        self.views = SimpleNamespace(get=lambda key, build: build())

    def database(self, kind):
        return self.kinds[kind]


def test_query_tail_fades_held_notes_towards_uniform():
    from mirsearch.scores import parse_note_string
    from mirsearch.search.theme import note_ages, theme_query

    theme = parse_note_string("C4/2 E4/8 G4/8 A4/4. D5/16 F5")
    plain = theme_query(theme, feature_rate=10.0, tempo_bpm=90.0)
    faded = theme_query(theme, feature_rate=10.0, tempo_bpm=90.0, tail=(0.2, 0.5))
    age = note_ages(theme, feature_rate=10.0, tempo_bpm=90.0)
    assert age.shape == (plain.shape[1],) == (faded.shape[1],)
    onsets = np.flatnonzero(age == 0)
    assert len(onsets) == len(theme.notes)
    np.testing.assert_array_equal(faded[:, onsets], plain[:, onsets])  # every onset frame is unchanged
    floor = faded - plain
    np.testing.assert_allclose(floor, np.broadcast_to(0.2 * np.minimum(1.0, age / 0.5), floor.shape), atol=1e-6)
    assert floor.max() == pytest.approx(0.2)  # the half note reaches the full floor
    # the argmax stays the note's pitch class; the tempo factor scales the ages
    np.testing.assert_array_equal(faded.argmax(0), plain.argmax(0))
    fast = theme_query(theme, feature_rate=10.0, tempo_bpm=90.0, tempo_factor=2.0, tail=(0.2, 0.5))
    assert fast.shape[1] < plain.shape[1]
    with pytest.raises(ParameterError, match="tail"):
        theme_query(theme, feature_rate=10.0, tail=(0.2, 0.0))


def _held_note_recording(rng, theme, *, rate=10.0, tempo_bpm=100.0, hold=0.5):
    """Chroma (12, n) of ``theme`` played but left ``hold`` s after every note's onset (other voices: random
    frames)."""
    from mirsearch.features.symbolic import notes_to_chroma
    from mirsearch.search.theme import note_ages

    played = notes_to_chroma(theme, feature_rate=rate, tempo_bpm=tempo_bpm)
    age = note_ages(theme, feature_rate=rate, tempo_bpm=tempo_bpm)
    noise = rng.random(played.shape) ** 2
    return np.where(age[None, :] < hold, played + 0.05 * noise, noise)


def test_query_tail_lowers_the_cost_of_a_theme_whose_held_notes_are_not_held():
    from mirsearch.scores import parse_note_string
    from mirsearch.search.theme import TAIL

    theme = parse_note_string("C4/2 E4/2 G4/2 C5/2 B4/2 G4/2")  # 1.2 s notes
    costs = {}
    for hold in (0.5, np.inf):  # only the first 0.5 s of each note played, or every note held
        X = _held_note_recording(np.random.default_rng(3), theme, hold=hold)
        coll = _TwoKindCollection(np.random.default_rng(4), [80, 200], X)  # recording 11: X up 3, at 2 s
        plain = search_theme(coll, theme, top=1, per_recording=1, features="learned")[0]
        tailed = search_theme(coll, theme, top=1, per_recording=1, features="learned", query_tail=TAIL)[0]
        for m in (plain, tailed):  # both find it, at the planted place
            assert m.recording_id == 11 and m.transposition == 3 and abs(m.start - 2.0) < 0.5
        costs[hold] = (plain.cost, tailed.cost)
    assert costs[0.5][1] < costs[0.5][0] - 0.01  # notes left early: the held query frames cost less with the tail
    assert costs[np.inf][1] > costs[np.inf][0] + 0.01  # notes held: the floor costs a little


def test_query_tail_travels_through_the_cascade_and_the_confidence(monkeypatch):
    import mirsearch.search.theme as theme_mod
    from mirsearch.scores import parse_note_string
    from mirsearch.search.cascade import THEME_PRESETS, ThemeCascade, cascade_search_theme
    from mirsearch.search.confidence import null_costs

    theme = parse_note_string("C4/2 E4/2 G4/2 C5/2 B4/2 G4/2")
    X = _held_note_recording(np.random.default_rng(3), theme)
    coll = _TwoKindCollection(np.random.default_rng(4), [80, 200, 70], X)
    tail = theme_mod.TAIL
    options = {"top": 3, "per_recording": 1, "features": "learned"}
    coarse = THEME_PRESETS["coarse"].with_candidates(3)  # every recording verified: the exhaustive answer
    for query_tail in (None, tail):
        full = search_theme(coll, theme, query_tail=query_tail, **options)
        stats = {}
        staged = cascade_search_theme(coll, theme, cascade=coarse, query_tail=query_tail, stats=stats, **options)
        assert not stats["fallback"]
        assert [(m.recording_id, m.start) for m in staged] == [(m.recording_id, m.start) for m in full]
        np.testing.assert_allclose([m.cost for m in staged], [m.cost for m in full], atol=1e-6)
    untailed = search_theme(coll, theme, **options)
    assert full[0].cost < untailed[0].cost  # the loop's last run had the tail
    # the fallback runs the same tailed search; a cost threshold above every match keeps the cascade's answer
    for cost, fallback in ((0.0, "cost"), (1.0, False)):
        stats = {}
        fell = cascade_search_theme(coll, theme, cascade=ThemeCascade(coarse.proposers, fallback_cost=cost),
                                    query_tail=tail, stats=stats, **options)  # fmt: skip
        assert stats["fallback"] == fallback
        np.testing.assert_allclose([m.cost for m in fell], [m.cost for m in full], atol=1e-6)
    # the null themes are built as the search's query
    tails = []
    original = theme_mod.theme_query

    def spy(*args, **kwargs):
        tails.append(kwargs.get("tail"))
        return original(*args, **kwargs)

    monkeypatch.setattr(theme_mod, "theme_query", spy)
    with_tail = null_costs(coll, theme, full[0], features="learned", query_tail=tail)
    assert tails and set(tails) == {tail}
    without = null_costs(coll, theme, full[0], features="learned")
    assert set(tails[len(with_tail) :]) == {None} and not np.allclose(with_tail, without)


def test_service_passes_its_query_tail_to_search_and_confidence(collection, renderings, monkeypatch):
    import mirsearch.search.theme as theme_mod
    from mirsearch.search.theme import TAIL, default_query_tail

    theme, _ = theme_of(renderings["b"], 0, 10)
    text = theme.to_string()
    assert default_query_tail("chroma") is None  # plain chroma: no tail
    before = Archive(collection).search_theme(text, top=3, features="chroma", show_all=True)
    assert before.query["query_tail"] is None
    monkeypatch.setitem(theme_mod.QUERY_TAIL, "chroma", TAIL)
    after = Archive(collection).search_theme(text, top=3, features="chroma", show_all=True)
    assert tuple(after.query["query_tail"]) == TAIL
    expected = search_theme(collection, theme, top=3, per_recording=3, features="chroma", query_tail=TAIL)
    assert after.matches[0].cost == pytest.approx(expected[0].cost, abs=1e-6)
    assert after.matches[0].cost != pytest.approx(before.matches[0].cost, abs=1e-6)
