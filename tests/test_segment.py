"""Speech / music segmentation: features against references, decoding against brute force, streaming against the
whole-signal pass, segment invariants on generated files (rates 8-192 kHz, many channels, bad input), the CLI, and
one sanity case of the packaged model."""

from __future__ import annotations

import itertools
import json
import os

import numpy as np
import pytest
import soundfile as sf

from mirsearch.describe import segment as S
from mirsearch.errors import InputError, ParameterError
from mirsearch.features import segment_features as F
from mirsearch.models.segmenter import DEFAULT_BUNDLE_DIR, SegmenterModel

os.environ.setdefault("NUMBA_CACHE_DIR", os.path.join(os.path.dirname(__file__), "..", ".cache", "numba"))


def _random_bundle(directory) -> SegmenterModel:
    """A segmenter bundle with random weights and the packaged architecture (no torch needed)."""
    from mirsearch.training.segmenter import FRONTEND, TrainOptions, context_frames, layer_list

    opts = TrainOptions()
    rng = np.random.default_rng(0)
    shapes = {"c0": (16, 1, 3, 3), "c1": (32, 16, 3, 3), "c2": (32, 32, 3, 3), "t0": (64, 160, 3)}
    shapes.update({f"t{i}": (64, 64, 3) for i in (1, 2, 3)}, out=(2, 64, 1))
    w = {}
    for k, s in shapes.items():
        w[k + ".weight"] = (rng.standard_normal(s) / np.sqrt(np.prod(s[1:]))).astype(np.float32)
        w[k + ".bias"] = (rng.standard_normal(s[0]) * 0.1).astype(np.float32)
    np.savez(directory / "weights.npz", **w)
    config = {
        "format": "mirsearch-segmenter-bundle",
        "model_id": "random",
        "frontend": {**FRONTEND, "offset_db": -40.0, "scale_db": 20.0, "floor_db": F.DB_FLOOR},
        "outputs": ["speech", "music"],
        "output_hop": 4,
        "context": context_frames(opts),
        "layers": layer_list(opts),
    }
    (directory / "config.json").write_text(json.dumps(config))
    return SegmenterModel.load(directory)


@pytest.fixture(scope="module")
def random_model(tmp_path_factory):
    return _random_bundle(tmp_path_factory.mktemp("bundle"))


def _check_cover(segments, duration):
    assert segments, "no segments"
    assert segments[0].start == 0.0
    assert segments[-1].end == pytest.approx(duration, abs=1e-9)
    for a, b in itertools.pairwise(segments):
        assert a.end == b.start and a.start < a.end
        assert a.label != b.label
    assert all(s.label in S.LABELS for s in segments)


# ----------------------------------------------------------------------------------------------- features
def test_mel_filterbank_equals_librosa():
    import librosa

    M = F.mel_filterbank(sr=8000, n_fft=400, n_mels=40, fmin=60.0, fmax=3800.0)
    R = librosa.filters.mel(sr=8000, n_fft=400, n_mels=40, fmin=60.0, fmax=3800.0)
    np.testing.assert_allclose(M, R, atol=1e-6)


def test_log_mel_frames_and_peak_band():
    sr = F.ANALYSIS_SR
    t = np.arange(int(1.234 * sr)) / sr
    L = F.log_mel(0.5 * np.sin(2 * np.pi * 1000 * t))
    assert L.shape == (40, F.n_frames(len(t)))
    M = F.mel_filterbank(sr=sr, n_fft=F.N_FFT, n_mels=40, fmin=60.0, fmax=3800.0)
    assert np.argmax(L[:, 50]) == np.argmax(M[:, round(1000 / (sr / F.N_FFT))])


def test_classic_features_of_a_tone():
    sr = F.ANALYSIS_SR
    t = np.arange(3 * sr) / sr
    X = F.classic_features(0.3 * np.sin(2 * np.pi * 1000 * t + 0.1))
    row = dict(zip(F.CLASSIC_NAMES, X[:, 150], strict=True))
    assert X.shape == (len(F.CLASSIC_NAMES), 300)
    assert row["centroid"] == pytest.approx(1.0, abs=0.05)  # kHz
    assert row["zcr"] == pytest.approx(2.5, abs=0.05)  # 2 crossings per 8-sample period, x10
    assert row["var_centroid"] < 1e-3 and row["low_energy"] == 0.0


# ----------------------------------------------------------------------------------------------- decoding
def _score(E, labels, pen):
    return E[np.arange(len(labels)), labels].sum() - pen * np.count_nonzero(np.diff(labels))


