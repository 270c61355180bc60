"""Stems played with real instrument samples (mirsearch.datasets.sample_stems) and the ONNX -> torch import of a
tagger bundle (mirsearch.training.tagger_import.run_from_bundle)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from mirsearch.datasets.corpus import PartData, ScoreData
from mirsearch.datasets.sample_stems import (
    SALAMANDER,
    SAMPLES,
    Sample,
    SampleInstrument,
    SampleStemJob,
    family_table,
    plan_sample_stems,
    render_sample_stem,
)
from mirsearch.datasets.tag_stems import REAL_PACKAGES
from mirsearch.describe.tag_vocabulary import FAMILIES, FAMILY_PROGRAMS
from mirsearch.errors import InputError, ParameterError

SR = 16000


def _pitch(y: np.ndarray, sr: int = SR) -> float:
    """Median pYIN pitch (MIDI) of the voiced frames of ``y``."""
    import librosa

    f0, voiced, _ = librosa.pyin(y.astype(np.float64), fmin=40, fmax=2000, sr=sr, frame_length=2048)
    ok = voiced & np.isfinite(f0)
    assert ok.mean() > 0.5
    return float(np.median(librosa.hz_to_midi(f0[ok])))


def _tone(path, midi: float, seconds: float = 0.5, sr: int = 44100) -> None:
    """A harmonic tone (5 partials, 1/k amplitudes) at ``midi`` written to ``path``."""
    t = np.arange(int(seconds * sr)) / sr
    f = 440.0 * 2 ** ((midi - 69) / 12)
    y = sum(np.sin(2 * np.pi * k * f * t) / k for k in range(1, 6))
    sf.write(str(path), (0.2 * y).astype(np.float32), sr)


def _score() -> ScoreData:
    melody = tuple((p, float(i), 1.0, False) for i, p in enumerate([60, 64, 67, 72, 67, 64, 62, 60] * 3))
    bass = tuple((p, float(2 * i), 2.0, False) for i, p in enumerate([36, 41, 43, 36] * 3))
    return ScoreData("w", "corpus:x.abc", "", "", "folk", (PartData("m", melody), PartData("b", bass)), 100.0, "4/4",
                     (0.0, 4.0), 24.0)  # fmt: skip


def test_mapping_is_general_midi_and_honest():
    for s in SAMPLES:
        assert s.program in FAMILY_PROGRAMS[s.family], s
        assert 20 < s.root < 110
        assert s.path.endswith((".ogg", ".flac", ".wav"))
    table = family_table()
    assert set(table) == set(FAMILIES) - {"drums"}  # no drums from samples; every other family has a recording
    assert table["brass"] == ["lmms-trumpet"] and table["woodwinds"] == ["lmms-flute"]
    names = {}
    for s in SAMPLES:  # one instrument name is one family and one program
        assert names.setdefault(s.instrument, (s.family, s.program)) == (s.family, s.program)


def test_synthetic_recording_is_transposed_to_the_right_pitch_and_looped(tmp_path):
    _tone(tmp_path / "a3.wav", 57.0)
    inst = SampleInstrument([Sample("a3.wav", "tone", "strings", 40, 57.0, True)], packages=tmp_path, sr=SR)
    y = inst.render([(62, 0.0, 1.5, 80)])
    assert len(y) >= int(1.5 * SR)  # the 0.5 s recording looped to the note's length
    assert _pitch(y[: int(1.4 * SR)]) == pytest.approx(62.0, abs=0.25)
    k, d = inst.placement(57 + 24 + 2)  # two octaves up: moved by octaves into the shift range
    assert k == 0 and d == pytest.approx(2.0)
    # an octave below the recording is outside +-7 semitones: played an octave up (the pitch class stays)
    assert _pitch(inst.render([(45, 0.0, 1.0, 80)])[:SR]) == pytest.approx(57.0, abs=0.25)
    assert _pitch(inst.render([(52, 0.0, 1.0, 80)])[:SR]) == pytest.approx(52.0, abs=0.25)


def test_plucked_recording_rings_out_and_velocity_scales(tmp_path):
    _tone(tmp_path / "c4.wav", 60.0, seconds=0.8)
    inst = SampleInstrument([Sample("c4.wav", "p", "guitar", 25, 60.0, False)], packages=tmp_path, sr=SR)
    y = inst.render([(60, 0.0, 3.0, 80)])
    assert len(y) <= int(0.81 * SR)  # not looped: stops with the recording
    loud, soft = inst.render([(60, 0.0, 0.3, 120)]), inst.render([(60, 0.0, 0.3, 40)])
    assert np.abs(loud).max() > 4 * np.abs(soft).max()


def test_stem_render_is_deterministic_and_labelled(tmp_path):
    _tone(tmp_path / "a3.wav", 57.0)
    inst = SampleInstrument([Sample("a3.wav", "tone", "strings", 40, 57.0, True)], packages=tmp_path, sr=SR)
    score = _score()
    job = SampleStemJob("w-r0", score.to_json(), "strings", "tone", 0, "train", 0)
    y1, rec = render_sample_stem(job, inst)
    y2, _ = render_sample_stem(job, inst)
    assert len(y1) == 5 * SR and np.array_equal(y1, y2)
    assert rec["tags"] == ["strings"] and rec["programs"] == [40] and rec["soundfont"] is None
    y3, _ = render_sample_stem(SampleStemJob("w-r0", score.to_json(), "strings", "tone", 0, "train", 1), inst)
    assert not np.array_equal(y1, y3)  # another seed, another performance and recording chain
    plan = plan_sample_stems([score], [inst], seed=0, per_work=2, splits=("train", "validation", "x"))
    assert [j.family for j in plan] == ["strings"] * 2 or plan == []  # the work's split decides


def test_bad_input_gives_clear_errors(tmp_path):
    with pytest.raises(ParameterError, match="not of family"):
        SampleInstrument([Sample("x.wav", "x", "brass", 0, 60.0, True)], packages=tmp_path)
    with pytest.raises(ParameterError, match="at least one sample"):
        SampleInstrument([], packages=tmp_path)
    with pytest.raises(ParameterError, match="root pitch"):
        SampleInstrument([Sample("x.wav", "x", "brass", 56, 200.0, True)], packages=tmp_path)
    inst = SampleInstrument([Sample("missing.wav", "x", "brass", 56, 60.0, True)], packages=tmp_path)
    with pytest.raises(InputError, match="cannot read"):
        inst.render([(60, 0.0, 1.0, 80)])
    _tone(tmp_path / "a3.wav", 57.0)
    ok = SampleInstrument([Sample("a3.wav", "tone", "strings", 40, 57.0, True)], packages=tmp_path, sr=SR)
    with pytest.raises(ParameterError, match="bad times"):
        ok.render([(60, 1.0, 0.5, 80)])
    with pytest.raises(ParameterError, match="test split"):
        plan_sample_stems([_score()], [ok], seed=0, splits=("test",))
    job = SampleStemJob("w-r0", _score().to_json(), "brass", "tone", 0, "train", 0)
    with pytest.raises(ParameterError, match="the job wants brass"):
        render_sample_stem(job, ok)


@pytest.mark.skipif(not SALAMANDER.is_dir(), reason="Salamander samples not fetched (train_mutopia.py samples)")
def test_salamander_note_pitch():
    piano = SampleInstrument.salamander(SALAMANDER, sr=SR)
    assert piano.family == "piano" and piano.program == 0 and len(piano.samples) >= 20
    assert _pitch(piano.render([(62, 0.0, 1.0, 80)])[:SR]) == pytest.approx(62.0, abs=0.3)


@pytest.mark.skipif(not (REAL_PACKAGES / "lmms-common").is_dir(), reason="lmms-common not extracted")
@pytest.mark.parametrize("name,pitch", [("lmms-trumpet", 65), ("lmms-violin", 70), ("lmms-flute", 79)])
def test_real_recordings_play_the_asked_pitch(name, pitch):
    from mirsearch.datasets.sample_stems import instruments

    inst = {i.name: i for i in instruments(salamander=None, sr=SR)}[name]
    assert _pitch(inst.render([(pitch, 0.0, 1.0, 80)])[:SR]) == pytest.approx(pitch, abs=0.35)


def test_onnx_bundle_imports_into_torch_with_the_same_outputs(tmp_path):
    import onnxruntime as ort
    import torch

    from mirsearch.models.tagger import DEFAULT_BUNDLE_DIR, ONNX_FILE
    from mirsearch.training.tagger import load_checkpoint
    from mirsearch.training.tagger_import import run_from_bundle

    torch.set_num_threads(1)
    run_from_bundle(DEFAULT_BUNDLE_DIR, tmp_path / "run")
    net, (mean, std), _, ck = load_checkpoint(tmp_path / "run")
    assert ck["epoch"] == 0 and mean.shape == (96, 1)
    x = np.random.default_rng(3).standard_normal((2, 1, 96, 192)).astype(np.float32)
    session = ort.InferenceSession(str(DEFAULT_BUNDLE_DIR / ONNX_FILE))
    logits, emb = session.run(None, {session.get_inputs()[0].name: x})
    with torch.no_grad():
        t_logits, t_emb = net(torch.from_numpy(x))
    assert np.abs(t_logits.numpy() - logits).max() < 1e-4
    assert np.abs(t_emb.numpy() - emb).max() < 1e-4
    with pytest.raises(Exception):  # noqa: B017 - not a bundle
        run_from_bundle(tmp_path, tmp_path / "run2")


def test_read_levels_the_loudest_second(tmp_path):
    from mirsearch.datasets.sample_stems import LEVEL, _read

    rng = np.random.default_rng(5)
    y = np.r_[0.01 * rng.standard_normal(2 * SR), 0.3 * rng.standard_normal(SR), 0.05 * rng.standard_normal(SR)]
    sf.write(tmp_path / "s.wav", y.astype(np.float32), SR, subtype="FLOAT")
    got = _read(tmp_path / "s.wav", SR).astype(np.float64)
    rms = np.sqrt([np.mean(got[i : i + SR] ** 2) for i in range(0, len(got) - SR + 1, SR // 100)])
    assert rms.max() == pytest.approx(LEVEL, rel=0.02)  # the loudest one-second window at LEVEL
    np.testing.assert_allclose(got / np.abs(got).max(), y / np.abs(y).max(), atol=1e-5)  # only scaled
