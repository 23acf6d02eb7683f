"""``quorum web``: the app in a browser. Each tab runs an app process of its own (``quorum web
--child``, started by textual-serve), with the same config and the same history as the server.

127.0.0.1 by default, with no token unless ``--token`` asks for one; any other address needs a
token (``--token``, or one generated here and printed in the URL). aiohttp and textual-serve are
imported only when the server starts.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

from core.cli.argtypes import positive_int
from core.cli.exits import EXIT_OK, EXIT_USAGE
from core.config import Settings

COMMANDS = ("web",)
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_MAX_SESSIONS = 4
MIN_TOKEN_CHARS = 16
TEXTUAL_SERVE = "1.1.3"  # the release tui/web/server.py extends (pyproject.toml pins it)


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0 to 65535, got {text!r}")
    return value


def add_parsers(sub: Any) -> None:
    web = sub.add("web", help="serve the app to a browser (each tab runs its own app)")
    web.add_argument(
        "--host",
        default=DEFAULT_HOST,
        metavar="ADDRESS",
        help=f"address to listen on (default {DEFAULT_HOST}; any other needs a token)",
    )
    web.add_argument(
        "--port",
        type=_port,
        default=DEFAULT_PORT,
        help=f"port to listen on (default {DEFAULT_PORT}; 0: any free port)",
    )
    web.add_argument(
        "--token",
        help=(
            f"require this token ({MIN_TOKEN_CHARS}+ characters), also on 127.0.0.1; default: "
            "none on a loopback address, a generated one on any other"
        ),
    )
    web.add_argument(
        "--max-sessions",
        type=positive_int,
        default=DEFAULT_MAX_SESSIONS,
        metavar="N",
        help=f"app processes (tabs) at once (default {DEFAULT_MAX_SESSIONS})",
    )
    web.add_argument("--child", action="store_true", help=argparse.SUPPRESS)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from core.web.access import is_loopback_address, new_token

    if args.child:
        return _run_child(settings)
    if not args.host.strip():
        sys.stderr.write(
            "quorum: --host needs an address (127.0.0.1, the default; 0.0.0.0 for every one)\n"
        )
        return EXIT_USAGE
    if args.token is not None and len(args.token) < MIN_TOKEN_CHARS:
        sys.stderr.write(f"quorum: --token must be at least {MIN_TOKEN_CHARS} characters\n")
        return EXIT_USAGE
    token = args.token
    if token is None and not is_loopback_address(args.host):
        token = new_token()
    config = getattr(args, "sub_config", None) or args.config
    return serve(
        child_command(config),
        host=args.host,
        port=args.port,
        token=token,
        max_sessions=args.max_sessions,
    )


def child_command(config: str | None) -> str:
    """The shell command textual-serve runs per tab: this Python, this config (``exec``: the
    app is the process textual-serve started, so ending it ends the app)."""
    argv = [sys.executable, "-m", "core.cli"]
    if config:
        argv += ["--config", str(Path(config).resolve())]
    return "exec " + shlex.join([*argv, "web", "--child"])


def app_url(host: str, port: int, token: str | None) -> str:
    import ipaddress
    import socket
    from urllib.parse import quote

    shown = host
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        if address.is_unspecified:  # 0.0.0.0 or ::: every address; name this machine
            shown = socket.gethostname()
        elif address.version == 6:
            shown = f"[{host}]"
    url = f"http://{shown}:{port}/"
    return url if token is None else f"{url}?token={quote(token, safe='')}"


def serve(command: str, *, host: str, port: int, token: str | None, max_sessions: int) -> int:
    import asyncio

    from core.web.access import Access

    try:
        from tui.web.server import PortUnavailable, QuorumServer
        from tui.web.server import serve as serve_app
    except ImportError as exc:  # a broken install: textual-serve (or aiohttp) is missing
        sys.stderr.write(
            f"quorum: `quorum web` is unavailable: textual-serve cannot be imported ({exc}); "
            f"reinstall it: pip install 'textual-serve=={TEXTUAL_SERVE}'\n"
        )
        return EXIT_USAGE

    def note(text: str) -> None:
        sys.stderr.write(f"quorum web: {text}\n")
        sys.stderr.flush()

    def announce(bound_port: int) -> None:
        url = app_url(host, bound_port, token)
        lines = [f"quorum web: the app is at {url}"]
        if token is not None:
            lines.append("quorum web: the URL holds the token: share it only with who may use it")
        lines.append(
            f"quorum web: each tab runs its own app (at most {max_sessions} at once); "
            "Ctrl+C stops the server and them"
        )
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()

    server = QuorumServer(
        command,
        host=host,
        port=port,
        access=Access(token),
        max_sessions=max_sessions,
        note=note,
    )
    try:
        ended = asyncio.run(serve_app(server, announce))
    except PortUnavailable as exc:
        sys.stderr.write(f"quorum: {exc}\n")
        return EXIT_USAGE
    note(f"stopped ({ended} open session{'' if ended == 1 else 's'} ended)")
    return EXIT_OK


def _run_child(settings: Settings) -> int:
    from core.web.child import bind_to_parent, under_web_server

    if not under_web_server():
        sys.stderr.write("quorum: `web --child` is run by `quorum web` for each browser tab\n")
        return EXIT_USAGE
    if not bind_to_parent():
        return EXIT_OK  # the server is gone already: nobody to show the app to
    from tui.app import run_app

    return run_app(settings)
