"""JSON export: everything stored about a session, versioned. Schema: docs/export-schema.md.

    {"format": "quorum-session", "version": 1, "session": {...SessionRecord...}}

`parse_session` is the strict inverse of `session_to_json`: a file exported and imported again
exports byte for byte the same. It trusts nothing in the text: any problem raises
`ExportFormatError` naming the bad field's path, before anything is stored.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import sys
from collections.abc import Collection, Hashable, Iterable
from datetime import datetime, timedelta
from typing import Any

from core.config import PROVIDERS
from core.events import FailureKind
from core.history.records import (
    RESPONSE_STATES,
    TURN_STATES,
    ResponseRecord,
    SessionRecord,
    TurnRecord,
)
from core.history.sqlite import is_session_id

FORMAT = "quorum-session"
VERSION = 1
MAX_CHARS = 200_000_000  # ~200 MB: far beyond any session, short of exhausting memory
MAX_DEPTH = 64  # nesting of arrays and objects; an export itself needs 6 plus its JSON values
MAX_NUMBER = 2**53 - 1  # beyond this JSON readers disagree (JavaScript loses precision)
_FAILURE_KINDS = tuple(kind.value for kind in FailureKind)
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_BRACKET = re.compile(r"[\[\]{}]")
_SURROGATE = re.compile("[\ud800-\udfff]")


class ExportFormatError(ValueError):
    """The text is not a session export this Quorum can read; the message says where."""


def session_to_dict(record: SessionRecord) -> dict[str, Any]:
    return {"format": FORMAT, "version": VERSION, "session": dataclasses.asdict(record)}


def session_to_json(record: SessionRecord) -> str:
    return json.dumps(session_to_dict(record), ensure_ascii=False, indent=2) + "\n"


def parse_session(text: str) -> SessionRecord:
    """The session in ``text``, checked field by field against docs/export-schema.md.

    Nothing the store or a later export could choke on gets through: the text is bounded in
    size and nesting before it is parsed, and every value is checked (types, ids, times, number
    ranges, finite numbers, valid Unicode, unique ``seq`` and model names). Raises
    ExportFormatError naming the first bad field, e.g. ``session.turns[1].seq: duplicate 1``.
    """
    data = _load(text)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ExportFormatError(f'not a Quorum session export (expected "format": "{FORMAT}")')
    version = data.get("version")
    if type(version) is not int or version != VERSION:  # not true, not 1.0
        raise ExportFormatError(
            f"unsupported export version {_show(version)}; this Quorum reads version {VERSION}"
        )
    session = _object(data.get("session"), "session")
    session_id = _str(session, "id", "session")
    if not is_session_id(session_id):
        raise ExportFormatError(
            "session.id: must be 16 lowercase hex digits, as Quorum makes them; "
            f"got {_show(session_id)}"
        )
    title = _opt_str(session, "title", "session")
    created_at = _time(session, "created_at", "session")
    updated_at = _time(session, "updated_at", "session")
    turns = _list(session, "turns", "session")
    records = tuple(_turn(item, f"session.turns[{i}]") for i, item in enumerate(turns))
    _unique((t.seq for t in records), "session.turns[{}].seq")
    return SessionRecord(session_id, title, created_at, updated_at, records)


def _turn(value: Any, where: str) -> TurnRecord:
    turn = _object(value, where)
    seq = _int(turn, "seq", where, low=1)
    query = _str(turn, "query", where)
    created_at = _time(turn, "created_at", where)
    state = _one_of(turn, "state", TURN_STATES, where)
    finished_at = _opt_time(turn, "finished_at", where)
    wall_ms = _opt_float(turn, "wall_ms", where)
    context = _json_value(turn.get("context"), f"{where}.context")
    consensus = _json_value(turn.get("consensus"), f"{where}.consensus")
    responses = _list(turn, "responses", where)
    records = tuple(_response(item, f"{where}.responses[{i}]") for i, item in enumerate(responses))
    _unique((r.model for r in records), where + ".responses[{}].model")
    return TurnRecord(
        seq, query, created_at, state, finished_at, wall_ms, context, consensus, records
    )


def _response(value: Any, where: str) -> ResponseRecord:
    r = _object(value, where)
    model = _str(r, "model", where)
    if not model.strip():
        raise ExportFormatError(f"{where}.model: must not be empty")
    return ResponseRecord(
        model=model,
        provider=_one_of(r, "provider", PROVIDERS, where),
        model_id=_str(r, "model_id", where),
        state=_one_of(r, "state", RESPONSE_STATES, where),
        text=_str(r, "text", where),
        reasoning=_str(r, "reasoning", where),
        finish_reason=_opt_str(r, "finish_reason", where),
        error=_opt_str(r, "error", where),
        error_kind=_opt_one_of(r, "error_kind", _FAILURE_KINDS, where),
        status=_opt_int(r, "status", where, low=100, high=599),
        ttft_ms=_opt_float(r, "ttft_ms", where),
        total_ms=_opt_float(r, "total_ms", where),
        tokens_in=_opt_int(r, "tokens_in", where),
        tokens_out=_opt_int(r, "tokens_out", where),
        tokens_per_s=_opt_float(r, "tokens_per_s", where),
        attempts=_opt_int(r, "attempts", where) or 0,
        updated_at=_time(r, "updated_at", where),
    )


# --- reading the text -------------------------------------------------------------------------
def _load(text: str) -> Any:
    if len(text) > MAX_CHARS:
        raise ExportFormatError(f"too large: {len(text):,} characters (at most {MAX_CHARS:,})")
    if _deeper_than(text, MAX_DEPTH):
        raise ExportFormatError(
            f"arrays and objects nested deeper than {MAX_DEPTH} levels; an export needs far fewer"
        )
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ExportFormatError(
            f"not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None
    except ValueError:  # the only other one: an integer too long to convert
        raise ExportFormatError(
            f"a number has more than {sys.get_int_max_str_digits()} digits"
        ) from None


def _deeper_than(text: str, limit: int) -> bool:
    """Whether brackets outside strings nest deeper than ``limit``, without recursing (the
    parser itself recurses, and a deep enough array would exhaust its stack)."""
    if text.count("[") + text.count("{") <= limit:
        return False
    depth = 0
    for match in _BRACKET.finditer(_STRING.sub('""', text)):
        depth += 1 if match.group() in "[{" else -1
        if depth > limit:
            return True
    return False


# --- field readers: each names the field's path in its message --------------------------------
def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ExportFormatError(f"{where}: must be an object")
    return value


def _list(obj: dict[str, Any], key: str, where: str) -> list[Any]:
    value = obj.get(key)
    if not isinstance(value, list):
        raise ExportFormatError(f"{where}.{key}: {_missing_or('must be an array', obj, key)}")
    return value


def _one_of(obj: dict[str, Any], key: str, allowed: Collection[str], where: str) -> str:
    value = _str(obj, key, where)
    if value not in allowed:
        raise ExportFormatError(
            f"{where}.{key}: must be one of {', '.join(allowed)}; got {_show(value)}"
        )
    return value


def _opt_one_of(obj: dict[str, Any], key: str, allowed: Collection[str], where: str) -> str | None:
    return None if obj.get(key) is None else _one_of(obj, key, allowed, where)


def _str(obj: dict[str, Any], key: str, where: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise ExportFormatError(f"{where}.{key}: {_missing_or('must be a string', obj, key)}")
    _check_text(value, f"{where}.{key}")
    return value


def _opt_str(obj: dict[str, Any], key: str, where: str) -> str | None:
    return None if obj.get(key) is None else _str(obj, key, where)


def _time(obj: dict[str, Any], key: str, where: str) -> str:
    value = _str(obj, key, where)
    try:
        offset = datetime.fromisoformat(value).utcoffset()
    except ValueError:
        offset = None
    if offset != timedelta(0):
        raise ExportFormatError(
            f"{where}.{key}: must be an ISO 8601 time in UTC "
            f"(like 2026-01-31T12:00:00.000000+00:00); got {_show(value)}"
        )
    return value


def _opt_time(obj: dict[str, Any], key: str, where: str) -> str | None:
    return None if obj.get(key) is None else _time(obj, key, where)


def _int(obj: dict[str, Any], key: str, where: str, *, low: int = 0, high: int = MAX_NUMBER) -> int:
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ExportFormatError(f"{where}.{key}: {_missing_or('must be an integer', obj, key)}")
    if not low <= value <= high:
        raise ExportFormatError(
            f"{where}.{key}: must be an integer from {low} to {high}; got {_show(value)}"
        )
    return value


def _opt_int(
    obj: dict[str, Any], key: str, where: str, *, low: int = 0, high: int = MAX_NUMBER
) -> int | None:
    return None if obj.get(key) is None else _int(obj, key, where, low=low, high=high)


def _opt_float(obj: dict[str, Any], key: str, where: str) -> float | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ExportFormatError(f"{where}.{key}: must be a number or null")
    if not 0 <= value <= MAX_NUMBER:  # false for NaN; an int compares exactly
        raise ExportFormatError(
            f"{where}.{key}: must be a finite number from 0 to {MAX_NUMBER}; got {_show(value)}"
        )
    return float(value)


def _json_value(value: Any, where: str) -> Any:
    """A free-form JSON value (``context``, ``consensus``): any shape, but only text and numbers
    the store can write and a reader can parse again."""
    pending: list[tuple[Any, str]] = [(value, where)]
    while pending:
        item, path = pending.pop()
        if isinstance(item, str):
            _check_text(item, path)
        elif isinstance(item, float) and not math.isfinite(item):
            raise ExportFormatError(f"{path}: must be a finite number; got {_show(item)}")
        elif isinstance(item, int) and not isinstance(item, bool) and abs(item) > MAX_NUMBER:
            raise ExportFormatError(
                f"{path}: must be an integer from -{MAX_NUMBER} to {MAX_NUMBER}; got {_show(item)}"
            )
        elif isinstance(item, list):
            pending += [(v, f"{path}[{i}]") for i, v in enumerate(item)]
        elif isinstance(item, dict):
            for key, v in item.items():
                _check_text(key, f"{path} (a key)")
                pending.append((v, f"{path}.{key}" if key.isidentifier() else f"{path}[{key!r}]"))
    return value


def _check_text(value: str, where: str) -> None:
    surrogate = _SURROGATE.search(value)
    if surrogate is not None:
        raise ExportFormatError(
            f"{where}: not valid Unicode (a lone surrogate {ascii(surrogate.group())[1:-1]})"
        )


def _unique(values: Iterable[Hashable], where: str) -> None:
    seen: set[Hashable] = set()
    for index, value in enumerate(values):
        if value in seen:
            raise ExportFormatError(f"{where.format(index)}: duplicate {_show(value)}")
        seen.add(value)


def _missing_or(problem: str, obj: dict[str, Any], key: str) -> str:
    return "missing" if key not in obj else problem


def _show(value: Any) -> str:
    """A bad value for a one-line message: printable, and short."""
    text = repr(value) if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."
