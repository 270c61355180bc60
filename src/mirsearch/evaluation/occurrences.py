"""Precision and recall of found occurrences against reference occurrences (score search benchmarks).

An occurrence is any hashable key that identifies it exactly (e.g. ``(score, onset tick, transposition)``); a
found occurrence is a true positive when its key is among the reference keys of the query.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence


def occurrence_counts(found: Collection, reference: Collection) -> dict:
    """``{"tp", "fp", "fn"}`` of one query (duplicates counted once)."""
    found, reference = set(found), set(reference)
    tp = len(found & reference)
    return {"tp": tp, "fp": len(found) - tp, "fn": len(reference) - tp}


def pooled_precision_recall(counts: Sequence[dict]) -> dict:
    """Precision, recall and F1 over the pooled counts of many queries.

    With nothing found precision is 1.0 (no false claim); with nothing to find recall is 1.0.
    """
    tp = sum(c["tp"] for c in counts)
    fp = sum(c["fp"] for c in counts)
    fn = sum(c["fn"] for c in counts)
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "tp": tp, "fp": fp, "fn": fn}


def span_matches(found: Sequence, reference: Sequence, *, min_overlap: float = 0.5, max_semitones: int = 2) -> list:
    """Which reference spans ``(where, start, end, transposition)`` a found span matches (see
    :func:`span_occurrence_counts`); ``found`` best first. Returns one bool per reference span."""
    used = [False] * len(reference)
    for where, start, end, shift in found:
        for k, (w, s, e, t) in enumerate(reference):
            if used[k] or w != where or abs(shift - t) > max_semitones:
                continue
            overlap = min(end, e) - max(start, s)
            if overlap >= min_overlap * max(1e-9, min(end - start, e - s)):
                used[k] = True
                break
    return used


def span_occurrence_counts(found: Sequence, reference: Sequence, *, min_overlap: float = 0.5,
                           max_semitones: int = 2) -> dict:  # fmt: skip
    """``{"tp", "fp", "fn"}`` of one query whose occurrences are spans ``(where, start, end, transposition)``.

    ``found`` is best first; each found span is a true positive when it overlaps a reference span of the same
    ``where`` not matched yet by at least ``min_overlap`` of the shorter of the two and their transpositions
    differ by at most ``max_semitones`` (a varied entry's transposition is ambiguous by a step); every other
    found span, a second one on an entry included, is a false positive.
    """
    tp = sum(span_matches(found, reference, min_overlap=min_overlap, max_semitones=max_semitones))
    return {"tp": tp, "fp": len(found) - tp, "fn": len(reference) - tp}


__all__ = ["occurrence_counts", "pooled_precision_recall", "span_matches", "span_occurrence_counts"]