def _brute(E, D, pen):
    best = None
    for seq in itertools.product(range(E.shape[1]), repeat=E.shape[0]):
        runs = [len(list(g)) for _, g in itertools.groupby(seq)]
        if len(runs) > 2 and min(runs[1:-1]) < D:
            continue
        sc = _score(E, np.array(seq), pen)
        best = sc if best is None else max(best, sc)
    return best


def test_decode_equals_brute_force():
    rng = np.random.default_rng(1)
    for _ in range(60):
        n, D, pen = int(rng.integers(1, 7)), int(rng.integers(1, 4)), float(rng.uniform(0, 2))
        E = rng.standard_normal((n, 3))
        labels = S.decode(E, min_frames=D, switch_penalty=pen)
        assert _score(E, labels, pen) == pytest.approx(_brute(E, D, pen))


def test_min_segment_is_honoured():
    rng = np.random.default_rng(2)
    P = rng.uniform(size=(2, 500))  # noisy probabilities at 25 Hz: 20 s
    segs = S.segments_from_probabilities(P, rate=25.0, duration=20.0, options=S.SegmentOptions(min_segment=1.0))
    _check_cover(segs, 20.0)
    assert all(s.end - s.start >= 1.0 - 1e-9 for s in segs[1:-1])
    raw = S.segments_from_probabilities(P, rate=25.0, duration=20.0, options=S.SegmentOptions(smoothing="none"))
    assert len(raw) > len(segs)


def test_options_are_validated():
    with pytest.raises(ParameterError, match="smoothing"):
        S.SegmentOptions(smoothing="viterbi")
    with pytest.raises(ParameterError, match="min_segment"):
        S.SegmentOptions(min_segment=-1)
    with pytest.raises(ParameterError, match="threshold"):
        S.SegmentOptions(threshold=1.0)
    with pytest.raises(ParameterError, match="music_threshold"):
        S.SegmentOptions(music_threshold=0.0)


def test_music_threshold_acts_on_music_only():
    P = np.array([[0.55, 0.65, 0.3], [0.55, 0.65, 0.75]])
    both = S.label_log_likelihoods(P, threshold=0.6)
    split = S.label_log_likelihoods(P, threshold=(0.5, 0.6))
    # the music terms equal those of threshold 0.6, the speech terms those of 0.5
    np.testing.assert_allclose(split[:, 2] - split[:, 0], both[:, 2] - both[:, 0])
    half = S.label_log_likelihoods(P, threshold=0.5)
    np.testing.assert_allclose(split[:, 1] - split[:, 0], half[:, 1] - half[:, 0])
    none = S.SegmentOptions(smoothing="none", music_threshold=0.7)
    np.testing.assert_array_equal(S.smooth(P, rate=25.0, options=none), [1, 1, 2])


def test_service_choices_and_defaults_match_describe():
    from mirsearch.service.segment import SMOOTHING_CHOICES, SegmentRequest

    assert SMOOTHING_CHOICES == S.SMOOTHINGS
    request, options = SegmentRequest(path="x.wav"), S.SegmentOptions()
    for name in ("min_segment", "smoothing", "switch_penalty"):
        assert getattr(request, name) == getattr(options, name)


# ----------------------------------------------------------------------------------------------- streaming, files
def test_streaming_equals_whole_signal(random_model):
    rng = np.random.default_rng(3)
    for n in (0, 37, 8000 * 3 + 11, 8000 * 40 + 333):
        y = (rng.standard_normal(n) * 0.1).astype(np.float32)
        whole = random_model.predict(F.log_mel(y))
        stream = F.FrameProbabilityStream(random_model, sr=8000, chunk_frames=400)
        parts = [stream.feed(y[i : i + 5003]) for i in range(0, n, 5003)] + [stream.finish()]
        np.testing.assert_allclose(np.concatenate(parts, axis=1), whole, atol=1e-5)


@pytest.mark.parametrize(
    ("sr", "channels", "seconds"), [(8000, 1, 3.0), (22050, 2, 0.3), (44100, 6, 1.0), (96000, 1, 2.0), (192000, 2, 0.8)]
)
def test_files_are_covered_at_any_rate(tmp_path, random_model, sr, channels, seconds):
    rng = np.random.default_rng(4)
    y = (rng.standard_normal((int(sr * seconds), channels)) * 0.1).astype(np.float32)
    path = tmp_path / f"x{sr}.wav"
    sf.write(path, y, sr)
    res = S.segment_file(path, model=random_model, block_seconds=0.25)
    assert res.duration == pytest.approx(seconds, abs=1 / sr)
    _check_cover(res.segments, res.duration)
    d = res.to_dict()
    assert set(d) == {"path", "duration", "segments"} and set(d["segments"][0]) == {"start", "end", "label"}


