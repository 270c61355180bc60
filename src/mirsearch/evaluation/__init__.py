"""Evaluation: retrieval metrics and benchmarks on mirsearch datasets."""
