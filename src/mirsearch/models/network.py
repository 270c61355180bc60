"""A small fully convolutional chroma network on HCQT input.

In the spirit of the deep salience network (Bittner et al., ISMIR 2017) as adapted for CTC-trained
chroma by Zalkow and Müller (ISMIR 2020), with far fewer parameters (about 40k):

==========  ==========================================  ==============================
layer       operation                                    output (channels, bins, frames)
==========  ==========================================  ==============================
input       HCQT, 6 harmonics, 3 bins / semitone         (6, 216, T)
conv1       15 x 3 (5 semitones x 3 frames), BN, ReLU    (16, 216, T)
pool        max over 3 bins (-> semitones), 2 frames     (16, 72, T / 2)
conv2       13 x 3 (an octave), BN, ReLU                 (32, 72, T / 2)
conv3       5 x 3, dilated 12 bins (+-2 octaves), ...    (32, 72, T / 2)
conv4       3 x 3, BN, ReLU                              (32, 72, T / 2)
conv5       5 x 3, dilated 12 bins, BN, ReLU             (32, 72, T / 2)
context     optional residual 3 x 3 blocks dilated in time (``time_context``, e.g. 4 and 8 frames: +-0.6 s)
pitch head  1 x 1 conv -> one logit per semitone; the 12 chroma logits are the log-sum-exp over
            the octaves of each pitch class (transposition equivariant by construction)
blank head  max over bins, 1 x 3 conv -> blank logit
output      log-softmax over 13 classes                  (13, T / 2)
==========  ==========================================  ==============================

Classes are the 12 pitch classes (index 0 = C) and the blank symbol at :data:`BLANK` = 12. The output
frame rate is half the input frame rate.
"""

from __future__ import annotations

import torch
from torch import nn

#: number of output classes: 12 chroma + blank
N_CLASSES = 13
#: index of the blank symbol (CTC)
BLANK = 12


