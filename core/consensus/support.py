"""Support per sentence: for each claim of one answer, which other answers say something close
to it (their best-matching sentence is at least `SUPPORTED` alike), and the claims that only
one answer made.

Sentence embeddings see the subject more than the particulars: "water boils at 100 °C" and
"… at 90 °C" score 0.97, "the capital of France is Paris" and "… is Lyon" 0.75. So two
sentences whose key terms (numbers and capitalised names) conflict, each naming one the other
does not, never support each other, however alike they read. A sentence that only adds a
detail ("… in 1991") does not conflict.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# Sentence pairs from the built-in embedder: restatements of one claim score 0.77 to 0.97, the
# same subject with a different claim 0.6 to 0.75 ("the capital is Paris" / "… is Lyon"),
# unrelated sentences under 0.3.
SUPPORTED = 0.7
_TERM = re.compile(r"\d+(?:[.,]\d+)*|\b[A-Z][\w+#-]*")
_SENTENCE_STARTERS = (  # capitalised only because they start a sentence
    "a an and as at but by for from how if in it its no not of on or so the then there these "
    "this those to use when where which while with yes you your i we they he she"
)
_NOT_NAMES = frozenset(_SENTENCE_STARTERS.split())
MAX_UNIQUE = 12  # claims only one model made, most distinct first


@dataclass(frozen=True, slots=True)
class SentenceSupport:
    text: str
    supporters: tuple[str, ...]  # the other models whose answers say something close to it
    best: float  # the closest match found in any other answer


@dataclass(frozen=True, slots=True)
class UniqueClaim:
    model: str
    text: str
    best: float  # how close the nearest sentence of any other answer came


@dataclass(frozen=True, slots=True)
class Claims:
    """One answer's sentences, their unit vectors (an (n, d) array, rows in order) and each
    sentence's key terms (read once, when the answer arrives)."""

    sentences: tuple[str, ...]
    vectors: Any
    terms: tuple[frozenset[str], ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "terms", tuple(key_terms(s) for s in self.sentences))


# (model, other model) -> for each of model's sentences, its best match in the other's answer
Matches = Callable[[str, str], Any]


def key_terms(sentence: str) -> frozenset[str]:
    """Numbers and capitalised names, with possessives and thousands separators dropped."""
    terms = (t.replace(",", "").removesuffix("'s") for t in _TERM.findall(sentence))
    return frozenset(t for t in terms if t.lower() not in _NOT_NAMES)


def conflict(mine: frozenset[str], theirs: frozenset[str]) -> bool:
    return bool(mine - theirs) and bool(theirs - mine)


def best_matches(claims: Claims, other: Claims) -> Any:
    """For each sentence of ``claims``, its highest similarity to any sentence of ``other``."""
    import numpy as np

    if not claims.sentences:
        return np.zeros(0)
    if not other.sentences:
        return np.zeros(len(claims.sentences))
    scores = claims.vectors @ other.vectors.T
    best = np.zeros(len(claims.sentences))
    theirs = other.terms
    for i, mine in enumerate(claims.terms):
        for j in np.argsort(-scores[i]):  # the closest sentence whose terms do not conflict
            if not conflict(mine, theirs[j]):
                best[i] = max(0.0, float(scores[i, j]))
                break
    return best


def matcher(answers: Mapping[str, Claims]) -> Matches:
    """`best_matches` between two of ``answers``, computed afresh each time."""
    return lambda model, other: best_matches(answers[model], answers[other])


def support(
    model: str, answers: Mapping[str, Claims], matches: Matches | None = None
) -> tuple[SentenceSupport, ...]:
    """Each sentence of ``model``'s answer, with the other answers that support it.
    ``matches`` may serve pairs measured before (`ConsensusTracker` keeps them)."""
    matches = matches or matcher(answers)
    mine = answers[model]
    rows: list[list[tuple[str, float]]] = [[] for _ in mine.sentences]
    for name in answers:
        if name == model:
            continue
        for row, score in zip(rows, matches(model, name), strict=True):
            row.append((name, float(score)))
    return tuple(
        SentenceSupport(
            text,
            tuple(name for name, score in row if score >= SUPPORTED),
            round(max((score for _, score in row), default=0.0), 4),
        )
        for text, row in zip(mine.sentences, rows, strict=True)
    )


def unique_claims(
    answers: Mapping[str, Claims], matches: Matches | None = None
) -> tuple[UniqueClaim, ...]:
    """Sentences no other answer comes close to, with the model that said them (needs at
    least two answers; the most distinct first, at most `MAX_UNIQUE`)."""
    if len(answers) < 2:
        return ()
    matches = matches or matcher(answers)
    found: list[UniqueClaim] = []
    for model in answers:
        for item in support(model, answers, matches):
            if not item.supporters:
                found.append(UniqueClaim(model, item.text, item.best))
    found.sort(key=lambda claim: claim.best)
    return tuple(found[:MAX_UNIQUE])


def answer_vector(claims: Claims, weights: Sequence[int]) -> Any:
    """One unit vector for a whole answer: its sentence vectors averaged, weighted by length."""
    import numpy as np

    weight = np.asarray(weights, dtype=np.float32)[:, None]
    mean = (claims.vectors * weight).sum(axis=0)
    return mean / max(float(np.linalg.norm(mean)), 1e-12)
