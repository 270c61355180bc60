"""The check of issue 23's "Done when", through the command line, on real music.

1. ``mirsearch index DIR -c local.mirs`` (the local reference, worker processes of this machine);
2. ``mirsearch index DIR -c dask.mirs --dask local:2``, and as soon as the first recording is committed one
   Dask worker process is killed (``SIGKILL``);
3. both catalogues compared: every file indexed exactly once, the same failure lines, the same content hashes
   and durations, every stored feature array equal (bit for bit: chroma, fingerprints, timbre);
4. every search of issue 23 through the command line, the local one on ``local.mirs`` against the one with
   ``--dask local:2`` on ``dask.mirs`` (recordings compared by path: ids follow the order of commits): ``search
   --theme``, ``search --audio``, ``identify``, ``identify --scan``, ``similar --recording`` and ``similar
   --audio``; the same top results (positions, costs to 1e-5), and whether the JSON answers are identical.

By default DIR is a fresh fixture folder under data/cluster_check/: ``--files`` excerpts of ``--seconds`` from
singularity-music (wav) and one broken file. Writes results/cluster_check.json and prints what it found::

    nice -n 10 .venv/bin/python benchmarks/cluster_kill_check.py [--files 6 --seconds 40 | --folder DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_results  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
AUDIO = ROOT / "data" / "real" / "pkgs" / "singularity-music" / "usr" / "share" / "games" / "singularity" / "music"
WORK = ROOT / "data" / "cluster_check"
MIRSEARCH = [str(ROOT / ".venv" / "bin" / "mirsearch")]
KINDS = "chroma,fingerprint,timbre"
THEME = "E G A B A G E D E"
SPEC = "local:2"


def make_fixture(folder: Path, *, files: int, seconds: float) -> None:
    """``files`` excerpts of ``seconds`` (from 20 s on) of singularity-music as wav, and one broken file."""
    import soundfile as sf

    from mirsearch.audio import SR, load_audio

    folder.mkdir(parents=True)
    for path in sorted(AUDIO.glob("*.ogg"))[:files]:
        y, _ = load_audio(path, sr=SR)
        sf.write(folder / f"{path.stem}.wav", y[20 * SR : int((20 + seconds) * SR)], SR)
    (folder / "broken.wav").write_bytes(b"RIFF0000WAVEfmt this is not audio")


def committed(coll: Path) -> int:
    try:
        with sqlite3.connect(f"file:{coll / 'catalog.sqlite'}?mode=ro", uri=True, timeout=1) as db:
            return db.execute("SELECT COUNT(*) FROM recordings").fetchone()[0]
    except sqlite3.Error:
        return 0


def dask_workers(pid: int) -> list:
    import psutil

    kids = psutil.Process(pid).children(recursive=True)
    return [p for p in kids if "spawn_main" in " ".join(p.cmdline())]


def index_with_a_kill(folder: Path, coll: Path) -> dict:
    """Index on ``local:2``; kill one worker once the first recording is committed."""
    cmd = [*MIRSEARCH, "index", str(folder), "-c", str(coll), "--features", KINDS, "--dask", SPEC, "--json"]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed = None
    while proc.poll() is None and killed is None:
        if committed(coll) >= 1:
            workers = dask_workers(proc.pid)
            if workers:
                killed = {"pid": workers[0].pid, "after_recordings": committed(coll), "at_s": time.perf_counter() - t0}
                os.kill(workers[0].pid, signal.SIGKILL)
        time.sleep(0.05)
    out, err = proc.communicate()
    return {"returncode": proc.returncode, "report": json.loads(out), "killed": killed,
            "seconds": round(time.perf_counter() - t0, 1), "stderr_tail": err.strip().splitlines()[-3:]}  # fmt: skip


def catalogue(coll: Path) -> tuple[dict, list, dict]:
    """``{(path, kind): (sha1, duration, array)}``, the failure lines' files and ``{path: id}``."""
    from mirsearch.collection import Collection

    out = {}
    with Collection.open(coll, readonly=True) as c:
        recs = c.recordings()
        assert len(recs) == len({r.path for r in recs}), "a file stored twice"
        for r in recs:
            for kind in KINDS.split(","):
                out[r.path, kind] = (r.sha1, r.duration, c.load_features(r.id, kind)[0])
        failed = sorted(os.path.basename(p) for p, _ in c.catalog.failures())
        return out, failed, {r.path: r.id for r in recs}


def cli(*args: str) -> dict:
    out = subprocess.run([*MIRSEARCH, *args, "--json"], capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"{' '.join(args)}: {out.stderr.strip()[-500:]}")
    return json.loads(out.stdout)


