"""Audio identification with fingerprints (issue 18): synthetic recordings built in a second or two."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import soxr

from mirsearch.collection import Collection
from mirsearch.errors import CollectionError, InputError
from mirsearch.features import fingerprint as fp
from mirsearch.index.fingerprints import INDEX_DIR, FingerprintIndex
from mirsearch.search.identify import (
    DEFAULT_MIN_SCORE,
    IdentifyOptions,
    dedupe,
    identify,
    match_peaks,
    peak_overlap,
    scan,
    stored_peaks,
)
from mirsearch.search.peak_check import offset_votes
from synth_notes import random_notes

SR = 22050


def synth(seed: int, seconds: float) -> np.ndarray:
    """Random 'music' at 22.05 kHz (:func:`synth_notes.random_notes`)."""
    return random_notes(seed, seconds, sr=SR)


@pytest.fixture(scope="module")
def tracks():
    return {name: synth(seed, 30.0) for seed, name in enumerate(["a", "b", "c", "absent"])}


@pytest.fixture(scope="module")
def coll(tmp_path_factory, tracks):
    folder = tmp_path_factory.mktemp("identify")
    for name in ("a", "b", "c"):
        sf.write(folder / f"{name}.wav", tracks[name], SR)
    c = Collection.create(folder / "coll.mirs", features=["fingerprint"])
    report = c.add(folder)
    assert len(report.added) == 3
    yield c
    c.close()


def _rec(coll, name):
    return next(r for r in coll.recordings() if r.path.endswith(f"{name}.wav"))


def test_clip_found_at_its_offset(coll, tracks):
    clip = tracks["b"][int(12.3 * SR) : int(17.3 * SR)]
    res = identify(coll, clip, sr=SR)
    assert res.matches, "not found"
    m = res.matches[0]
    assert m.recording_id == _rec(coll, "b").id
    assert m.offset == pytest.approx(12.3, abs=0.05)
    assert m.speed == pytest.approx(1.0, abs=0.005)
    assert m.score >= DEFAULT_MIN_SCORE
    assert json.loads(json.dumps(res.to_dict()))["matches"][0]["recording_id"] == m.recording_id


@pytest.mark.parametrize("speed", [0.95, 1.05])
def test_speed_changed_clip_found_with_its_speed(coll, tracks, speed):
    src = tracks["c"][int(8.0 * SR) : int((8.0 + 6.0 * speed) * SR)]
    clip = soxr.resample(src, SR * speed, SR)  # played faster (speed > 1): shorter and higher
    m = identify(coll, clip, sr=SR).matches[0]
    assert m.recording_id == _rec(coll, "c").id
    assert m.offset == pytest.approx(8.0, abs=0.2)
    assert m.speed == pytest.approx(speed, abs=0.01)
    assert m.pitch_shift == pytest.approx(12 * np.log2(speed), abs=0.2)


def test_absent_clip_not_found(coll, tracks):
    assert identify(coll, tracks["absent"][SR * 5 : SR * 15], sr=SR).matches == []


def pink_noise(n: int, like: np.ndarray, snr_db: float, seed: int) -> np.ndarray:
    """Pink noise (power 1/f above 20 Hz) of ``n`` samples at ``snr_db`` below the power of ``like``."""
    rng = np.random.default_rng(seed)
    spec = np.fft.rfft(rng.standard_normal(n)) / np.sqrt(np.maximum(np.fft.rfftfreq(n, 1 / SR), 20.0))
    noise = np.fft.irfft(spec, n)
    return noise * np.sqrt(np.mean(like.astype(np.float64) ** 2) / np.mean(noise**2) / 10 ** (snr_db / 10))


def test_clip_under_loud_pink_noise_found_by_single_peaks_and_foreign_clip_not(coll, tracks):
    """At -16 dB too few triplet hashes survive for a line; the unchanged-speed fallback finds it from single peaks
    (without it: not found), and the same noise over music that is not in the collection stays "not found"."""
    clip = tracks["b"][SR * 12 : SR * 17]
    noisy = (clip + pink_noise(clip.size, clip, -16.0, seed=3)).astype(np.float32)
    m = identify(coll, noisy, sr=SR).matches
    assert m and m[0].recording_id == _rec(coll, "b").id
    assert m[0].offset == pytest.approx(12.0, abs=0.05) and m[0].speed == 1.0 and m[0].score >= DEFAULT_MIN_SCORE
    assert identify(coll, noisy, sr=SR, options=IdentifyOptions(fallback=False)).matches == []
    foreign = tracks["absent"][SR * 12 : SR * 17]
    noisy_foreign = (foreign + pink_noise(foreign.size, foreign, -16.0, seed=3)).astype(np.float32)
    assert identify(coll, noisy_foreign, sr=SR).matches == []


def test_offset_votes_find_the_offset_from_a_third_of_the_peaks_among_noise():
    rng = np.random.default_rng(7)
    n_ref = 1200  # 60 s of 20 peaks per second
    ref = np.stack([np.sort(rng.uniform(0, 3750, n_ref)), rng.uniform(0, 180, n_ref), np.ones(n_ref)])
    offset, span = 1234.6, 312.5
    keep = (ref[0] >= offset) & (ref[0] < offset + span) & (rng.random(n_ref) < 0.33)
    kept = np.stack(
        [ref[0][keep] - offset + rng.normal(0, 0.3, keep.sum()), ref[1][keep] + rng.normal(0, 0.2, keep.sum())]
    )
    noise = np.stack([rng.uniform(0, span, 200), rng.uniform(0, 180, 200)])
    query = np.concatenate([kept, noise], axis=1)
    query = np.concatenate([query, np.ones((1, query.shape[1]))])
    best = offset_votes(ref, query, n=2)
    assert best.shape == (2,) and best[0] == pytest.approx(offset, abs=0.5)
    assert abs(best[1] - offset) >= 3 * 1.5  # the second proposal is another cell
    assert offset_votes(ref[:, :0], query).size == 0 and offset_votes(ref, query[:, :0]).size == 0


def test_bad_queries_give_clear_errors(coll):
    with pytest.raises(InputError, match="silent"):
        identify(coll, np.zeros(SR * 5, np.float32), sr=SR)
    with pytest.raises(InputError, match="too short"):
        identify(coll, np.ones(SR // 2, np.float32) * 0.1, sr=SR)


def test_collection_without_fingerprints_names_the_command(tmp_path, tracks):
    sf.write(tmp_path / "a.wav", tracks["a"][: SR * 5], SR)
    with Collection.create(tmp_path / "c.mirs", features=["chroma"]) as c:
        c.add(tmp_path / "a.wav")
        with pytest.raises(CollectionError, match=r"mirsearch index .*fingerprint"):
            identify(c, tracks["a"][: SR * 3], sr=SR)


def test_index_saved_and_updated_incrementally(coll, tracks, tmp_path):
    folder = coll.root / INDEX_DIR
    saved = FingerprintIndex.load(folder)
    assert saved is not None and set(saved.recordings) == {r.id for r in coll.recordings()}
    hashes = np.asarray(saved.arrays["hashes"])
    assert np.all(hashes[1:] >= hashes[:-1])
    # one recording dropped, then merged back: the same entries as a full build
    ids = sorted(saved.recordings)
    peaks = {i: np.asarray(coll.load_features(i, "fingerprint")[0]) for i in ids}
    smaller = saved.updated({}, {i: saved.recordings[i] for i in ids[1:]})
    assert ids[0] not in set(np.asarray(smaller.arrays["recording_ids"]).tolist())
    again = smaller.updated({ids[0]: peaks[ids[0]]}, saved.recordings)
    full = FingerprintIndex.from_peaks(peaks, peak_config=saved.peak_config, hconfig=saved.hconfig)
    assert _entries(again) == _entries(full)


def _entries(index) -> list:
    a = index.arrays
    return sorted(zip(np.asarray(a["hashes"]).tolist(), np.asarray(a["t1"]).tolist(), strict=True))


def test_hashes_invariant_to_speed():
    """Peaks moved as a speed change moves them (times / s, log-frequency + shift): most hashes are unchanged."""
    rng = np.random.default_rng(1)
    n = 400
    peaks = np.stack([np.sort(rng.uniform(0, 600, n)), rng.uniform(10, 170, n), np.ones(n)]).astype(np.float32)
    hc = fp.hash_config()
    ref = set(fp.reference_hashes(fp.triplets(peaks, hconfig=hc), hconfig=hc).tolist())
    s = 1.05
    moved = peaks.copy()
    moved[0] /= s
    moved[1] += 36 * np.log2(s)
    probes, _ = fp.query_hashes(fp.triplets(moved, hconfig=hc, query=True), hconfig=hc)
    assert len(ref & set(probes.tolist())) / len(ref) > 0.6


def test_scan_and_dedupe(tmp_path, tracks):
    a, b = tracks["a"], tracks["b"]
    sf.write(tmp_path / "a.wav", a, SR)
    sf.write(tmp_path / "b.wav", b, SR)
    sf.write(tmp_path / "a_part.wav", a[SR * 4 : SR * 20], SR)  # contained in a
    with Collection.create(tmp_path / "c.mirs", features=["fingerprint"]) as c:
        c.add(tmp_path)
        tape = np.concatenate([b[SR * 2 : SR * 14], tracks["absent"][: SR * 10], a[SR * 10 : SR * 25]])
        found = scan(c, tape, sr=SR, window=5.0, hop=2.5).stretches
        names = [s.match.recording.rsplit("/", 1)[-1] for s in found]
        assert names[0] == "b.wav" and names[-1] in ("a.wav", "a_part.wav")
        assert found[0].query_start == 0.0 and found[0].match.offset == pytest.approx(2.0, abs=0.2)
        dups = dedupe(c, window=5.0)
        pairs = {(d.recording.rsplit("/", 1)[-1], d.other.rsplit("/", 1)[-1]) for d in dups}
        assert ("a_part.wav", "a.wav") in pairs
        d = next(d for d in dups if d.recording.endswith("a_part.wav"))
        assert d.offset == pytest.approx(4.0, abs=0.2) and d.relation == "contained"


def test_options_validated():
    with pytest.raises(ValueError, match="max_speed_change"):
        IdentifyOptions(max_speed_change=0.9)
    with pytest.raises(ValueError, match="fallback_reach"):
        IdentifyOptions(fallback_reach=0.0)


def test_lines_beyond_the_lead_candidates_need_the_higher_score(coll, tracks):
    clip = tracks["b"][SR * 6 : SR * 11]
    no_sure = {"sure_anchors": 10**6, "beyond_min_score": 1e6, "change_check": False}
    found = identify(coll, clip, sr=SR, options=IdentifyOptions(lead_candidates=1, **no_sure)).matches
    assert found and found[0].recording.endswith("b.wav")  # the true line is the first candidate of the vote
    assert not identify(coll, clip, sr=SR, options=IdentifyOptions(lead_candidates=0, **no_sure)).matches
    with pytest.raises(ValueError, match="lead_candidates"):
        IdentifyOptions(lead_candidates=-1)


def test_service_default_threshold_is_the_calibrated_one():
    from mirsearch.service.identify import MIN_SCORE

    assert MIN_SCORE == DEFAULT_MIN_SCORE


def test_cli_identify_json(coll, tracks, tmp_path, capsys):
    from mirsearch.cli.main import main

    sf.write(tmp_path / "clip.wav", tracks["a"][SR * 3 : SR * 10], SR)
    assert main(["identify", "-c", str(coll.root), "--audio", str(tmp_path / "clip.wav"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["matches"][0]["recording"].endswith("a.wav")
    assert out["matches"][0]["offset"] == pytest.approx(3.0, abs=0.05)
    assert {"recording", "recording_id", "offset", "score", "speed"} <= set(out["matches"][0])


def test_match_peaks_with_empty_query(coll):
    index = FingerprintIndex.for_collection(coll)
    empty = np.zeros((3, 0), np.float32)
    cands, n = match_peaks(index, empty, options=IdentifyOptions(), reference=stored_peaks(coll))
    assert cands == [] and n == 0


def _brute_overlap(ref, query, *, offset, speed, shift, span, tol):
    """Reference peaks in ``offset .. offset + span`` with a mapped query peak within ``tol`` (loops)."""
    n = 0
    for t, f in zip(ref[0], ref[1], strict=True):
        if not offset <= t < offset + span:
            continue
        n += any(
            abs(t - (offset + speed * tq)) <= tol[0] and abs(f - (fq - shift)) <= tol[1]
            for tq, fq in zip(query[0], query[1], strict=True)
        )
    return n


def test_peak_overlap_counts_like_brute_force_and_stands_out_only_when_aligned():
    rng = np.random.default_rng(3)
    rate, n_ref = 62.5, 1200  # 60 s of 20 peaks per second
    ref = np.stack([np.sort(rng.uniform(0, 60 * rate, n_ref)), rng.uniform(0, 180, n_ref), np.ones(n_ref)])
    offset, speed, shift, span = 20.0 * rate, 1.03, 2.0, 5.0 * rate
    inside = (ref[0] >= offset) & (ref[0] < offset + span)
    keep = inside & (rng.random(n_ref) < 0.5)  # half the peaks survive, jittered, plus as many noise peaks
    tq = (ref[0][keep] - offset) / speed + rng.normal(0, 0.3, keep.sum())
    fq = ref[1][keep] + shift + rng.normal(0, 0.2, keep.sum())
    noise = np.stack([rng.uniform(0, span / speed, 60), rng.uniform(0, 180, 60)])
    query = np.concatenate([np.stack([tq, fq]), noise], axis=1)
    query = np.concatenate([query, np.ones((1, query.shape[1]))])
    tol = (1.5, 0.7)
    kw = dict(offset=offset, speed=speed, shift=shift, span=span)
    matched, standout = peak_overlap(ref, query, rate=rate, tolerance=tol, **kw)
    assert matched == _brute_overlap(ref, query, tol=tol, **kw)
    assert matched >= 0.8 * keep.sum() and standout > 10
    wrong = dict(kw, offset=offset + 7.3 * rate)  # the same query placed elsewhere in the recording
    matched_w, standout_w = peak_overlap(ref, query, rate=rate, tolerance=tol, **wrong)
    assert matched_w == _brute_overlap(ref, query, tol=tol, **wrong)
    assert standout_w < 3 < standout


def test_peak_overlap_without_room_for_a_null_has_no_standout():
    ref = np.array([[10.0, 20.0, 30.0], [5.0, 6.0, 7.0], [1.0, 1.0, 1.0]])
    matched, standout = peak_overlap(ref, ref - [[10.0], [0.0], [0.0]], offset=10.0, speed=1.0, shift=0.0,
                                     span=25.0, rate=62.5)  # fmt: skip
    assert matched == 3 and standout == 0.0


def test_http_identify_finds_an_uploaded_clip_and_says_not_found(coll, tracks, tmp_path):
    import io

    from fastapi.testclient import TestClient

    from mirsearch.server import create_app

    def wav(y):
        buf = io.BytesIO()
        sf.write(buf, y, SR, format="WAV")
        return buf.getvalue()

    with TestClient(create_app(coll.root, request_seconds=60), base_url="http://127.0.0.1") as client:
        clip = wav(tracks["b"][int(12.3 * SR) : int(17.3 * SR)])
        r = client.post("/api/identify", files={"file": ("clip.wav", clip, "audio/wav")}, data={"top": "3"})
        assert r.status_code == 200, r.text
        best = r.json()["matches"][0]
        assert best["recording_id"] == _rec(coll, "b").id and best["name"] == "b.wav"
        assert best["offset"] == pytest.approx(12.3, abs=0.05) and best["start"] == best["offset"]
        assert best["end"] == pytest.approx(17.3, abs=0.1) and "/" not in best["recording"]
        absent = wav(tracks["absent"][SR * 5 : SR * 15])
        r = client.post("/api/identify", files={"file": ("absent.wav", absent, "audio/wav")})
        assert r.status_code == 200 and r.json()["matches"] == []
        r = client.post("/api/identify", files={"file": ("x.wav", b"RIFF0000WAVEjunk")})
        assert r.status_code == 400 and "x.wav" in r.json()["error"]
