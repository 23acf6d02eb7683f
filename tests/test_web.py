"""``quorum web`` for real: the server as a subprocess, the app in headless Chromium (over the
DevTools protocol) asking models on a loopback provider server; and, without a browser, what
the server refuses before any app process starts."""

from __future__ import annotations

import base64
import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cdp import CHROMIUM, Browser, Page
from tests.conftest import ConfigWriter
from tests.loopback import LoopbackServer, openai_stream
from tests.test_tui import model as tui_model

QUORUM = Path(sys.executable).parent / "quorum"
TOKEN = "test-token-0123456789abcdef"
needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(), reason=f"{CHROMIUM} is not installed (apt-get install chromium)"
)


def until(condition: Callable[[], bool], what: str, limit_s: float = 15.0) -> None:
    """Poll ``condition`` until it holds; the limit only bounds a failing test."""
    deadline = time.monotonic() + limit_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.05)


def children(pid: int) -> list[int]:
    """The live processes whose parent is ``pid`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)": state, ppid, ...
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


class WebServer:
    """``quorum web ...`` as a subprocess, its output collected as it comes."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [str(QUORUM), "web", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        for stream, lines in (
            (self.process.stdout, self.stdout),
            (self.process.stderr, self.stderr),
        ):
            threading.Thread(target=self._collect, args=(stream, lines), daemon=True).start()

    @staticmethod
    def _collect(stream: object, lines: list[str]) -> None:
        for line in stream:  # type: ignore[attr-defined]
            lines.append(line)

    @property
    def pid(self) -> int:
        return self.process.pid

    def url(self) -> str:
        """The URL it printed, once it listens."""
        until(
            lambda: self.process.poll() is not None or any("app is at" in x for x in self.stdout),
            "the server printed its URL",
            30,
        )
        printed = "".join(self.stdout)
        match = re.search(r"the app is at (\S+)", printed)
        assert match, f"no URL in {printed!r}; stderr: {''.join(self.stderr)!r}"
        return match.group(1)

    def port(self) -> int:
        return int(re.search(r":(\d+)/", self.url()).group(1))  # type: ignore[union-attr]

    def stop(self, limit_s: float = 20.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(limit_s)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture
def start_server() -> Iterator[Callable[..., WebServer]]:
    started: list[WebServer] = []

    def start(*args: str) -> WebServer:
        server = WebServer(*args)
        started.append(server)
        return server

    yield start
    for server in started:
        orphans = children(server.pid)
        server.kill()
        for pid in orphans:  # only if a test failed half-way: nothing may outlive it
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def config_for(loopback: LoopbackServer, write_config: ConfigWriter) -> Path:
    loopback.script("alpha", openai_stream(["The answer ", "is 42."]))
    loopback.script("beta", openai_stream(["Beta ", "agrees."]))
    return write_config(models=[tui_model(loopback, name) for name in ("alpha", "beta")])


# --- in the browser ------------------------------------------------------------------------
def app_is_up(screen: str) -> bool:
    return "alpha" in screen and "beta" in screen and "palette" in screen


def answered(screen: str) -> bool:
    return "The answer is 42." in screen and "Beta agrees." in screen


async def wait_until(condition: Callable[[], bool], what: str, limit_s: float = 15.0) -> None:
    import asyncio

    deadline = time.monotonic() + limit_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        await asyncio.sleep(0.05)


async def ask_in(page: Page, question: str) -> None:
    await page.evaluate("document.querySelector('.xterm-helper-textarea').focus()")
    await page.type(question)
    await page.press_enter()


@needs_chromium
@pytest.mark.anyio
async def test_the_app_in_a_browser(
    loopback: LoopbackServer, write_config: ConfigWriter, start_server: Any, tmp_path: Path
) -> None:
    config = config_for(loopback, write_config)
    # Any address but loopback: a token is generated and printed in the URL. One session at most.
    server = start_server(
        "--config", str(config), "--host", "0.0.0.0", "--port", "0", "--max-sessions", "1"
    )
    token = re.search(r"\?token=(\S+)", server.url()).group(1)  # type: ignore[union-attr]
    origin = f"http://127.0.0.1:{server.port()}"

    async with Browser(tmp_path / "profile") as browser:
        page = await browser.new_page()
        await page.goto(f"{origin}/?token={token}")
        await page.wait_for_screen(app_is_up)
        assert await page.evaluate("location.href") == f"{origin}/"  # the token left the URL
        assert await page.evaluate("document.cookie") == ""  # HttpOnly: no script sees it
        (app,) = children(server.pid)

        await ask_in(page, "life, the universe?")
        screen = await page.wait_for_screen(answered)
        shot = await page.screenshot(tmp_path / "quorum-web.png")
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
        assert "failed" not in screen
        sent = loopback.requests_for("alpha")[0].json["messages"][-1]["content"]
        assert sent == "life, the universe?"
        # offline: the page, its script, styles, font and websocket all came from this server
        outside = [u for u in page.requests if not u.startswith((origin, "ws://127.0.0.1:"))]
        assert outside == [], outside
        assert any(u.startswith(f"ws://127.0.0.1:{server.port()}/ws") for u in page.requests)
        assert any(u.endswith(".ttf") for u in page.requests)  # the font, from here

        # a second tab beyond --max-sessions is told so, and starts no app
        second = await browser.new_page()
        await second.goto(f"{origin}/")  # the cookie is enough now
        await second.wait_for_screen(lambda s: "1 session is already open" in s)
        assert children(server.pid) == [app]

        # closing the tab ends its app; then the slot is free for the other tab
        await browser.close_page(page)
        await wait_until(lambda: not alive(app), "the closed tab's app ended")
        await second.goto(f"{origin}/")
        await second.wait_for_screen(app_is_up)
        (again,) = children(server.pid)

        # SIGTERM: the server ends its apps and exits
        assert server.stop() == 0
        assert not alive(again)
        output = "".join(server.stderr)
        assert "Traceback" not in output, output
        assert "stopped (1 open session ended)" in output


# --- without a browser: what is refused, and that no app starts ---------------------------
def get(
    host: str, port: int, path: str, headers: dict[str, str] | None = None
) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection(host, port, timeout=10)
    connection.request("GET", path, headers=headers or {})
    response = connection.getresponse()
    response.read()
    connection.close()
    return response


def upgrade(origin: str, cookie: str | None = None) -> dict[str, str]:
    headers = {
        "Connection": "Upgrade",
        "Upgrade": "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
        "Origin": origin,
    }
    if cookie is not None:
        headers["Cookie"] = f"quorum_web={cookie}"
    return headers


def test_without_the_token_nothing_is_served_and_no_app_starts(
    loopback: LoopbackServer, write_config: ConfigWriter, start_server: Any
) -> None:
    config = config_for(loopback, write_config)
    server = start_server(
        "--config", str(config), "--host", "127.0.0.2", "--port", "0", "--token", TOKEN
    )
    assert server.url().endswith(f"/?token={TOKEN}")
    host, port = "127.0.0.2", server.port()
    origin = f"http://{host}:{port}"

    for path, headers in [
        ("/", {}),
        ("/?token=wrong-token-0123456789", {}),
        ("/", {"Cookie": "quorum_web=wrong"}),
        ("/static/js/textual.js", {}),
        ("/ws?width=80&height=24", upgrade(origin)),  # no cookie
        ("/ws?width=80&height=24", upgrade(origin, cookie="wrong")),
        (f"/ws?token={TOKEN}", upgrade(origin)),  # the websocket needs the cookie
    ]:
        response = get(host, port, path, headers)
        assert response.status == 401, (path, headers, response.status)
    # the right cookie from another site's page: refused too
    response = get(host, port, "/ws", upgrade("http://evil.example", cookie=TOKEN))
    assert response.status == 403
    assert children(server.pid) == []  # nothing refused ever started an app

    response = get(host, port, f"/?token={TOKEN}&fontsize=14")
    assert response.status == 303 and response.getheader("Location") == "/?fontsize=14"
    cookie = response.getheader("Set-Cookie") or ""
    assert cookie.startswith(f"quorum_web={TOKEN};")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    response = get(host, port, "/", {"Cookie": f"quorum_web={TOKEN}"})
    assert response.status == 200
    assert children(server.pid) == []  # a page alone starts nothing
    assert server.stop() == 0


def test_any_other_address_gets_a_generated_token(
    loopback: LoopbackServer, write_config: ConfigWriter, start_server: Any
) -> None:
    config = config_for(loopback, write_config)
    server = start_server("--config", str(config), "--host", "0.0.0.0", "--port", "0")
    match = re.search(r"\?token=([A-Za-z0-9_-]{16,})$", server.url())
    assert match, server.url()
    token, port = match.group(1), server.port()
    assert "the URL holds the token" in "".join(server.stdout)
    assert get("127.0.0.1", port, "/").status == 401
    assert get("127.0.0.1", port, "/ws", upgrade(f"http://127.0.0.1:{port}")).status == 401
    assert children(server.pid) == []  # refused before any app process could start
    response = get("127.0.0.1", port, f"/?token={token}")
    assert response.status == 303
    assert get("127.0.0.1", port, "/", {"Cookie": f"quorum_web={token}"}).status == 200
    assert children(server.pid) == []
    assert server.stop() == 0


def page_body(host: str, port: int, headers: dict[str, str] | None = None) -> tuple[int, str]:
    connection = http.client.HTTPConnection(host, port, timeout=10)
    connection.request("GET", "/", headers=headers or {})
    response = connection.getresponse()
    body = response.read().decode()
    connection.close()
    return response.status, body


def test_loopback_needs_no_token_but_its_own_host_name(
    loopback: LoopbackServer, write_config: ConfigWriter, start_server: Any
) -> None:
    server = start_server("--config", str(config_for(loopback, write_config)), "--port", "0")
    url = server.url()
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", url) and "token" not in url
    port = server.port()
    status, body = page_body("127.0.0.1", port)
    assert status == 200
    assert "https://" not in body and "googleapis" not in body  # nothing from the internet
    assert f'data-session-websocket-url="ws://127.0.0.1:{port}/ws"' in body
    status, _ = page_body("127.0.0.1", port, {"Host": f"localhost:{port}"})
    assert status == 200
    # a page whose name was re-pointed at 127.0.0.1 (DNS rebinding) is refused
    status, body = page_body("127.0.0.1", port, {"Host": f"attacker.example:{port}"})
    assert status == 403 and "loopback" in body
    response = get("127.0.0.1", port, "/ws", upgrade("http://attacker.example"))
    assert response.status == 403
    assert children(server.pid) == []
    assert server.stop() == 0


def test_a_taken_port_is_a_clear_message(
    loopback: LoopbackServer, write_config: ConfigWriter, tmp_path: Path
) -> None:
    config = config_for(loopback, write_config)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [str(QUORUM), "web", "--config", str(config), "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}: the port is taken" in done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""


def test_a_short_token_is_refused(loopback: LoopbackServer, write_config: ConfigWriter) -> None:
    config = config_for(loopback, write_config)
    done = subprocess.run(
        [str(QUORUM), "web", "--config", str(config), "--token", "short"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "at least 16 characters" in done.stderr


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("no such host!", "cannot listen on no such host!:0: no such address or host name"),
        ("192.0.2.1", "cannot listen on 192.0.2.1:0: this machine has no such address"),
        ("", "--host needs an address"),
    ],
)
def test_a_bad_host_is_a_clear_message(
    host: str, expected: str, loopback: LoopbackServer, write_config: ConfigWriter
) -> None:
    config = config_for(loopback, write_config)
    done = subprocess.run(
        [str(QUORUM), "web", "--config", str(config), "--host", host, "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done
    assert expected in done.stderr and "Traceback" not in done.stderr
    assert "check --host" in done.stderr or not host
    assert done.stdout == ""


def test_without_textual_serve_it_says_so(
    loopback: LoopbackServer, write_config: ConfigWriter
) -> None:
    # ``None`` in sys.modules is how Python itself marks a module as not importable.
    program = (
        "import sys; sys.modules['textual_serve'] = None; "
        "from core.cli import main; sys.exit(main())"
    )
    config = config_for(loopback, write_config)
    done = subprocess.run(
        [sys.executable, "-c", program, "web", "--config", str(config), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done
    assert "`quorum web` is unavailable: textual-serve cannot be imported" in done.stderr
    assert "pip install 'textual-serve==1.1.3'" in done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""


def test_the_child_mode_is_only_for_the_server(
    loopback: LoopbackServer, write_config: ConfigWriter
) -> None:
    config = config_for(loopback, write_config)
    done = subprocess.run(
        [str(QUORUM), "web", "--config", str(config), "--child"],
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if k != "TEXTUAL_DRIVER"},
    )
    assert done.returncode == 2 and "is run by `quorum web` for each browser tab" in done.stderr


def test_help_does_not_import_the_web_server() -> None:
    program = (
        "import sys; sys.argv = ['quorum', '--help']\n"
        "from core.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('aiohttp', 'textual_serve', 'textual') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60
    )
    assert done.stdout.strip().endswith("[]"), done
