"""textual-serve's ``Server`` made fit to run Quorum for a browser.

- every request passes ``core.web.access`` first (a middleware), so a refused one never reaches
  the websocket handler that starts an app process;
- the index page is Quorum's own (``index.html``): it loads nothing from the internet, and a
  Content-Security-Policy holds it to this server;
- at most ``max_sessions`` app processes run at once (each tab is one); beyond that a tab is
  told why, in its terminal, and no process starts;
- an app process always ends: when its tab closes (textual-serve's "quit", then SIGTERM, then
  SIGKILL, each after a bounded wait) and when the server stops (every one of them, then the
  websockets are closed).
"""

from __future__ import annotations

import asyncio
import errno
import html
import logging
import os
import signal
import socket
from collections.abc import Callable
from contextlib import suppress
from functools import partial
from pathlib import Path
from string import Template

from aiohttp import WSCloseCode, web
from aiohttp.typedefs import Handler, Middleware
from textual_serve.app_service import AppService
from textual_serve.server import Server, to_int

from core.web.access import COOKIE, Access
from core.web.child import PARENT_ENV

log = logging.getLogger("quorum.web")

QUIT_GRACE_S = 3.0  # after textual-serve's "quit" message, before SIGTERM
TERM_GRACE_S = 3.0  # after SIGTERM, before SIGKILL
SLOT_WAIT_S = 3.0  # a reloaded tab connects while its old app is still ending: wait for it
CLOSE_TIMEOUT_S = 2.0  # a websocket's closing handshake
INDEX = Template((Path(__file__).with_name("index.html")).read_text(encoding="utf-8"))
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self' 'unsafe-inline'; "
        "style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self'; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ),
}
Note = Callable[[str], None]


class PortUnavailable(Exception):
    """The address cannot be listened on; the message says why and what to do."""


class Slots:
    """A count of app processes, at most ``limit``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._changed = asyncio.Condition()

    async def take(self, wait_s: float) -> bool:
        async with self._changed:
            try:
                await asyncio.wait_for(
                    self._changed.wait_for(lambda: self.used < self.limit), wait_s
                )
            except TimeoutError:
                return False
            self.used += 1
            return True

    async def give_back(self) -> None:
        async with self._changed:
            self.used -= 1
            self._changed.notify_all()


async def end_process(process: asyncio.subprocess.Process, quit_grace_s: float) -> None:
    """Wait for ``process`` to end, then SIGTERM it, then SIGKILL it, each after a grace."""
    for grace, escalate in ((quit_grace_s, process.terminate), (TERM_GRACE_S, process.kill)):
        try:
            await asyncio.wait_for(process.wait(), grace)
            return
        except TimeoutError:
            with suppress(ProcessLookupError):
                escalate()
    await process.wait()


class AppSession(AppService):
    """One tab's app process. ``stop`` ends it for certain, however often it is called."""

    _ending: asyncio.Future[None] | None = None

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def _build_environment(self, width: int = 80, height: int = 24) -> dict[str, str]:
        environment = super()._build_environment(width=width, height=height)
        environment[PARENT_ENV] = str(os.getpid())
        return environment

    async def stop(self) -> None:
        if self._ending is None:
            self._ending = asyncio.ensure_future(self._end())
        await asyncio.shield(self._ending)

    async def _end(self) -> None:
        process, reader = self._process, self._task
        self._task = None
        if process is None:
            return
        await self._download_manager.cancel_app_downloads(app_service_id=self.app_service_id)
        grace = 0.0
        if process.returncode is None:
            await self.send_meta({"type": "quit"})  # the app ends as Ctrl+Q ends it
            grace = QUIT_GRACE_S
        await end_process(process, grace)
        if reader is not None:  # it reads the app's output to its end, which is now near
            with suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(reader, TERM_GRACE_S)


def refusal(limit: int) -> str:
    plural = "session is" if limit == 1 else "sessions are"
    return (
        f"\r\n  quorum web: {limit} {plural} already open (--max-sessions {limit}), and each "
        "browser tab runs an app of its own.\r\n  Close a tab, then press Restart.\r\n"
    )


