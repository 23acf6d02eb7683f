"""JSON export: everything stored about a session, versioned. Schema: docs/export-schema.md.

    {"format": "quorum-session", "version": 1, "session": {...SessionRecord...}}

`parse_session` is the strict inverse of `session_to_json`: a file exported and imported again
exports byte for byte the same. Any problem raises `ExportFormatError` naming the bad field.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Collection
from typing import Any

from core.history.records import (
    RESPONSE_STATES,
    TURN_STATES,
    ResponseRecord,
    SessionRecord,
    TurnRecord,
)

FORMAT = "quorum-session"
VERSION = 1


class ExportFormatError(ValueError):
    """The text is not a session export this Quorum can read; the message says where."""


def session_to_dict(record: SessionRecord) -> dict[str, Any]:
    return {"format": FORMAT, "version": VERSION, "session": dataclasses.asdict(record)}


def session_to_json(record: SessionRecord) -> str:
    return json.dumps(session_to_dict(record), ensure_ascii=False, indent=2) + "\n"


def parse_session(text: str) -> SessionRecord:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ExportFormatError(
            f"not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ExportFormatError(f'not a Quorum session export (expected "format": "{FORMAT}")')
    version = data.get("version")
    if version != VERSION:
        raise ExportFormatError(
            f"unsupported export version {version!r}; this Quorum reads version {VERSION}"
        )
    session = _object(data.get("session"), "session")
    turns = _list(session.get("turns"), "session.turns")
    return SessionRecord(
        id=_str(session, "id", "session"),
        title=_opt_str(session, "title", "session"),
        created_at=_str(session, "created_at", "session"),
        updated_at=_str(session, "updated_at", "session"),
        turns=tuple(_turn(item, f"session.turns[{i}]") for i, item in enumerate(turns)),
    )


def _turn(value: Any, where: str) -> TurnRecord:
    turn = _object(value, where)
    state = _one_of(turn, "state", TURN_STATES, where)
    responses = _list(turn.get("responses"), f"{where}.responses")
    return TurnRecord(
        seq=_int(turn, "seq", where),
        query=_str(turn, "query", where),
        created_at=_str(turn, "created_at", where),
        state=state,
        finished_at=_opt_str(turn, "finished_at", where),
        wall_ms=_opt_float(turn, "wall_ms", where),
        context=turn.get("context"),
        consensus=turn.get("consensus"),
        responses=tuple(
            _response(item, f"{where}.responses[{i}]") for i, item in enumerate(responses)
        ),
    )


def _response(value: Any, where: str) -> ResponseRecord:
    r = _object(value, where)
    state = _one_of(r, "state", RESPONSE_STATES, where)
    attempts = _opt_int(r, "attempts", where)
    return ResponseRecord(
        model=_str(r, "model", where),
        provider=_str(r, "provider", where),
        model_id=_str(r, "model_id", where),
        state=state,
        text=_str(r, "text", where),
        reasoning=_str(r, "reasoning", where),
        finish_reason=_opt_str(r, "finish_reason", where),
        error=_opt_str(r, "error", where),
        error_kind=_opt_str(r, "error_kind", where),
        status=_opt_int(r, "status", where),
        ttft_ms=_opt_float(r, "ttft_ms", where),
        total_ms=_opt_float(r, "total_ms", where),
        tokens_in=_opt_int(r, "tokens_in", where),
        tokens_out=_opt_int(r, "tokens_out", where),
        tokens_per_s=_opt_float(r, "tokens_per_s", where),
        attempts=attempts or 0,
        updated_at=_str(r, "updated_at", where),
    )


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ExportFormatError(f"{where} must be an object")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise ExportFormatError(f"{where} must be an array")
    return value


def _one_of(obj: dict[str, Any], key: str, allowed: Collection[str], where: str) -> str:
    value = _str(obj, key, where)
    if value not in allowed:
        raise ExportFormatError(f"{where}.{key} must be one of {', '.join(allowed)}")
    return value


def _str(obj: dict[str, Any], key: str, where: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise ExportFormatError(f"{where}.{key} must be a string")
    return value


def _opt_str(obj: dict[str, Any], key: str, where: str) -> str | None:
    return None if obj.get(key) is None else _str(obj, key, where)


def _int(obj: dict[str, Any], key: str, where: str) -> int:
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ExportFormatError(f"{where}.{key} must be an integer")
    return value


def _opt_int(obj: dict[str, Any], key: str, where: str) -> int | None:
    return None if obj.get(key) is None else _int(obj, key, where)


def _opt_float(obj: dict[str, Any], key: str, where: str) -> float | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ExportFormatError(f"{where}.{key} must be a number or null")
    return float(value)
