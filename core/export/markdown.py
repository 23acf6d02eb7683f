"""Markdown export: readable, every model's answer under its name with its timings, then the
consensus and the sources of each turn. Model text is Markdown already and is kept as is."""

from __future__ import annotations

from core.export.describe import (
    consensus_markdown,
    cut_line,
    duration,
    error_line,
    sources,
    state_label,
    timing_line,
)
from core.history.records import SessionRecord, TurnRecord


def session_title(record: SessionRecord) -> str:
    if record.title:
        return record.title
    return record.turns[0].query.splitlines()[0] if record.turns else f"Session {record.id}"


def to_markdown(record: SessionRecord) -> str:
    lines = [
        f"# {_one_line(session_title(record))}",
        "",
        f"Session `{record.id}` · started {_when(record.created_at)} · "
        f"{len(record.turns)} turn{'s' if len(record.turns) != 1 else ''}",
    ]
    for turn in record.turns:
        lines += ["", *_turn(turn)]
    return "\n".join(lines).rstrip() + "\n"


def _turn(turn: TurnRecord) -> list[str]:
    wall = duration(turn.wall_ms)
    meta = f"asked {_when(turn.created_at)}" + (f" · wall time {wall}" if wall else "")
    if turn.state != "done":
        meta += f" · {turn.state}"
    lines = [f"## Turn {turn.seq}", "", *_quote(turn.query), "", f"_{meta}_"]
    for r in turn.responses:
        lines += [
            "",
            f"### {_one_line(r.model)} — {r.provider}/{r.model_id} · {state_label(r)}",
            "",
            f"_{timing_line(r)}_",
        ]
        if r.reasoning:
            lines += ["", "**Reasoning**", "", *_quote(r.reasoning)]
        if r.text:
            lines += ["", r.text.rstrip()]
        if (cut := cut_line(r)) is not None:
            lines += ["", f"> ✂ {_one_line(cut)}"]
        if (error := error_line(r)) is not None:
            lines += ["", f"> ✗ {_one_line(error)}"]
    consensus = consensus_markdown(turn.consensus)
    if consensus is not None:
        lines += ["", "### Consensus", "", consensus.rstrip()]
    found = sources(turn.context)
    if found:
        lines += ["", "### Sources", ""]
        for source in found:
            link = f"[{source.label}]({source.url})" if source.url else source.label
            lines.append(f"- {_one_line(link)}")
    return lines


def _quote(text: str) -> list[str]:
    return [f"> {line}".rstrip() for line in text.splitlines() or [""]]


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _when(stamp: str) -> str:
    """``2026-01-31 12:00 UTC`` from a stored ISO time (as is if it does not parse)."""
    return stamp[:16].replace("T", " ") + " UTC" if len(stamp) >= 16 else stamp
