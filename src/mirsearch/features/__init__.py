"""Feature extraction: audio chroma and CENS, symbolic chroma, HCQT, learned chroma."""
