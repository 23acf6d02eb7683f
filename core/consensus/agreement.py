"""Agreement between whole answers, from their vectors: the similarity matrix, one overall
score, the medoid and the outliers. Pure functions over an (n, d) array of unit vectors.

Similarity is cosine, clipped to [0, 1] (a negative cosine means "unrelated", not "opposed").
The overall agreement is the mean similarity over all pairs. It measures how alike the answers
are, never whether they are right: models can agree on the same mistake.

An answer is an outlier when it is far from the others *relative to how close the others are
to each other*: its leave-one-out gap (the mean similarity among the other answers, minus its
own mean similarity to them) is at least `OUTLIER_GAP`. Statistical rules (z-scores, IQR)
never fire on three points; the gap does, and it is zero when every answer is equally alike,
however alike. Fewer than half the answers can be outliers (the largest gaps win), so with two
answers there are none: nothing says which of the two is the odd one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

# Calibrated on the built-in embedder (all-MiniLM-L6-v2): paraphrases of one answer are 0.85 to
# 0.9 alike, the same answer with a contradicting fact about 0.7, unrelated text about 0.
OUTLIER_GAP = 0.15


@dataclass(frozen=True, slots=True)
class Agreement:
    similarity: tuple[tuple[float, ...], ...]  # n x n, in the order the answers were given
    score: float  # mean pairwise similarity, 0..1
    medoid: int  # index of the answer with the highest mean similarity to the others
    mean_similarity: tuple[float, ...]  # each answer's mean similarity to the others
    gaps: tuple[float, ...]  # each answer's leave-one-out gap (see the module docstring)
    outliers: tuple[int, ...]  # indexes, in the order given


def similarity_matrix(vectors: Any) -> Any:
    import numpy as np

    matrix = np.clip(vectors @ vectors.T, 0.0, 1.0)
    np.fill_diagonal(matrix, 1.0)
    return matrix


def measure(vectors: Any) -> Agreement:
    """The figures for ``vectors`` (at least two rows, unit length)."""
    import numpy as np

    count = len(vectors)
    if count < 2:
        raise ValueError("agreement needs at least two answers")
    matrix = similarity_matrix(vectors)
    off = matrix.sum(axis=1) - 1.0  # each row without its diagonal
    mean = off / (count - 1)
    pairs = (matrix.sum() - count) / 2
    score = float(pairs / (count * (count - 1) / 2))
    gaps = _gaps(matrix, off, count)
    # ties go to the earlier answer: the order is the order answers arrived
    medoid = int(np.argmax(np.round(mean, 6)))
    return Agreement(
        similarity=tuple(tuple(round(float(x), 4) for x in row) for row in matrix),
        score=round(score, 4),
        medoid=medoid,
        mean_similarity=tuple(round(float(m), 4) for m in mean),
        gaps=tuple(round(g, 4) for g in gaps),
        outliers=_outliers(gaps, medoid),
    )


def _gaps(matrix: Any, off: Any, count: int) -> list[float]:
    if count < 3:
        return [0.0] * count
    total = (matrix.sum() - count) / 2  # the sum over all pairs
    gaps = []
    for i in range(count):
        own = off[i] / (count - 1)
        rest_pairs = (count - 1) * (count - 2) / 2
        rest = (total - off[i]) / rest_pairs
        gaps.append(float(rest - own))
    return gaps


def _outliers(gaps: Sequence[float], medoid: int) -> tuple[int, ...]:
    allowed = (len(gaps) - 1) // 2
    ranked = sorted(
        (i for i, gap in enumerate(gaps) if gap >= OUTLIER_GAP and i != medoid),
        key=lambda i: -gaps[i],
    )
    return tuple(sorted(ranked[:allowed]))
