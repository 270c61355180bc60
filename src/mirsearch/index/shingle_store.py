"""Audio shingles: short overlapping stretches of CENS features, stored with the collection.

A *shingle* is ``length`` consecutive CENS frames (default 20 frames at 1 Hz, i.e. 20 s of music) flattened
to one vector of ``12 * length`` values (240 by default) and scaled to unit Euclidean length. Shingles are
taken at every ``hop`` frames (default 1, one shingle per second of audio). Two shingles of two versions of
the same passage lie close together in Euclidean space (CENS absorbs timbre, dynamics and articulation),
which is what the shingle index (:mod:`mirsearch.collection.ann`, :mod:`mirsearch.search.shingles`) uses
(Grosche & Müller, ICASSP 2012; Zalkow & Müller, Applied Sciences 2020).

Vector layout: time-major, ``v[12 * t + c]`` is chroma ``c`` (0 = C) of frame ``t`` of the shingle;
``v.reshape(length, 12)`` gives the frames back.

Tempo: :func:`scale_tempo` resamples 10 Hz chroma before CENS, which simulates a global tempo change
(the "multiple scaling" of audio matching); a query is shingled at several tempo factors.

On disk (:class:`ShingleStore`)::

    <collection>/index/shingles/<config key>/
        manifest.json               configuration, segments, recordings (id, fingerprint, rows); written last
        seg-00000.npy               float32 (n_rows, 12 * length) shingles of one batch of recordings
        seg-00000-meta.npy          int64 (n_rows, 2): recording id, start frame (CENS frames = seconds at 1 Hz)
        ...

Rows are numbered across segments in manifest order; that number is the label the ANN indexes use.
Adding recordings appends a segment; when a recording was removed or changed (other audio, other chroma
configuration) the store is rebuilt and gets a new ``generation``, which tells indexes built on it to
rebuild too. Every file is written to a temporary name and moved into place with :func:`os.replace`, and
the manifest last: a reader sees the old or the new state, never a mix.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from mirsearch.errors import CollectionError, ParameterError

log = logging.getLogger(__name__)

FORMAT = "mirsearch-shingles"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
#: the 10 Hz chroma rate shingles are computed from
CHROMA_RATE = 10.0


@dataclass(frozen=True)
class ShingleConfig:
    """How shingles are made from 10 Hz chroma.

    Attributes
    ----------
    length : int >= 1
        CENS frames per shingle (20 at 1 Hz = 20 s).
    hop : int >= 1
        CENS frames between consecutive shingles.
    window : int >= 1
        CENS smoothing window in chroma frames (41 at 10 Hz, about 4 s).
    downsample : int >= 1
        CENS downsampling factor (10: 10 Hz -> 1 Hz).
    features : str
        Stored 10 Hz feature kind the CENS is computed from (``"chroma"``; ``"learned"`` works too).
    """

    length: int = 20
    hop: int = 1
    window: int = 41
    downsample: int = 10
    features: str = "chroma"

    def __post_init__(self) -> None:
        if not isinstance(self.features, str) or not self.features:
            raise ParameterError(f"shingle features={self.features!r} must be a stored feature kind")
        for name in ("length", "hop", "window", "downsample"):
            value = getattr(self, name)
            if not isinstance(value, int | np.integer) or value < 1:
                raise ParameterError(f"shingle {name}={value!r} must be an integer >= 1")

    @property
    def dim(self) -> int:
        """Dimension of a shingle vector (``12 * length``)."""
        return 12 * self.length

    @property
    def frame_rate(self) -> float:
        """CENS frames per second (``10 / downsample``)."""
        return CHROMA_RATE / self.downsample

    @property
    def key(self) -> str:
        """Directory name of this configuration (``cens41-10-L20-h1``; other features prefixed)."""
        key = f"cens{self.window}-{self.downsample}-L{self.length}-h{self.hop}"
        return key if self.features == "chroma" else f"{self.features}-{key}"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ShingleConfig:
        ints = {k: int(d[k]) for k in ("length", "hop", "window", "downsample") if k in d}
        return cls(**ints, features=str(d.get("features", "chroma")))


#: the configuration of the reference (20 CENS frames at 1 Hz, 240 dimensions)
DEFAULT_CONFIG = ShingleConfig()


# -- pure functions ---------------------------------------------------------------------------------------
def scale_tempo(C: np.ndarray, *, tempo_factor: float) -> np.ndarray:
    """Resample a feature sequence in time as if it were played ``tempo_factor`` times as fast.

    Parameters
    ----------
    C : np.ndarray, shape (n_features, n_frames)
        Features at a fixed frame rate (e.g. 10 Hz chroma).
    tempo_factor : float > 0
        1.25 plays 25 % faster (fewer frames), 0.8 slower (more frames).

    Returns
    -------
    np.ndarray, shape (n_features, max(1, round(n_frames / tempo_factor))), float32
        Linear interpolation between the input frames; output frame ``j`` lies at input frame
        ``j * tempo_factor``. A new array (the input is not modified).
    """
    if not tempo_factor > 0:
        raise ParameterError(f"tempo_factor={tempo_factor!r} must be > 0")
    C = np.asarray(C, dtype=np.float32)
    n = C.shape[1]
    if n == 0 or abs(tempo_factor - 1.0) < 1e-9:
        return C.copy()
    m = max(1, int(round(n / tempo_factor)))
    pos = np.minimum(np.arange(m) * tempo_factor, n - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, n - 1)
    w = (pos - lo).astype(np.float32)
    return C[:, lo] * (1.0 - w) + C[:, hi] * w


def shingles(X: np.ndarray, *, length: int = 20, hop: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Cut a feature sequence into overlapping shingles of unit length.

    Parameters
    ----------
    X : np.ndarray, shape (12, n_frames)
        CENS (or any 12-band) features.
    length : int >= 1
        Frames per shingle.
    hop : int >= 1
        Frames between shingle starts.

    Returns
    -------
    S : np.ndarray, shape (n_shingles, 12 * length), float32
        Time-major flattened shingles (``S[i].reshape(length, 12)`` are the frames), l2-normalised;
        ``n_shingles = (n_frames - length) // hop + 1``, or 0 when the sequence is shorter than a shingle.
    starts : np.ndarray, shape (n_shingles,), int64
        First frame of each shingle.
    """
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 2 or X.shape[0] != 12:
        raise ParameterError(f"features must have shape (12, n_frames), got {X.shape}")
    if length < 1 or hop < 1:
        raise ParameterError(f"length={length} and hop={hop} must be >= 1")
    n = X.shape[1]
    if n < length:
        return np.zeros((0, 12 * length), np.float32), np.zeros(0, np.int64)
    starts = np.arange(0, n - length + 1, hop, dtype=np.int64)
    frames = np.ascontiguousarray(X.T)  # (n, 12)
    windows = np.lib.stride_tricks.sliding_window_view(frames, (length, 12))[starts, 0]  # (n_sh, length, 12)
    S = windows.reshape(len(starts), 12 * length).astype(np.float32)
    norms = np.linalg.norm(S, axis=1, keepdims=True)
    S /= np.maximum(norms, 1e-12)
    return S, starts