class QuorumServer(Server):
    def __init__(
        self,
        command: str,
        *,
        host: str,
        port: int,
        access: Access,
        max_sessions: int,
        note: Note,
        title: str = "Quorum",
    ) -> None:
        super().__init__(command, host=host, port=port, title=title)
        self.access = access
        self.slots = Slots(max_sessions)
        self.sessions: dict[AppSession, web.WebSocketResponse] = {}
        self._note = note

    async def _make_app(self) -> web.Application:
        app = await super()._make_app()
        app.middlewares.append(_guard(self.access))
        return app

    async def on_startup(self, app: web.Application) -> None:
        """(textual-serve prints its logo here; the command prints the URL instead.)"""

    async def on_shutdown(self, app: web.Application) -> None:
        await self.end_sessions()

    async def end_sessions(self) -> int:
        """End every app process, then close its websocket; the number ended."""
        running = list(self.sessions.items())
        await asyncio.gather(*(session.stop() for session, _ in running), return_exceptions=True)
        await asyncio.gather(
            *(
                ws.close(code=WSCloseCode.GOING_AWAY, message=b"server stopped")
                for _, ws in running
            ),
            return_exceptions=True,
        )
        return len(running)

    async def handle_index(self, request: web.Request) -> web.Response:
        scheme = "wss" if request.secure else "ws"
        page = INDEX.substitute(
            title=html.escape(self.title),
            static_url="/static/",
            websocket_url=html.escape(f"{scheme}://{request.host}/ws"),
            font_size=to_int(request.query.get("fontsize", "16"), 16),
        )
        return web.Response(text=page, content_type="text/html", headers=PAGE_HEADERS)

    async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
        websocket = web.WebSocketResponse(heartbeat=15, timeout=CLOSE_TIMEOUT_S)
        width = to_int(request.query.get("width", "80"), 80)
        height = to_int(request.query.get("height", "24"), 24)
        if not await self.slots.take(SLOT_WAIT_S):
            await websocket.prepare(request)
            await websocket.send_bytes(refusal(self.slots.limit).encode())
            await websocket.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"too many sessions")
            self._note(f"refused a session: {self.slots.limit} already open (--max-sessions)")
            return websocket
        session: AppSession | None = None
        try:
            await websocket.prepare(request)
            session = AppSession(
                self.command,
                write_bytes=websocket.send_bytes,
                write_str=websocket.send_str,
                close=partial(_close, websocket),
                download_manager=self.download_manager,
                debug=self.debug,
            )
            self.sessions[session] = websocket
            await session.start(width, height)
            self._note(f"session opened (app pid {session.pid}; {self._count()})")
            await self._process_messages(websocket, session)
        except Exception as exc:  # a client sending nonsense: its session ends, no traceback
            log.warning("a session ended on an error: %s: %s", type(exc).__name__, exc)
        finally:
            if session is not None:
                await session.stop()
                self.sessions.pop(session, None)
                self._note(f"session ended (app pid {session.pid})")
            await self.slots.give_back()
        return websocket

    def _count(self) -> str:
        return f"{self.slots.used} of at most {self.slots.limit} running"


async def _close(websocket: web.WebSocketResponse) -> None:
    await websocket.close()


def _guard(access: Access) -> Middleware:
    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        verdict = access.judge(
            path=request.path,
            host=request.host,
            origin=request.headers.get("Origin"),
            query_token=request.query.get("token"),
            cookie=request.cookies.get(COOKIE),
        )
        if not verdict.allowed:
            return web.Response(
                status=verdict.status, text=verdict.reason + "\n", headers=PAGE_HEADERS
            )
        if verdict.redirect:  # the token leaves the address bar (and the history) at once
            rest = {k: v for k, v in request.query.items() if k != "token"}
            location = str(request.rel_url.with_query(rest))
            response: web.StreamResponse = web.Response(
                status=303, headers={**PAGE_HEADERS, "Location": location}
            )
        else:
            response = await handler(request)
        if verdict.set_cookie and access.token is not None:
            response.set_cookie(COOKIE, access.token, httponly=True, samesite="Strict", path="/")
        return response

    return guard


async def serve(server: QuorumServer, announce: Callable[[int], None]) -> int:
    """Listen, call ``announce(port)``, serve until SIGINT or SIGTERM, then end every app
    process; the number of sessions that were still open."""
    app = await server._make_app()
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=5.0)
    await runner.setup()
    try:
        await web.TCPSite(runner, server.host, server.port).start()
    except OSError as exc:
        await runner.cleanup()
        raise PortUnavailable(_why(exc, server.host, server.port)) from None
    announce(int(runner.addresses[0][1]))
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM)
    for number in signals:
        loop.add_signal_handler(number, stopping.set)
    try:
        await stopping.wait()
        open_sessions = len(server.sessions)
    finally:
        for number in signals:
            loop.remove_signal_handler(number)
        await runner.cleanup()  # on_shutdown ends the sessions
    return open_sessions


def _why(exc: OSError, host: str, port: int) -> str:
    where = f"cannot listen on {host}:{port}"
    if exc.errno == errno.EADDRINUSE:
        return (
            f"{where}: the port is taken (another server is listening there); choose another "
            "with --port, or --port 0 for any free one"
        )
    if exc.errno == errno.EACCES:
        return f"{where}: permission denied (ports below 1024 need privileges; use --port)"
    if isinstance(exc, socket.gaierror):
        return f"{where}: no such address or host name (check --host)"
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"{where}: this machine has no such address (check --host)"
    reason = exc.strerror or str(exc) or type(exc).__name__
    return f"{where}: {reason}"
