"""The check of issue 23's "Done when", through the command line, on real music (singularity-music).

1. ``mirsearch index DIR -c local.mirs`` (the local reference, worker processes of this machine);
2. ``mirsearch index DIR -c dask.mirs --dask local:2``, and as soon as the first recording is committed one
   Dask worker process is killed (``SIGKILL``);
3. both catalogues compared: every file indexed exactly once, the same content hashes and durations, every
   stored feature array equal (bit for bit);
4. ``mirsearch search`` with a theme and with an audio excerpt, ``--dask local:2`` against the local search, on
   the collection indexed on the cluster: the same top results (ids, positions, costs).

Writes results/cluster_check.json and prints what it found. Usage::

    nice -n 10 .venv/bin/python benchmarks/cluster_kill_check.py [DIR]
"""

from __future__ import annotations

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
KINDS = "chroma,fingerprint"
THEME = "E G A B A G E D E"


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
    cmd = [*MIRSEARCH, "index", str(folder), "-c", str(coll), "--features", KINDS, "--dask", "local:2", "--json"]
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


def features_of(coll: Path) -> dict:
    from mirsearch.collection import Collection

    out = {}
    with Collection.open(coll, readonly=True) as c:
        recs = c.recordings()
        assert len(recs) == len({r.path for r in recs}), "a file stored twice"
        for r in recs:
            for kind in KINDS.split(","):
                out[r.path, kind] = (r.sha1, r.duration, c.load_features(r.id, kind)[0])
    return out


def search(coll: Path, *args: str) -> list[dict]:
    out = subprocess.run([*MIRSEARCH, "search", "-c", str(coll), *args, "--json"], capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(out.stderr)
    return json.loads(out.stdout)["matches"]


def same_ranking(a: list[dict], b: list[dict]) -> bool:
    key = [(m["recording_id"], m["start"], m["end"], m["transposition"]) for m in a]
    return key == [(m["recording_id"], m["start"], m["end"], m["transposition"]) for m in b] and all(
        abs(x["cost"] - y["cost"]) <= 1e-5 for x, y in zip(a, b, strict=True)
    )


def main() -> None:
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else AUDIO
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    local, dask = WORK / "local.mirs", WORK / "dask.mirs"
    t0 = time.perf_counter()
    subprocess.run([*MIRSEARCH, "index", str(folder), "-c", str(local), "--features", KINDS, "--no-progress"],
                   check=True, capture_output=True)  # fmt: skip
    local_s = time.perf_counter() - t0
    run = index_with_a_kill(folder, dask)
    ref, got = features_of(local), features_of(dask)
    equal = ref.keys() == got.keys() and all(
        ref[k][:2] == got[k][:2] and np.array_equal(ref[k][2], got[k][2]) for k in ref
    )
    excerpt = WORK / "excerpt.wav"
    from mirsearch.audio import SR, load_audio

    first = sorted({p for p, _ in ref})[0]
    y, _ = load_audio(first, sr=SR)
    import soundfile as sf

    sf.write(excerpt, y[30 * SR : 45 * SR], SR)
    searches = {}
    for name, args in (
        ("theme", ["--theme", THEME, "--top", "10"]),
        ("audio", ["--audio", str(excerpt), "--top", "10"]),
    ):
        a, b = search(dask, *args), search(dask, *args, "--dask", "local:2")
        searches[name] = {"same_top10": same_ranking(a, b), "n": len(a)}
    result = {
        "folder": str(folder), "files": len({p for p, _ in ref}), "local_index_s": round(local_s, 1),
        "dask_index": {k: v for k, v in run.items() if k != "report"},
        "dask_report": {k: run["report"].get(k) for k in ("added", "failed", "seconds", "audio_seconds")},
        "each_file_once_and_features_equal": equal, "searches": searches,
        "load_avg_1min": round(os.getloadavg()[0], 2),
    }  # fmt: skip
    write_results("cluster_check", result)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
