"""The CENS database of a collection: every recording's CENS, concatenated as unit rows (a derived view).

Audio matching (passages, versions, the audio cascade) compares a query's CENS with this database.
:func:`audio_database` builds it once per collection generation and CENS configuration through the
collection's cache of derived views; :func:`prepare_database` builds one directly (e.g. without some
recordings). With ``features="matching"`` the CENS is derived from the *matching chroma*
(:mod:`mirsearch.features.matching_chroma`), computed from each recording's audio file on first use and
cached under :func:`cache_dir` by content hash.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

import numpy as np

from mirsearch._util import atomic_save_npy
from mirsearch.errors import InputError, ParameterError
from mirsearch.features.audio_match import PASSAGE_MATCH, AudioMatchConfig
from mirsearch.features.matching_chroma import matching_chroma, matching_config
from mirsearch.features.registry import CHROMA_KINDS
from mirsearch.matching.subsequence import unit_columns

log = logging.getLogger(__name__)


@dataclass
class AudioDatabase:
    """CENS of every recording of a collection, concatenated as unit rows.

    Attributes
    ----------
    Y : np.ndarray, shape (T, 12), float32
        Unit-length CENS frames of all recordings, one after the other.
    offsets : np.ndarray, shape (n_recordings + 1,), int64
        Recording ``i`` occupies rows ``offsets[i]:offsets[i + 1]``.
    recordings : list
        Catalogue records (``id``, ``path``, ``duration``) in the same order.
    feature_rate : float
        CENS frames per second.
    chroma_rate : float
        Frame rate of the chroma the CENS was derived from (the query is processed the same way).
    match : AudioMatchConfig
        The CENS parameters (``features``, ``window``, ``downsample``) the database was built with.
    chroma_config : dict
        Configuration of the chroma the CENS was derived from (the collection's stored chroma or the
        matching chroma); query chroma is computed with the same.
    """

    Y: np.ndarray
    offsets: np.ndarray
    recordings: list
    feature_rate: float
    chroma_rate: float
    match: AudioMatchConfig
    chroma_config: dict = field(default_factory=dict)
    _spectrum: np.ndarray | None = field(default=None, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.recordings)

    @property
    def window(self) -> int:
        return self.match.window

    @property
    def downsample(self) -> int:
        return self.match.downsample

    @property
    def ids(self) -> np.ndarray:
        """Recording ids, shape (n_recordings,), int64."""
        return np.asarray([r.id for r in self.recordings], dtype=np.int64)

    def index_of(self, frame: int) -> int:
        """Recording index of a database row."""
        return int(np.searchsorted(self.offsets, frame, side="right") - 1)

    def spectrum(self) -> np.ndarray:
        """``np.fft.rfft(Y, axis=1)`` (T, 7) complex, computed once (for diagonal matching over all shifts)."""
        if self._spectrum is None:
            self._spectrum = np.fft.rfft(self.Y.astype(np.float64), axis=1)
        return self._spectrum

    def without(self, recording_ids) -> AudioDatabase:
        """A database without some recordings (views of the kept rows; the cached spectrum is sliced too)."""
        drop = {int(i) for i in recording_ids}
        keep = [i for i, r in enumerate(self.recordings) if r.id not in drop]
        if len(keep) == len(self.recordings):
            return self
        if not keep:
            raise InputError("collection: every recording is excluded")
        rows = np.concatenate([np.arange(self.offsets[i], self.offsets[i + 1]) for i in keep])
        offsets = np.cumsum([0] + [int(self.offsets[i + 1] - self.offsets[i]) for i in keep]).astype(np.int64)
        return AudioDatabase(
            Y=np.ascontiguousarray(self.Y[rows]),
            offsets=offsets,
            recordings=[self.recordings[i] for i in keep],
            feature_rate=self.feature_rate,
            chroma_rate=self.chroma_rate,
            match=self.match,
            chroma_config=self.chroma_config,
            _spectrum=None if self._spectrum is None else self._spectrum[rows],
        )

    def recording_features(self, i: int) -> np.ndarray:
        """CENS of recording ``i`` as (12, M)."""
        return self.Y[self.offsets[i] : self.offsets[i + 1]].T


def cache_dir() -> str:
    """Folder of cached matching chroma: ``$MIRSEARCH_CACHE/matching`` or ``~/.cache/mirsearch/matching``."""
    root = os.environ.get("MIRSEARCH_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "mirsearch")
    return os.path.join(root, "matching")


def _matching_features(rec, config: dict) -> tuple[np.ndarray, float]:
    """Matching chroma of a catalogued recording, from the cache or computed from its audio file (and cached)."""
    from mirsearch.audio import SR, load_audio
    from mirsearch.features.registry import config_key

    path = os.path.join(cache_dir(), f"{rec.sha1}_{config_key(config)}.npy")
    if os.path.isfile(path):
        return np.load(path, allow_pickle=False), float(config["feature_rate"])
    y, sr = load_audio(rec.path, sr=SR)
    C, rate = matching_chroma(y, sr=sr, config=config)
    atomic_save_npy(path, C)
    return C, rate


def audio_database(collection, config: AudioMatchConfig = PASSAGE_MATCH, *, matching: dict | None = None):
    """The collection's CENS database for ``config``, built once per collection generation (a derived view).

    Parameters as in :func:`prepare_database`; only the CENS parameters of ``config`` (``features``,
    ``window``, ``downsample``) name the view.
    """
    chroma = (matching or matching_config()) if config.features == "matching" else None
    key = ("audio_database", config.features, config.window, config.downsample, _config_key(chroma))
    return collection.views.get(key, lambda: prepare_database(collection, config, matching=chroma))


def _config_key(config: dict | None) -> str | None:
    from mirsearch.features.registry import config_key

    return None if config is None else config_key(config)


def prepare_database(
    collection, config: AudioMatchConfig = PASSAGE_MATCH, *, exclude=(), matching: dict | None = None
) -> AudioDatabase:
    """CENS of all recordings of a collection.

    Parameters
    ----------
    collection : Collection
        Anything with ``recordings()``, ``feature_kinds`` and ``load_features(recording_id, kind)``.
    config : AudioMatchConfig
        ``features``: a stored kind (``"chroma"``: CENS derived from the collection's stored chroma, no
        audio decoding) or ``"matching"``: CENS of the *matching chroma* (pitch bands
        :data:`~mirsearch.features.matching_chroma.MATCHING_MIDI_RANGE` only), computed from each
        recording's audio file on first use and cached under :func:`cache_dir` by content hash; more robust
        to pitch shifts, band limiting and noise (docs/benchmarks.md), but the first use decodes every
        recording. ``window`` and ``downsample``: the CENS parameters.
    exclude : iterable of int
        Recording ids left out.
    matching : dict, optional
        Configuration of the matching chroma (:func:`~mirsearch.features.matching_chroma.matching_config`;
        default parameters when omitted).

    Returns
    -------
    AudioDatabase
    """
    from mirsearch.features.registry import feature_config

    features = config.features
    kinds = list(collection.feature_kinds)
    if features != "matching" and features not in kinds:
        raise ParameterError(f"features={features!r} must be 'matching' or a stored kind ({', '.join(kinds)})")
    chroma = (matching or matching_config()) if features == "matching" else None
    excluded = {int(i) for i in exclude}
    stored_keys = _stored_keys(collection, features) if features in CHROMA_KINDS else {}
    parts, kept, rate = [], [], None
    for rec in collection.recordings():
        if rec.id in excluded:
            continue
        try:
            C, r = collection.load_features(rec.id, features) if chroma is None else _matching_features(rec, chroma)
        except Exception as exc:  # a recording without features is skipped, not fatal
            log.warning("recording %s: no %s features (%s)", rec.id, features, exc)
            continue
        C = np.asarray(C, dtype=np.float32)
        if C.shape[1] == 0:
            continue
        if rate is not None and abs(r - rate) > 1e-9:
            raise ParameterError(f"mixed chroma rates in the collection ({r} and {rate} Hz)")
        rate = float(r)
        if stored_keys:
            _check_current(collection, rec, stored_keys, features, rate)
        parts.append(unit_columns(config.cens(C, feature_rate=rate)))
        kept.append(rec)
    if not parts:
        raise InputError(f"collection: no recordings with {features} features (run 'mirsearch index')")
    offsets = np.cumsum([0] + [p.shape[0] for p in parts]).astype(np.int64)
    Y = np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)
    return AudioDatabase(
        Y=Y,
        offsets=offsets,
        recordings=kept,
        feature_rate=config.frame_rate(rate),
        chroma_rate=rate,
        match=config,
        chroma_config=chroma if chroma is not None else feature_config(features, feature_rate=rate),
    )


def _stored_keys(collection, kind: str) -> dict:
    """Configuration key of each recording's stored ``kind`` ({} when the collection does not say)."""
    catalog = getattr(collection, "catalog", None)
    if catalog is None or not hasattr(catalog, "features"):
        return {}
    return {rid: entry.config_key for rid, entry in catalog.features(kind).items()}


