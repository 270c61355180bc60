"""Rendering jobs of the dataset build: one job per version (performance -> MIDI -> audio -> record).

A job is a plain dict (it crosses process boundaries): ``root``, ``version_id``, ``split``, ``score``,
``params`` (performance parameters), ``occurrences`` (theme occurrences in score time), ``sample_rate``,
``audio_stem`` and ``plan`` (a hash of all of these). A finished job leaves ``records/<version>.json``
with its plan hash; a rebuild reuses records whose plan is unchanged.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from mirsearch._util import atomic_path
from mirsearch.datasets.corpus import ScoreData
from mirsearch.datasets.manifest import FORMAT_VERSION, write_json_atomic
from mirsearch.datasets.performance import PerformanceParams

logger = logging.getLogger(__name__)


def plan_hash(job: dict) -> str:
    text = json.dumps(
        {k: job[k] for k in ("version_id", "params", "occurrences", "sample_rate", "audio_stem")},
        sort_keys=True,
    )
    text += json.dumps(job["score"].to_json(), sort_keys=True)
    return hashlib.sha1(f"{FORMAT_VERSION}|{text}".encode()).hexdigest()


def render_job(job: dict) -> dict:
    """Render one version (runs in a worker process); returns its record or ``{"error": ...}``."""
    from mirsearch.datasets.performance import perform, write_midi
    from mirsearch.datasets.render import ENCODINGS, apply_recording, encode, render_midi

    root = Path(job["root"])
    vid = job["version_id"]
    try:
        score: ScoreData = job["score"]
        params = PerformanceParams.from_json(job["params"])
        sr = int(job["sample_rate"])
        perf = perform(score, params)
        midi = root / "midi" / f"{vid}.mid"
        with atomic_path(midi) as tmp_mid:
            write_midi(perf, tmp_mid)
            y = render_midi(tmp_mid, soundfont=params.soundfont, sr=sr)
        y = apply_recording(y, sr=sr, recording=params.recording, seed=params.seed)
        stem = root / job["audio_stem"]
        audio = encode(y, stem, sr=sr, encoding=params.recording.encoding, quality=params.recording.quality)
        for ext, _, _ in ENCODINGS.values():  # an earlier plan may have used another encoding
            other = stem.with_name(stem.name + ext)
            if other != audio and other.exists():
                other.unlink()
        occurrences = []
        for occ in job["occurrences"]:
            onsets = [round(perf.onset_of(params.top_part, q), 4) for q in occ["onsets_q"]]
            end = max(float(perf.tempo_map(occ["end_q"])), onsets[-1] + 0.05)
            occurrences.append(
                {
                    "theme": occ["theme"],
                    "start": onsets[0],
                    "end": round(end, 4),
                    "onsets": onsets,
                    "transposition": int(occ["shift"] + params.transpose),
                    "score_start": occ["onsets_q"][0],
                    "score_end": occ["end_q"],
                }
            )
        occurrences.sort(key=lambda o: (o["start"], o["theme"]))
        record = {
            "id": vid,
            "work": score.work_id,
            "split": job["split"],
            "audio": audio.relative_to(root).as_posix(),
            "midi": midi.relative_to(root).as_posix(),
            "duration": round(len(y) / sr, 4),
            "sample_rate": sr,
            "encoding": params.recording.encoding,
            "soundfont": Path(params.soundfont).name,
            "ensemble": params.ensemble,
            "programs": list(params.programs),
            "transposition": params.transpose,
            "tuning_cents": params.tuning_cents,
            "tempo_factor": params.tempo_factor,
            "tempo_map": perf.tempo_map.to_json(),
            "params": {**params.to_json(), "soundfont": Path(params.soundfont).name},
            "occurrences": occurrences,
        }
        write_json_atomic(root / "records" / f"{vid}.json", {"plan": job["plan"], "version": record})
        return record
    except Exception as exc:  # noqa: BLE001 - a failed version is reported, the build goes on
        logger.debug("rendering %s failed", vid, exc_info=True)
        return {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}", "id": vid}


def load_record(root: Path, job: dict) -> dict | None:
    """The record of a finished version whose plan equals ``job["plan"]`` and whose audio exists, or None."""
    path = root / "records" / f"{job['version_id']}.json"
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    rec = data.get("version", {})
    if data.get("plan") != job["plan"] or not (root / rec.get("audio", "\0")).is_file():
        return None
    return rec