def chroma_shingles(
    C: np.ndarray,
    *,
    feature_rate: float = CHROMA_RATE,
    config: ShingleConfig = DEFAULT_CONFIG,
    tempo_factor: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Shingles of a 10 Hz chroma sequence, optionally tempo-scaled before CENS.

    Parameters
    ----------
    C : np.ndarray, shape (12, n_frames)
        Non-negative chroma at ``feature_rate``.
    feature_rate : float
        Must be 10 Hz (the rate the CENS parameters are defined for).
    config : ShingleConfig
    tempo_factor : float > 0
        Simulated tempo change (see :func:`scale_tempo`).

    Returns
    -------
    S : np.ndarray, shape (n_shingles, config.dim), float32
        Unit-length shingles.
    times : np.ndarray, shape (n_shingles,), float64
        Start of each shingle in seconds of the *unscaled* input.
    """
    if abs(feature_rate - CHROMA_RATE) > 1e-6:
        raise ParameterError(f"feature_rate={feature_rate} must be {CHROMA_RATE} Hz for shingles")
    X = cens_of(C, config=config, tempo_factor=tempo_factor)
    S, starts = shingles(X, length=config.length, hop=config.hop)
    return S, starts / config.frame_rate * tempo_factor


# -- file helpers -----------------------------------------------------------------------------------------
def atomic_save_npy(path: Path, X: np.ndarray) -> None:
    """Write ``X`` to ``path`` (``.npy``) through a temporary file and :func:`os.replace`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".npy")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.save(fh, np.ascontiguousarray(X))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Write a text file through a temporary file and :func:`os.replace`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def directory_lock(directory: Path, *, name: str = "write.lock"):
    """Hold an exclusive ``flock`` on ``directory / name``; raises :class:`CollectionError` if it is taken."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    fh = open(directory / name, "w")  # noqa: SIM115 - released below
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise CollectionError(f"{directory}: another process is updating it ({name} held)") from None
        yield
    finally:
        with contextlib.suppress(OSError):
            fcntl.flock(fh, fcntl.LOCK_UN)
        fh.close()


# -- the store --------------------------------------------------------------------------------------------
@dataclass
class UpdateReport:
    """What :meth:`ShingleStore.update` did."""

    added: int = 0
    rows_added: int = 0
    rebuilt: bool = False
    removed: int = 0
    rows: int = 0
    seconds: float = 0.0
    skipped: list[int] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def _fingerprint(entry) -> str:
    """What identifies a recording's chroma: its stored file name (content hash + configuration key)."""
    return entry.file


