"""Who may use ``quorum web``: decided per request, before any handler runs (so a refused
request never starts an app process).

- With a token (``--token``, or one generated for any address that is not loopback): a page
  request must carry it as ``?token=`` (then it is kept in an HttpOnly, SameSite=Strict cookie
  and the address bar is cleared of it by a redirect) or bring that cookie; the websocket that
  starts an app must bring the cookie. Anything else is 401.
- Without a token (a loopback address only): the ``Host`` header must name a loopback address
  (``127.0.0.1``, ``localhost``, ``[::1]``), so a web page whose name was re-pointed at
  127.0.0.1 (DNS rebinding) is refused with 403.
- Always: the websocket's ``Origin`` must be this server itself (``http://`` + ``Host``), so
  another site open in the same browser cannot start or drive a session (403).

Tokens are compared with ``hmac.compare_digest``.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from dataclasses import dataclass

COOKIE = "quorum_web"
WEBSOCKET_PATH = "/ws"


@dataclass(frozen=True, slots=True)
class Verdict:
    status: int = 200  # anything but 200: refused with this status and ``reason``
    reason: str = ""
    set_cookie: bool = False  # the token came in the query: keep it in the cookie
    redirect: bool = False  # ... and send the browser to the same page without it

    @property
    def allowed(self) -> bool:
        return self.status == 200


ALLOWED = Verdict()


def new_token() -> str:
    return secrets.token_urlsafe(24)


def is_loopback_address(host: str) -> bool:
    """``127.0.0.1``, any 127/8 address, ``::1`` or ``localhost`` (no port)."""
    name = host.strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def host_name(host_header: str) -> str:
    """The name in a ``Host`` header, without its port (``[::1]:8000`` → ``::1``)."""
    if host_header.startswith("["):
        return host_header[1:].split("]", 1)[0]
    return host_header.rsplit(":", 1)[0] if host_header.count(":") == 1 else host_header


def same_origin(origin: str | None, host_header: str) -> bool:
    if not origin or not host_header:
        return False
    origin = origin.lower()
    host = host_header.lower()
    return origin in (f"http://{host}", f"https://{host}")


def _matches(offered: str | None, token: str) -> bool:
    return offered is not None and hmac.compare_digest(offered.encode(), token.encode())


@dataclass(frozen=True, slots=True)
class Access:
    """The policy of one server: ``token`` None means none is needed (loopback binds only)."""

    token: str | None

    def judge(
        self,
        *,
        path: str,
        host: str,
        origin: str | None,
        query_token: str | None,
        cookie: str | None,
    ) -> Verdict:
        if self.token is None and not is_loopback_address(host_name(host)):
            return Verdict(
                403,
                "quorum web: refused: this server answers only to a loopback name "
                "(127.0.0.1, localhost); the Host header named something else",
            )
        if path == WEBSOCKET_PATH and not same_origin(origin, host):
            return Verdict(
                403, "quorum web: refused: the websocket was not opened by this server's page"
            )
        if self.token is None:
            return ALLOWED
        if path == WEBSOCKET_PATH:
            return ALLOWED if _matches(cookie, self.token) else _UNAUTHORIZED
        if _matches(query_token, self.token):
            return Verdict(set_cookie=True, redirect=True)
        if _matches(cookie, self.token):
            return ALLOWED
        return _UNAUTHORIZED


_UNAUTHORIZED = Verdict(
    401,
    "quorum web: this server needs its token: open the URL it printed (it ends in ?token=...)",
)
