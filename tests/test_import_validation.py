"""``quorum import`` of JSON that parses but is wrong: every bad case through the real CLI gets
exit 2, a one-line message naming the field, no traceback, and leaves the database unchanged."""

from __future__ import annotations

import copy
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from core.export import export_session
from core.history import HistoryStore
from core.history.sqlite import default_path
from tests.test_cli import quorum
from tests.test_export import recorded_session

Export = dict[str, Any]
DEEP = 100_000


def turn(data: Export, index: int = 0) -> dict[str, Any]:
    turns: list[dict[str, Any]] = data["session"]["turns"]
    return turns[index]


def response(data: Export, index: int = 0) -> dict[str, Any]:
    responses: list[dict[str, Any]] = turn(data)["responses"]
    return responses[index]


def setting(where: Callable[[Export], dict[str, Any]], key: str, value: Any) -> Callable[..., None]:
    def change(data: Export) -> None:
        where(data)[key] = value

    return change


def session(data: Export) -> dict[str, Any]:
    found: dict[str, Any] = data["session"]
    return found


def top(data: Export) -> dict[str, Any]:
    return data


def repeated_turn(data: Export) -> None:
    session(data)["turns"].append(copy.deepcopy(turn(data)))


def repeated_model(data: Export) -> None:
    turn(data)["responses"].append(copy.deepcopy(response(data)))


def removed(where: Callable[[Export], dict[str, Any]], key: str) -> Callable[..., None]:
    def change(data: Export) -> None:
        del where(data)[key]

    return change


