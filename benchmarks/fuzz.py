"""The hardening campaign: hundreds of malformed inputs against every command, and kill -9 of ``index``.

Counts crashes (a traceback, or a process that dies), hangs (no answer within ``--timeout`` s), unclear
refusals (an error that is not one line naming the input), lost good files (a good file a batch did not keep)
and poisoned collections (a collection that can no longer be searched after a batch), and the kill -9 results
(corrupt catalogues, duplicates, orphaned processes). Writes ``benchmarks/results/fuzz.json``.

    nice -n 10 .venv/bin/python benchmarks/fuzz.py --mutations 40 --kills 20

Commands run in a driver process that executes many cases in-process (one import for all), each under an
alarm; a driver that dies or stops answering is counted against its current case and restarted.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))


# -- driver: runs commands in-process, one JSON line per job ------------------------------------------------


def _driver(timeout: float) -> None:
    from mirsearch.cli.main import main

    out = sys.stdout
    for line in sys.stdin:
        job = json.loads(line)
        args = [os.fsdecode(a.encode("utf-8", "surrogateescape")) for a in job["args"]]
        stdout = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")  # strict, as a real pipe
        stderr = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="backslashreplace")
        sys.stdout, sys.stderr = stdout, stderr
        signal.signal(signal.SIGALRM, lambda *_: (_ for _ in ()).throw(TimeoutError("alarm")))
        signal.alarm(int(timeout))
        crash = None
        try:
            code = main(args)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 2
        except BaseException as exc:  # noqa: BLE001 - what the campaign counts
            code, crash = -1, f"{type(exc).__name__}: {str(exc)[:300]}"
        finally:
            signal.alarm(0)
            sys.stdout, sys.stderr = out, sys.__stderr__
        for s in (stdout, stderr):
            try:
                s.flush()
            except Exception as exc:  # noqa: BLE001
                crash = crash or f"output: {type(exc).__name__}: {exc}"
        err = stderr.buffer.getvalue().decode("utf-8", "replace")
        result = {"id": job["id"], "code": code, "crash": crash, "stderr": err[-2000:]}
        out.write(json.dumps(result) + "\n")
        out.flush()


class Driver:
    """A driver subprocess; :meth:`run` returns the result of one job, or a crash/hang record."""

    def __init__(self, timeout: float):
        self.timeout = timeout
        self.proc = None

    def _start(self) -> None:
        cmd = [sys.executable, __file__, "--driver", "--timeout", str(self.timeout)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     start_new_session=True)  # fmt: skip

    def _kill(self) -> None:
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
            self.proc = None

    def run(self, job_id: int, args: list[str]) -> dict:
        if self.proc is None:
            self._start()
        line = json.dumps({"id": job_id, "args": [os.fsencode(a).decode("utf-8", "surrogateescape") for a in args]})
        t0 = time.time()
        try:
            self.proc.stdin.write((line + "\n").encode())
            self.proc.stdin.flush()
        except BrokenPipeError:
            self._kill()
            return {"id": job_id, "code": -1, "crash": "driver died", "stderr": "", "seconds": 0.0}
        ready, _, _ = select.select([self.proc.stdout], [], [], self.timeout + 60)  # imports on first use
        if not ready:
            self._kill()
            return {"id": job_id, "code": -1, "hang": True, "stderr": "", "seconds": time.time() - t0}
        raw = self.proc.stdout.readline()
        if not raw:
            code = self.proc.poll()
            self._kill()
            return {"id": job_id, "code": -1, "crash": f"process died ({code})", "stderr": "", "seconds": 0.0}
        result = json.loads(raw)
        result["seconds"] = round(time.time() - t0, 3)
        if result.get("crash") == "TimeoutError: alarm":
            result["hang"], result["crash"] = True, None
        return result

    def close(self) -> None:
        self._kill()


# -- the campaign --------------------------------------------------------------------------------------------


def classify(result: dict, label: str) -> str:
    """ok, refused (one-line error naming the input), unclear, crash or hang."""
    if result.get("hang"):
        return "hang"
    err = result.get("stderr", "")
    if result.get("crash") or "Traceback" in err:
        return "crash"
    if result["code"] == 0:
        return "ok"
    lines = [x for x in err.splitlines() if x.startswith(("mirsearch", "usage:"))]
    errors = [x for x in err.splitlines() if x.startswith("mirsearch")]
    if result["code"] == 2 and lines:
        return "refused"
    if len(errors) == 1 and (not label or label in errors[0]):
        return "refused"
    return "unclear"


def _label(case) -> str:
    if case.path is None:
        return ""
    name = os.fsencode(Path(case.path).name).decode("utf-8", "backslashreplace")
    return name.split("\\x")[0][:40]


def _scales(folder: Path) -> list[Path]:
    import numpy as np
    import soundfile as sf

    sr = 22050
    t = np.arange(sr // 2) / sr
    out = []
    folder.mkdir(parents=True, exist_ok=True)
    for i, root in enumerate((60, 65, 67)):
        y = np.concatenate(
            [np.sin(2 * np.pi * 440 * 2 ** ((root + d - 69) / 12) * t) for d in (0, 2, 4, 5, 7, 9, 11, 12) * 3]
        )
        path = folder / f"scale{i}.wav"
        sf.write(path, (0.3 * y).astype(np.float32), sr)
        out.append(path)
    return out


def _commands(case, coll: Path, good: Path) -> list[list[str]]:
    if case.kind == "notes":
        return [["search", "-c", str(coll), "--theme", case.text, "--json", "--all"]]
    if case.kind == "score":
        return [["search", "-c", str(coll), "--theme-file", case.path, "--json", "--all"],
                ["align", case.path, str(good), "--json"]]  # fmt: skip
    return [["search", "-c", str(coll), "--audio", case.path, "--json"],
            ["versions", "-c", str(coll), "--audio", case.path, "--json"],
            ["align", str(good), case.path, "--json"]]  # fmt: skip


def _option_cases(coll: Path, good: Path, work: Path) -> list[tuple[str, list[str]]]:
    """Bad options and damaged collections (each must be a one-line refusal)."""
    import shutil

    corrupt = work / "corrupt.mirs"
    shutil.copytree(coll, corrupt, dirs_exist_ok=True)
    (corrupt / "catalog.sqlite").write_bytes(b"garbage" * 1000)
    badnpy = work / "badnpy.mirs"
    shutil.copytree(coll, badnpy, dirs_exist_ok=True)
    for p in sorted((badnpy / "features").rglob("*.npy"))[:1]:
        p.write_bytes(b"\x93NUMPY\x01\x00garbage")
    theme = ["--theme", "C D E F G"]
    return [
        ("tempo-factors abc", ["search", "-c", str(coll), *theme, "--tempo-factors", "abc"]),
        ("top -1", ["search", "-c", str(coll), *theme, "--top", "-1"]),
        ("plot unwritable", ["search", "-c", str(coll), "--audio", str(good), "--plot", "/proc/nope/x.png"]),
        ("align out unwritable", ["align", str(good), str(good), "--out", "/proc/nope/map.json"]),
        ("align plot unwritable", ["align", str(good), str(good), "--plot", "/proc/nope/x.png"]),
        ("collection is a file", ["search", "-c", "/etc/hostname", *theme]),
        ("corrupt catalogue", ["search", "-c", str(corrupt), *theme]),
        ("corrupt catalogue info", ["info", "-c", str(corrupt)]),
        ("corrupt npy", ["search", "-c", str(badnpy), *theme, "--json"]),
        ("index into a file", ["index", str(good), "-c", "/etc/hostname"]),
        ("relocate nowhere", ["relocate", "/nonexistent", "/nonexistent2", "-c", str(coll)]),
    ]


def run_inputs(args, work: Path) -> dict:
    from fuzz_corpus import make_corpus
    from mirsearch.collection import Collection

    cases = make_corpus(work / "corpus", seed=args.seed, n_mutations=args.mutations, heavy=args.heavy)
    good = _scales(work / "good")
    coll = work / "fuzz.mirs"
    # one batch: every audio input together with the good files
    batch = [c.path for c in cases if c.kind == "audio"] + [str(p) for p in good]
    t0 = time.time()
    proc = subprocess.run([sys.executable, "-m", "mirsearch.cli.main", "index", *batch, "-c", str(coll), "-j", "2",
                           "--json"], capture_output=True, timeout=3600)  # fmt: skip
    index = {"seconds": round(time.time() - t0, 1), "exit_code": proc.returncode,
             "traceback": b"Traceback" in proc.stderr}  # fmt: skip
    expected = {str(Path(c.path).resolve()) for c in cases if c.kind == "audio" and c.good and Path(c.path).exists()}
    expected |= {str(p.resolve()) for p in good}
    with Collection.open(coll, readonly=True) as c:
        kept = {r.path for r in c.recordings()}
        import numpy as np

        index["poisoned"] = not bool(np.all(np.isfinite(c.database()[0])))
    index["lost_good_files"] = sorted(os.fsencode(p).decode("utf-8", "backslashreplace") for p in expected - kept)
    driver = Driver(args.timeout)
    runs, job = [], 0
    try:
        for case in cases:
            for cmd in _commands(case, coll, good[0]):
                result = driver.run(job, cmd)
                job += 1
                kind = classify(result, _label(case))
                runs.append({"case": case.name if case.path is None else _label(case) or case.name, "kind": case.kind,
                             "good": case.good, "command": cmd[0] + (" " + cmd[3] if cmd[0] == "search" else ""),
                             "result": kind, "seconds": result.get("seconds"),
                             "message": (result.get("crash") or result.get("stderr", "")).strip()[-300:]})  # fmt: skip
        for name, cmd in _option_cases(coll, good[0], work):
            result = driver.run(job, cmd)
            job += 1
            runs.append({"case": name, "kind": "option", "good": False, "command": cmd[0],
                         "result": classify(result, ""), "seconds": result.get("seconds"),
                         "message": (result.get("crash") or result.get("stderr", "")).strip()[-300:]})  # fmt: skip
    finally:
        driver.close()
    # after every query: the collection still answers
    proc = subprocess.run([sys.executable, "-m", "mirsearch.cli.main", "search", "-c", str(coll), "--theme",
                           "C D E F G", "--json"], capture_output=True, timeout=600)  # fmt: skip
    index["search_after"] = proc.returncode
    counts: dict[str, int] = {}
    for r in runs:
        counts[r["result"]] = counts.get(r["result"], 0) + 1
    return {"inputs": len(cases), "good_inputs": sum(c.good for c in cases), "runs": len(runs), "counts": counts,
            "batch_index": index, "problems": [r for r in runs if r["result"] in ("crash", "hang", "unclear")],
            "max_seconds": max(r["seconds"] or 0 for r in runs), "all_runs": runs}  # fmt: skip


# -- kill -9 ---------------------------------------------------------------------------------------------------


def _descendants(pid: int) -> list[int]:
    parent = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parent[int(stat.parent.name)] = int(fields[1])
    out, frontier = [], [pid]
    while frontier:
        p = frontier.pop()
        kids = [k for k, v in parent.items() if v == p]
        out.extend(kids)
        frontier.extend(kids)
    return out


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _count(coll: Path) -> int:
    """Recordings committed so far (0 when there is no catalogue yet)."""
    import sqlite3

    try:
        with sqlite3.connect(f"file:{coll / 'catalog.sqlite'}?mode=ro", uri=True, timeout=5) as db:
            return int(db.execute("SELECT COUNT(*) FROM recordings").fetchone()[0])
    except sqlite3.Error:
        return 0


def run_kills(args, work: Path) -> dict:
    import numpy as np
    import soundfile as sf

    from mirsearch.collection import Collection

    rng = np.random.default_rng(args.seed)
    folder = work / "kill_audio"
    folder.mkdir(parents=True, exist_ok=True)
    sr = 22050
    t = np.arange(sr * 20) / sr
    for i in range(40):
        root = 48 + rng.integers(0, 24)
        y = sum(np.sin(2 * np.pi * 440 * 2 ** ((root + d - 69) / 12) * t) for d in (0, 4, 7)) * 0.2 * np.exp(-t * 0.05)
        sf.write(folder / f"rec{i:03d}.flac", y.astype(np.float32), sr)
    coll = work / "kill.mirs"
    cmd = [sys.executable, "-m", "mirsearch.cli.main", "index", str(folder), "-c", str(coll), "-j", "2"]
    rows = []
    for k in range(args.kills):
        if _count(coll) == 40:  # all indexed: remove half again, so that every kill hits a run with work to do
            with Collection.open(coll) as c:
                c.remove(sorted(folder.glob("*.flac"))[k % 2 :: 2])
        before = _count(coll)
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 300
        while time.time() < deadline and proc.poll() is None and _count(coll) <= before:
            time.sleep(0.1)  # until this run has committed a recording (imports take long on a loaded machine)
        time.sleep(float(rng.uniform(0.0, 4.0)))  # then at a random moment: mid-extraction, mid-commit
        family = _descendants(proc.pid)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        time.sleep(5.0)
        orphans = [p for p in family if _alive(p)]
        t_end = time.time() + 25.0
        while time.time() < t_end and any(_alive(p) for p in orphans):
            time.sleep(0.5)  # a worker killed before its initializer ran exits when it gets there
        leftovers = [p for p in orphans if _alive(p)]
        for p in leftovers:  # our own leftovers, by pid
            os.kill(p, signal.SIGKILL)
        row = {"kill": k, "descendants": len(family), "orphans_after_5s": len(orphans),
               "orphans_after_30s": len(leftovers), "finished": proc.returncode == 0,
               "committed_before": before}  # fmt: skip
        try:
            with Collection.open(coll, readonly=True) as c:
                recs = c.recordings()
                for r in recs:
                    c.load_features(r.id)
                row.update(recordings=len(recs), duplicates=len(recs) - len({r.path for r in recs}), corrupt=False)
        except Exception as exc:  # noqa: BLE001
            row.update(corrupt=True, error=str(exc)[:200])
        rows.append(row)
        print(row, flush=True)
    final = subprocess.run(cmd, capture_output=True, timeout=3600)
    with Collection.open(coll, readonly=True) as c:
        recs = c.recordings()
    return {
        "kills": rows,
        "final_exit_code": final.returncode,
        "final_recordings": len(recs),
        "final_duplicates": len(recs) - len({r.path for r in recs}),
        "corrupt": sum(r.get("corrupt", False) for r in rows),
        "duplicates": sum(r.get("duplicates", 0) for r in rows),
        "orphans_after_5s": sum(r["orphans_after_5s"] for r in rows),
        "kills_with_orphans_after_5s": sum(r["orphans_after_5s"] > 0 for r in rows),
        "orphans_after_30s": sum(r["orphans_after_30s"] for r in rows),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--driver", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds one command may take (hang)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mutations", type=int, default=40, help="mutated copies per valid file and format")
    parser.add_argument("--heavy", action="store_true", help="add 300 s of 8-channel 192 kHz audio")
    parser.add_argument("--kills", type=int, default=20, help="kill -9 of index runs (0: none)")
    parser.add_argument("--work", default=str(HERE.parent / "data" / "fuzz"), help="scratch folder (git-ignored)")
    parser.add_argument("--skip-inputs", action="store_true", help="only the kill -9 campaign")
    args = parser.parse_args()
    if args.driver:
        _driver(args.timeout)
        return
    import shutil

    from _common import write_results

    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    out = {"command": " ".join(sys.argv), "seed": args.seed, "timeout_s": args.timeout}
    previous = HERE / "results" / "fuzz.json"
    if args.skip_inputs and previous.is_file():  # keep the input campaign of an earlier run
        out["inputs"] = json.loads(previous.read_text()).get("inputs")
        out["inputs_command"] = json.loads(previous.read_text()).get("command")
    if not args.skip_inputs:
        out["inputs"] = run_inputs(args, work)
        print(json.dumps({k: v for k, v in out["inputs"].items() if k != "all_runs"}, indent=1)[:4000])
    if not args.kills and previous.is_file():  # keep the kill -9 campaign of an earlier run
        out["kill9"] = json.loads(previous.read_text()).get("kill9")
        out["kill9_command"] = json.loads(previous.read_text()).get("command")
    if args.kills:
        out["kill9"] = run_kills(args, work)
        print(json.dumps({k: v for k, v in out["kill9"].items() if k != "kills"}, indent=1))
    print(write_results("fuzz", out))


if __name__ == "__main__":
    main()