def stored_is_current(collection, kind: str) -> bool:
    """Whether every stored array of ``kind`` comes from the current recipe of that kind (its configuration key,
    :func:`~mirsearch.features.registry.feature_config`, e.g. ``"chroma_upper"`` after a change of
    :data:`~mirsearch.features.matching_chroma.UPPER_MIDI_LOW` or its version); memoised per collection generation.
    A stale kind is re-extracted by the next ``mirsearch index`` run (the configuration key differs)."""
    from mirsearch.features.registry import config_key, feature_config

    def check() -> bool:
        current = config_key(feature_config(kind, feature_rate=float(getattr(collection, "feature_rate", 10.0))))
        return all(key == current for key in _stored_keys(collection, kind).values())

    views = getattr(collection, "views", None)
    return check() if views is None else views.get(("stored_is_current", kind), check)


def _check_current(collection, rec, stored_keys: dict, kind: str, rate: float) -> None:
    """Stored chroma must come from the current recipe of its kind: query chroma is computed with it."""
    from mirsearch.features.registry import config_key, feature_config

    key = stored_keys.get(rec.id)
    if key is not None and key != config_key(feature_config(kind, feature_rate=rate)):
        root = getattr(collection, "root", "collection")
        raise InputError(
            f"{root}: the stored {kind} of {os.path.basename(rec.path)} comes from another chroma configuration "
            f"than the current one (queries would not be comparable); run 'mirsearch index' on the collection"
        )


__all__ = ["AudioDatabase", "audio_database", "cache_dir", "prepare_database", "stored_is_current"]
