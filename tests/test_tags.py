"""Auto-tagging: vocabulary, honest labels of the tags dataset, pooling, the packaged model, taught tags, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from mirsearch.datasets.corpus import PartData, ScoreData
from mirsearch.datasets.tags import (
    TEST_FONTS,
    ClipJob,
    clip_labels,
    era_of,
    family_shares,
    metre_of,
    render_clip,
    tempo_class,
    with_accompaniment,
)
from mirsearch.describe.tag_vocabulary import FAMILIES, GROUPS, TAG_NAMES, VOCABULARY, family_of_program
from mirsearch.describe.tagger import TaughtTag, teach
from mirsearch.models.tagger import TaggerModel, pool


def test_vocabulary_has_the_ten_families_and_30_tags():
    assert FAMILIES == ("piano", "organ", "guitar", "bass", "strings", "brass", "woodwinds", "voice", "drums", "synth")
    assert set(FAMILIES) <= set(TAG_NAMES)
    assert len(TAG_NAMES) >= 30 and len(set(TAG_NAMES)) == len(TAG_NAMES)
    assert {"instrument", "ensemble", "mode", "metre", "tempo", "era"} <= set(GROUPS)
    assert all(t.description and t.group for t in VOCABULARY)


@pytest.mark.parametrize(
    ("program", "family"),
    [(0, "piano"), (7, "piano"), (16, "organ"), (24, "guitar"), (33, "bass"), (40, "strings"), (51, "strings"),
     (52, "voice"), (54, "voice"), (55, None), (56, "brass"), (64, "woodwinds"), (79, "woodwinds"), (80, "synth"),
     (95, "synth"), (96, None), (8, None)],
)  # fmt: skip
def test_general_midi_families(program, family):
    assert family_of_program(program) == family


def test_score_labels():
    assert [metre_of(t) for t in ("4/4", "2/2", "3/4", "6/8", "12/8", "5/4", "")] == [
        "duple", "duple", "triple", "compound", "compound", None, None]  # fmt: skip
    assert [tempo_class(b) for b in (60, 80, 120, 121)] == ["slow", "moderate", "moderate", "fast"]
    assert era_of("corpus:bach/bwv66.6.mxl") == "baroque"
    assert era_of("corpus:palestrina/Agnus_01.krn") == "renaissance"
    assert era_of("corpus:essenFolksong/han1.abc#3") == "folk"
    assert era_of("/home/x/song.mid") is None


def test_clip_labels_follow_the_programs_rendered():
    tags = clip_labels({0, 40, 41}, drums=True, strategy="mixed", base_tags=["major", "duple"], bpm=130)
    assert tags == ["piano", "strings", "drums", "chamber", "major", "duple", "fast"]
    assert "solo" in clip_labels({19}, drums=False, strategy="single", base_tags=[], bpm=90)
    assert "choir" in clip_labels({52, 53}, drums=False, strategy="choir", base_tags=[], bpm=90)
    assert "orchestra" in clip_labels({0, 19, 24, 40, 56, 65}, drums=False, strategy="orchestra", base_tags=[], bpm=90)


def test_family_shares_name_the_labelled_families_and_add_up(tmp_path):
    from pathlib import Path

    from mirsearch.datasets.render import fluidsynth_available

    if not fluidsynth_available() or not Path(TEST_FONTS[0]).is_file():
        pytest.skip("fluidsynth or TimGM6mb not installed")
    melody = tuple((p, float(i), 1.0, False) for i, p in enumerate([60, 64, 67, 72, 67, 64, 62, 60] * 3))
    bass = tuple((p, float(2 * i), 2.0, False) for i, p in enumerate([36, 41, 43, 36] * 3))
    score = ScoreData("w", "corpus:x.abc", "", "", "folk", (PartData("m", melody), PartData("b", bass)), 100.0, "4/4",
                      (0.0, 4.0), 24.0)  # fmt: skip
    for k in range(3):
        job = ClipJob(f"w-c{k}", score.to_json(), "german", k, "test", TEST_FONTS[0], str(tmp_path), 0)
        shares = family_shares(job)
        labelled = set(render_clip(job)["tags"]) & set(FAMILIES)
        assert {f for f, s in shares.items() if s > -100} == labelled
        assert sum(10 ** (s / 10) for s in shares.values()) == pytest.approx(1.0)
        assert family_shares(job) == shares  # deterministic


def test_accompaniment_is_on_the_tonic_chord_of_a_c_major_tune():
    notes = tuple((p, float(i), 1.0, False) for i, p in enumerate([60, 64, 67, 72, 67, 64, 62, 60]))
    score = ScoreData("w", "corpus:x.abc", "", "", "folk", (PartData("m", notes),), 100.0, "4/4", (0.0, 4.0), 8.0)
    out = with_accompaniment(score)
    assert len(out.parts) == 3
    bass = out.parts[2].notes
    assert bass[0][0] % 12 == 0 and all(36 <= n[0] < 48 for n in bass)  # C in the first bar
    assert {n[0] % 12 for n in out.parts[1].notes if n[1] == 0.0} == {0, 4, 7}


def test_autopool_between_mean_and_max():
    rng = np.random.default_rng(0)
    P = rng.random((3, 20)).astype(np.float32)
    np.testing.assert_allclose(pool(P, method="autopool", alpha=np.zeros(3)), P.mean(axis=1), rtol=1e-6)
    np.testing.assert_allclose(pool(P, method="autopool", alpha=np.full(3, 500.0)), P.max(axis=1), atol=1e-3)
    mid = pool(P, method="autopool", alpha=np.full(3, 3.0))
    assert np.all(mid > P.mean(axis=1)) and np.all(mid < P.max(axis=1))


def _tone(seconds: float, sr: int = 16000, f0: float = 220.0) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.2 * np.sin(2 * np.pi * f0 * t) * (1 + 0.3 * np.sin(2 * np.pi * 2 * t))).astype(np.float32)


def test_packaged_model_shapes_and_block_invariance(monkeypatch):
    from mirsearch.describe.tagger import analyse
    from mirsearch.features.logmel import LogMelConfig, log_mel
    from mirsearch.models import tagger as tagger_model

    model = TaggerModel.load()
    a = analyse(_tone(9.0), 16000)
    K, D = len(model.tag_names), model.config["embedding_dim"]
    assert a.tags.shape == (K,) and a.patch_probs.shape[1] == K and a.embeddings.shape[1] == D
    assert a.times.shape == (len(a.patch_probs), 2) and a.times[0, 0] == 0.0
    assert np.all((a.tags >= 0) & (a.tags <= 1)) and abs(np.linalg.norm(a.embedding) - 1) < 1e-4
    L, _ = log_mel(_tone(20.0), sr=16000, config=LogMelConfig(**model.frontend))
    P1, E1 = model.frames(L)
    monkeypatch.setattr(tagger_model, "BLOCK_FRAMES", 160)  # blocks of 3.2 s with context: the same outputs
    P2, E2 = model.frames(L)
    np.testing.assert_allclose(P1, P2, atol=1e-4)
    np.testing.assert_allclose(E1, E2, atol=1e-3)


def test_tags_do_not_depend_on_the_level_of_a_recording():
    from mirsearch.audio import active_rms
    from mirsearch.describe.tagger import analyse
    from mirsearch.features.tag_features import LEVEL_DBFS, levelled

    y = np.concatenate([_tone(4.0), np.zeros(16000, np.float32), _tone(4.0, f0=330.0)])
    # the level of the music, not of its silence: a second of silence does not lower it
    assert active_rms(y, sr=16000) == pytest.approx(active_rms(_tone(4.0), sr=16000), rel=0.05)
    assert 20 * np.log10(active_rms(levelled(y, sr=16000), sr=16000)) == pytest.approx(LEVEL_DBFS, abs=1e-3)
    assert not np.any(levelled(np.zeros(1600, np.float32), sr=16000))  # silence stays silent
    a, quiet, loud = (analyse(g * y, 16000, fuse=False) for g in (1.0, 10 ** (-30 / 20), 3.0))
    for b in (quiet, loud):
        np.testing.assert_allclose(b.tags, a.tags, atol=2e-3)
        np.testing.assert_allclose(b.embeddings, a.embeddings, atol=2e-3)


def test_taught_tag_prefers_its_examples():
    rng = np.random.default_rng(1)
    centre = rng.normal(size=16)
    ex = centre + 0.3 * rng.normal(size=(5, 16))
    bg = rng.normal(size=(40, 16))
    norm = lambda X: X / np.linalg.norm(X, axis=1, keepdims=True)  # noqa: E731
    tag = teach("t", norm(ex), norm(bg))
    p_new = tag.probability(norm(centre + 0.3 * rng.normal(size=(5, 16))))
    p_bg = tag.probability(norm(bg))
    assert p_new.min() > np.median(p_bg) and p_new.mean() > 0.5 > p_bg.mean()
    again = TaughtTag.from_json(json.loads(json.dumps(tag.to_json())))
    np.testing.assert_allclose(again.probability(norm(bg)), p_bg, atol=1e-5)


def test_cli_tag_list_file_index_teach_and_search(tmp_path, capsys):
    from mirsearch.cli.main import main

    assert main(["tag", "--list", "--json"]) == 0
    vocab = json.loads(capsys.readouterr().out)["tags"]
    assert [t["name"] for t in vocab[:10]] == list(FAMILIES) and set(vocab[0]) == {"name", "group", "description"}
    audio = tmp_path / "audio"
    audio.mkdir()
    for i, f0 in enumerate((110, 220, 330, 440, 660)):
        sf.write(audio / f"t{i}.wav", _tone(4.0, f0=f0), 16000)
    assert main(["tag", str(audio / "t0.wav"), "--json", "--over-time"]) == 0
    one = json.loads(capsys.readouterr().out)
    assert one["path"].endswith("t0.wav") and set(FAMILIES) <= set(one["tags"]) and one["segments"]
    coll = str(tmp_path / "c.mirs")
    assert main(["index", str(audio), "-c", coll, "--features", "tags", "--jobs", "1"]) == 0
    capsys.readouterr()
    assert main(["tags", "teach", "low", "-c", coll, "--examples", str(audio / "t0.wav"), str(audio / "t1.wav")]) == 0
    assert main(["search", "-c", coll, "--tag", "low", "--top", "3", "--json"]) == 0
    capsys.readouterr()
    assert main(["search", "-c", coll, "--tag", "piano", "--top", "3", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["matches"]) == 3 and set(out["matches"][0]) == {"recording", "recording_id", "score"}
    assert main(["tag", "-c", coll, str(audio / "t2.wav"), "--json"]) == 0
    assert "low" in json.loads(capsys.readouterr().out)["tags"]
    assert main(["search", "-c", coll, "--tag", "nosuchtag"]) == 1
    _check_server(coll)


def _check_server(coll: str) -> None:
    from fastapi.testclient import TestClient

    from mirsearch.server import create_app

    with TestClient(create_app(coll), base_url="http://localhost") as c:
        names = [t["name"] for t in c.get("/api/tags").json()["tags"]]
        assert names[:10] == list(FAMILIES) and "low" in names
        r = c.get("/api/tags/low/recordings", params={"top": 2}).json()
        assert len(r["matches"]) == 2 and {"recording", "recording_id", "score"} <= set(r["matches"][0])
        rid = r["matches"][0]["recording_id"]
        tags = c.get(f"/api/recordings/{rid}/tags").json()["tags"]
        assert set(FAMILIES) <= set(tags) and "low" in tags
        assert c.get("/api/tags/nosuchtag/recordings").status_code in (400, 422)


def test_tag_metrics_equal_sklearn():
    from sklearn.metrics import average_precision_score, roc_auc_score

    from mirsearch.evaluation.tagging import macro_over, tag_metrics

    rng = np.random.default_rng(3)
    Y = (rng.random((60, 3)) < [0.2, 0.5, 0.0]).astype(int)
    S = Y * 0.3 + rng.random((60, 3))
    m = tag_metrics(Y, S, ["a", "b", "never"])
    for k, name in enumerate("ab"):
        assert m["tags"][name]["roc_auc"] == pytest.approx(roc_auc_score(Y[:, k], S[:, k]))
        assert m["tags"][name]["pr_auc"] == pytest.approx(average_precision_score(Y[:, k], S[:, k]))
    assert m["tags"]["never"]["roc_auc"] is None and m["n_tags_scored"] == 2
    assert macro_over(m, ["a", "b", "never"]) == pytest.approx(m["macro_roc_auc"])
