"""Training examples of the tagger built on the fly: log-mel augmentation and mixtures of single-instrument stems.

- :func:`augment`: gain, spectral tilt, a smooth random equaliser, a random low-pass roll-off and a shift of up to
  ``max_shift`` mel bands (natural-log log-mel units): the kind of differences between SoundFonts, rooms and
  recording chains that an instrument family must survive.
- :func:`mix_logmel`: the log-mel of a sum of signals from their log-mels (magnitudes added in the mel domain,
  phases ignored), each at its own gain.
- :func:`stretch`: a sample transposition (+-semitones, formants moved with the pitch, as a SoundFont stretches
  one sample over many keys) by resampling the mel axis; :func:`dynamics`: the frames' loudness contour sharpened
  or flattened (shorter or longer attacks and decays).
- :class:`StemMixer`: mixtures of 1-4 stems of :mod:`mirsearch.datasets.tag_stems` (labels: the union of their
  families, the ensemble size) and of a stem added to an ensemble clip (labels: the union of the families). Tags a
  mixture cannot know (mode, metre, tempo, era, region, tune type; the ensemble size of a clip + stem mixture)
  get a loss weight 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mirsearch.describe.tag_vocabulary import FAMILIES, TAG_NAMES

#: log(mel + offset) offset of the tagger's front end
LOG_OFFSET = 1e-3
_FAMILY_COLUMNS = np.array([TAG_NAMES.index(f) for f in FAMILIES])
_SIZE_TAGS = ("solo", "duo", "chamber", "orchestra")


def augment(x: np.ndarray, rng: np.random.Generator, *, eq: bool = True, max_shift: int = 2,
            reverb: float = 0.0) -> np.ndarray:  # fmt: skip
    """A randomly coloured copy of a log-mel crop ``(n_mels, n_frames)`` (the input is not modified).

    Gain +-1.5 plus :func:`colour` (tilt, equaliser, low-pass, reverb with probability ``reverb``, mel shift).
    """
    y = colour(x, rng, eq=eq, max_shift=max_shift, reverb=reverb)
    return (y + np.float32(rng.uniform(-1.5, 1.5))).astype(np.float32)


def colour(x: np.ndarray, rng: np.random.Generator, *, eq: bool = True, max_shift: int = 2,
           reverb: float = 0.0, linear: bool = False) -> np.ndarray:  # fmt: skip
    """A recoloured copy of a log-mel crop ``(n_mels, n_frames)`` at the same overall level.

    Tilt +-0.5 across the bands; with ``eq``: three Gaussian bumps in band space (sd 0.35 each, widths 3-15 bands)
    and, one time in three, a low-pass roll-off from a band between 55 % and 95 % of the bands (slope 0.15-0.6 per
    band) towards the floor ``log(offset)``; with probability ``reverb`` a room tail (:func:`smear`); a shift of up
    to ``max_shift`` bands (edges repeated). Applied to each stem of a mixture, it gives every instrument its own
    "SoundFont"; applied to the whole crop, its own recording chain. ``linear``: the curve multiplies the
    magnitudes (silence stays silent, as for a stem that is mixed afterwards) instead of shifting the log-mel.
    """
    n_mels = x.shape[0]
    bands = np.arange(n_mels, dtype=np.float32)
    curve = rng.uniform(-0.5, 0.5) * np.linspace(-1, 1, n_mels, dtype=np.float32)
    if eq:
        for _ in range(3):
            c, w = rng.uniform(0, n_mels), rng.uniform(3, 15)
            curve = curve + rng.normal(0, 0.35) * np.exp(-0.5 * ((bands - c) / w) ** 2)
    if linear:
        m = np.maximum(np.exp(np.asarray(x, np.float32)) - LOG_OFFSET, 0.0)
        y = np.log(m * np.exp(curve)[:, None].astype(np.float32) + LOG_OFFSET).astype(np.float32)
    else:
        y = np.asarray(x, np.float32) + curve[:, None].astype(np.float32)
    if eq and rng.random() < 1 / 3:
        cut = int(rng.uniform(0.55, 0.95) * n_mels)
        drop = rng.uniform(0.15, 0.6) * np.maximum(bands - cut, 0)
        y = np.maximum(y - drop[:, None].astype(np.float32), np.float32(np.log(LOG_OFFSET)))
    if reverb and rng.random() < reverb:
        y = smear(y, decay=float(rng.uniform(0.5, 0.93)), wet=float(rng.uniform(0.2, 1.0)))
    shift = int(rng.integers(-max_shift, max_shift + 1)) if max_shift else 0
    if shift > 0:
        y = np.concatenate([np.repeat(y[:1], shift, axis=0), y[:-shift]], axis=0)
    elif shift < 0:
        y = np.concatenate([y[-shift:], np.repeat(y[-1:], -shift, axis=0)], axis=0)
    return y.astype(np.float32)


def smear(x: np.ndarray, *, decay: float, wet: float) -> np.ndarray:
    """A log-mel crop with an exponential room tail: magnitudes ``m + wet (1 - decay) sum_k decay^k m[t - k]``
    (``decay`` per frame in [0, 1), e.g. 0.9 is a 0.2 s time constant at 20 ms frames)."""
    from scipy.signal import lfilter

    m = np.maximum(np.exp(np.asarray(x, np.float64)) - LOG_OFFSET, 0.0)
    tail = lfilter([1.0 - decay], [1.0, -decay], m, axis=1)
    return np.log(m + wet * tail + LOG_OFFSET).astype(np.float32)


def mix_logmel(parts: list[np.ndarray], gains_db: np.ndarray) -> np.ndarray:
    """Log-mel of the sum of signals given their log-mels ``log(mel + offset)`` (same shape) and gains in dB."""
    total = np.zeros_like(parts[0], dtype=np.float32)
    for x, g in zip(parts, gains_db, strict=True):
        total += np.maximum(np.exp(np.asarray(x, np.float32)) - LOG_OFFSET, 0.0) * np.float32(10 ** (g / 20))
    return np.log(total + LOG_OFFSET).astype(np.float32)


def band_centres(n_mels: int, *, fmin: float, fmax: float) -> np.ndarray:
    """Centre frequencies (Hz) of the ``n_mels`` Slaney mel bands of a log-mel front end."""
    import librosa

    return librosa.mel_frequencies(n_mels=n_mels + 2, fmin=fmin, fmax=fmax, htk=False)[1:-1]


def stretch(x: np.ndarray, semitones: float, *, band_hz: np.ndarray) -> np.ndarray:
    """A log-mel crop ``(n_mels, n_frames)`` transposed by ``semitones``: band ``b`` takes the (interpolated) value
    at ``band_hz[b] / 2^(semitones/12)`` (the floor ``log(offset)`` outside the bands). The whole spectrum moves,
    formants included, as when a SoundFont plays one sample over a range of keys."""
    src = np.log(np.asarray(band_hz, np.float64) / 2 ** (semitones / 12))
    pos = np.interp(src, np.log(band_hz), np.arange(len(band_hz)), left=-1.0, right=-1.0)
    i0 = np.clip(np.floor(pos).astype(int), 0, len(band_hz) - 1)
    i1 = np.minimum(i0 + 1, len(band_hz) - 1)
    a = (pos - i0).astype(np.float32)[:, None]
    x = np.asarray(x, np.float32)
    y = x[i0] * (1 - a) + x[i1] * a
    y[pos < 0] = np.float32(np.log(LOG_OFFSET))
    return y.astype(np.float32)


def dynamics(x: np.ndarray, gamma: float) -> np.ndarray:
    """A log-mel crop whose frame loudness contour ``E_t`` (sum of magnitudes) is raised to ``1 + gamma``: gamma > 0
    makes notes more percussive (quiet frames quieter), gamma < 0 more sustained; the loudest frame is unchanged
    (frame gains between 0.01^gamma and 1; magnitudes, so silence stays silent)."""
    m = np.maximum(np.exp(np.asarray(x, np.float32)) - LOG_OFFSET, 0.0)
    e = m.sum(axis=0)
    g = np.clip(e / max(float(e.max()), 1e-9), 1e-2, 1.0) ** gamma
    return np.log(m * g[None, :].astype(np.float32) + LOG_OFFSET).astype(np.float32)


def random_crop(X: np.ndarray, i: int, crop: int, rng: np.random.Generator) -> np.ndarray:
    """A random ``crop``-frame window of clip ``i`` of ``X (n_clips, n_mels, n_frames)`` as float32 (padded with the
    floor when the clip is shorter)."""
    n = X.shape[2]
    s = int(rng.integers(0, max(n - crop, 0) + 1))
    x = np.asarray(X[i, :, s : s + crop], np.float32)
    if x.shape[1] < crop:
        x = np.pad(x, ((0, 0), (0, crop - x.shape[1])), constant_values=np.log(LOG_OFFSET))
    return x


@dataclass
class StemMixer:
    """Mixtures of stems ``S (n_stems, n_mels, n_frames)`` with labels ``Ys (n_stems, K)`` (one family each).

    ``sizes``: probabilities of mixing 1, 2, 3, ... stems; ``gain_db``: a stem's gain is uniform in
    ``[-gain_db, 0]`` dB (so a family may be quiet inside the mixture). A mixture's stems are of distinct families,
    each family equally likely whatever its number of stems. ``stem_colour``: each stem gets its own
    :func:`colour` (equaliser, tilt, mel shift up to ``stem_shift`` bands, a room tail with probability
    ``stem_reverb``) before mixing, so the families of one mixture do not share one SoundFont's sound.
    ``stem_stretch``: half of the stems transposed by up to that many semitones (:func:`stretch`, needs ``band_hz``);
    ``stem_dynamics``: half of the stems get :func:`dynamics` with gamma uniform in ``[-0.5, 1] * stem_dynamics``.
    """

    S: np.ndarray
    Ys: np.ndarray
    sizes: tuple = (0.2, 0.3, 0.3, 0.2)
    gain_db: float = 15.0
    stem_colour: bool = False
    stem_shift: int = 2
    stem_reverb: float = 0.25
    stem_stretch: float = 0.0
    """largest transposition of a stem (semitones; 0: none)"""
    stem_dynamics: float = 0.0
    """strength of the loudness-contour change of a stem (0: none)"""
    band_hz: np.ndarray | None = None
    """centre frequencies of the mel bands (:func:`band_centres`; needed by ``stem_stretch``)"""

    def _crop(self, i: int, crop: int, rng: np.random.Generator) -> np.ndarray:
        x = random_crop(self.S, i, crop, rng)
        if self.stem_stretch and rng.random() < 0.5:
            x = stretch(x, float(rng.uniform(-self.stem_stretch, self.stem_stretch)), band_hz=self.band_hz)
        if self.stem_dynamics and rng.random() < 0.5:
            x = dynamics(x, float(rng.uniform(-0.5, 1.0) * self.stem_dynamics))
        if self.stem_colour:
            x = colour(x, rng, max_shift=self.stem_shift, reverb=self.stem_reverb, linear=True)
        return x

    def _draw(self, k: int, rng: np.random.Generator) -> np.ndarray:
        """``k`` stems of ``k`` distinct families (families drawn uniformly among those with stems)."""
        fams = self.Ys[:, _FAMILY_COLUMNS]
        present = np.flatnonzero(fams.sum(axis=0) > 0)
        chosen = rng.choice(present, size=min(k, len(present)), replace=False)
        return np.array([int(rng.choice(np.flatnonzero(fams[:, f] > 0))) for f in chosen])

    def stems_only(self, n: int, crop: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(x (n, n_mels, crop), y (n, K), loss weights (n, K))`` of ``n`` stem mixtures."""
        K = self.Ys.shape[1]
        xs, ys, ws = [], np.zeros((n, K), np.float32), np.zeros((n, K), np.float32)
        for j in range(n):
            k = int(rng.choice(len(self.sizes), p=np.asarray(self.sizes) / np.sum(self.sizes))) + 1
            idx = self._draw(k, rng)
            k = len(idx)
            gains = -rng.uniform(0, self.gain_db, size=k)
            gains[int(rng.integers(k))] = 0.0
            xs.append(mix_logmel([self._crop(int(i), crop, rng) for i in idx], gains))
            ys[j] = self.Ys[idx].max(axis=0)
            ws[j, _FAMILY_COLUMNS] = 1.0
            size = "solo" if k == 1 else ("duo" if k == 2 else "chamber")
            for t in _SIZE_TAGS:
                ws[j, TAG_NAMES.index(t)] = 1.0
                ys[j, TAG_NAMES.index(t)] = float(t == size)
        return np.stack(xs), ys, ws

    def into_clips(self, X: np.ndarray, Y: np.ndarray, idx: np.ndarray, crop: int, rng: np.random.Generator):
        """``(x, y, loss weights)``: a random stem added to a crop of each clip ``idx`` of ``X`` (labels ``Y``)."""
        K = Y.shape[1]
        xs, ys, ws = [], np.zeros((len(idx), K), np.float32), np.zeros((len(idx), K), np.float32)
        for j, i in enumerate(idx):
            s = int(self._draw(1, rng)[0])
            gains = np.array([0.0, -rng.uniform(0, self.gain_db)]) if rng.random() < 0.5 else np.array([
                -rng.uniform(0, self.gain_db), 0.0])  # fmt: skip
            xs.append(mix_logmel([random_crop(X, int(i), crop, rng), self._crop(s, crop, rng)], gains))
            ys[j] = np.maximum(Y[i], self.Ys[s])
            ws[j, _FAMILY_COLUMNS] = 1.0
        return np.stack(xs), ys, ws


__all__ = [
    "LOG_OFFSET",
    "StemMixer",
    "augment",
    "band_centres",
    "colour",
    "dynamics",
    "mix_logmel",
    "random_crop",
    "smear",
    "stretch",
]
