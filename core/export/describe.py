"""Phrasing shared by the Markdown and HTML exports: timings, states, consensus, sources.

``context`` and ``consensus`` are JSON values whose exact shape belongs to later features, so
they are read leniently: known keys are used when present, anything else is shown as JSON.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from core.history.records import ResponseRecord

_TEXT_KEYS = ("text", "answer", "summary", "consensus")
_LABEL_KEYS = ("title", "name", "source", "path", "id")
_URL_KEYS = ("url", "uri", "href", "link")


@dataclass(frozen=True, slots=True)
class Source:
    label: str
    url: str | None = None
    excerpt: str | None = None


def duration(ms: float | None) -> str | None:
    if ms is None:
        return None
    return f"{ms:.0f} ms" if ms < 10_000 else f"{ms / 1000:.1f} s"


def timing_line(r: ResponseRecord) -> str:
    """``first token 120 ms · total 2.3 s · 45 tokens out · 19.5 tok/s · 1 attempt``."""
    parts = []
    if (ttft := duration(r.ttft_ms)) is not None:
        parts.append(f"first token {ttft}")
    if (total := duration(r.total_ms)) is not None:
        parts.append(f"total {total}")
    if r.tokens_in is not None:
        parts.append(f"{r.tokens_in} tokens in")
    if r.tokens_out is not None:
        parts.append(f"{r.tokens_out} tokens out")
    if r.tokens_per_s is not None:
        parts.append(f"{r.tokens_per_s:.1f} tok/s")
    if r.attempts:
        parts.append(f"{r.attempts} attempt{'s' if r.attempts != 1 else ''}")
    return " · ".join(parts) or "no timings"


def state_label(r: ResponseRecord) -> str:
    if r.state == "done":
        return "ok"
    if r.state == "cut":
        return "cut (the start of the answer)"
    if r.partial:
        return f"{r.state} (partial answer)"
    return r.state


def cut_line(r: ResponseRecord) -> str | None:
    """Why only the start of an answer was kept (``cut at N characters ...``)."""
    return (r.error or "cut") if r.state == "cut" else None


def error_line(r: ResponseRecord) -> str | None:
    if r.state != "failed" or r.error is None:
        return None
    status = f"HTTP {r.status}: " if r.status is not None else ""
    kind = f"{r.error_kind}: " if r.error_kind else ""
    return f"{kind}{status}{r.error}"


def consensus_markdown(consensus: Any) -> str | None:
    """The consensus as Markdown text, or None when there is none."""
    if consensus is None:
        return None
    if isinstance(consensus, str):
        return consensus
    if isinstance(consensus, dict) and {"agreement", "models", "similarity"} <= consensus.keys():
        return _figures_markdown(consensus)
    if isinstance(consensus, dict):
        for key in _TEXT_KEYS:
            if isinstance(consensus.get(key), str):
                return str(consensus[key])
    return "```json\n" + json.dumps(consensus, ensure_ascii=False, indent=2) + "\n```"


def _figures_markdown(c: dict[str, Any]) -> str:
    """Quorum's own consensus object (`core.results.consensus_json`) as Markdown."""
    lines = []
    agreement, names = c.get("agreement"), [str(n) for n in c.get("models") or []]
    missing = ", ".join(f"{m.get('model')} {m.get('state')}" for m in c.get("missing") or [])
    if isinstance(agreement, int | float):
        lines.append(
            f"**Agreement {agreement:.2f}** (how alike the answers are, not whether they are "
            f"right) · {c.get('answered', '?')} answered" + (f", {missing}" if missing else "")
        )
        outliers = ", ".join(str(o) for o in c.get("outliers") or []) or "none"
        lines.append(f"Most representative answer: **{c.get('medoid')}** · outliers: {outliers}")
        matrix = c.get("similarity") or []
        if names and len(matrix) == len(names):
            lines += ["", "| | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
            for name, row in zip(names, matrix, strict=True):
                cells = ["-" if v is None else f"{v:.2f}" for v in row]
                lines.append(f"| {name} | " + " | ".join(cells) + " |")
        support = c.get("support") or []
        if support:
            lines += ["", f"Support for the sentences of {c.get('medoid')}'s answer:", ""]
            answered = c.get("answered")
            others = answered - 1 if isinstance(answered, int) and answered > 0 else "?"
            for item in support:
                by = ", ".join(item.get("models") or []) or "no other answer"
                lines.append(
                    f"- {item.get('text')} (supported by {item.get('count')} of {others}: {by})"
                )
        unique = c.get("unique_claims") or []
        if unique:
            lines += ["", "Said by one model only:", ""]
            lines += [f"- {u.get('model')}: {u.get('text')}" for u in unique]
    else:
        lines.append(f"No agreement figures: {c.get('reason') or 'not measured'}")
    synthesis, error = c.get("synthesis"), c.get("synthesis_error")
    if isinstance(synthesis, str):
        lines += ["", f"#### Synthesis by {c.get('synthesizer')}", "", synthesis.strip()]
        if error:
            lines += ["", f"(after: {error})"]
    elif error:
        lines += ["", f"No synthesis: {error}."]
    return "\n".join(lines)


def sources(context: Any) -> list[Source]:
    """The retrieval sources a turn used (from ``context`` or its ``sources`` list)."""
    if context is None:
        return []
    items = context.get("sources", context) if isinstance(context, dict) else context
    if not isinstance(items, list):
        items = [items]
    found = []
    for item in items:
        if isinstance(item, dict):
            label = _first_str(item, _LABEL_KEYS)
            url = _first_str(item, _URL_KEYS)
            excerpt = _first_str(item, ("excerpt", "text", "snippet"))
            found.append(Source(label or url or json.dumps(item, ensure_ascii=False), url, excerpt))
        else:
            found.append(Source(item if isinstance(item, str) else json.dumps(item)))
    return found


def _first_str(item: dict[str, Any], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        value = item.get(key)
        if isinstance(value, str) and value:
            return value
    return None
