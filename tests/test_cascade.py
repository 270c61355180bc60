"""Audio cascade on arrays (:func:`mirsearch.search.audio_cascade.cens_cascade`) and the embedding's fast pooling."""

from __future__ import annotations

import numpy as np
import pytest

from mirsearch.errors import ParameterError
from mirsearch.features.shingles import REFERENCE_CONFIG, cens_of, shingles
from mirsearch.index.ann import build_index
from mirsearch.matching.subsequence import unit_columns


class _ExactShingleIndex:
    """The interface :func:`cens_cascade` needs, over raw 240-dim shingles (the reference's 1 Hz CENS, those of
    ``features.audio_match.SHINGLE_MATCH``) in a real exact index."""

    def __init__(self, Y, offsets, ids):
        parts, rec_ids, starts = [], [], []
        for i, rid in enumerate(ids):
            S, st = shingles(Y[offsets[i] : offsets[i + 1]].T, length=REFERENCE_CONFIG.length, hop=REFERENCE_CONFIG.hop)
            parts.append(S)
            rec_ids.append(np.full(len(S), rid))
            starts.append(st)
        self.config = REFERENCE_CONFIG
        self.rec_ids, self.starts = np.concatenate(rec_ids), np.concatenate(starts)
        self.ann = build_index("exact", np.concatenate(parts).astype(np.float32), threads=1)

    def search_vectors(self, S, *, k):
        return self.ann.search(np.asarray(S, np.float32), k=k)


def _database(rng, n_recordings=4, seconds=90):
    """Random 10 Hz chroma recordings (smoothed) and their unit CENS database."""
    chromas = [np.repeat(rng.random((12, seconds)), 10, axis=1).astype(np.float32) for _ in range(n_recordings)]
    parts = [unit_columns(cens_of(C, config=REFERENCE_CONFIG)) for C in chromas]
    offsets = np.cumsum([0] + [len(p) for p in parts]).astype(np.int64)
    return chromas, np.ascontiguousarray(np.concatenate(parts)), offsets


def test_cens_cascade_with_all_candidates_equals_the_exhaustive_search():
    from mirsearch.features.audio_match import SHINGLE_MATCH
    from mirsearch.features.shingles import scale_tempo
    from mirsearch.search.audio_cascade import AudioCascadeOptions, cens_cascade

    rng = np.random.default_rng(3)
    chromas, Y, offsets = _database(rng)
    ids = np.asarray([11, 12, 13, 14])
    index = _ExactShingleIndex(Y, offsets, ids)
    query = scale_tempo(chromas[2][:, 300:550], tempo_factor=1 / 1.25)  # 25 s played 1.25x slower
    opts = AudioCascadeOptions(match=SHINGLE_MATCH.replace(tempo_factors=(0.8, 1.0, 1.25)), per_recording=2)
    exhaustive, stats = cens_cascade(query, Y, offsets, ids, options=opts), {}
    # every recording proposed, regions widened to the whole recording: the same matches at the same costs
    full = cens_cascade(
        query, Y, offsets, ids, shingle_index=index, options=opts.replace(candidates=4, margin=50.0), stats=stats
    )
    assert stats["candidates"] == 4 and stats["frames_searched"] == stats["frames_total"] == len(Y)
    assert [m[:3] for m in full] == [m[:3] for m in exhaustive]
    np.testing.assert_allclose([m[3] for m in full], [m[3] for m in exhaustive], atol=1e-6)
    rid, a, b, cost, shift, factor = exhaustive[0]
    assert rid == 13 and factor == 1.25 and shift == 0 and abs(a - 30) <= 2 and abs(b - 55) <= 2
    # one candidate and a narrow region: the same best match, found in a fraction of the frames
    one = cens_cascade(query, Y, offsets, ids, shingle_index=index, options=opts.replace(candidates=1), stats=stats)
    assert stats["candidates"] == 1 and stats["frames_searched"] < len(Y) / 5
    assert one[0][:3] == exhaustive[0][:3] and one[0][3] == pytest.approx(cost, abs=1e-6)
    # an excluded recording is neither proposed nor returned, in both modes
    for idx in (None, index):
        rest = cens_cascade(query, Y, offsets, ids, shingle_index=idx, options=opts.replace(exclude=[13], candidates=4))
        assert rest and all(m[0] != 13 for m in rest)
    with pytest.raises(ParameterError):
        cens_cascade(query, Y, offsets, ids, options=AudioCascadeOptions(candidates=0))


@pytest.mark.parametrize("length", [20, 15])
def test_embedding_time_pooling_equals_torch_maxpool(length):
    import torch

    from mirsearch.models.embedding import new_network

    torch.manual_seed(0)
    net = new_network({"dim": 6, "length": length}).eval()
    x = torch.rand(7, 12 * length)
    with torch.inference_mode():
        y = x.reshape(7, 1, length, 12)
        for layer in net.convs:  # the layers as torch defines them, nn.MaxPool2d((2, 1)) included
            if isinstance(layer, torch.nn.Conv2d):
                y = torch.nn.functional.pad(y, (1, 1, 0, 0), mode="circular")
            y = layer(y)
        reference = torch.nn.functional.normalize(net.head(y), dim=1)
        torch.testing.assert_close(net(x), reference)


