"""Provider failures, phrased for people, and the retry hints that come with them."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any

from core.events import FailureKind
from core.sanitize import strip_control

RETRYABLE_STATUSES = frozenset({408, 409, 429, 529})

# Anthropic names its errors; a mid-stream `event: error` carries the type, not a status.
ANTHROPIC_ERROR_STATUS: Mapping[str, int] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "overloaded_error": 529,
}


class ProviderError(Exception):
    """A model's failure, phrased for people; `retryable` says whether another try may help."""

    def __init__(
        self,
        kind: FailureKind,
        message: str,
        status: int | None = None,
        retry_after_s: float | None = None,
        should_retry: bool | None = None,  # the server's explicit say (x-should-retry), if any
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.status = status
        self.retry_after_s = retry_after_s
        self.should_retry = should_retry

    def __str__(self) -> str:
        return self.message

    @property
    def retryable(self) -> bool:
        if self.should_retry is not None:
            return self.should_retry
        if self.kind is FailureKind.CONNECT:
            return True
        status = self.status
        return status is not None and (status in RETRYABLE_STATUSES or status >= 500)

    def redacted(self, secret: str | None) -> ProviderError:
        if not secret or len(secret) < 8 or secret not in self.message:
            return self
        return ProviderError(
            self.kind,
            redact(self.message, secret),
            self.status,
            self.retry_after_s,
            self.should_retry,
        )


def redact(text: str, secret: str | None) -> str:
    """Remove a key from text. Keys shorter than 8 characters are not real keys (and would
    shred ordinary words), so they are left alone."""
    if not secret or len(secret) < 8:
        return text
    return text.replace(secret, "[redacted]")


def error_from_response(status: int, headers: Mapping[str, str], body: bytes) -> ProviderError:
    """A non-2xx response: the provider's own message, its status and any retry hint."""
    message, body_delay = describe_error_body(body)
    if not message:
        message = _REASONS.get(status, "error")
    should_retry = headers.get("x-should-retry")
    header_delay = retry_after_from_headers(headers)  # 0 is a real answer: retry at once
    return ProviderError(
        FailureKind.HTTP,
        message,
        status=status,
        retry_after_s=header_delay if header_delay is not None else body_delay,
        should_retry={"true": True, "false": False}.get((should_retry or "").lower()),
    )


def describe_error_body(body: bytes | str) -> tuple[str, float | None]:
    """(message, retry delay) from an error body of any of the four providers.

    Shapes: ``{"error": {"message": …}}`` (OpenAI, Anthropic, Gemini), ``{"error": "…"}``
    (Ollama), ``[{"error": …}]`` (Gemini's JSON-array mode), or plain text.
    """
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        data: Any = json.loads(text)
    except ValueError:
        return _clip(strip_control(text.strip())), None
    if isinstance(data, list) and data:
        data = data[0]
    return error_message(data), gemini_retry_delay(data)


def error_message(data: Any) -> str:
    """The human message inside a provider's error object (or "")."""
    if not isinstance(data, dict):
        return _clip(strip_control(str(data))) if data else ""
    error = data.get("error", data)
    if isinstance(error, str):
        return _clip(strip_control(error))
    if isinstance(error, dict):
        for key in ("message", "detail", "error"):
            value = error.get(key)
            if isinstance(value, str) and value:
                kind = error.get("type") or error.get("status")
                prefix = f"{kind}: " if isinstance(kind, str) and kind not in value else ""
                return _clip(strip_control(prefix + value))
    for key in ("message", "detail"):
        value = data.get(key)
        if isinstance(value, str) and value:
            return _clip(strip_control(value))
    return _clip(strip_control(json.dumps(error)))


def gemini_retry_delay(data: Any) -> float | None:
    """Google's ``RetryInfo.retryDelay`` (e.g. ``"34.4s"``) from an error body."""
    if not isinstance(data, dict) or not isinstance(data.get("error"), dict):
        return None
    details = data["error"].get("details")
    for detail in details if isinstance(details, list) else ():
        if isinstance(detail, dict) and isinstance(detail.get("retryDelay"), str):
            match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)s\s*", detail["retryDelay"])
            if match:
                return float(match.group(1))
    return None


def retry_after_from_headers(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait: ``retry-after-ms``, else ``retry-after`` as seconds or an HTTP date."""
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        try:
            value = float(raw_ms) / 1000
            if value >= 0:
                return value
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        value = float(raw)
        return value if value >= 0 else None
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    delay = when.timestamp() - (time.time() if now is None else now)
    return max(0.0, delay)


def _clip(text: str, limit: int = 500) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


_REASONS = {
    400: "bad request",
    401: "unauthorized (check the API key)",
    402: "payment required",
    403: "forbidden",
    404: "not found (check base_url and model)",
    408: "request timeout",
    409: "conflict",
    413: "request too large",
    422: "unprocessable request",
    429: "rate limited",
    500: "internal server error",
    502: "bad gateway",
    503: "service unavailable",
    504: "gateway timeout",
    529: "overloaded",
}


def connect_failure(exc: BaseException, host: str) -> ProviderError:
    """A failed connection, named for what failed (TLS handshake, certificate, refused, unknown
    host), with a hint; TLS and certificate failures are not retried: another try fails alike."""
    import socket
    import ssl

    causes = _causes(exc)
    certificate = next((c for c in causes if isinstance(c, ssl.SSLCertVerificationError)), None)
    if certificate is not None:
        reason = certificate.verify_message or _first_line(certificate)
        return ProviderError(
            FailureKind.CONNECT,
            f"certificate verification failed for {host}: {reason} (a self-signed or private "
            "certificate: add its CA to the system store, or set SSL_CERT_FILE)",
            should_retry=False,
        )
    tls = next((c for c in causes if isinstance(c, ssl.SSLError)), None)
    if tls is not None:
        hint = (
            "the server does not speak TLS on that port: if it serves plain HTTP, use "
            "http:// in base_url"
            if "WRONG_VERSION_NUMBER" in str(tls) or "record layer" in str(tls)
            else "check the port and that the server serves HTTPS there"
        )
        return ProviderError(
            FailureKind.CONNECT,
            f"TLS handshake with {host} failed ({_ssl_reason(tls)}): {hint}",
            should_retry=False,
        )
    if any(isinstance(c, socket.gaierror) for c in causes):
        return ProviderError(
            FailureKind.CONNECT,
            f"unknown host {host.rsplit(':', 1)[0]}: the name does not resolve (check base_url, "
            "or the network's DNS)",
        )
    if any(isinstance(c, ConnectionRefusedError) for c in causes):
        hint = "nothing is listening there: is the server running, and on that port?"
        return ProviderError(
            FailureKind.CONNECT, f"cannot reach {host}: connection refused ({hint})"
        )
    return ProviderError(FailureKind.CONNECT, f"cannot reach {host}: {_first_line(exc)}")


def _causes(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
        if isinstance(current, BaseExceptionGroup):
            current = current.exceptions[0] if current.exceptions else None
    return seen


def _ssl_reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    return str(reason) if reason else _first_line(exc)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
