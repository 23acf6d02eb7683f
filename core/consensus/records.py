"""The consensus figures as frozen data: what the event stream, `--json`, history and the panel
share. No numpy here: these cross every layer."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

# Reasons the figures are missing that consumers tell apart from "too few answers"
UNAVAILABLE = "agreement unavailable"  # the embedder cannot run for this question
MEASURING = "measuring the answers…"  # an answer is in, its embedding not yet


@dataclass(frozen=True, slots=True)
class Support:
    text: str  # one sentence of the medoid answer
    models: tuple[str, ...]  # the other models whose answers say something close to it

    @property
    def count(self) -> int:
        return len(self.models)


@dataclass(frozen=True, slots=True)
class Claim:
    model: str
    text: str  # a sentence no other answer comes close to


@dataclass(frozen=True, slots=True)
class Consensus:
    """Agreement among the answers in so far. Models are in the order they were asked;
    ``similarity`` is over `models` (the successful answers), ``None`` entries never occur."""

    asked: tuple[str, ...]  # every model asked, in order
    models: tuple[str, ...]  # the answers measured, in the order of ``asked``
    missing: tuple[tuple[str, str], ...] = ()  # (model, "failed" | "cancelled"), not measured
    similarity: tuple[tuple[float, ...], ...] = ()
    agreement: float | None = None
    medoid: str | None = None
    outliers: tuple[str, ...] = ()
    support: tuple[Support, ...] = ()  # the medoid's sentences
    unique: tuple[Claim, ...] = ()
    reason: str | None = None  # why the figures are None

    @property
    def pending(self) -> tuple[str, ...]:
        settled = set(self.models) | {m for m, _ in self.missing}
        return tuple(m for m in self.asked if m not in settled)

    @property
    def progress(self) -> str:
        """ "3 of 5 answered" and what is missing, for a panel or a status line."""
        text = f"{len(self.models)} of {len(self.asked)} answered"
        for state in ("failed", "cancelled"):
            names = [m for m, why in self.missing if why == state]
            if names:
                text += f", {len(names)} {state} (not counted)"
        return text

    def to_json(self, order: tuple[str, ...] | None = None) -> dict[str, Any]:
        """The ``--json`` object; ``similarity`` is a matrix in ``order`` (default: ``asked``),
        ``null`` in the rows and columns of answers that were not measured."""
        order = order or self.asked
        index = {m: i for i, m in enumerate(self.models)} if self.similarity else {}
        matrix = [
            [
                self.similarity[index[a]][index[b]] if a in index and b in index else None
                for b in order
            ]
            for a in order
        ]
        return {
            "models": list(order),  # the rows and columns of ``similarity``
            "agreement": self.agreement,
            "medoid": self.medoid,
            "similarity": matrix if self.agreement is not None else None,
            "outliers": list(self.outliers),
            "support": [
                {"text": s.text, "count": s.count, "models": list(s.models)} for s in self.support
            ],
            "unique_claims": [{"model": c.model, "text": c.text} for c in self.unique],
            "answered": len(self.models),
            "missing": [{"model": m, "state": why} for m, why in self.missing],
            "reason": self.reason,
        }

    def to_dict(self) -> dict[str, Any]:
        """Every field, exactly (events on the wire, history); `from_dict` inverts it."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Consensus:
        return cls(
            asked=tuple(data["asked"]),
            models=tuple(data["models"]),
            missing=tuple((m, why) for m, why in data.get("missing", ())),
            similarity=tuple(tuple(row) for row in data.get("similarity", ())),
            agreement=data.get("agreement"),
            medoid=data.get("medoid"),
            outliers=tuple(data.get("outliers", ())),
            support=tuple(Support(s["text"], tuple(s["models"])) for s in data.get("support", ())),
            unique=tuple(Claim(c["model"], c["text"]) for c in data.get("unique", ())),
            reason=data.get("reason"),
        )
