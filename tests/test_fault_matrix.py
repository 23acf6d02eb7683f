"""The fault matrix (issue #11): every way a provider can fail, for each of the four wire formats,
through the real `quorum ask --json` and the real app (Pilot), against the loopback server.

Each row of FAULTS is one fault given to four models at once (one per protocol: openai,
anthropic, gemini, ollama) beside a healthy fifth, ``control``. Whatever the fault, every faulty
model ends with the row's state and message (its own provider's words where it has any), keeps
what the row says it keeps, and the control's answer is untouched; the exit code follows the
documented rule (0: at least one model answered), and nothing prints a traceback. The app shows
the same state and message in each pane.

How to read a row: ``Fault(name, reply, state, message, kept=, retried=, server=, config=)``.
``reply(protocol)`` is what the loopback server sends that protocol's model, one Reply per
attempt (the last repeats); ``message`` is what the error the user sees says ("…": anything in
between; ``own(status)``: the status, then the provider's own words; ``{host}``: the host and
port asked); ``kept`` is the text kept of a broken answer; ``retried`` what the pane's header
says while the model waits to try again (the CLI's --json shows a second attempt); ``server``
names a special server for faults the loopback server cannot make; ``config`` overrides the
faulty models' settings (small timeouts: each timeout row ends in a second or two).

The app runs every row with all four protocols. The fan-out itself (100 models at once) and the
app under a paragraph that never ends are tests of their own, at the end.
"""

from __future__ import annotations

import json
import socket
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from textual import events

from core.answer_cap import cut_message
from core.config import DEFAULT_MAX_ANSWER_CHARS, load_settings
from core.events import Event, Retrying
from tests import test_connect_errors
from tests.conftest import ConfigWriter, closed_port
from tests.fault_replies import (
    CAP_50MB,
    CONTROL_TEXT,
    FIFTY_MB,
    IN_STREAM_ERROR,
    IN_STREAM_MESSAGE,
    KEPT,
    KEY_ENV,
    MALFORMED,
    OWN_WORDS,
    PIECE,
    PROTOCOLS,
    TEN_MB_LINE,
    Replies,
    answer,
    each,
    error_body,
    http,
    long_answer,
    no_end_marker,
    own,
    then,
    with_bytes,
)
from tests.loopback import (
    LoopbackServer,
    Reply,
    error_reply,
    openai_stream,
)
from tests.test_cli import SECRET, quorum
from tests.test_tui import ask, until
from tui.app import QuorumApp
from tui.history_bridge import MemoryHistory
from tui.pane_state import TERMINAL, header_text
from tui.widgets.prompt import PromptArea

tls_port = test_connect_errors.tls_port  # the self-signed TLS server, for the TLS row


# --- the table -----------------------------------------------------------------------------------
class Starts(str):
    """A kept text of which only the beginning is known (a stream stopped by a timer)."""


@dataclass(frozen=True)
class Fault:
    name: str
    reply: Replies | None  # protocol -> what the loopback sends per attempt; None: no server
    state: str  # done | cut | failed
    message: str | Mapping[str, str] | None  # fragment of the error shown; per protocol or one
    kept: str | None = None  # the text kept (a broken answer's part); None: nothing
    retried: str | None = None  # the pane's header between tries; the CLI shows 2 attempts
    server: str = "loopback"  # loopback | refused | unknown | tls | silent
    config: Mapping[str, Any] = field(default_factory=dict)

    def message_for(self, protocol: str, host: str) -> str | None:
        if self.message is None:
            return None
        text = self.message if isinstance(self.message, str) else self.message[protocol]
        return text.replace("{host}", host)