def _rows(answer: dict) -> list[dict]:
    rows = answer.get("matches", answer.get("stretches", []))
    return [{k: v for k, v in m.items() if k not in ("recording_id", "rank")} for m in rows]  # ids: commit order


def compare(ref: dict, got: dict) -> dict:
    """The same recordings (by path) in the same order, numbers within 1e-5; and identical JSON rows."""
    a, b = _rows(ref), _rows(got)
    close = len(a) == len(b) and all(
        x.keys() == y.keys()
        and all(
            abs(x[k] - y[k]) <= 1e-5 if isinstance(x[k], float) and isinstance(y[k], float) else x[k] == y[k] for k in x
        )
        for x, y in zip(a, b, strict=True)
    )
    return {"n": len(a), "same_top": close, "identical_json": a == b}


def searches(local: Path, dask: Path, excerpt: Path, tape: Path, ids: tuple[dict, dict], probe: str) -> dict:
    found = {}
    for name, args in (
        ("theme", ["search", "--theme", THEME, "--top", "10"]),
        ("audio", ["search", "--audio", str(excerpt), "--top", "10"]),
        ("identify", ["identify", "--audio", str(excerpt)]),
        ("identify-scan", ["identify", "--audio", str(tape), "--scan"]),
        ("similar", ["similar", "--recording", "{id}", "--top", "10"]),
        ("similar-audio", ["similar", "--audio", str(excerpt), "--top", "10"]),
    ):
        ref_args = [a.replace("{id}", str(ids[0][probe])) for a in args]
        got_args = [a.replace("{id}", str(ids[1][probe])) for a in args]
        t0 = time.perf_counter()
        ref = cli(*ref_args, "-c", str(local))
        t1 = time.perf_counter()
        got = cli(*got_args, "-c", str(dask), "--dask", SPEC)
        t2 = time.perf_counter()
        found[name] = {**compare(ref, got), "local_s": round(t1 - t0, 1), "dask_s": round(t2 - t1, 1)}
        print(name, found[name], flush=True)
    return found


def queries(folder: Path, files: list[str]) -> tuple[Path, Path]:
    """An excerpt (15 s from 10 s on of the first file) and a "tape" (the second file's first 30 s, then the
    third's), written under WORK."""
    import soundfile as sf

    from mirsearch.audio import SR, load_audio

    y = [load_audio(f, sr=SR)[0] for f in files[:3]]
    excerpt, tape = WORK / "excerpt.wav", WORK / "tape.wav"
    sf.write(excerpt, y[0][10 * SR : 25 * SR], SR)
    sf.write(tape, np.concatenate([y[1][: 30 * SR], y[2][: 30 * SR]]), SR)
    return excerpt, tape


def _count(added) -> int:
    return added if isinstance(added, int) else len(added)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--folder", type=Path, help="audio folder to index (default: a fresh fixture)")
    parser.add_argument("--files", type=int, default=6, help="fixture: excerpts of singularity-music")
    parser.add_argument("--seconds", type=float, default=40.0, help="fixture: length of each excerpt")
    args = parser.parse_args()
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    folder = args.folder
    if folder is None:
        folder = WORK / "fixture"
        make_fixture(folder, files=args.files, seconds=args.seconds)
    local, dask = WORK / "local.mirs", WORK / "dask.mirs"
    t0 = time.perf_counter()
    cmd = [*MIRSEARCH, "index", str(folder), "-c", str(local), "--features", KINDS, "--no-progress"]
    local_rc = subprocess.run(cmd, capture_output=True).returncode  # 3: some files failed (the broken one)
    local_s = time.perf_counter() - t0
    run = index_with_a_kill(folder, dask)
    (ref, ref_failed, ref_ids), (got, got_failed, got_ids) = catalogue(local), catalogue(dask)
    equal = ref.keys() == got.keys() and all(
        ref[k][:2] == got[k][:2] and np.array_equal(ref[k][2], got[k][2]) for k in ref
    )
    files = sorted(ref_ids)
    excerpt, tape = queries(folder, files)
    result = {
        "folder": str(folder), "files": len(files), "local_index_s": round(local_s, 1), "local_returncode": local_rc,
        "dask_index": {k: v for k, v in run.items() if k != "report"},
        "dask_report": {k: run["report"].get(k) for k in ("added", "failed", "seconds", "audio_seconds")},
        "failures": {"local": ref_failed, "dask": got_failed},
        "each_file_once_and_features_equal": equal and len(got_ids) == len(ref_ids) == _count(run["report"]["added"]),
        "searches": searches(local, dask, excerpt, tape, (ref_ids, got_ids), files[1]),
        "load_avg_1min": round(os.getloadavg()[0], 2),
    }  # fmt: skip
    write_results("cluster_check", result)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
