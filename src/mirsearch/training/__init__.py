"""Training of the models in :mod:`mirsearch.models` (nothing on the search path imports this package).

- :mod:`mirsearch.training.chroma`: the chroma network's training loop (:func:`~mirsearch.training.chroma.train`,
  :class:`~mirsearch.training.chroma.TrainOptions`, the HCQT cache);
- :mod:`mirsearch.training.data`: training segments from a dataset manifest;
- :mod:`mirsearch.training.losses`: CTC, linear, strong and soft-DTW losses;
- :mod:`mirsearch.training.ctc`, :mod:`mirsearch.training.softdtw`: readable CTC and soft-DTW;
- :mod:`mirsearch.training.embedding`: the shingle embedding's triplet training.

Submodules are imported explicitly so that importing this package does not import torch.
"""
