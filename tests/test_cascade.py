"""Audio cascade on arrays (:func:`mirsearch.search.cascade.cens_cascade`) and the embedding's fast pooling."""

from __future__ import annotations

import numpy as np
import pytest

from mirsearch.collection.ann import build_index
from mirsearch.collection.shingles import DEFAULT_CONFIG, cens_of, shingles
from mirsearch.errors import ParameterError
from mirsearch.matching.subsequence import unit_columns


class _ExactShingleIndex:
    """The interface :func:`cens_cascade` needs, over raw 240-dim shingles in a real exact index."""

    def __init__(self, Y, offsets, ids):
        parts, rec_ids, starts = [], [], []
        for i, rid in enumerate(ids):
            S, st = shingles(Y[offsets[i] : offsets[i + 1]].T, length=DEFAULT_CONFIG.length, hop=DEFAULT_CONFIG.hop)
            parts.append(S)
            rec_ids.append(np.full(len(S), rid))
            starts.append(st)
        self.config = DEFAULT_CONFIG
        self.rec_ids, self.starts = np.concatenate(rec_ids), np.concatenate(starts)
        self.ann = build_index("exact", np.concatenate(parts).astype(np.float32), threads=1)

    def search_vectors(self, S, *, k):
        return self.ann.search(np.asarray(S, np.float32), k=k)


def _database(rng, n_recordings=4, seconds=90):
    """Random 10 Hz chroma recordings (smoothed) and their unit CENS database."""
    chromas = [np.repeat(rng.random((12, seconds)), 10, axis=1).astype(np.float32) for _ in range(n_recordings)]
    parts = [unit_columns(cens_of(C)) for C in chromas]
    offsets = np.cumsum([0] + [len(p) for p in parts]).astype(np.int64)
    return chromas, np.ascontiguousarray(np.concatenate(parts)), offsets


def test_cens_cascade_with_all_candidates_equals_the_exhaustive_search():
    from mirsearch.collection.shingles import scale_tempo
    from mirsearch.search.cascade import cens_cascade

    rng = np.random.default_rng(3)
    chromas, Y, offsets = _database(rng)
    ids = np.asarray([11, 12, 13, 14])
    index = _ExactShingleIndex(Y, offsets, ids)
    query = scale_tempo(chromas[2][:, 300:550], tempo_factor=1 / 1.25)  # 25 s played 1.25x slower
    kw = dict(tempo_factors=(0.8, 1.0, 1.25), per_recording=2)
    exhaustive, stats = cens_cascade(query, Y, offsets, ids, **kw), {}
    # every recording proposed, regions widened to the whole recording: the same matches at the same costs
    full = cens_cascade(query, Y, offsets, ids, shingle_index=index, candidates=4, margin=50.0, stats=stats, **kw)
    assert stats["candidates"] == 4 and stats["frames_searched"] == stats["frames_total"] == len(Y)
    assert [m[:3] for m in full] == [m[:3] for m in exhaustive]
    np.testing.assert_allclose([m[3] for m in full], [m[3] for m in exhaustive], atol=1e-6)
    rid, a, b, cost, shift, factor = exhaustive[0]
    assert rid == 13 and factor == 1.25 and shift == 0 and abs(a - 30) <= 2 and abs(b - 55) <= 2
    # one candidate and a narrow region: the same best match, found in a fraction of the frames
    one = cens_cascade(query, Y, offsets, ids, shingle_index=index, candidates=1, stats=stats, **kw)
    assert stats["candidates"] == 1 and stats["frames_searched"] < len(Y) / 5
    assert one[0][:3] == exhaustive[0][:3] and one[0][3] == pytest.approx(cost, abs=1e-6)
    # an excluded recording is neither proposed nor returned, in both modes
    for idx in (None, index):
        rest = cens_cascade(query, Y, offsets, ids, shingle_index=idx, exclude=[13], candidates=4, **kw)
        assert rest and all(m[0] != 13 for m in rest)
    with pytest.raises(ParameterError):
        cens_cascade(query, Y, offsets, ids, candidates=0)


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