ONE_RETRY = {"max_retries": 1}  # one more try (backoff: the CLI's own, 0.25-0.5 s)
FAULTS = [
    Fault("400", http(400), "failed", own(400)),
    Fault("401", http(401), "failed", own(401)),
    Fault("403", http(403), "failed", own(403)),
    Fault("404", http(404), "failed", own(404)),
    Fault("408", http(408), "failed", own(408), retried="retrying in 1s", config=ONE_RETRY),
    Fault(
        "429 retry-after",
        http(429, retry_after="1", recovers=True),
        "done",
        None,
        kept="Fine, thanks.",
        retried="retrying in 1s",
        config=ONE_RETRY,
    ),
    Fault("500", http(500), "failed", own(500), retried="retrying in 1s", config=ONE_RETRY),
    Fault("502", http(502), "failed", own(502), retried="retrying in 1s", config=ONE_RETRY),
    Fault("503", http(503), "failed", own(503), retried="retrying in 1s", config=ONE_RETRY),
    Fault("529", http(529), "failed", own(529), retried="retrying in 1s", config=ONE_RETRY),
    Fault(
        "connection refused",
        None,
        "failed",
        "cannot reach {host}: connection refused (nothing is listening there",
        server="refused",
    ),
    Fault(
        "unknown host",
        None,
        "failed",
        "unknown host quorum-fault.invalid: the name does not resolve",
        server="unknown",
    ),
    Fault(
        "TLS failure",
        None,
        "failed",
        "certificate verification failed for {host}",
        server="tls",
    ),
    Fault(
        "reset mid-stream",
        each(lambda p: then(p, drop=True)),
        "failed",
        "connection to {host} broke mid-stream",
        kept=KEPT,
    ),
    Fault(
        "no end marker",
        each(no_end_marker),
        "failed",
        {
            "openai": "the stream ended without its [DONE] marker",
            "anthropic": "the stream ended without message_stop",
            "gemini": "the stream ended without a finishReason",
            "ollama": 'the stream ended without its "done": true line',
        },
        kept=KEPT,
    ),
    Fault(
        "malformed JSON",
        each(lambda p: then(p, (0.0, MALFORMED[p]))),
        "failed",
        "unreadable frame from the server",
        kept=KEPT,
    ),
    Fault(
        "error in a 200 stream",
        each(lambda p: then(p, (0.0, IN_STREAM_ERROR[p]))),
        "failed",
        IN_STREAM_MESSAGE,
        kept=KEPT,
    ),
    Fault(
        "invalid UTF-8",
        each(lambda p: with_bytes(answer(p, ["Caf", "<BAD>", " au lait"]), "<BAD>", b"\xff")),
        "done",
        None,
        kept="Caf\ufffd au lait",  # the broken byte shown as U+FFFD, the answer whole
    ),
    Fault(  # not even a status line: the server takes the connection, never answers
        "first byte never comes",
        None,
        "failed",
        "no first token within 1 s",
        server="silent",
        config={"first_token_timeout_s": 1},
    ),
    Fault(  # no text yet: the first-token deadline is the one that runs
        "headers, then nothing",
        each(lambda p: Reply(parts=[(60.0, b"")])),
        "failed",
        "no first token within 1 s",
        config={"first_token_timeout_s": 1},
    ),
    Fault(
        "text, then nothing",
        each(lambda p: then(p, (60.0, b""))),
        "failed",
        "the stream stalled for 1 s (idle timeout)",
        kept=KEPT,
        config={"idle_timeout_s": 1},
    ),
    Fault(
        "stream never ends",
        each(lambda p: long_answer(p, "more ", 100_000, interval=0.02)),
        "failed",
        "no complete answer within the total timeout of 1.5 s",
        kept=Starts("more more more "),
        config={"timeout_s": 1.5},
    ),
    Fault(
        "50 MB answer",
        each(lambda p: long_answer(p, PIECE, FIFTY_MB, interval=0.001)),
        "cut",
        cut_message(CAP_50MB),
        kept=(PIECE * (CAP_50MB // len(PIECE) + 1))[:CAP_50MB],
        config={"max_answer_chars": CAP_50MB},
    ),
    Fault(
        "10 MB SSE line",
        each(lambda p: answer(p, [TEN_MB_LINE])),
        "cut",
        cut_message(DEFAULT_MAX_ANSWER_CHARS),
        kept=TEN_MB_LINE[:DEFAULT_MAX_ANSWER_CHARS],
    ),
]
IDS = [fault.name for fault in FAULTS]

# Every faulty model is bounded: whatever goes wrong, it ends within seconds.
BOUNDS = {
    "timeout_s": 20,
    "connect_timeout_s": 2,
    "first_token_timeout_s": 10,
    "idle_timeout_s": 10,
    "max_retries": 0,
}


# --- servers and configs -------------------------------------------------------------------------
@contextmanager
def silent_port() -> Iterator[int]:
    """A port that accepts connections (the kernel does, from its backlog) and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield int(listener.getsockname()[1])


@contextmanager
def root_for(fault: Fault, server: LoopbackServer, request: pytest.FixtureRequest) -> Iterator[str]:
    """The base URL (without openai's /v1) the faulty models are pointed at."""
    if fault.server == "loopback":
        yield server.url
    elif fault.server == "refused":
        yield f"http://127.0.0.1:{closed_port()}"
    elif fault.server == "unknown":
        yield "http://quorum-fault.invalid"
    elif fault.server == "tls":
        yield f"https://127.0.0.1:{request.getfixturevalue('tls_port')}"
    else:
        with silent_port() as port:
            yield f"http://127.0.0.1:{port}"


def host_of(root: str) -> str:
    return root.split("://", 1)[1]


def model_table(provider: str, name: str, root: str, **extra: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "name": name,
        "provider": provider,
        "model": name,
        "base_url": f"{root}/v1" if provider == "openai" else root,
        **BOUNDS,
        **extra,
    }
    if provider != "ollama":
        values["api_key_env"] = KEY_ENV
    return values


def faulty(protocol: str) -> str:
    return f"f-{protocol}"


def fault_config(
    fault: Fault, server: LoopbackServer, write_config: ConfigWriter, root: str
) -> Path:
    """The four faulty models (at ``root``), scripted with the row's replies, and the control."""
    for protocol in PROTOCOLS:
        if fault.reply is not None:
            server.script(faulty(protocol), fault.reply(protocol))
    server.script("control", openai_stream(["The control answer", ", untouched."]))
    models = [model_table(p, faulty(p), root, **fault.config) for p in PROTOCOLS]
    models.append(model_table("openai", "control", server.url))
    return write_config(models=models)


def stored(home: Path, name: str) -> tuple[str, str]:
    """(state, text) of the model's last recorded answer."""
    (database,) = home.rglob("history.sqlite3")
    with sqlite3.connect(database) as conn:
        row = conn.execute(
            "SELECT state, text FROM responses WHERE model = ? ORDER BY id DESC LIMIT 1", (name,)
        ).fetchone()
    return str(row[0]), str(row[1])


def shows(expected: str, text: str) -> bool:
    """Whether ``text`` holds the pieces of ``expected`` (split at "…": anything between), in
    order."""
    at = 0
    for piece in expected.split("…"):
        found = text.find(piece, at)
        if found < 0:
            return False
        at = found + len(piece)
    return True


def assert_kept(fault: Fault, text: str) -> None:
    if fault.kept is None:
        assert text == ""
    elif isinstance(fault.kept, Starts):
        assert text.startswith(fault.kept), text[:80]
        assert set(text.split()) == {"more"}  # only what the endless stream sent
    else:
        assert text == fault.kept, text[:80]


# --- through the CLI -----------------------------------------------------------------------------
@pytest.mark.parametrize("fault", FAULTS, ids=IDS)
def test_cli(
    fault: Fault,
    loopback: LoopbackServer,
    write_config: ConfigWriter,
    request: pytest.FixtureRequest,
    _isolated_user_dirs: Path,
) -> None:
    with root_for(fault, loopback, request) as root:
        config = fault_config(fault, loopback, write_config, root)
        record = fault.kept is not None  # history matters where an answer is (partly) kept
        flags = () if record else ("--no-history",)
        result = quorum("ask", "--json", *flags, "--config", str(config), "Are you there?")

    assert result.returncode == 0, result.stderr  # the control answered
    assert "Traceback" not in result.stderr
    responses = {r["model"]: r for r in json.loads(result.stdout)["responses"]}
    control = responses.pop("control")
    assert (control["state"], control["text"], control["error"]) == ("done", CONTROL_TEXT, None)
    assert control["attempts"] == 1
    for protocol in PROTOCOLS:
        got = responses[faulty(protocol)]
        assert got["state"] == fault.state, (protocol, got["error"])
        expected = fault.message_for(protocol, host_of(root))
        if expected is None:
            assert got["error"] is None, (protocol, got["error"])
        else:
            assert shows(expected, got["error"] or ""), (protocol, got["error"])
        assert_kept(fault, got["text"])
        assert got["attempts"] == (2 if fault.retried else 1), (protocol, got["error"])
        if record:
            state, text = stored(_isolated_user_dirs / "quorum", faulty(protocol))
            assert (state, text) == (got["state"], got["text"]), protocol
    if fault.server == "loopback" and fault.reply is not None:
        for protocol in PROTOCOLS:  # each model asked once, or twice when retried
            assert len(loopback.requests_for(faulty(protocol))) == (2 if fault.retried else 1)


# --- through the app -----------------------------------------------------------------------------
class WatchedApp(QuorumApp):
    """The real app; it notes what a pane's header says when its model waits to retry."""

    retry_headers: dict[str, list[str]]

    def apply_event(self, event: Event) -> None:
        super().apply_event(event)
        if isinstance(event, Retrying):
            header = header_text(self.panes[event.model].state, {}).plain
            self.retry_headers.setdefault(event.model, []).append(header)


def ended(app: QuorumApp) -> bool:
    return not app.busy and all(p.state.state in TERMINAL for p in app.panes.values())


def flat(text: str) -> str:
    return " ".join(text.split())


def pane_text(app: QuorumApp, name: str) -> str:
    return "\n".join(app.panes[name].body.plain_lines())


@pytest.mark.anyio
@pytest.mark.parametrize("fault", FAULTS, ids=IDS)
async def test_tui(
    fault: Fault,
    loopback: LoopbackServer,
    write_config: ConfigWriter,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(KEY_ENV, SECRET)
    with root_for(fault, loopback, request) as root:
        config = fault_config(fault, loopback, write_config, root)
        app = WatchedApp(load_settings(config), history=MemoryHistory())
        app.retry_headers = {}
        async with app.run_test(size=(200, 50)) as pilot:
            await ask(pilot, "Are you there?")
            await until(pilot, lambda: ended(app), limit_s=90)
            await pilot.pause()

            control = app.panes["control"]
            assert (control.state.state, control.state.text) == ("done", CONTROL_TEXT)
            assert "The control answer" in pane_text(app, "control")
            for protocol in PROTOCOLS:
                name = faulty(protocol)
                state = app.panes[name].state
                assert state.state == fault.state, (protocol, state.answer.error_text)
                expected = fault.message_for(protocol, host_of(root))
                if expected is None:
                    assert state.answer.error_text is None
                else:
                    assert shows(expected, state.answer.error_text or ""), protocol
                    assert shows(flat(expected), flat(pane_text(app, name))), protocol  # on screen
                assert "Traceback" not in pane_text(app, name)
                assert_kept(fault, state.text)
                if fault.retried:
                    (header,) = app.retry_headers[name]
                    assert fault.retried in header, header
                else:
                    assert name not in app.retry_headers


# --- exit codes ----------------------------------------------------------------------------------
def test_every_model_failing_exits_1(loopback: LoopbackServer, write_config: ConfigWriter) -> None:
    for protocol in PROTOCOLS:
        loopback.script(faulty(protocol), http(401)(protocol))
    config = write_config(models=[model_table(p, faulty(p), loopback.url) for p in PROTOCOLS])

    result = quorum("ask", "--json", "--no-history", "--config", str(config), "Anyone?")

    assert result.returncode == 1, result.stderr
    responses = json.loads(result.stdout)["responses"]
    assert [(r["state"], r["error"]) for r in responses] == [
        ("failed", f"HTTP 401: invalid_request_error: {OWN_WORDS[401]['openai']}"),
        ("failed", f"HTTP 401: authentication_error: {OWN_WORDS[401]['anthropic']}"),
        ("failed", f"HTTP 401: UNAUTHENTICATED: {OWN_WORDS[401]['gemini']}"),
        ("failed", f"HTTP 401: {OWN_WORDS[401]['ollama']}"),
    ]


def test_a_config_error_exits_2_with_one_line(
    loopback: LoopbackServer, write_config: ConfigWriter
) -> None:
    config = write_config(models=[model_table("openai", "m", loopback.url, idle_timeout_s=0)])

    result = quorum("ask", "--json", "--no-history", "--config", str(config), "Anyone?")

    assert result.returncode == 2
    assert result.stdout == ""
    assert "idle_timeout_s must be positive, got 0" in result.stderr
    assert not loopback.requests


# --- 100 models at once --------------------------------------------------------------------------
HUNDRED = [(f"m{i:02d}", PROTOCOLS[i % 4]) for i in range(100)]
BROKEN = "m42"  # the one that fails, with a 500 among 99 answers


def hundred_models(loopback: LoopbackServer, write_config: ConfigWriter) -> Path:
    for name, protocol in HUNDRED:
        if name == BROKEN:
            loopback.script(name, error_reply(500, error_body(protocol, 500)))
        else:
            loopback.script(name, answer(protocol, [f"Model {name} ", "says hello."]))
    return write_config(models=[model_table(p, name, loopback.url) for name, p in HUNDRED])


def test_cli_100_models_at_once(loopback: LoopbackServer, write_config: ConfigWriter) -> None:
    config = hundred_models(loopback, write_config)

    result = quorum("ask", "--json", "--no-history", "--config", str(config), "Hello?")

    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    responses = {r["model"]: r for r in data["responses"]}
    assert list(responses) == [name for name, _ in HUNDRED]
    broken = responses.pop(BROKEN)
    assert (broken["state"], broken["error"]) == (
        "failed",
        f"HTTP 500: INTERNAL: {OWN_WORDS[500]['gemini']}",  # m42 speaks gemini
    )
    assert {name: (r["state"], r["text"]) for name, r in responses.items()} == {
        name: ("done", f"Model {name} says hello.") for name, _ in HUNDRED if name != BROKEN
    }
    assert data["consensus"]["answered"] == 99


@pytest.mark.anyio
async def test_tui_100_models_at_once(
    loopback: LoopbackServer, write_config: ConfigWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, SECRET)
    app = QuorumApp(load_settings(hundred_models(loopback, write_config)), history=MemoryHistory())
    async with app.run_test(size=(200, 50)) as pilot:
        await ask(pilot, "Hello?")
        await until(pilot, lambda: ended(app), limit_s=60)
        await pilot.pause()
        broken = app.panes.pop(BROKEN).state
        assert broken.state == "failed"
        assert broken.error == f"HTTP 500: INTERNAL: {OWN_WORDS[500]['gemini']}"
        assert {name: (p.state.state, p.state.text) for name, p in app.panes.items()} == {
            name: ("done", f"Model {name} says hello.") for name, _ in HUNDRED if name != BROKEN
        }


# --- a single paragraph at full speed ------------------------------------------------------------
def type_keys(app: QuorumApp, text: str) -> None:
    """Keys as a terminal sends them: into the app's queue, without waiting for it (Pilot's
    press waits for an idle process, which an endless stream never leaves)."""
    for char in text:
        app.post_message(events.Key("space" if char == " " else char, char))


@pytest.mark.anyio
async def test_a_paragraph_at_full_speed_leaves_the_app_responsive(
    loopback: LoopbackServer, write_config: ConfigWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One pane gets a paragraph that never ends (20 words a frame, as fast as the socket
    goes); the other model's answer is still shown, and keys still reach the prompt."""
    monkeypatch.setenv(KEY_ENV, SECRET)
    flood_reply = long_answer("anthropic", "word " * 20, 10**8, interval=1e-4, batch=100)
    loopback.script("flood", flood_reply)
    loopback.script("steady", answer("openai", ["A steady ", "answer."]))
    config = write_config(
        models=[
            model_table(
                "anthropic",
                "flood",
                loopback.url,
                idle_timeout_s=60,
                timeout_s=120,
                max_answer_chars=10**9,  # never cut while the test runs
            ),
            model_table("openai", "steady", loopback.url),
        ]
    )
    app = QuorumApp(load_settings(config), history=MemoryHistory())
    async with app.run_test(size=(160, 40)) as pilot:
        flood, steady = app.panes["flood"].state, app.panes["steady"].state
        await ask(pilot, "Go on forever")
        await until(pilot, lambda: steady.state == "done" and len(flood.text) > 100_000)
        await until(pilot, lambda: "A steady answer." in pane_text(app, "steady"))
        assert flood.state == "streaming", flood.answer.error_text

        poured = len(flood.text)
        prompt = app.query_one(PromptArea)
        type_keys(app, "next question")
        await until(pilot, lambda: prompt.text == "next question")
        assert len(flood.text) > poured  # typed while the paragraph poured in
        assert flood.state == "streaming", flood.answer.error_text

        await pilot.press("escape")
        await until(pilot, lambda: ended(app))
        assert (flood.state, steady.state) == ("cancelled", "done")
        assert set(flood.text.split()) == {"word"}
        assert prompt.text == "next question"  # Escape cancelled the models, not the typing
