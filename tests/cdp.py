"""Headless Chromium driven over the DevTools protocol (CDP), with aiohttp's websocket client.

    async with Browser(tmp_path / "profile") as browser:
        page = await browser.new_page()
        await page.goto("http://127.0.0.1:8000/")
        text = await page.wait_for_screen(lambda s: "ready" in s)

A browser of its own (a fresh profile, no first-run, no background networking, no sandbox for
containers), its DevTools port read from ``<profile>/DevToolsActivePort``. One websocket to the
browser; each page is a flat session on it. Every request a page makes is recorded
(``page.requests``), so a test can say where the page went. ``XTERM_HOOK`` and
``page.screen()`` read what an xterm.js terminal on the page shows.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--window-size=1280,800",
    "--remote-debugging-port=0",
)

# Installed before any script of the page runs: textual-serve's page does
# ``this.terminal = new Terminal(...)``; an accessor on Object.prototype sees that assignment
# and keeps the terminal where the test can read its buffer (xterm.js draws on a canvas, so the
# DOM holds no text).
XTERM_HOOK = """
Object.defineProperty(Object.prototype, "terminal", {
  configurable: true,
  get() { return undefined; },
  set(value) {
    Object.defineProperty(this, "terminal", {
      value, writable: true, configurable: true, enumerable: true,
    });
    if (value && value.buffer && value.buffer.active) { window.__terminals = [value]; }
    else if (value && typeof value.open === "function") {
      (window.__terminals = window.__terminals || []).push(value);
    }
  },
});
"""
SCREEN = """(() => {
  const terminal = (window.__terminals || [])[0];
  if (!terminal) return "";
  const buffer = terminal.buffer.active, rows = [];
  for (let y = 0; y < terminal.rows; y++) {
    const line = buffer.getLine(buffer.viewportY + y);
    rows.push(line ? line.translateToString(true) : "");
  }
  return rows.join("\\n");
})()"""


class CdpError(Exception):
    pass


class Connection:
    def __init__(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        self._socket = socket
        self._next_id = 0
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.listeners: dict[str | None, Callable[[str, dict[str, Any]], None]] = {}
        self._reader = asyncio.create_task(self._read())

    async def call(self, method: str, session: str | None = None, **params: Any) -> Any:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session is not None:
            message["sessionId"] = session
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[self._next_id] = future
        await self._socket.send_str(json.dumps(message))
        reply = await asyncio.wait_for(future, 30)
        if "error" in reply:
            raise CdpError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    async def _read(self) -> None:
        async for frame in self._socket:
            if frame.type != aiohttp.WSMsgType.TEXT:
                continue
            message = json.loads(frame.data)
            if "id" in message:
                future = self._waiting.pop(message["id"], None)
                if future is not None and not future.done():
                    future.set_result(message)
            elif (listener := self.listeners.get(message.get("sessionId"))) is not None:
                listener(message["method"], message.get("params", {}))
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(CdpError("the browser closed the connection"))

    async def close(self) -> None:
        await self._socket.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


class Page:
    def __init__(self, connection: Connection, target: str, session: str) -> None:
        self.connection = connection
        self.target = target
        self.session = session
        self.requests: list[str] = []  # every URL the page asked for, websockets included
        connection.listeners[session] = self._event

    def _event(self, method: str, params: dict[str, Any]) -> None:
        if method == "Network.requestWillBeSent":
            self.requests.append(params["request"]["url"])
        elif method == "Network.webSocketCreated":
            self.requests.append(params["url"])

    async def call(self, method: str, **params: Any) -> Any:
        return await self.connection.call(method, self.session, **params)

    async def goto(self, url: str) -> None:
        result = await self.call("Page.navigate", url=url)
        if result.get("errorText"):
            raise CdpError(f"navigating to {url}: {result['errorText']}")

    async def evaluate(self, expression: str) -> Any:
        result = await self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise CdpError(f"{expression[:60]!r}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def screen(self) -> str:
        """The text an xterm.js terminal on the page shows (needs ``XTERM_HOOK``)."""
        return str(await self.evaluate(SCREEN))

    async def wait_for_screen(self, condition: Callable[[str], bool], limit_s: float = 30) -> str:
        """Poll the terminal's text until ``condition`` holds; the limit bounds a failing test."""
        deadline = time.monotonic() + limit_s
        while True:
            text = await self.screen()
            if condition(text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"the page never showed what was expected:\n{text}")
            await asyncio.sleep(0.1)

    async def type(self, text: str) -> None:
        await self.call("Input.insertText", text=text)

    async def press_enter(self) -> None:
        key = {"key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13}
        await self.call("Input.dispatchKeyEvent", type="keyDown", text="\r", **key)
        await self.call("Input.dispatchKeyEvent", type="keyUp", **key)

    async def screenshot(self, path: Path) -> Path:
        result = await self.call("Page.captureScreenshot", format="png")
        await asyncio.to_thread(path.write_bytes, base64.b64decode(result["data"]))
        return path


class Browser:
    def __init__(self, profile: Path, *, executable: Path = CHROMIUM) -> None:
        self.profile = profile
        self.executable = executable
        self._process: subprocess.Popen[bytes] | None = None
        self._http: aiohttp.ClientSession | None = None
        self._connection: Connection | None = None

    @property
    def connection(self) -> Connection:
        assert self._connection is not None
        return self._connection

    async def __aenter__(self) -> Browser:
        self._process = await asyncio.to_thread(self._launch)
        endpoint = await self._devtools_endpoint()
        self._http = aiohttp.ClientSession()
        socket = await self._http.ws_connect(endpoint, max_msg_size=0)
        self._connection = Connection(socket)
        return self

    def _launch(self) -> subprocess.Popen[bytes]:
        self.profile.mkdir(parents=True, exist_ok=True)
        with (self.profile.parent / "chromium.log").open("wb") as log:
            return subprocess.Popen(
                [str(self.executable), *FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,  # its helpers too are ended with it, as a group
            )

    async def _devtools_endpoint(self, limit_s: float = 30) -> str:
        marker = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + limit_s
        while True:
            lines = marker.read_text().split() if marker.exists() else []
            if len(lines) >= 2:
                return f"ws://127.0.0.1:{lines[0]}{lines[1]}"
            assert self._process is not None
            if self._process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("Chromium did not start (see chromium.log)")
            await asyncio.sleep(0.05)

    async def new_page(self, init_script: str = XTERM_HOOK) -> Page:
        target = (await self.connection.call("Target.createTarget", url="about:blank"))["targetId"]
        attached = await self.connection.call(
            "Target.attachToTarget", targetId=target, flatten=True
        )
        page = Page(self.connection, target, attached["sessionId"])
        await page.call("Page.enable")
        await page.call("Network.enable")
        await page.call("Page.addScriptToEvaluateOnNewDocument", source=init_script)
        return page

    async def close_page(self, page: Page) -> None:
        await self.connection.call("Target.closeTarget", targetId=page.target)

    async def __aexit__(self, *exc: object) -> None:
        if self._connection is not None:
            with contextlib.suppress(CdpError, asyncio.TimeoutError, aiohttp.ClientError):
                await asyncio.wait_for(self._connection.call("Browser.close"), 5)
            await self._connection.close()
        if self._http is not None:
            await self._http.close()
        if self._process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                await asyncio.to_thread(self._process.wait, 10)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait()
