"""The audio input of the audio-sheet model: a log-compressed mel spectrogram at 20 frames per second.

Dorfer et al. (TISMIR 2018) feed 92 log-frequency bins at 20 frames per second (2.1 s = 42 frames); we use
92 mel bands from 30 Hz to 8 kHz of a 2048-point STFT at 22050 Hz with a hop of 1102 samples (20.01 Hz),
compressed with ``log1p(100 * power)`` and scaled to roughly unit range per excerpt-independent constant,
so the same frames serve every snippet cut from one recording.
"""

from __future__ import annotations

import numpy as np

from mirsearch.errors import ParameterError

SR = 22050
HOP_LENGTH = 1102
N_FFT = 2048
N_BANDS = 92
FMIN = 30.0
FMAX = 8000.0
#: frames per second of :func:`sheet_spectrogram`
FEATURE_RATE = SR / HOP_LENGTH


def sheet_spectrogram(y: np.ndarray, *, sr: int = SR) -> tuple[np.ndarray, float]:
    """Log mel spectrogram of a mono signal.

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,)
    sr : int
        Must be :data:`SR` (resample with ``mirsearch.audio.load_audio`` first).

    Returns
    -------
    S : np.ndarray, shape (92, n_frames), float32
    feature_rate : float
        Frames per second (:data:`FEATURE_RATE`).
    """
    import librosa

    if sr != SR:
        raise ParameterError(f"sr={sr}: the sheet spectrogram needs {SR} Hz audio")
    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 1:
        raise ParameterError(f"y shape {y.shape}: expected mono samples")
    peak = float(np.abs(y).max()) if y.size else 0.0
    if peak > 0:
        y = y / peak
    M = librosa.feature.melspectrogram(
        y=y, sr=SR, n_fft=N_FFT, hop_length=HOP_LENGTH, n_mels=N_BANDS, fmin=FMIN, fmax=FMAX, power=2.0
    )
    S = np.log1p(100.0 * M) / 5.0
    return S.astype(np.float32), FEATURE_RATE