def _score_regions_loop(qs, D, L, rec_ids, starts, *, per_recording, exclude, aggregate, tol):
    """Reference: the voting of :func:`score_regions` written as a loop over recordings and regions."""
    k, n_var = D.shape[1], len(qs.variants)
    kth = np.where(np.isfinite(D[:, -1]), D[:, -1], D[np.isfinite(D)].max())
    n_per_var = np.bincount(qs.variant, minlength=n_var)
    lengths = [v[2] for v in qs.variants]
    hits = [
        (q, int(L[q, j]), float(D[q, j]))
        for q in range(len(D))
        for j in range(k)
        if L[q, j] >= 0 and rec_ids[L[q, j]] not in exclude
    ]
    found = []
    for r in sorted({int(rec_ids[h[1]]) for h in hits}):
        alive = [h for h in hits if rec_ids[h[1]] == r]
        for round_ in range(per_recording):
            if not alive:
                break
            seed = min(alive, key=lambda h: h[2])
            implied = lambda h: starts[h[1]] - qs.position[h[0]]  # noqa: E731
            members = [h for h in alive if abs(implied(h) - implied(seed)) <= tol]
            alive = [h for h in alive if h not in members]
            best = {}
            for q, _, d in members:
                best[q] = min(d, best.get(q, np.inf))
            cost_var = [
                np.mean([best.get(q, kth[q]) for q in np.flatnonzero(qs.variant == v)]) if n_per_var[v] else np.inf
                for v in range(n_var)
            ]
            v = int(qs.variant[seed[0]]) if aggregate == "min" else int(np.argmin(cost_var))
            cost = seed[2] if aggregate == "min" else cost_var[v]
            in_v = [implied(h) for h in members if qs.variant[h[0]] == v]
            s = int(np.round(np.median(in_v))) if in_v else int(implied(seed))
            by_distance = sorted(members, key=lambda h: h[2])
            tie = len(by_distance) > 5 and by_distance[4][2] == by_distance[5][2]  # then either hit may come
            positions = None if tie else sorted(int(starts[h[1]]) for h in by_distance[:5])
            found.append((cost, -len(best), r, round_, (r, s, s + lengths[v], v, len(best), seed[2]), positions))
    found.sort(key=lambda t: t[:4])
    return found


@pytest.mark.parametrize(("per_recording", "aggregate"), [(1, "mean"), (3, "mean"), (2, "min")])
def test_score_regions_equals_a_loop_over_recordings(per_recording, aggregate):
    from mirsearch.search.shingles import QueryShingles, score_regions

    rng = np.random.default_rng(per_recording)
    variants = [(0.8, 0, 30), (1.0, 0, 24), (1.25, 0, 19)]
    n_q, k, n_rows = 40, 12, 600
    variant = np.sort(rng.integers(0, 2, n_q))  # the third variant has no shingles
    position = rng.integers(0, 10, n_q)
    rec_ids = rng.integers(0, 15, n_rows) + 100
    starts = rng.integers(0, 60, n_rows)
    D = np.sort(rng.random((n_q, k)).round(3), axis=1)  # rounded: ties happen
    L = rng.integers(0, n_rows, (n_q, k))
    D[:3, -2:], L[:3, -2:] = np.inf, -1  # rows with fewer than k neighbours
    qs = QueryShingles(np.zeros((n_q, 240), np.float32), variant, position, variants)
    got = score_regions(qs, D, L, rec_ids, starts, per_recording=per_recording, exclude=[101], aggregate=aggregate)
    ref = _score_regions_loop(
        qs, D, L, rec_ids, starts, per_recording=per_recording, exclude={101}, aggregate=aggregate, tol=4
    )
    assert len(got) == len(ref) and all(g.recording_id != 101 for g in got)
    for g, (cost, _, _, _, (r, s, e, v, votes, best), pos) in zip(got, ref, strict=True):
        assert (g.recording_id, g.start, g.end, g.variant, g.votes) == (r, s, e, v, votes)
        assert g.cost == pytest.approx(cost) and g.best_distance == pytest.approx(best)
        assert len(g.positions) == min(5, len(g.positions)) and (pos is None or sorted(g.positions) == pos)


def test_cli_audio_cascade_finds_the_other_version(renderings, tmp_path, capsys):
    import json

    import soundfile as sf

    from mirsearch.cli.main import main

    root = tmp_path / "c.mirs"
    paths = [str(renderings[k].path) for k in ("a", "b", "c")]
    assert main(["index", *paths, "--collection", str(root), "--no-progress", "-j", "1", "--features", "chroma"]) == 0
    base = ["shingles", "search", "-c", str(root), "--reduction", "none", "--index", "exact"]
    query = ["--audio", str(renderings["a_slow"].path), "--start", "5", "--end", "35"]
    capsys.readouterr()
    assert (
        main([*base, *query, "--cascade", "--verifier", "cens", "--tempo-factors", "1.0,1.2,1.43,1.7", "--json"]) == 0
    )
    matches = json.loads(capsys.readouterr().out)["matches"]
    best = matches[0]
    assert best["recording"] == str(renderings["a"].path.resolve())
    # 0.7x speed: 5-35 s of the query are 3.5-24.5 s of the original
    assert best["tempo_factor"] > 1.0 and abs(best["start"] - 3.5) <= 2.5 and abs(best["end"] - 24.5) <= 2.5
    assert len(matches) == 3 and best["cost"] < matches[1]["cost"]
    # a query shorter than one shingle at the slowest scaling: one line naming the file, exit status 2
    y, sr = sf.read(renderings["a_slow"].path)
    sf.write(tmp_path / "short.wav", y[: 3 * sr], sr)
    assert main([*base, "--audio", str(tmp_path / "short.wav"), "--cascade"]) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "too short" in err
