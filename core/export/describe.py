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
    if r.partial:
        return f"{r.state} (partial answer)"
    return r.state


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
    if isinstance(consensus, dict):
        for key in _TEXT_KEYS:
            if isinstance(consensus.get(key), str):
                return str(consensus[key])
    return "```json\n" + json.dumps(consensus, ensure_ascii=False, indent=2) + "\n```"


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