class ShingleStore:
    """Shingles of all recordings of a collection, in append-only segments.

    Parameters
    ----------
    directory : path-like
        ``<collection>/index/shingles/<config.key>``; use :meth:`for_collection`.
    config : ShingleConfig
    """

    def __init__(self, directory, *, config: ShingleConfig = DEFAULT_CONFIG):
        self.directory = Path(directory)
        self.config = config
        self._vectors: np.ndarray | None = None
        self._meta: np.ndarray | None = None
        self._loaded_manifest: dict | None = None

    @classmethod
    def for_collection(cls, collection, *, config: ShingleConfig = DEFAULT_CONFIG) -> ShingleStore:
        """The store of ``collection`` (nothing is computed; see :meth:`update`)."""
        return cls(Path(collection.root) / "index" / "shingles" / config.key, config=config)

    # -- reading ---------------------------------------------------------------------------------------
    def manifest(self) -> dict:
        """The current manifest (an empty one when nothing was built)."""
        path = self.directory / MANIFEST
        if not path.is_file():
            return {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "config": self.config.to_dict(),
                "generation": None,
                "segments": [],
                "recordings": {},
                "rows": 0,
            }
        try:
            m = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise CollectionError(f"{path}: unreadable shingle manifest ({exc})") from None
        if m.get("format") != FORMAT or int(m.get("format_version", 0)) > FORMAT_VERSION:
            raise CollectionError(f"{path}: not a shingle manifest of format {FORMAT} v{FORMAT_VERSION}")
        if ShingleConfig.from_dict(m["config"]) != self.config:
            raise CollectionError(f"{path}: built with shingle config {m['config']}, expected {self.config}")
        return m

    @property
    def generation(self) -> str | None:
        """Identifier that changes whenever the store is rebuilt (rows renumbered)."""
        return self.manifest()["generation"]

    def __len__(self) -> int:
        return int(self.manifest()["rows"])

    def _load(self) -> None:
        m = self.manifest()
        if self._loaded_manifest is not None and self._loaded_manifest == m:
            return
        vecs, metas = [], []
        for seg in m["segments"]:
            vecs.append(np.load(self.directory / seg["file"], mmap_mode="r"))
            metas.append(np.load(self.directory / seg["meta"], mmap_mode="r"))
        dim = self.config.dim
        self._vectors = (
            vecs[0] if len(vecs) == 1 else (np.concatenate(vecs) if vecs else np.zeros((0, dim), np.float32))
        )
        self._meta = metas[0] if len(metas) == 1 else (np.concatenate(metas) if metas else np.zeros((0, 2), np.int64))
        self._loaded_manifest = m

    def vectors(self, start: int = 0) -> np.ndarray:
        """Shingles from row ``start`` on, shape (n_rows - start, dim), float32 (memory-mapped if one segment)."""
        self._load()
        return self._vectors[start:]

    def meta(self) -> tuple[np.ndarray, np.ndarray]:
        """Recording id and start frame of every row: two int64 arrays of shape (n_rows,)."""
        self._load()
        return np.asarray(self._meta[:, 0]), np.asarray(self._meta[:, 1])

    def recording_rows(self) -> dict[int, tuple[int, int]]:
        """``recording id -> (first row, n_rows)``."""
        return {int(k): (int(v["row0"]), int(v["rows"])) for k, v in self.manifest()["recordings"].items()}

    # -- writing ---------------------------------------------------------------------------------------
    def update(self, collection, *, progress: bool = False, rebuild: bool = False) -> UpdateReport:
        """Bring the store up to date with ``collection``.

        New recordings are shingled and appended as one segment. When a stored recording was removed or
        its chroma changed, or ``rebuild``, everything is recomputed (new generation).

        Parameters
        ----------
        collection : Collection
            Needs ``"chroma"`` features at 10 Hz.
        progress : bool
            tqdm progress bar on stderr.
        rebuild : bool
            Recompute all shingles.

        Returns
        -------
        UpdateReport
        """
        t0 = time.perf_counter()
        report = UpdateReport()
        with directory_lock(self.directory.parent, name=f".{self.config.key}.lock"):
            m = self.manifest()
            entries = collection.catalog.features(self.config.features)
            current = {int(rid): _fingerprint(e) for rid, e in entries.items()}
            stored = {int(k): v["fingerprint"] for k, v in m["recordings"].items()}
            stale = [rid for rid, fp in stored.items() if current.get(rid) != fp]
            if rebuild or stale or m["generation"] is None:
                report.rebuilt = bool(stored) or rebuild
                report.removed = len(stale)
                if stale:
                    log.info("%d stored recordings removed or changed: rebuilding shingles", len(stale))
                m = {
                    **self.manifest(),
                    "generation": uuid.uuid4().hex[:12],
                    "segments": [],
                    "recordings": {},
                    "rows": 0,
                }
                todo = sorted(current)
                old_files = {f for seg in self.manifest()["segments"] for f in (seg["file"], seg["meta"])}
            else:
                todo = sorted(rid for rid in current if rid not in stored)
                old_files = set()
            if todo:
                self._append_segment(collection, m, todo, current, progress=progress, report=report)
            m["rows"] = int(sum(seg["rows"] for seg in m["segments"]))
            m["updated"] = time.time()
            atomic_write_text(self.directory / MANIFEST, json.dumps(m, indent=1, sort_keys=True))
            keep = {f for seg in m["segments"] for f in (seg["file"], seg["meta"])}
            for f in old_files - keep:
                (self.directory / f).unlink(missing_ok=True)
        self._loaded_manifest = None
        report.rows = int(m["rows"])
        report.seconds = time.perf_counter() - t0
        return report

    def _append_segment(self, collection, m: dict, todo: list[int], current: dict, *, progress, report) -> None:
        parts, metas = [], []
        row = int(sum(seg["rows"] for seg in m["segments"]))
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=len(todo), unit="rec", desc="shingles", dynamic_ncols=True)
        try:
            for rid in todo:
                C, rate = collection.load_features(rid, self.config.features)
                if abs(rate - CHROMA_RATE) > 1e-6:
                    raise CollectionError(
                        f"{collection.root}: chroma at {rate} Hz; shingles need {CHROMA_RATE} Hz (index with 10 Hz)"
                    )
                S, starts = shingles(
                    cens_of(np.asarray(C), config=self.config), length=self.config.length, hop=self.config.hop
                )
                m["recordings"][str(rid)] = {"fingerprint": current[rid], "row0": row, "rows": int(len(S))}
                if len(S) == 0:
                    report.skipped.append(rid)
                parts.append(S)
                metas.append(np.stack([np.full(len(S), rid, np.int64), starts], axis=1))
                row += len(S)
                report.added += 1
                if bar is not None:
                    bar.update(1)
        finally:
            if bar is not None:
                bar.close()
        S = np.concatenate(parts) if parts else np.zeros((0, self.config.dim), np.float32)
        meta = np.concatenate(metas) if metas else np.zeros((0, 2), np.int64)
        index = len(m["segments"])
        name = f"seg-{m['generation']}-{index:05d}"
        atomic_save_npy(self.directory / f"{name}.npy", S.astype(np.float32))
        atomic_save_npy(self.directory / f"{name}-meta.npy", meta.astype(np.int64))
        m["segments"].append({"file": f"{name}.npy", "meta": f"{name}-meta.npy", "rows": int(len(S))})
        report.rows_added += int(len(S))


def cens_of(C: np.ndarray, *, config: ShingleConfig = DEFAULT_CONFIG, tempo_factor: float = 1.0) -> np.ndarray:
    """CENS (12, n) at ``config.frame_rate`` of 10 Hz chroma, optionally tempo-scaled first."""
    from mirsearch.features.chroma import cens

    Cs = scale_tempo(C, tempo_factor=tempo_factor) if tempo_factor != 1.0 else np.asarray(C, dtype=np.float32)
    X, _ = cens(Cs, feature_rate=CHROMA_RATE, window=config.window, downsample=config.downsample)
    return X


__all__ = [
    "DEFAULT_CONFIG",
    "ShingleConfig",
    "ShingleStore",
    "UpdateReport",
    "atomic_save_npy",
    "atomic_write_text",
    "cens_of",
    "chroma_shingles",
    "scale_tempo",
    "shingles",
]