def test_bad_files_name_the_file(tmp_path, random_model):
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros((0, 1), np.float32), 16000)
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"not audio at all")
    for path, msg in ((empty, "empty"), (junk, "unreadable"), (tmp_path / "missing.wav", "no such file")):
        with pytest.raises(InputError, match=msg) as info:
            S.segment_file(path, model=random_model)
        assert path.name in str(info.value) and "\n" not in str(info.value)


# ----------------------------------------------------------------------------------------------- packaged model
needs_bundle = pytest.mark.skipif(not (DEFAULT_BUNDLE_DIR / "config.json").exists(), reason="no packaged bundle")


@needs_bundle
def test_packaged_model_silence_and_tones():
    """Sanity of the shipped model: digital silence is noise; a sequence of piano-like chords is music."""
    sr = 16000
    silent = S.segment_signal(np.zeros(3 * sr, np.float32), sr=sr)
    assert [s.label for s in silent] == ["noise"]
    t = np.arange(int(0.5 * sr)) / sr
    notes = []
    for root in (48, 52, 55, 53, 50, 55, 48, 57, 53, 55, 52, 48, 50, 55, 53, 48):
        chord = sum(
            np.sin(2 * np.pi * 440 * 2 ** ((root + i - 69) / 12) * k * t) / k**1.5
            for i in (0, 4, 7, 12)
            for k in (1, 2, 3)
        )
        notes.append(0.05 * chord * np.exp(-3 * t))
    segs = S.segment_signal(np.concatenate(notes).astype(np.float32), sr=sr)
    music = sum(s.end - s.start for s in segs if "music" in s.label)
    assert music / segs[-1].end > 0.8


# ----------------------------------------------------------------------------------------------- CLI
def test_cli_formats_and_bad_file(tmp_path, capsys, monkeypatch, random_model):
    from mirsearch.cli.main import main

    monkeypatch.setattr(SegmenterModel, "load", classmethod(lambda cls, path=None: random_model))
    a = tmp_path / "a.wav"
    sf.write(a, (np.random.default_rng(5).standard_normal(16000 * 2) * 0.1).astype(np.float32), 16000)
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"xx")
    assert main(["segment", str(a), "--json"]) == 0
    one = json.loads(capsys.readouterr().out)
    assert one["path"] == str(a) and one["duration"] == pytest.approx(2.0)
    assert main(["segment", str(a), str(bad), str(a), "--json", "--min-segment", "0.5"]) == 3
    out = capsys.readouterr()
    assert len(json.loads(out.out)["files"]) == 2 and len(out.err.splitlines()) == 1 and "bad.wav" in out.err
    assert main(["segment", str(a), "--format", "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "path,start,end,label" and lines[1].startswith(str(a))
    assert main(["segment", str(a), "--format", "audacity", "--plot", str(tmp_path / "p.png")]) == 0
    first = capsys.readouterr().out.splitlines()[0].split("\t")
    assert float(first[0]) == 0.0 and first[2] in S.LABELS
    assert (tmp_path / "p.png").stat().st_size > 1000


# ----------------------------------------------------------------------------------------------- metrics
def test_frame_and_boundary_metrics_by_hand():
    from mirsearch.evaluation import segmentation as M

    ref = M.intervals_to_frames([[0.5, 1.0]], 2.0)
    est = M.intervals_to_frames([[0.75, 1.25]], 2.0)
    assert ref.sum() == 50 and est.sum() == 50
    s = M.frame_scores(est, ref)
    assert (s["precision"], s["recall"], s["f"]) == (0.5, 0.5, 0.5)
    assert M.frames_to_intervals(ref) == [[0.5, 1.0]]
    c = M.boundary_counts(M.boundaries([[0.75, 1.25]], 2.0), M.boundaries([[0.5, 1.0]], 2.0), window=0.3)
    assert c == {"hits": 2, "n_est": 2, "n_ref": 2}
    b = M.pooled_boundary([c, M.boundary_counts(np.array([1.0]), np.array([]), window=0.5)])
    assert b["precision"] == pytest.approx(2 / 3) and b["recall"] == 1.0
    assert M.frame_scores(np.zeros(5, bool), np.zeros(5, bool))["f"] == 1.0


@needs_bundle
def test_stored_segments_kind():
    from mirsearch.features import registry

    config = registry.feature_config("segments")
    assert config["kind"] == "segments" and config["model"] == SegmenterModel.load().model_id
    y = np.zeros(22050 * 2, np.float32)
    P, rate = registry.extract(y, sr=22050, config=config)
    assert P.shape == (2, 50) and rate == 25.0 and P.dtype == np.float32
    segs = S.segments_from_probabilities(P, rate=rate, duration=2.0)
    assert [s.label for s in segs] == ["noise"]