class _ConvBlock(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: tuple[int, int], dilation: tuple[int, int] = (1, 1)):
        pad = ((kernel[0] - 1) // 2 * dilation[0], (kernel[1] - 1) // 2 * dilation[1])
        super().__init__(
            nn.Conv2d(c_in, c_out, kernel, padding=pad, dilation=dilation, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
        )


class ChromaNet(nn.Module):
    """HCQT -> per-frame log-probabilities over 12 chroma classes and blank.

    Parameters
    ----------
    n_harmonics : int
        HCQT channels (input).
    bins_per_semitone : int
        Frequency resolution of the input; the number of input bins must be a multiple of
        ``12 * bins_per_semitone`` and the first group of ``bins_per_semitone`` bins must be centred
        on a C.
    channels : int
        Width of the later layers (the first layer has ``channels // 2``).
    time_pool : int
        Temporal downsampling factor between input and output.
    time_context : sequence of int
        Time dilations (output frames) of extra residual 3 x 3 blocks after conv5 that widen the temporal
        context (a melody is followed through its neighbouring notes); empty (the default) for the original
        network. :func:`add_time_context` adds them to a trained network without changing its output.

    Notes
    -----
    ``forward(x)`` takes ``x`` of shape ``(batch, n_harmonics, n_bins, n_frames)`` and returns
    log-probabilities of shape ``(batch, 13, n_frames // time_pool)``.
    """

    def __init__(
        self,
        *,
        n_harmonics: int = 6,
        bins_per_semitone: int = 3,
        channels: int = 32,
        time_pool: int = 2,
        time_context: tuple[int, ...] | list[int] = (),
    ):
        super().__init__()
        self.bins_per_semitone = bins_per_semitone
        self.time_pool = time_pool
        c1 = channels // 2
        self.conv1 = _ConvBlock(n_harmonics, c1, (5 * bins_per_semitone, 3))
        self.pool = nn.MaxPool2d((bins_per_semitone, time_pool))
        self.conv2 = _ConvBlock(c1, channels, (13, 3))
        self.conv3 = _ConvBlock(channels, channels, (5, 3), dilation=(12, 1))
        self.conv4 = _ConvBlock(channels, channels, (3, 3))
        self.conv5 = _ConvBlock(channels, channels, (5, 3), dilation=(12, 1))
        # no module at all without blocks: the saved state (and so the model_id) of the original network is unchanged
        self.context = (
            nn.ModuleList(_ConvBlock(channels, channels, (3, 3), dilation=(1, int(d))) for d in time_context)
            if time_context
            else ()
        )
        self.pitch = nn.Conv2d(channels, 1, 1)
        self.blank = nn.Conv1d(channels, 1, 3, padding=1)

    def _logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Pitch logits (b, n_semitones // 12 * 12, t) and blank logits (b, 1, t)."""
        h = self.pool(self.conv1(x))
        h = self.conv2(h)
        h = self.conv3(h)
        h = h + self.conv4(h)
        h = h + self.conv5(h)
        for block in self.context:
            h = h + block(h)
        n_semitones = h.shape[2]
        pitch = self.pitch(h)[:, 0]  # (b, n_semitones, t)
        return pitch[:, : n_semitones // 12 * 12], self.blank(h.amax(dim=2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pitch, blank = self._logits(x)
        b, n, t = pitch.shape
        chroma = torch.logsumexp(pitch.reshape(b, n // 12, 12, t), dim=1)
        return torch.log_softmax(torch.cat([chroma, blank], dim=1), dim=1)

    def pitch_log_probs(self, x: torch.Tensor) -> torch.Tensor:
        """Log-probabilities over the semitones of the input range and blank (the last class), shape
        ``(batch, n_semitones + 1, n_frames // time_pool)``; semitone ``k`` is MIDI ``fmin + k`` (the input's
        lowest C). Summed over the octaves of each pitch class they are :meth:`forward`'s chroma classes: the
        network is the same, this view of it is what a target with the notes' registers (CTC over pitches)
        trains."""
        pitch, blank = self._logits(x)
        return torch.log_softmax(torch.cat([pitch, blank], dim=1), dim=1)


def fold_pitches(log_probs: torch.Tensor) -> torch.Tensor:
    """Chroma log-probabilities (b, 13, t) of :meth:`ChromaNet.pitch_log_probs` (b, 12 k + 1, t): each pitch
    class the log-sum-exp over its octaves, blank last."""
    b, n, t = log_probs.shape
    chroma = torch.logsumexp(log_probs[:, : n - 1].reshape(b, (n - 1) // 12, 12, t), dim=1)
    return torch.cat([chroma, log_probs[:, n - 1 :]], dim=1)


def add_time_context(trained: ChromaNet, dilations, *, gain: float = 0.01) -> ChromaNet:
    """A copy of ``trained`` with residual time-context blocks appended, initialised to almost nothing.

    Each new block ends in a batch norm whose scale is ``gain`` and whose shift is 0, so the new network's
    output equals the trained one's up to a perturbation of order ``gain`` (not exactly 0: a zero scale
    would stop every gradient at the ReLU) and fine-tuning starts from the trained model.

    Parameters
    ----------
    trained : ChromaNet
        Network without time-context blocks.
    dilations : sequence of int
        Time dilation of each new block (output frames).
    gain : float
        Initial batch-norm scale of the new blocks.

    Returns
    -------
    ChromaNet
        In eval mode.
    """
    if len(trained.context):
        raise ValueError("add_time_context: the network already has time-context blocks")
    channels = trained.conv2[0].out_channels
    net = ChromaNet(
        n_harmonics=trained.conv1[0].in_channels,
        bins_per_semitone=trained.bins_per_semitone,
        channels=channels,
        time_pool=trained.time_pool,
        time_context=tuple(int(d) for d in dilations),
    )
    missing, unexpected = net.load_state_dict(trained.state_dict(), strict=False)
    assert not unexpected and all(k.startswith("context.") for k in missing)
    with torch.no_grad():
        for block in net.context:
            block[1].weight.fill_(gain)
            block[1].bias.zero_()
    return net.eval()


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
