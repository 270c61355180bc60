"""Describing recordings: speech / music segmentation (:mod:`mirsearch.describe.segment`).

Submodules are imported explicitly so that importing this package stays cheap.
"""
