"""The consensus of one question, kept up to date as answers arrive.

Each answer is embedded once, sentence by sentence (its first `MAX_CLAIMS`), when it finishes;
its whole-answer vector is the length-weighted mean of those sentence vectors (a long answer
chunked and averaged), so the answer is read once and support needs no second pass. Everything
after that (matrix, medoid, outliers, support) is arithmetic over cached vectors: the last
answer costs its own embedding and almost nothing else.

`add` embeds, so it blocks: call it from a worker thread. A retried model's new answer
replaces its old one (the tracker belongs to the turn, not to one fan-out).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from core.consensus.agreement import measure
from core.consensus.records import UNAVAILABLE, Claim, Consensus, Support
from core.consensus.sentences import split_sentences
from core.consensus.support import Claims, answer_vector, best_matches, support, unique_claims
from core.store.embedder import Embedder

WHOLE_ANSWER_CHARS = 4000  # an answer with no sentence (only code): its start stands for it
# The claims measured of one answer, from its start: a long essay has a few hundred, while a
# runaway answer (megabytes, cut at max_answer_chars) would have tens of thousands, minutes of
# embedding and a pairwise match matrix of gigabytes, holding up every answer's consensus.
MAX_CLAIMS = 200


class ConsensusTracker:
    def __init__(self, embedder: Embedder, asked: Sequence[str]) -> None:
        self._embedder = embedder
        self._asked = tuple(asked)
        self._lock = threading.Lock()
        self._claims: dict[str, Claims] = {}
        self._vectors: dict[str, Any] = {}
        self._missing: dict[str, str] = {}
        self._texts: dict[str, str] = {}
        self._matches: dict[tuple[str, str], Any] = {}  # (model, other) -> `best_matches`
        self._broken: str | None = None
        self._current = Consensus(self._asked, (), reason="no answer yet")

    @property
    def current(self) -> Consensus:
        return self._current

    def answers(self) -> list[tuple[str, str]]:
        """The measured answers as (model, text), in the order asked."""
        with self._lock:
            return [(m, self._texts[m]) for m in self._asked if m in self._texts]

    def unavailable(self, reason: str) -> Consensus:
        """The embedder cannot run: no figures for this question, and the reason why."""
        with self._lock:
            self._broken = f"{UNAVAILABLE}: {reason}"
            self._current = Consensus(self._asked, (), reason=self._broken)
            return self._current

    def add(self, model: str, text: str) -> Consensus:
        """Measure ``model``'s finished answer in; an empty answer counts as missing."""
        if not text.strip():
            return self.drop(model, "failed")
        if self._broken:
            return self._current
        if len(self._asked) < 2:  # nothing to compare with: no need to load the embedder
            with self._lock:
                self._texts[model] = text
                self._current = Consensus(
                    self._asked,
                    (),
                    reason="one model was asked: agreement needs at least two answers",
                )
                return self._current
        claims, vector = self._embed(text)
        with self._lock:
            self._forget(model)
            self._claims[model] = claims
            self._vectors[model] = vector
            self._texts[model] = text
            self._missing.pop(model, None)
            return self._update()

    def drop(self, model: str, state: str) -> Consensus:
        """``model`` failed or was cancelled: it is left out, and the figures say so."""
        with self._lock:
            self._missing[model] = state
            self._forget(model)
            self._claims.pop(model, None)
            self._vectors.pop(model, None)
            self._texts.pop(model, None)
            return self._current if self._broken else self._update()

    def _forget(self, model: str) -> None:
        """Drop the sentence matches measured against ``model``'s previous answer."""
        self._matches = {k: v for k, v in self._matches.items() if model not in k}

    def _match(self, model: str, other: str) -> Any:
        key = (model, other)
        if key not in self._matches:
            self._matches[key] = best_matches(self._claims[model], self._claims[other])
        return self._matches[key]

    def _embed(self, text: str) -> tuple[Claims, Any]:
        import numpy as np

        sentences = split_sentences(text)[:MAX_CLAIMS]
        if not sentences:
            (vector,) = self._embedder.embed([text[:WHOLE_ANSWER_CHARS]])
            return Claims((), np.zeros((0, len(vector)), dtype=np.float32)), np.asarray(vector)
        vectors = np.asarray(self._embedder.embed(sentences), dtype=np.float32)
        claims = Claims(tuple(sentences), vectors)
        return claims, answer_vector(claims, [len(s.split()) for s in sentences])

    def _update(self) -> Consensus:
        import numpy as np

        models = tuple(m for m in self._asked if m in self._vectors)
        missing = tuple((m, self._missing[m]) for m in self._asked if m in self._missing)
        if len(models) < 2:
            settled = len(models) + len(missing) == len(self._asked)
            if not models:
                reason = "no model answered" if settled else "no answer yet"
            else:
                reason = (
                    "only one model answered: agreement needs at least two answers"
                    if settled
                    else "one answer so far: agreement needs at least two"
                )
            self._current = Consensus(self._asked, models, missing, reason=reason)
            return self._current
        figures = measure(np.stack([self._vectors[m] for m in models]))
        medoid = models[figures.medoid]
        answers = {m: self._claims[m] for m in models}
        self._current = Consensus(
            asked=self._asked,
            models=models,
            missing=missing,
            similarity=figures.similarity,
            agreement=figures.score,
            medoid=medoid,
            outliers=tuple(models[i] for i in figures.outliers),
            support=tuple(
                Support(s.text, s.supporters) for s in support(medoid, answers, self._match)
            ),
            unique=tuple(Claim(c.model, c.text) for c in unique_claims(answers, self._match)),
        )
        return self._current
