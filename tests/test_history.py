"""The history store against real SQLite files: schema and migrations, recording a real fan-out,
flushing, interruption, search, multi-turn conversations and the ``quorum`` history commands."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from core import paths
from core.cli import main
from core.config import ModelSpec
from core.events import Cancelled, FanoutStarted, ModelStats, Started, TextDelta
from core.history import HistoryError, HistoryStore, HistoryWriter
from core.history.schema import SCHEMA_VERSION
from core.history.sqlite import default_path
from core.providers.base import Message
from tests.conftest import TEST_KEY, ConfigWriter, loopback_spec, run_fanout
from tests.loopback import LoopbackServer, anthropic_stream, error_reply, openai_stream

Spec = Callable[..., ModelSpec]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[HistoryStore]:
    with HistoryStore.open(tmp_path / "history.sqlite3") as opened:
        yield opened


def spec_of(name: str, provider: str = "openai") -> ModelSpec:
    return ModelSpec(name=name, provider=provider, model=f"{name}-id", api_key=TEST_KEY)


def record_turn(
    store: HistoryStore, session_id: str, query: str, answers: dict[str, str | None]
) -> None:
    """Record a turn from events: a model mapped to None fails, others finish with the text."""
    from core.events import Failed, FailureKind, FanoutFinished, Finished

    specs = [spec_of(name) for name in answers]
    writer = HistoryWriter(store, session_id, query, specs, timer=False)
    writer.apply(FanoutStarted(query, tuple(answers)))
    for name, text in answers.items():
        writer.apply(Started(name, "openai", 1))
        if text is None:
            writer.apply(Failed(name, FailureKind.HTTP, "server error", 500, ModelStats()))
        else:
            writer.apply(TextDelta(name, text))
            writer.apply(Finished(name, "stop", ModelStats(ttft_ms=5.0, total_ms=9.0)))
    writer.apply(FanoutFinished(12.5))
    writer.close()


# --- schema -------------------------------------------------------------------------------------
def test_new_database_is_migrated_to_current_version_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "dir" / "h.sqlite3"
    with HistoryStore.open(path) as store:
        sid = store.new_session("first")
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert {"sessions", "turns", "responses", "turns_fts", "responses_fts"} <= tables
    conn.close()
    with HistoryStore.open(path) as again:  # re-opening at the current version keeps the data
        assert [s.id for s in again.list_sessions()] == [sid]


def test_default_location_is_the_data_directory() -> None:
    with HistoryStore.open() as store:
        store.new_session()
    assert default_path() == paths.data_dir() / "history.sqlite3"
    assert default_path().is_file()


def test_database_from_a_newer_quorum_is_refused_clearly(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(HistoryError, match="newer Quorum"):
        HistoryStore.open(path)


def test_a_file_that_is_not_a_database_is_refused_clearly(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(HistoryError, match="not a usable Quorum history database"):
        HistoryStore.open(path)


# --- recording a real fan-out ----------------------------------------------------------------
@pytest.mark.anyio
async def test_writer_records_a_real_fanout_without_secrets(
    loopback: LoopbackServer, store: HistoryStore, tmp_path: Path
) -> None:
    loopback.script("gpt-h", openai_stream(["Hello ", "world"], reasoning=["hmm"], usage=(4, 2)))
    loopback.script("claude-h", anthropic_stream(["Bonjour"]))
    loopback.script("bad-h", error_reply(400, {"error": {"message": "bad request here"}}))
    specs = [
        loopback_spec(loopback, "openai", "gpt-h"),
        loopback_spec(loopback, "anthropic", "claude-h"),
        loopback_spec(loopback, "openai", "bad-h"),
    ]
    sid = store.new_session("t")
    writer = HistoryWriter(store, sid, "Say hi", specs)
    try:
        await run_fanout(specs, "Say hi", react=lambda _fanout, event: writer.apply(event))
    finally:
        writer.close()

    (turn,) = store.load_session(sid).turns
    assert (turn.query, turn.state) == ("Say hi", "done")
    assert turn.wall_ms is not None
    gpt, claude, bad = turn.responses
    assert (gpt.model, gpt.provider, gpt.model_id) == ("gpt-h", "openai", "gpt-h")
    assert (gpt.state, gpt.text, gpt.reasoning, gpt.finish_reason) == (
        "done",
        "Hello world",
        "hmm",
        "stop",
    )
    assert (gpt.tokens_in, gpt.tokens_out, gpt.attempts) == (4, 2, 1)
    assert gpt.ttft_ms is not None and gpt.total_ms is not None
    assert (claude.state, claude.text) == ("done", "Bonjour")
    assert (bad.state, bad.status, bad.error_kind) == ("failed", 400, "http")
    assert "bad request here" in (bad.error or "")
    store.close()
    assert files_containing(tmp_path, TEST_KEY) == []  # the database and its WAL


def files_containing(directory: Path, secret: str) -> list[str]:
    return [f.name for f in directory.iterdir() if secret.encode() in f.read_bytes()]


def test_turn_is_written_before_the_fanout_starts(store: HistoryStore) -> None:
    sid = store.new_session()
    writer = HistoryWriter(store, sid, "early?", [spec_of("a"), spec_of("b")], timer=False)
    with HistoryStore.open(store.path) as other:  # another connection sees it already
        (turn,) = other.load_session(sid).turns
        assert turn.query == "early?" and turn.state == "running"
        assert [(r.model, r.state) for r in turn.responses] == [("a", "queued"), ("b", "queued")]
    writer.close()


def test_streamed_text_is_flushed_once_the_interval_has_passed(store: HistoryStore) -> None:
    now = [0.0]
    sid = store.new_session()
    writer = HistoryWriter(
        store, sid, "q", [spec_of("a")], flush_interval=1.0, clock=lambda: now[0], timer=False
    )
    with HistoryStore.open(store.path) as reader:

        def stored() -> str:
            return reader.load_session(sid).turns[0].responses[0].text

        writer.apply(Started("a", "openai", 1))
        writer.apply(TextDelta("a", "one "))
        now[0] = 0.5
        writer.apply(TextDelta("a", "two "))
        assert stored() == ""  # batched: not every token is a write
        now[0] = 1.0
        writer.apply(TextDelta("a", "three "))
        assert stored() == "one two three "
        writer.close()


def test_timer_flushes_text_that_arrived_before_a_stall(store: HistoryStore) -> None:
    sid = store.new_session()
    writer = HistoryWriter(store, sid, "q", [spec_of("a")], flush_interval=0.05)
    writer.apply(Started("a", "openai", 1))
    writer.apply(TextDelta("a", "last words"))  # then nothing more arrives
    with HistoryStore.open(store.path) as reader:
        deadline = time.monotonic() + 10
        while reader.load_session(sid).turns[0].responses[0].text != "last words":
            assert time.monotonic() < deadline, "the timer never flushed"
            time.sleep(0.01)  # polling interval; the loop condition is the synchronisation
    writer.close()


def test_close_keeps_partial_text_and_marks_it_interrupted(store: HistoryStore) -> None:
    sid = store.new_session()
    writer = HistoryWriter(store, sid, "q", [spec_of("a"), spec_of("b")], timer=False)
    writer.apply(Started("a", "openai", 1))
    writer.apply(TextDelta("a", "half an ans"))
    writer.apply(Started("b", "openai", 1))
    writer.apply(TextDelta("b", "stopped by the user"))
    writer.apply(Cancelled("b", ModelStats(total_ms=3.0, attempts=1)))
    writer.close()
    writer.close()  # idempotent

    (turn,) = store.load_session(sid).turns
    a, b = turn.responses
    assert turn.state == "interrupted"
    assert (a.state, a.text, a.partial) == ("interrupted", "half an ans", True)
    assert (b.state, b.text, b.partial, b.total_ms) == (
        "cancelled",
        "stopped by the user",
        True,
        3.0,
    )


# --- search and recall ----------------------------------------------------------------------
def test_search_finds_words_in_questions_and_answers(store: HistoryStore) -> None:
    s1, s2 = store.new_session(), store.new_session()
    record_turn(store, s1, "How do volcanoes erupt?", {"a": "Magma rises.", "b": None})
    record_turn(store, s2, "Capital of France?", {"a": "Paris, of course.", "b": "Paris"})
    record_turn(store, s2, "And of Italy?", {"a": "Rome", "b": "Rome is the capital"})

    assert [(t.session_id, t.seq) for t in store.search("volcanoes")] == [(s1, 1)]
    assert [(t.session_id, t.seq) for t in store.search("magma")] == [(s1, 1)]  # answer text
    assert [t.seq for t in store.search("capital")] == [2, 1]  # newest first
    assert [t.query for t in store.search("capital", limit=1)] == ["And of Italy?"]
    assert [t.query for t in store.search("volc")] == ["How do volcanoes erupt?"]  # prefix
    assert store.search("paris rome") == []  # every word must match
    hit = store.search("magma")[0]
    assert (hit.answered, hit.models) == (1, 2)
    for hostile in ['"', "AND OR NOT (", "a*b:c^", "NEAR(x y)", "   ", "' OR 1=1 --"]:
        store.search(hostile)  # no FTS syntax error escapes


def test_recent_queries_are_newest_first_and_deduplicated(store: HistoryStore) -> None:
    sid = store.new_session()
    for query in ["one", "two", "one", "three"]:
        record_turn(store, sid, query, {"a": "x"})
    assert store.recent_queries() == ["three", "one", "two"]
    assert store.recent_queries(limit=2) == ["three", "one"]


# --- multi-turn conversations ---------------------------------------------------------------
def test_each_model_gets_only_its_own_completed_answers(store: HistoryStore) -> None:
    sid = store.new_session()
    record_turn(store, sid, "q1", {"a": "a1", "b": None})
    record_turn(store, sid, "q2", {"a": "a2", "b": "b2"})
    record_turn(store, sid, "q3", {"a": "   ", "b": "b3"})  # a blank answer is skipped

    assert store.conversation(sid, "a", 10) == [
        Message("user", "q1"),
        Message("assistant", "a1"),
        Message("user", "q2"),
        Message("assistant", "a2"),
    ]
    assert store.conversation(sid, "b", 10) == [
        Message("user", "q2"),
        Message("assistant", "b2"),
        Message("user", "q3"),
        Message("assistant", "b3"),
    ]
    assert store.conversation(sid, "b", 1) == [Message("user", "q3"), Message("assistant", "b3")]
    newest_only = [Message("user", "q3"), Message("assistant", "b3")]  # 4 chars ~ 1 token
    assert store.conversation(sid, "b", 10, max_tokens=1) == newest_only
    assert store.conversation(sid, "b", 10, max_tokens=0) == []
    assert store.conversation(sid, "a", 0) == []
    assert store.conversation(store.new_session(), "a", 10) == []  # a new session starts fresh


def test_ask_continue_sends_each_model_its_own_conversation(
    loopback: LoopbackServer, write_config: ConfigWriter, capsys: pytest.CaptureFixture[str]
) -> None:
    loopback.script("m1", [openai_stream(["first from m1"]), openai_stream(["second from m1"])])
    loopback.script("m2", [openai_stream(["first from m2"]), openai_stream(["second from m2"])])
    models = [
        {
            "name": n,
            "provider": "openai",
            "model": n,
            "base_url": f"{loopback.url}/v1",
            "api_key": TEST_KEY,
        }
        for n in ("m1", "m2")
    ]
    config = str(write_config(models=models))

    assert main(["ask", "What is A?", "--config", config]) == 0
    assert main(["ask", "And B?", "--continue", "--config", config]) == 0
    assert main(["ask", "Fresh", "--config", config]) == 0  # a new session: no history sent

    def messages(model: str, index: int) -> list[dict[str, Any]]:
        body = loopback.requests_for(model)[index].json
        return [m for m in body["messages"] if m["role"] != "system"]

    assert messages("m1", 1) == [
        {"role": "user", "content": "What is A?"},
        {"role": "assistant", "content": "first from m1"},
        {"role": "user", "content": "And B?"},
    ]
    assert "first from m1" not in json.dumps(messages("m2", 1))
    assert messages("m2", 1)[1]["content"] == "first from m2"
    assert messages("m1", 2) == [{"role": "user", "content": "Fresh"}]
    with HistoryStore.open() as store:
        sessions = store.list_sessions()
        assert [s.turn_count for s in sessions] == [1, 2]


# --- the CLI switches and commands ------------------------------------------------------------
def _config_for(loopback: LoopbackServer, write_config: ConfigWriter, **tables: Any) -> str:
    loopback.script("solo", openai_stream(["an answer"]))
    model = {
        "name": "solo",
        "provider": "openai",
        "model": "solo",
        "base_url": f"{loopback.url}/v1",
        "api_key": TEST_KEY,
    }
    return str(write_config(models=[model], **tables))


def test_no_history_flag_and_config_switch_write_nothing(
    loopback: LoopbackServer, write_config: ConfigWriter
) -> None:
    config = _config_for(loopback, write_config)
    assert main(["ask", "private question", "--no-history", "--config", config]) == 0
    assert not default_path().exists()
    off = _config_for(loopback, write_config, history={"enabled": False})
    assert main(["ask", "private question", "--config", off]) == 0
    assert not default_path().exists()
    assert len(loopback.requests) == 2  # the questions were asked all the same


def test_session_flag_without_history_is_a_clear_usage_error(
    loopback: LoopbackServer, write_config: ConfigWriter, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config_for(loopback, write_config)
    assert main(["ask", "q", "--no-history", "--continue", "--config", config]) == 2
    assert "--no-history" in capsys.readouterr().err
    assert main(["ask", "q", "--session", "nope", "--config", config]) == 2
    assert "no session 'nope'" in capsys.readouterr().err


def test_history_command_lists_and_searches(
    loopback: LoopbackServer, write_config: ConfigWriter, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config_for(loopback, write_config)
    assert main(["history", "--config", config]) == 0
    assert "no history yet" in capsys.readouterr().out
    assert main(["ask", "Why is the sky blue?", "--config", config, "--json"]) == 0
    assert main(["ask", "Tell me about \x1b[31mred\x1b[0m things", "--config", config]) == 0
    capsys.readouterr()

    assert main(["history", "--config", config]) == 0
    listing = capsys.readouterr().out
    assert "Why is the sky blue?" in listing and "\x1b" not in listing

    assert main(["history", "--search", "sky", "--json", "--config", config]) == 0
    turns = json.loads(capsys.readouterr().out)["turns"]
    assert [(t["query"], t["answered"], t["models"]) for t in turns] == [
        ("Why is the sky blue?", 1, 1)
    ]

    assert main(["history", "--search", "answer", "--config", config]) == 0  # answer words
    assert capsys.readouterr().out.count("\n") == 3  # header + both turns
