"""Hybrid retrieval: vector similarity (chromadb) and BM25 (SQLite FTS5), fused by rank.

Reciprocal rank fusion scores a chunk ``sum(1 / (RRF_K + rank))`` over the rankings it appears
in (ranks from 1; Cormack et al. 2009; LangChain's EnsembleRetriever uses the same c = 60). It
needs no score calibration between BM25 and cosine, which live on unrelated scales. The score
shown to people is the chunk's cosine similarity to the question, which is comparable across
questions; ``min_score`` filters on it, except for the keyword index's best hit, which names a
word of the question exactly (stop words never match) and is kept whatever its similarity.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

RRF_K = 60
Mode = Literal["hybrid", "vector", "keyword"]
Key = TypeVar("Key", bound=Hashable)


@dataclass(frozen=True, slots=True)
class Ranked:
    id: str
    fused: float
    similarity: float
    keyword_rank: int | None  # 1 = the keyword index's best hit


def fuse(rankings: Sequence[Sequence[Key]], k: int = RRF_K) -> list[tuple[Key, float]]:
    """Ids by fused score, best first; ties keep first-seen order (stable)."""
    scores: dict[Key, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(dict.fromkeys(ranking), start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda pair: -pair[1])


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


def rank(
    vector_hits: Sequence[tuple[str, float]],
    keyword_hits: Sequence[str],
    similarity_of: dict[str, float],
    *,
    top_k: int,
    min_score: float,
    mode: Mode = "hybrid",
) -> list[Ranked]:
    """Fuse the two rankings (``vector_hits`` as (id, similarity), best first) and filter.

    ``similarity_of`` gives the cosine similarity of keyword hits the vector search missed.
    """
    similarity = {**similarity_of, **dict(vector_hits)}
    keyword_rank = {item: r for r, item in enumerate(keyword_hits, start=1)}
    rankings: list[Sequence[str]] = []
    if mode in ("hybrid", "vector"):
        rankings.append([item for item, _ in vector_hits])
    if mode in ("hybrid", "keyword"):
        rankings.append(keyword_hits)
    out: list[Ranked] = []
    for item, fused in fuse(rankings):
        sim = similarity.get(item, 0.0)
        kw = keyword_rank.get(item)
        if sim < min_score and not (kw == 1 and mode != "vector"):
            continue
        out.append(Ranked(item, fused, sim, kw))
        if len(out) == top_k:
            break
    return out
