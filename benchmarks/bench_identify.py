"""Audio identification (issue 18): mirsearch fingerprints beside audfprint2 on the same queries.

Real music from Debian data packages. Two disjoint splits:

- ``tune``: collection = singularity-music + fretsonfire song mixes; "not found" queries from
  colobot-common-sounds music and asterisk-moh-opsound (parameters and the score threshold were chosen here);
- ``test`` (the reported one): collection = 48 ufoai-music tracks (about 3 h); "not found" queries from the other
  ufoai tracks (same composer and style, which makes false positives likelier than with unrelated music).

Queries: 5 s and 10 s excerpts at random positions under 13 conditions (clean, white noise 10 dB SNR, pink noise
0 dB SNR, MP3 at the lowest quality, telephone band, speed ±2 % and ±5 % by resampling, time-stretch ±4 %
(librosa phase vocoder), pitch ±1 semitone (librosa)). A hit: the first answer is the right recording and its
offset is within 0.5 s of the truth. "Not found" correct: no answer.

Usage::

    nice -n 10 .venv/bin/python benchmarks/bench_identify.py                 # test split, writes results/identify.json
    nice -n 10 .venv/bin/python benchmarks/bench_identify.py --split tune --no-baseline --per-cell 12
    nice -n 10 .venv/bin/python benchmarks/bench_identify.py --scaling       # simulated 100 h / 1,000 h stores
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import sys
import time
import zipfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import print_table, write_results  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PKGS = ROOT / "data" / "real" / "pkgs"
WORK = ROOT / "data" / "identify"
SR = 16000
CONDITIONS = (
    "clean",
    "white_10dB",
    "pink_0dB",
    "mp3_low",
    "telephone",
    "speed_+2%",
    "speed_-2%",
    "speed_+5%",
    "speed_-5%",
    "stretch_+4%",
    "stretch_-4%",
    "pitch_+1",
    "pitch_-1",
)
log = logging.getLogger("bench_identify")


# -- data --------------------------------------------------------------------------------------------
def _ufoai_tracks() -> list[Path]:
    out = WORK / "ufoai"
    pk3 = PKGS / "ufoai-music/usr/share/games/ufoai/base/0music.pk3"
    if not out.is_dir():
        with zipfile.ZipFile(pk3) as z:
            for name in z.namelist():
                if name.endswith(".ogg"):
                    (out / Path(name).name).parent.mkdir(parents=True, exist_ok=True)
                    (out / Path(name).name).write_bytes(z.read(name))
    return sorted(p for p in out.glob("*.ogg"))


def _long_enough(paths, seconds: float = 30.0) -> list[Path]:
    import soundfile as sf

    return [p for p in paths if sf.info(str(p)).duration >= seconds]


def splits(name: str) -> tuple[list[Path], list[Path]]:
    """(collection tracks, held-out "not found" tracks) of a split."""
    if name == "tune":
        coll = sorted((PKGS / "singularity-music").rglob("*.ogg"))
        coll += sorted((PKGS / "fretsonfire-songs-muldjord").rglob("song.ogg"))
        coll += sorted((PKGS / "fretsonfire-songs-sectoid").rglob("song.ogg"))
        absent = sorted((PKGS / "colobot-common-sounds").rglob("*.ogg"))
        absent += sorted((PKGS / "asterisk-moh-opsound-wav").rglob("*.wav"))
        return _long_enough(coll), _long_enough(absent)
    tracks = _long_enough(_ufoai_tracks())
    rng = np.random.default_rng(18)
    order = rng.permutation(len(tracks))
    held = set(order[:16].tolist())
    return [t for i, t in enumerate(tracks) if i not in held], [t for i, t in enumerate(tracks) if i in held]


def load(path: Path) -> np.ndarray:
    from mirsearch.audio import load_audio

    return load_audio(path, sr=SR, max_duration=3600)[0]


# -- degradations ------------------------------------------------------------------------------------
def _noise(y: np.ndarray, snr_db: float, rng, *, pink: bool) -> np.ndarray:
    n = rng.standard_normal(y.size)
    if pink:
        spec = np.fft.rfft(n)
        f = np.fft.rfftfreq(y.size, 1 / SR)
        spec /= np.sqrt(np.maximum(f, 20.0))
        n = np.fft.irfft(spec, y.size)
    p_sig = np.mean(y.astype(np.float64) ** 2)
    n *= np.sqrt(p_sig / (np.mean(n**2) * 10 ** (snr_db / 10)))
    return (y + n).astype(np.float32)


def _mp3(y: np.ndarray) -> np.ndarray:
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(
        buf, y, SR, format="MP3", subtype="MPEG_LAYER_III", compression_level=0.9, bitrate_mode="VARIABLE"
    )  # ~24 kbit/s
    buf.seek(0)
    z, _ = sf.read(buf, dtype="float32")
    return z[: y.size] if z.size >= y.size else np.pad(z, (0, y.size - z.size))


def _telephone(y: np.ndarray) -> np.ndarray:
    import soxr
    from scipy.signal import butter, sosfilt

    sos = butter(4, [300, 3400], btype="bandpass", fs=SR, output="sos")
    z = soxr.resample(sosfilt(sos, y), SR, 8000)
    z = np.round(np.clip(z, -1, 1) * 127) / 127  # 8-bit quantisation
    return soxr.resample(z, 8000, SR).astype(np.float32)


def make_query(y: np.ndarray, start: float, length: float, condition: str, rng) -> tuple[np.ndarray, float]:
    """An excerpt starting at ``start`` s of ``y`` under a condition; returns (audio, true speed)."""
    import librosa
    import soxr

    speed = 1.0
    if condition.startswith(("speed", "stretch")):
        speed = 1.0 + float(condition.split("_")[1].rstrip("%")) / 100
    seg = y[int(start * SR) : int(start * SR) + int(np.ceil(length * speed * SR)) + 1]
    if condition.startswith("speed"):
        q = soxr.resample(seg, SR * speed, SR)  # played faster: fewer samples, higher pitch
    elif condition.startswith("stretch"):
        q = librosa.effects.time_stretch(seg, rate=speed)
    elif condition.startswith("pitch"):
        q = librosa.effects.pitch_shift(seg, sr=SR, n_steps=float(condition.split("_")[1]))
    elif condition == "white_10dB":
        q = _noise(seg, 10.0, rng, pink=False)
    elif condition == "pink_0dB":
        q = _noise(seg, 0.0, rng, pink=True)
    elif condition == "mp3_low":
        q = _mp3(seg)
    elif condition == "telephone":
        q = _telephone(seg)
    else:
        q = seg
    return np.asarray(q[: int(length * SR)], dtype=np.float32), speed


def build_queries(audio: dict, absent: dict, *, per_cell: int, absent_per_cell: int, seed: int = 0) -> list[dict]:
    """Query specs with audio: per (duration, condition) ``per_cell`` present and ``absent_per_cell`` absent."""
    rng = np.random.default_rng(seed)
    out = []
    for length in (5.0, 10.0):
        for cond in CONDITIONS:
            for present, pool, n in ((True, audio, per_cell), (False, absent, absent_per_cell)):
                keys = list(pool)
                for _ in range(n):
                    key = keys[rng.integers(len(keys))]
                    y = pool[key]
                    start = float(rng.uniform(0, y.size / SR - length * 1.06 - 0.5))
                    q, speed = make_query(y, start, length, cond, rng)
                    out.append(dict(key=key, start=start, length=length, condition=cond, present=present, audio=q))
    return out


# -- systems ---------------------------------------------------------------------------------------------
class Ours:
    """mirsearch fingerprints through a real collection (``mirsearch index --features fingerprint``)."""

    name = "mirsearch"

    def __init__(self, files: list[Path], folder: Path, *, min_score: float | None = None):
        from mirsearch.collection import Collection
        from mirsearch.search.identify import IdentifyOptions, collection_index

        if folder.exists():
            import shutil

            shutil.rmtree(folder)
        t0 = time.perf_counter()
        self.coll = Collection.create(folder, features=["fingerprint"])
        report = self.coll.add(files)
        t1 = time.perf_counter()
        self.index = collection_index(self.coll)
        t2 = time.perf_counter()
        self.ids = {Path(r.path).resolve(): r.id for r in self.coll.recordings()}
        self.audio_seconds = report.audio_seconds
        self.index_seconds = {"decode_extract": t1 - t0, "hash_index": t2 - t1}
        opts = {} if min_score is None else {"min_score": min_score}
        self.options = IdentifyOptions(**opts)

    def size_bytes(self) -> int:

        peaks = sum(p.stat().st_size for p in (self.coll.root / "features").rglob("*.npy"))
        return self.index.nbytes(), peaks

    def query(self, y: np.ndarray):
        from mirsearch.errors import InputError
        from mirsearch.search.identify import identify

        try:
            res = identify(self.coll, y, sr=SR, options=self.options)
        except InputError:
            return None
        if not res.matches:
            return None
        m = res.matches[0]
        return Path(m.recording).resolve(), m.offset, m.speed, m.score


class Audfprint:
    """audfprint2 0.1.2 in-process (its analyzer on the same decoded audio, its hash table and matcher)."""

    name = "audfprint2"

    def __init__(self, audio: dict):
        import soxr
        from audfprint2.core import analyzer, hash_table, matcher

        self.an = analyzer.Analyzer()
        self.an.n_fft, self.an.n_hop, self.an.target_sr = 512, 256, 11025
        # maxtime 2**15 frames (12.7 min) instead of the CLI's 16384 (6.3 min): the longest track is 8.8 min
        self.ht = hash_table.HashTable(hashbits=20, depth=100, maxtime=1 << 15)
        self.matcher = matcher.Matcher()
        self.soxr = soxr
        t0 = time.perf_counter()
        self.names = {}
        for key, y in audio.items():
            self.ht.store(str(key), self._hashes(y, shifts=1))
        self.index_seconds = time.perf_counter() - t0

    def _hashes(self, y, *, shifts: int):
        """As ``Analyzer.wavfile2hashes``: hashes of ``shifts`` sub-frame shifts (the CLI matches with 4), unique."""
        from audfprint2.core import analyzer

        z = self.soxr.resample(y, SR, 11025)
        parts = []
        for k in range(shifts):
            peaks = self.an.find_peaks(z[int(k / shifts * self.an.n_hop) :], 11025)
            parts.append(analyzer.landmarks2hashes(self.an.peaks2landmarks(peaks)))
        h = np.concatenate(parts)
        return np.unique(h, axis=0) if len(h) else h

    def query(self, y: np.ndarray):
        hashes = self._hashes(y, shifts=4)
        if len(hashes) == 0:
            return None
        res = self.matcher.match_hashes(self.ht, hashes)
        if len(res) == 0 or res[0][1] < self.matcher.threshcount:
            return None
        tid, count, toff = int(res[0][0]), int(res[0][1]), int(res[0][2])
        return Path(self.ht.names[tid]), toff * 256 / 11025, 1.0, count


# -- running -----------------------------------------------------------------------------------------
def run_queries(system, queries: list[dict]) -> list[dict]:
    """One record per query: hit (present) or correct "not found" (absent), and the time."""
    out = []
    for q in queries:
        t0 = time.perf_counter()
        ans = system.query(q["audio"])
        dt = time.perf_counter() - t0
        if q["present"]:
            ok = ans is not None and Path(ans[0]).resolve() == Path(q["key"]).resolve()
            ok = ok and abs(ans[1] - q["start"]) <= 0.5
        else:
            ok = ans is None
        out.append(
            dict(
                condition=q["condition"],
                length=q["length"],
                present=q["present"],
                ok=bool(ok),
                seconds=dt,
                score=None if ans is None else float(ans[3]),
                speed=None if ans is None else float(ans[2]),
            )
        )
    return out


def summarise(records: list[dict], name: str) -> tuple[list[dict], dict]:
    """Table rows (one per condition: 5 s, 10 s, both) and the overall figures of one system."""
    rows = []
    for cond in CONDITIONS:
        row = {"system": name, "condition": cond}
        for length in (5.0, 10.0):
            hits = [r["ok"] for r in records if r["present"] and r["condition"] == cond and r["length"] == length]
            row[f"{int(length)}s"] = round(float(np.mean(hits)), 3)
        row["both"] = round((row["5s"] + row["10s"]) / 2, 3)
        rows.append(row)
    present = [r for r in records if r["present"]]
    absent = [r for r in records if not r["present"]]
    times = np.array([r["seconds"] for r in records])
    overall = {
        "hit_rate": round(float(np.mean([r["ok"] for r in present])), 4),
        "hit_rate_5s": round(float(np.mean([r["ok"] for r in present if r["length"] == 5.0])), 4),
        "hit_rate_10s": round(float(np.mean([r["ok"] for r in present if r["length"] == 10.0])), 4),
        "not_found_correct": round(float(np.mean([r["ok"] for r in absent])), 4),
        "n_present": len(present),
        "n_absent": len(absent),
        "query_ms_median": round(float(np.median(times)) * 1000, 1),
        "query_ms_mean": round(float(np.mean(times)) * 1000, 1),
        "query_ms_p95": round(float(np.percentile(times, 95)) * 1000, 1),
    }
    return rows, overall


def _speed_error(records: list[dict], queries: list[dict]) -> float | None:
    """Median |estimated - true speed| over hits of the speed conditions."""
    errs = []
    for r, q in zip(records, queries, strict=True):
        if r["ok"] and q["present"] and q["condition"].startswith("speed"):
            errs.append(abs(r["speed"] - (1 + float(q["condition"].split("_")[1].rstrip("%")) / 100)))
    return round(float(np.median(errs)), 5) if errs else None


def main_accuracy(args) -> dict:
    coll_files, absent_files = splits(args.split)
    if args.limit:
        coll_files, absent_files = coll_files[: args.limit], absent_files[: args.limit]
    t0 = time.perf_counter()
    audio = {p.resolve(): load(p) for p in coll_files}
    absent = {p.resolve(): load(p) for p in absent_files}
    hours = sum(y.size for y in audio.values()) / SR / 3600
    log.info(
        "%d tracks (%.2f h) in the collection, %d held out; decoded in %.0f s",
        len(audio),
        hours,
        len(absent),
        time.perf_counter() - t0,
    )
    queries = build_queries(audio, absent, per_cell=args.per_cell, absent_per_cell=args.absent_per_cell)
    ours = Ours(coll_files, WORK / f"bench-{args.split}.mirs", min_score=args.min_score)
    idx_bytes, peak_bytes = ours.size_bytes()
    systems = [ours]
    if not args.no_baseline:
        systems.append(Audfprint(audio))
    result = {
        "split": args.split,
        "hours": round(hours, 3),
        "tracks": len(audio),
        "held_out_tracks": len(absent),
        "per_cell": args.per_cell,
        "absent_per_cell": args.absent_per_cell,
        "systems": {},
        "rows": [],
    }
    records = {}
    for system in systems:
        log.info("querying %s (%d queries)", system.name, len(queries))
        records[system.name] = run_queries(system, queries)
        rows, overall = summarise(records[system.name], system.name)
        overall["speed_abs_error_median"] = _speed_error(records[system.name], queries)
        result["rows"] += rows
        result["systems"][system.name] = overall
    result["systems"]["mirsearch"].update(
        index_mb_per_hour=round(idx_bytes / 1e6 / hours, 2),
        peaks_mb_per_hour=round(peak_bytes / 1e6 / hours, 2),
        entries=ours.index.n_entries,
        index_x_realtime=round(ours.audio_seconds / sum(ours.index_seconds.values()), 1),
        index_seconds={k: round(v, 1) for k, v in ours.index_seconds.items()},
        min_score=ours.options.min_score,
    )
    if "audfprint2" in records:
        from mirsearch.evaluation.paired import paired_difference

        a = [r["ok"] for r in records["audfprint2"] if r["present"]]
        b = [r["ok"] for r in records["mirsearch"] if r["present"]]
        result["paired_hit_rate"] = paired_difference(a, b).to_dict()
        aud = systems[1]
        result["systems"]["audfprint2"].update(
            index_x_realtime=round(hours * 3600 / aud.index_seconds, 1), entries=int(aud.ht.counts.sum())
        )
    result["absent_scores"] = sorted(r["score"] or 0.0 for r in records["mirsearch"] if not r["present"])[-10:]
    result["hit_scores_p1_p5"] = (
        np.percentile([r["score"] for r in records["mirsearch"] if r["present"] and r["ok"]], [1, 5]).round(1).tolist()
    )
    return result


def print_accuracy(result: dict) -> None:
    print(
        f"\nsplit {result['split']}: {result['tracks']} tracks, {result['hours']} h; "
        f"{result['per_cell']} queries per condition and length, {result['held_out_tracks']} held-out tracks"
    )
    print_table(result["rows"], ["system", "condition", "5s", "10s", "both"])
    print()
    keys = [
        "hit_rate",
        "hit_rate_5s",
        "hit_rate_10s",
        "not_found_correct",
        "query_ms_median",
        "query_ms_p95",
        "speed_abs_error_median",
        "index_mb_per_hour",
        "index_x_realtime",
    ]
    print_table([{"system": k, **v} for k, v in result["systems"].items()], ["system", *keys])
    if "paired_hit_rate" in result:
        p = result["paired_hit_rate"]
        print(
            f"\nhit rate mirsearch - audfprint2: {p['mean']:+.3f} [{p['low']:+.3f}, {p['high']:+.3f}] "
            f"(lost {p['lost']}, won {p['won']}, sign test p={p['p_value']:.2g})"
        )


# -- scaling: simulated stores of 100 h and 1,000 h ------------------------------------------------------
def _field_marginals(hashes: np.ndarray) -> list[np.ndarray]:
    """Probability of each value of each hash field in a real index (fields as packed by the fingerprint module)."""
    from mirsearch.features.fingerprint import _FIELDS

    out, shift = [], 0
    h = np.asarray(hashes, dtype=np.uint64)
    for _, bits in _FIELDS:
        v = ((h >> np.uint64(shift)) & np.uint64((1 << bits) - 1)).astype(np.int64)
        out.append(np.bincount(v, minlength=1 << bits) / v.size)
        shift += bits
    return out


def simulate_hashes(marginals: list[np.ndarray], n_entries: int, path: Path, *, seed: int = 0) -> np.ndarray:
    """A sorted uint32 array of ``n_entries`` random hashes, fields drawn from ``marginals`` (memory-mapped file).

    Counts per hash value are Poisson with mean ``n_entries * prod(field probabilities)``, generated in
    ascending value order, so the array is sorted as written.
    """
    if path.exists():
        return np.load(path, mmap_mode="r")
    rng = np.random.default_rng(seed)
    total_bits = sum(int(np.log2(m.size)) for m in marginals)
    chunk = 1 << 22
    parts_path = path.with_suffix(".raw")
    n = 0
    with open(parts_path, "wb") as fh:
        for lo in range(0, 1 << total_bits, chunk):
            values = np.arange(lo, lo + chunk, dtype=np.uint64)
            p = np.ones(chunk)
            shift = 0
            for m in marginals:
                bits = int(np.log2(m.size))
                p *= m[((values >> np.uint64(shift)) & np.uint64(m.size - 1)).astype(np.int64)]
                shift += bits
            counts = rng.poisson(p * n_entries)
            block = np.repeat(values.astype(np.uint32), counts)
            fh.write(block.tobytes())
            n += block.size
    arr = np.memmap(parts_path, dtype=np.uint32, mode="r", shape=(n,))
    np.save(path, arr)
    parts_path.unlink()
    return np.load(path, mmap_mode="r")


class SimulatedIndex:
    """A real index plus a store of simulated entries (random recordings, times and frequencies)."""

    def __init__(self, real, hashes: np.ndarray, *, n_recordings: int):
        self.real = real
        self.hashes = hashes
        self.hconfig, self.peak_config, self.frame_rate = real.hconfig, real.peak_config, real.frame_rate
        self.n_recordings = n_recordings
        self.offset_id = max(real.recordings) + 1

    def reference(self, real_peaks):
        """``reference(recording_id)`` for ``match_peaks``: stored arrays, for the simulated recordings random peaks
        (20/s over 20,000 frames) and random change signs (every change frame, so that the change check costs what
        it costs on a real recording)."""

        from mirsearch.features import fingerprint as fp

        def peaks(rec: int) -> np.ndarray:
            if rec < self.offset_id:
                return real_peaks(rec)
            rng = np.random.default_rng(rec)
            n = int(20 * 20000 / self.frame_rate)
            p = np.stack([np.sort(rng.uniform(0, 20000, n)), rng.uniform(0, 180, n), np.ones(n)]).astype(np.float32)
            hop, n_bands = self.peak_config["change_hop"], 180 // self.peak_config["change_band_bins"]
            changes = rng.standard_normal((n_bands, 20000 // hop)).astype(np.float32)
            valid = np.ones(changes.shape[1], bool)
            return np.concatenate([p, fp.change_columns(changes, valid, config=self.peak_config)], axis=1)

        return peaks

    def lookup(self, hashes, source, *, max_bucket=None):
        from mirsearch.index.fingerprints import MAX_BUCKET, Matches

        max_bucket = max_bucket or MAX_BUCKET
        m = self.real.lookup(hashes, source, max_bucket=max_bucket)
        lo = np.searchsorted(self.hashes, hashes, side="left")
        hi = np.searchsorted(self.hashes, hashes, side="right")
        counts = hi - lo
        counts[counts > max_bucket] = 0
        pos = np.repeat(lo - np.cumsum(counts) + counts, counts) + np.arange(int(counts.sum()))
        order = np.argsort(pos, kind="stable")
        pos, query = pos[order], np.repeat(np.asarray(source, np.int64), counts)[order]
        _ = np.asarray(self.hashes[pos])  # touch the stored entries as a real gather would
        rng = np.random.default_rng(int(pos[:1].sum()) if pos.size else 0)
        k = pos.size
        sim = Matches(
            query=query,
            recording_ids=(self.offset_id + rng.integers(0, self.n_recordings, k)).astype(np.uint32),
            t1=rng.uniform(0, 20000, k).astype(np.float32),
            f1=rng.uniform(0, 180, k).astype(np.float32),
            dt13=rng.uniform(2, 60, k).astype(np.float32),
        )
        return Matches(
            *(np.concatenate([getattr(m, f), getattr(sim, f)]) for f in ("query", "recording_ids", "t1", "f1", "dt13"))
        )


def main_scaling(args) -> dict:
    """Query time and accuracy (clean / speed +5 % / pink 0 dB, 10 s) with 100 h and 1,000 h of simulated entries."""
    from mirsearch.search.identify import IdentifyOptions, analyse_query, change_check, match_peaks, stored_peaks

    coll_files, absent_files = splits(args.split)
    ours = Ours(coll_files, WORK / f"scaling-{args.split}.mirs")
    real = ours.index
    hours_real = ours.audio_seconds / 3600
    per_hour = real.n_entries / hours_real
    marg = _field_marginals(real.arrays["hashes"])
    audio = {p.resolve(): load(p) for p in coll_files}
    absent = {p.resolve(): load(p) for p in absent_files[:6]}
    rng = np.random.default_rng(1)
    queries = []
    for cond in ("clean", "speed_+5%", "pink_0dB"):
        keys = list(audio)
        for _ in range(args.per_cell):
            key = keys[rng.integers(len(keys))]
            start = float(rng.uniform(0, audio[key].size / SR - 11))
            queries.append(
                dict(
                    key=key,
                    start=start,
                    condition=cond,
                    present=True,
                    audio=make_query(audio[key], start, 10.0, cond, rng)[0],
                )
            )
    for key, y in absent.items():
        for _ in range(3):
            start = float(rng.uniform(0, y.size / SR - 11))
            queries.append(
                dict(
                    key=key,
                    start=start,
                    condition="clean",
                    present=False,
                    audio=make_query(y, start, 10.0, "clean", rng)[0],
                )
            )
    opts = IdentifyOptions()
    analysed = [analyse_query(q["audio"], sr=SR, peak_config=real.peak_config, options=opts) for q in queries]
    peaks = [(a.peaks, a.dense, change_check(ours.coll, real, a.spectrogram, opts)) for a in analysed]
    names = {v: k for k, v in ours.ids.items()}
    out = {"entries_per_hour": round(per_hour), "sizes": []}
    for hours in args.scaling_hours:
        n = int(per_hour * hours)
        path = WORK / "sim" / f"hashes_{hours}h.npy"
        path.parent.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        H = simulate_hashes(marg, n, path)
        build = time.perf_counter() - t0
        index = SimulatedIndex(real, H, n_recordings=int(hours * 3600 / 240))
        reference = index.reference(stored_peaks(ours.coll))
        for _ in range(2):  # warm the page cache
            match_peaks(index, peaks[0][0], options=opts, reference=reference, dense=peaks[0][1], changes=peaks[0][2])
        times, ok = [], {}  # times in query order: present first, then absent (the fallback runs for these)
        for q, (pk, dense, changes) in zip(queries, peaks, strict=True):
            t = time.perf_counter()
            cands, _ = match_peaks(index, pk, options=opts, reference=reference, dense=dense, changes=changes)
            times.append(time.perf_counter() - t)
            if q["present"]:
                good = bool(cands) and names.get(cands[0][0]) == q["key"] and abs(cands[0][2] - q["start"]) <= 0.5
            else:
                good = not cands
            ok.setdefault(q["condition"] + ("" if q["present"] else " absent"), []).append(good)
        row = {
            "hours": hours,
            "entries": int(H.size),
            "hashes_gb": round(H.nbytes / 1e9, 2),
            "build_s": round(build, 1),
            "match_ms_median": round(float(np.median(times)) * 1000, 1),
            "match_ms_p95": round(float(np.percentile(times, 95)) * 1000, 1),
        }
        absent_times = [t for t, q in zip(times, queries, strict=True) if not q["present"]]
        if absent_times:  # not-found queries pay for the fallback (identify.md, step 6)
            row["match_ms_median_absent"] = round(float(np.median(absent_times)) * 1000, 1)
            row["match_ms_p95_absent"] = round(float(np.percentile(absent_times, 95)) * 1000, 1)
        row.update({k: round(float(np.mean(v)), 3) for k, v in ok.items()})
        out["sizes"].append(row)
        log.info("%s", row)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--split", choices=("tune", "test"), default="test")
    ap.add_argument("--per-cell", type=int, default=20, help="present queries per condition and length")
    ap.add_argument("--absent-per-cell", type=int, default=6, help="held-out queries per condition and length")
    ap.add_argument("--min-score", type=float, default=None, help="override the calibrated threshold")
    ap.add_argument("--no-baseline", action="store_true", help="skip audfprint2")
    ap.add_argument("--limit", type=int, default=0, help="first N tracks of each list only (a smoke test)")
    ap.add_argument("--scaling", action="store_true", help="run the simulated-store scaling instead")
    ap.add_argument("--scaling-hours", type=int, nargs="+", default=[100, 1000])
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    os.environ.setdefault("NUMBA_CACHE_DIR", str(ROOT / ".cache" / "numba"))
    if args.scaling:
        res = main_scaling(args)
        print_table(res["sizes"], list(res["sizes"][0]))
        path = write_results("identify_scaling", res)
    else:
        res = main_accuracy(args)
        print_accuracy(res)
        path = write_results("identify" if args.split == "test" else "identify_tune", res)
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
