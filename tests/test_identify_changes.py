"""The spectro-temporal change signs stored with fingerprints (versions 2 and 3) and the change check (issue 18)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import soxr

from mirsearch.collection import Collection
from mirsearch.errors import ParameterError
from mirsearch.features import fingerprint as fp
from mirsearch.search.identify import IdentifyOptions, identify
from mirsearch.search.peak_check import ChangeCheck, change_correlation
from synth_notes import random_notes

SR = 8000
CONFIG = fp.fingerprint_config()


def synth(seed: int, seconds: float, sr: int = SR) -> np.ndarray:
    """Random notes (harmonic, decaying) of three voices (:func:`synth_notes.random_notes`)."""
    return random_notes(seed, seconds, sr=sr)


@pytest.fixture(scope="module")
def music():
    return synth(1, 20.0)


def test_change_signs_round_trip_through_the_stored_array(music):
    L = fp.log_spectrogram(music, sr=SR, config=CONFIG)
    changes, valid = fp.band_changes(fp.band_energies(L, config=CONFIG))
    assert changes.shape == (60, L.shape[1] // 2)
    np.testing.assert_allclose(changes[:, 1:].mean(axis=0), 0.0, atol=1e-5)  # a change of the whole spectrum cancels
    X, rate = fp.extract_fingerprints(music, sr=SR, config=CONFIG)
    assert rate == 62.5
    peaks, signs = fp.split_stored(X, config=CONFIG)
    np.testing.assert_array_equal(peaks, fp.pick_peaks(L, config=CONFIG))
    np.testing.assert_array_equal(fp.peaks_of(X), peaks)
    n = signs.shape[1]
    assert n == np.flatnonzero(valid).max() + 1
    expected = np.where(changes[:, :n] > 0, 1, -1) * valid[None, :n]
    np.testing.assert_array_equal(signs, expected)
    assert X.shape[1] == peaks.shape[1] + np.count_nonzero(valid)  # 60 signs in one column per frame
    changes_cols = X[:, X[1] < 0]
    assert np.all(np.isfinite(changes_cols)) and np.all(np.abs(changes_cols[1:]) >= np.finfo(np.float32).tiny)


def version2_columns(changes: np.ndarray, valid: np.ndarray, *, config: dict) -> np.ndarray:
    """The change columns as fingerprint version 2 stored them: ``(time, -1 - word, 24-bit word)``, 3 per frame."""
    frames = np.flatnonzero(valid)
    bits = np.zeros((72, frames.size), np.int64)
    bits[: changes.shape[0]] = changes[:, frames] > 0
    words = (bits.reshape(3, 24, -1) << np.arange(24)[None, :, None]).sum(axis=1)
    times = np.repeat(frames * float(config["change_hop"]), 3)
    return np.stack([times, np.tile(-1.0 - np.arange(3), frames.size), words.T.reshape(-1)]).astype(np.float32)


def test_signs_pack_into_bits_that_survive_float64_and_json(music):
    import json

    L = fp.log_spectrogram(music, sr=SR, config=CONFIG)
    changes, valid = fp.band_changes(fp.band_energies(L, config=CONFIG))
    rng = np.random.default_rng(5)
    changes[:, valid] = rng.choice([-1.0, 1.0], size=(60, np.count_nonzero(valid)))  # every bit pattern is likely
    first, second = np.flatnonzero(valid)[:2]
    changes[:, first], changes[:, second] = 1.0, -1.0  # all bits set, none set
    cols = fp.change_columns(changes, valid, config=CONFIG)
    assert cols.shape == (3, np.count_nonzero(valid)) and np.all(cols[1] < 0) and np.all(np.abs(cols[1]) < 1e-18)
    peaks = fp.pick_peaks(L, config=CONFIG)
    X = np.concatenate([peaks, cols], axis=1)
    again = np.asarray(json.loads(json.dumps(X.astype(np.float64).tolist())), np.float32)
    p1, s1 = fp.split_stored(X, config=CONFIG)
    p2, s2 = fp.split_stored(again, config=CONFIG)
    np.testing.assert_array_equal(p1, peaks)
    np.testing.assert_array_equal(s1, s2)
    n = s1.shape[1]
    np.testing.assert_array_equal(s1, np.where(changes[:, :n] > 0, 1, -1) * valid[None, :n])
    # the version-2 layout (three columns of 24 bits per frame) is still read, to the same signs
    old = np.concatenate([peaks, version2_columns(changes, valid, config=CONFIG)], axis=1)
    p3, s3 = fp.split_stored(old, config=CONFIG)
    np.testing.assert_array_equal(p3, peaks)
    np.testing.assert_array_equal(s3, s1)
    assert old.nbytes > 2.5 * (X.nbytes - peaks.nbytes) + peaks.nbytes


def test_silence_has_no_signs_and_peaks_only_arrays_have_none():
    y = np.zeros(SR * 3, np.float32)
    y[SR : 2 * SR] = synth(2, 1.0)
    X, _ = fp.extract_fingerprints(y, sr=SR, config=CONFIG)
    _, signs = fp.split_stored(X, config=CONFIG)
    known = np.any(signs != 0, axis=0)
    assert not known[:20].any()  # the first second is digital silence
    assert known[40:70].all()
    peaks, signs = fp.split_stored(fp.peaks_of(X), config=CONFIG)  # a version-1 array: peaks only
    assert signs.shape == (60, 0) and peaks.shape[1] > 0


def test_change_correlation_is_high_on_the_line_also_at_another_speed(music):
    _, signs = fp.split_stored(fp.extract_fingerprints(music, sr=SR, config=CONFIG)[0], config=CONFIG)
    rate = fp.frame_rate(CONFIG)
    clip = music[int(6.0 * SR) : int(11.0 * SR)]
    L = fp.log_spectrogram(clip, sr=SR, config=CONFIG)
    right = change_correlation(signs, L, offset=6.0 * rate, speed=1.0, shift=0.0, config=CONFIG)
    wrong = change_correlation(signs, L, offset=12.0 * rate, speed=1.0, shift=0.0, config=CONFIG)
    assert right > 0.5 and abs(wrong) < 0.15
    speed = 1.04  # played 4 % faster: shorter, higher
    fast = soxr.resample(music[int(6.0 * SR) : int(11.5 * SR)], SR * speed, SR)[: 5 * SR]
    Lf = fp.log_spectrogram(fast, sr=SR, config=CONFIG)
    shift = 36 * np.log2(speed)
    on_line = change_correlation(signs, Lf, offset=6.0 * rate, speed=speed, shift=shift, config=CONFIG)
    assert on_line > 0.4
    assert on_line > change_correlation(signs, Lf, offset=6.0 * rate, speed=1.0, shift=0.0, config=CONFIG) + 0.2
    assert np.isnan(change_correlation(signs[:, :10], L, offset=6.0 * rate, speed=1.0, shift=0.0, config=CONFIG))


def test_change_check_standout_against_unrelated_music(music):
    others = [fp.split_stored(fp.extract_fingerprints(synth(s, 20.0), sr=SR, config=CONFIG)[0], config=CONFIG)[1]
              for s in (3, 4, 5)]  # fmt: skip
    _, signs = fp.split_stored(fp.extract_fingerprints(music, sr=SR, config=CONFIG)[0], config=CONFIG)
    L = fp.log_spectrogram(music[int(6.0 * SR) : int(11.0 * SR)], sr=SR, config=CONFIG)
    check = ChangeCheck(L, config=CONFIG, null_signs=others, windows=4)
    rate = fp.frame_rate(CONFIG)
    assert check.standout(signs, offset=6.0 * rate, speed=1.0, shift=0.0) > 10
    assert abs(check.standout(signs, offset=13.0 * rate, speed=1.0, shift=0.0)) < 5
    assert np.isnan(check.standout(signs[:, :0], offset=6.0 * rate, speed=1.0, shift=0.0))
    assert np.isnan(ChangeCheck(L, config=CONFIG, null_signs=[], windows=4).standout(signs, offset=0, speed=1, shift=0))


def test_collection_fingerprinted_with_version_1_still_identifies_and_upgrades(tmp_path, monkeypatch):
    """Stored version-1 fingerprints (peaks only): identification works on the peaks; ``index`` re-extracts them
    with the change signs (a new configuration), and the fingerprint index is rebuilt."""
    tracks = {name: synth(seed, 25.0) for seed, name in ((11, "a"), (12, "b"))}
    for name, y in tracks.items():
        sf.write(tmp_path / f"{name}.wav", y, SR)
    v1 = {k: v for k, v in fp.PEAK_DEFAULTS.items() if not k.startswith("change_")}
    with monkeypatch.context() as m:
        m.setattr(fp, "PEAK_DEFAULTS", v1)
        m.setattr(fp, "FINGERPRINT_VERSION", 1)
        coll = Collection.create(tmp_path / "c.mirs", features=["fingerprint"])
        coll.add(tmp_path)
    clip = tracks["b"][int(7.0 * SR) : int(12.0 * SR)]
    rid = next(r.id for r in coll.recordings() if r.path.endswith("b.wav"))
    assert fp.split_stored(coll.load_features(rid, "fingerprint")[0], config=CONFIG)[1].shape[1] == 0
    old = identify(coll, clip, sr=SR).matches
    assert old and old[0].recording_id == rid and old[0].offset == pytest.approx(7.0, abs=0.05)
    coll.add(tmp_path)  # the new configuration: fingerprints re-extracted
    assert fp.split_stored(coll.load_features(rid, "fingerprint")[0], config=CONFIG)[1].shape[1] > 0
    new = identify(coll, clip, sr=SR).matches
    assert new[0].recording_id == rid and new[0].offset == pytest.approx(old[0].offset, abs=1e-6)
    assert new[0].change_score is None  # a clear match: its peaks decide
    coll.close()


def test_collection_fingerprinted_with_version_2_keeps_its_signs_and_upgrades(tmp_path, monkeypatch):
    """Stored version-2 fingerprints (signs in three columns of 24 bits per frame) are read with their signs; ``index``
    re-extracts them in the packed layout of version 3 (a new configuration), with the same signs."""
    tracks = {name: synth(seed, 25.0) for seed, name in ((13, "a"), (14, "b"))}
    for name, y in tracks.items():
        sf.write(tmp_path / f"{name}.wav", y, SR)
    with monkeypatch.context() as m:
        m.setattr(fp, "FINGERPRINT_VERSION", 2)
        m.setattr(fp, "change_columns", version2_columns)
        coll = Collection.create(tmp_path / "c.mirs", features=["fingerprint"])
        coll.add(tmp_path)
    rid = next(r.id for r in coll.recordings() if r.path.endswith("b.wav"))
    X2 = np.asarray(coll.load_features(rid, "fingerprint")[0])
    _, s2 = fp.split_stored(X2, config=CONFIG)
    assert s2.shape[1] > 0
    rng = np.random.default_rng(1)
    clip = tracks["b"][int(7.0 * SR) : int(12.0 * SR)]
    noisy = clip + 2.0 * np.std(clip) * rng.standard_normal(clip.size).astype(np.float32)
    old = [identify(coll, q, sr=SR).matches for q in (clip, noisy)]
    assert old[0] and old[0][0].recording_id == rid and old[0][0].offset == pytest.approx(7.0, abs=0.05)
    coll.add(tmp_path)  # the new configuration: fingerprints re-extracted
    X3 = np.asarray(coll.load_features(rid, "fingerprint")[0])
    p3, s3 = fp.split_stored(X3, config=CONFIG)
    np.testing.assert_array_equal(s3, s2)
    np.testing.assert_array_equal(p3, fp.split_stored(X2, config=CONFIG)[0])
    assert X3.shape[1] == p3.shape[1] + np.count_nonzero(np.any(s3 != 0, axis=0))
    new = [identify(coll, q, sr=SR).matches for q in (clip, noisy)]
    for a, b in zip(old, new, strict=True):
        assert [(m.recording_id, m.offset, m.score, m.change_score) for m in a] == [
            (m.recording_id, m.offset, m.score, m.change_score) for m in b
        ]
    coll.close()


def test_change_check_off_gives_the_peak_only_answer(music, tmp_path):
    sf.write(tmp_path / "m.wav", music, SR)
    sf.write(tmp_path / "o.wav", synth(7, 20.0), SR)
    coll = Collection.create(tmp_path / "c.mirs", features=["fingerprint"])
    coll.add(tmp_path)
    rng = np.random.default_rng(0)
    clip = music[int(4.0 * SR) : int(9.0 * SR)]
    noisy = clip + 1.5 * np.std(clip) * rng.standard_normal(clip.size).astype(np.float32)
    on = identify(coll, clip, sr=SR).matches
    off = identify(coll, clip, sr=SR, options=IdentifyOptions(change_check=False)).matches
    assert [(m.recording_id, m.offset, m.change_score) for m in on] == [(m.recording_id, m.offset, None) for m in off]
    noisy = identify(coll, noisy, sr=SR).matches
    opts = IdentifyOptions()
    for m in noisy:
        if m.change_score is not None:  # answered by peaks and changes together, or by its peaks and not vetoed
            assert m.score + m.change_score >= opts.change_min or m.change_score >= opts.change_veto
    coll.close()


class _FixedChanges:
    """A stand-in for :class:`ChangeCheck` whose every line has the change standout ``z``."""

    def __init__(self, z: float):
        self.z, self.calls = z, 0

    def standout(self, signs, *, offset, speed, shift):
        self.calls += 1
        return self.z


class _NoStore:
    def signs(self, rec):
        return np.zeros((60, 0), np.int8)


@pytest.mark.parametrize(
    ("score", "z", "veto", "answered", "checked"),
    [
        (6.0, -1.0, 0.5, False, True),  # peaks stand out, the whole spectrum does not follow: vetoed
        (6.0, 1.0, 0.5, True, True),
        (6.0, float("nan"), 0.5, True, True),  # no signs stored: the peaks decide
        (13.0, -1.0, 0.5, True, False),  # above veto_below: changes not looked at
        (6.0, -1.0, float("-inf"), True, False),  # veto off
        (4.0, 4.0, 0.5, True, True),  # below min_score: peaks and changes together (4 + 4 >= 7.5)
        (4.0, 3.0, 0.5, False, True),
        (2.0, 9.0, 0.5, False, False),  # below change_floor: not checked
    ],
)
def test_change_veto_and_change_answer_rules(score, z, veto, answered, checked):
    from mirsearch.search.peak_check import line_answer

    opts = IdentifyOptions(change_veto=veto)
    changes = _FixedChanges(z)
    got_z, ok = line_answer(_NoStore(), changes, 1, (0.0, 1.0, 0.0), score, opts.min_score, opts)
    assert ok is answered and (changes.calls == 1) is checked
    assert np.isnan(got_z) if not checked else (got_z == z or np.isnan(z))
    assert line_answer(_NoStore(), None, 1, (0.0, 1.0, 0.0), score, opts.min_score, opts)[1] is (
        score >= opts.min_score
    )


# -- the change scan (session 13, second round) --------------------------------------------------------------------
def test_slide_correlation_matches_the_sum_at_every_offset():
    from mirsearch.search.change_scan import slide_correlation

    rng = np.random.default_rng(3)
    x = rng.standard_normal((60, 40))
    signs = rng.choice(np.array([-1, 0, 1], np.int8), size=(60, 300), p=[0.45, 0.1, 0.45])
    got = slide_correlation(x, signs)
    assert got.shape == (300 - 1 - 40 + 1,)
    for a in (0, 17, got.size - 1):
        window = signs[:, a + 1 : a + 41].astype(np.float64)
        expected = (x * window).sum() / np.sqrt((x * x).sum() * np.abs(window).sum())
        assert got[a] == pytest.approx(expected, rel=1e-9)
    assert slide_correlation(x, signs[:, :40]).size == 0  # recording shorter than the query


def _pink(n: int, like: np.ndarray, snr_db: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    spec = np.fft.rfft(rng.standard_normal(n)) / np.sqrt(np.maximum(np.fft.rfftfreq(n, 1 / SR), 20.0))
    noise = np.fft.irfft(spec, n)
    return noise * np.sqrt(np.mean(like.astype(np.float64) ** 2) / np.mean(noise**2) / 10 ** (snr_db / 10))


#: every step before the change scan made unable to answer: what is found is found by the scan alone
_NOTHING_ELSE = dict(min_score=50.0, beyond_min_score=50.0, change_min=100.0, fallback=False, sure_anchors=1000)


@pytest.fixture(scope="module")
def scan_coll(tmp_path_factory):
    folder = tmp_path_factory.mktemp("change_scan")
    tracks = {name: synth(seed, 20.0) for seed, name in ((11, "a"), (12, "b"), (13, "c"), (14, "absent"))}
    for name in ("a", "b", "c"):
        sf.write(folder / f"{name}.wav", tracks[name], SR)
    coll = Collection.create(folder / "c.mirs", features=["fingerprint"])
    coll.add(folder)
    ids = {r.path.rsplit("/", 1)[-1][:-4]: r.id for r in coll.recordings()}
    yield coll, tracks, ids
    coll.close()


def test_change_scan_finds_a_noisy_clip_that_nothing_else_answers_and_no_foreign_one(scan_coll):
    coll, tracks, ids = scan_coll
    clip = tracks["b"][SR * 9 : SR * 14]
    noisy = (clip + _pink(clip.size, clip, -6.0, seed=1)).astype(np.float32)
    assert identify(coll, noisy, sr=SR, options=IdentifyOptions(**_NOTHING_ELSE, change_scan=0)).matches == []
    assert IdentifyOptions().change_scan == 3  # on by default (session 13: tune pink 5 s +1 of 60, test unchanged)
    found = identify(coll, noisy, sr=SR, options=IdentifyOptions(**_NOTHING_ELSE, change_scan=3)).matches
    assert len(found) == 1 and found[0].recording_id == ids["b"]
    assert found[0].offset == pytest.approx(9.0, abs=0.05) and found[0].speed == 1.0 and found[0].pitch_shift == 0.0
    assert found[0].score >= 3.5 and found[0].change_score > 3.0
    strict = IdentifyOptions(**_NOTHING_ELSE, change_scan=3, change_scan_min=found[0].score + 0.01)
    assert identify(coll, noisy, sr=SR, options=strict).matches == []  # the peaks at its offset decide
    foreign = tracks["absent"][SR * 9 : SR * 14]
    noisy_foreign = (foreign + _pink(foreign.size, foreign, -6.0, seed=1)).astype(np.float32)
    assert identify(coll, noisy_foreign, sr=SR, options=IdentifyOptions(**_NOTHING_ELSE, change_scan=3)).matches == []
    assert identify(coll, noisy_foreign, sr=SR, options=IdentifyOptions(change_scan=3)).matches == []


def test_change_scan_leaves_answered_queries_unchanged(scan_coll):
    coll, tracks, ids = scan_coll
    clip = tracks["c"][SR * 4 : SR * 9]
    off = identify(coll, clip, sr=SR, options=IdentifyOptions(change_scan=0)).matches
    on = identify(coll, clip, sr=SR, options=IdentifyOptions(change_scan=3)).matches
    assert off and off[0].recording_id == ids["c"]
    assert [m.to_dict() for m in on] == [m.to_dict() for m in off]
    with pytest.raises(ParameterError):
        IdentifyOptions(change_scan=-1)