# (id, change to a good export, the text after json.dumps (or None), message after the file name)
CASES: list[tuple[str, Callable[[Export], None] | None, Callable[[str], str] | None, str]] = [
    ("duplicate seq", repeated_turn, None, "session.turns[1].seq: duplicate 1"),
    (
        "duplicate model",
        repeated_model,
        None,
        "session.turns[0].responses[3].model: duplicate 'gpt <i>4</i>'",
    ),
    (
        "lone surrogate",
        setting(turn, "query", "what \ud800 is this"),
        None,
        "session.turns[0].query: not valid Unicode (a lone surrogate \\ud800)",
    ),
    (
        "lone surrogate in a free value's key",
        setting(turn, "context", {"sources": [{"ti\udfffle": "x"}]}),
        None,
        "session.turns[0].context.sources[0] (a key): not valid Unicode",
    ),
    (
        "integer of 10**30",
        setting(response, "tokens_out", 10**30),
        None,
        "session.turns[0].responses[0].tokens_out: must be an integer from 0 to "
        "9007199254740991; got 1000000000000000000000000000000",
    ),
    (
        "seq of 10**30",
        setting(turn, "seq", 10**30),
        None,
        "session.turns[0].seq: must be an integer from 1 to 9007199254740991",
    ),
    (
        "huge integer in a number field",
        setting(turn, "wall_ms", 10**400),
        None,
        "session.turns[0].wall_ms: must be a finite number from 0 to 9007199254740991",
    ),
    (
        "integer too long to parse",
        setting(response, "tokens_in", "DIGITS"),
        lambda text: text.replace('"DIGITS"', "9" * 5000),
        "a number has more than 4300 digits",
    ),
    (
        "array nested 100000 deep",
        setting(turn, "context", "DEEP"),
        lambda text: text.replace('"DEEP"', "[" * DEEP + "]" * DEEP),
        "arrays and objects nested deeper than 64 levels",
    ),
    (
        "id with a path",
        setting(session, "id", "../../etc"),
        None,
        "session.id: must be 16 lowercase hex digits, as Quorum makes them; got '../../etc'",
    ),
    (
        "created_at yesterday",
        setting(session, "created_at", "yesterday"),
        None,
        "session.created_at: must be an ISO 8601 time in UTC "
        "(like 2026-01-31T12:00:00.000000+00:00); got 'yesterday'",
    ),
    (
        "time not in UTC",
        setting(turn, "created_at", "2026-01-31T12:00:00+02:00"),
        None,
        "session.turns[0].created_at: must be an ISO 8601 time in UTC",
    ),
    (
        "time without a zone",
        setting(response, "updated_at", "2026-01-31T12:00:00"),
        None,
        "session.turns[0].responses[0].updated_at: must be an ISO 8601 time in UTC",
    ),
    (
        "finished_at a number",
        setting(turn, "finished_at", 17),
        None,
        "session.turns[0].finished_at: must be a string",
    ),
    (
        "negative seq",
        setting(turn, "seq", -1),
        None,
        "session.turns[0].seq: must be an integer from 1 to 9007199254740991; got -1",
    ),
    ("seq zero", setting(turn, "seq", 0), None, "session.turns[0].seq: must be an integer from 1"),
    ("seq true", setting(turn, "seq", True), None, "session.turns[0].seq: must be an integer"),
    (
        "NaN",
        setting(response, "ttft_ms", float("nan")),
        None,
        "session.turns[0].responses[0].ttft_ms: must be a finite number from 0 to "
        "9007199254740991; got NaN",
    ),
    (
        "Infinity",
        setting(turn, "wall_ms", float("inf")),
        None,
        "session.turns[0].wall_ms: must be a finite number from 0",
    ),
    (
        "negative duration",
        setting(response, "total_ms", -5),
        None,
        "session.turns[0].responses[0].total_ms: must be a finite number from 0",
    ),
    (
        "NaN in a free value",
        setting(turn, "consensus", {"text": "x", "agreement": float("nan")}),
        None,
        "session.turns[0].consensus.agreement: must be a finite number; got NaN",
    ),
    (
        "unknown provider",
        setting(response, "provider", "openia"),
        None,
        "session.turns[0].responses[0].provider: must be one of openai, anthropic, gemini, "
        "ollama, local; got 'openia'",
    ),
    (
        "unknown error kind",
        setting(response, "error_kind", "oops"),
        None,
        "session.turns[0].responses[0].error_kind: must be one of config, connect",
    ),
    (
        "HTTP status out of range",
        setting(response, "status", 42),
        None,
        "session.turns[0].responses[0].status: must be an integer from 100 to 599; got 42",
    ),
    (
        "unknown state",
        setting(turn, "state", "finished"),
        None,
        "session.turns[0].state: must be one of running, done, interrupted; got 'finished'",
    ),
    (
        "empty model name",
        setting(response, "model", " "),
        None,
        "session.turns[0].responses[0].model: must not be empty",
    ),
    (
        "text null",
        setting(response, "text", None),
        None,
        "session.turns[0].responses[0].text: must be a string",
    ),
    ("query missing", removed(turn, "query"), None, "session.turns[0].query: missing"),
    ("turns missing", removed(session, "turns"), None, "session.turns: missing"),
    ("session an array", setting(top, "session", []), None, "session: must be an object"),
    (
        "version true",
        setting(top, "version", True),
        None,
        "unsupported export version true; this Quorum reads version 1",
    ),
    (
        "version 1.0",
        setting(top, "version", 1.0),
        None,
        "unsupported export version 1.0; this Quorum reads version 1",
    ),
    ("not JSON", None, lambda text: text[:-3], "not JSON: Expecting"),
]


def table(db: Path) -> list[str]:
    conn = sqlite3.connect(db)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


@pytest.fixture
def good_export() -> str:
    """The history holds one recorded session; this is its export."""
    with HistoryStore.open() as store:
        return export_session(store.load_session(recorded_session(store)), "json")


@pytest.mark.parametrize(
    ("change", "text_change", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_a_bad_import_is_refused_in_one_line_and_writes_nothing(
    tmp_path: Path,
    good_export: str,
    change: Callable[[Export], None] | None,
    text_change: Callable[[str], str] | None,
    message: str,
) -> None:
    data = json.loads(good_export)
    if change is not None:
        change(data)
    text = json.dumps(data, indent=2)  # ensure_ascii: a lone surrogate becomes "\ud800"
    if text_change is not None:
        text = text_change(text)
    bad = tmp_path / "bad.json"
    bad.write_text(text, encoding="utf-8")
    before = table(default_path())

    result = quorum("import", str(bad))  # asserts there is no traceback

    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith(f"quorum: {bad}: {message}")
    assert result.stderr.count("\n") == 1 and result.stderr.endswith("\n")
    assert table(default_path()) == before


def test_the_good_export_itself_imports_through_the_same_path(
    tmp_path: Path, good_export: str
) -> None:
    good = tmp_path / "good.json"
    good.write_text(good_export, encoding="utf-8")
    before = table(default_path())

    result = quorum("import", str(good))

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("imported session ")
    assert len(table(default_path())) > len(before)
