"""numpydoc blocks that many functions share, written once.

A docstring line that holds only ``{name}`` stands for the block ``DOC_BLOCKS[name]``; :func:`doc_blocks` fills
it in, indented like the placeholder, when the function is defined (``help()`` and the API docs show the whole
text)::

    @doc_blocks
    def pitch_features(y, *, sr, ...):
        '''Semitone-band energies of a signal.

        Parameters
        ----------
        {signal}
        n_fft : int
        '''
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable

#: the shared blocks, by name
DOC_BLOCKS = {
    "signal": """
        y : np.ndarray, shape (n_samples,)
            Mono signal.
        sr : int > 0
            Sample rate (Hz).
    """,
    "unit_chroma": """
        C : np.ndarray, shape (12, n_frames), float32
            Unit l2 norm per frame; ``n_frames = 1 + floor(duration * feature_rate)``.
        feature_rate : float
            Frame rate of ``C`` in Hz.
    """,
}


def fill_blocks(doc: str) -> str:
    """``doc`` with every line that holds only ``{name}`` replaced by ``DOC_BLOCKS[name]`` (KeyError if unknown)."""
    lines = []
    for line in doc.splitlines():
        text = line.strip()
        if len(text) > 2 and text[0] == "{" and text[-1] == "}" and text[1:-1].isidentifier():
            indent = line[: len(line) - len(line.lstrip())]
            block = textwrap.dedent(DOC_BLOCKS[text[1:-1]]).strip("\n")
            lines.extend(indent + b if b else b for b in block.splitlines())
        else:
            lines.append(line)
    return "\n".join(lines)


def doc_blocks(fn: Callable) -> Callable:
    """Decorator: fill the shared blocks into ``fn``'s docstring (see :func:`fill_blocks`)."""
    if fn.__doc__:  # None under python -OO
        fn.__doc__ = fill_blocks(fn.__doc__)
    return fn


__all__ = ["DOC_BLOCKS", "doc_blocks", "fill_blocks"]
