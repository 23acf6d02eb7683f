"""``quorum models``: list the configured models; with ``--check``, probe every enabled model's
endpoint at once (reachability, the provider's own error, latency) without asking anything."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TextIO

import anyio
import httpx

from core.cli.table import format_table
from core.config import ModelSpec, Settings
from core.errors import ProviderError, connect_failure, error_from_response, redact
from core.providers import HTTP_PROVIDERS, make_client
from core.providers.anthropic import API_VERSION

PROBE_TIMEOUT_S = 5.0
COMMANDS = ("models",)


def add_parsers(sub: Any) -> None:
    models = sub.add("models", help="list the configured models")
    models.add_argument(
        "--check",
        action="store_true",
        help="probe every endpoint concurrently: reachability and latency",
    )
    models.add_argument("--json", action="store_true", help="machine-readable output")


def run(args: argparse.Namespace, settings: Settings) -> int:
    return run_models_command(settings, check=args.check, as_json=args.json)


ProbeState = Literal["ok", "failed", "skipped"]


@dataclass(frozen=True, slots=True)
class ProbeResult:
    state: ProbeState
    detail: str
    status: int | None = None
    latency_ms: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.state == "ok",
            "state": self.state,
            "status": self.status,
            "detail": self.detail,
            "latency_ms": self.latency_ms,
        }


def key_status(spec: ModelSpec) -> str:
    """``key set``, ``needs $VAR`` or ``no key needed`` — never the key itself."""
    if spec.resolve_api_key():
        return "key set"
    if spec.api_key_env:
        return f"needs ${spec.api_key_env}"
    return "needs api_key" if needs_key(spec) else "no key needed"


def needs_key(spec: ModelSpec) -> bool:
    """Whether the model cannot be asked without a key (``api_key_env = ""``: a server that
    needs none)."""
    provider = HTTP_PROVIDERS.get(spec.provider)
    return provider is not None and provider.needs_key and spec.api_key_env != ""


# --- probing ---------------------------------------------------------------------------------
Endpoint = Callable[[ModelSpec, str | None], tuple[str, dict[str, str]]]


def _bearer(key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"} if key else {}


# Each provider's cheapest authenticated GET: its model list.
ENDPOINTS: Mapping[str, Endpoint] = {
    "openai": lambda s, key: (f"{s.base_url}/models", _bearer(key)),
    "anthropic": lambda s, key: (
        f"{s.base_url}/v1/models",
        {"anthropic-version": API_VERSION, **({"x-api-key": key} if key else {})},
    ),
    "gemini": lambda s, key: (
        f"{s.base_url}/v1beta/models",
        {"x-goog-api-key": key} if key else {},
    ),
    "ollama": lambda s, key: (f"{s.base_url}/api/tags", _bearer(key)),
}


async def probe_http(client: httpx.AsyncClient, spec: ModelSpec) -> ProbeResult:
    key = spec.resolve_api_key()
    if needs_key(spec) and key is None:
        return ProbeResult("skipped", f"not checked: no API key ({key_status(spec)})")
    url, headers = ENDPOINTS[spec.provider](spec, key)
    host = httpx.URL(url).netloc.decode("ascii", "replace")
    started = time.perf_counter()
    try:
        response = await client.get(url, headers=headers, timeout=PROBE_TIMEOUT_S)
    except httpx.TimeoutException:
        return ProbeResult("failed", f"no answer from {host} within {PROBE_TIMEOUT_S:g} s")
    except httpx.ConnectError as exc:  # named (refused, unknown host, TLS), with a hint
        named = connect_failure(exc, host).message
        return ProbeResult("failed", f"unreachable: {redact(named, key)}")
    except httpx.HTTPError as exc:
        reason = redact(str(exc).strip() or type(exc).__name__, key)
        return ProbeResult("failed", f"unreachable: cannot reach {host}: {reason}")
    latency = round((time.perf_counter() - started) * 1000, 1)
    if response.status_code >= 400:
        error = error_from_response(response.status_code, response.headers, response.content)
        message = redact(error.message, key)
        return ProbeResult("failed", f"HTTP {error.status}: {message}", error.status, latency)
    return ProbeResult("ok", "ok", response.status_code, latency)


def probe_local(spec: ModelSpec) -> ProbeResult:
    try:
        from core.providers.gguf import check_model_file
        from core.providers.local import resolve_model_path
    except ImportError:
        return ProbeResult("skipped", "not checked (local models are not available)")
    started = time.perf_counter()
    try:
        path = resolve_model_path(spec.model)
        check_model_file(path)  # there, readable, GGUF: the provider's own first check
    except ProviderError as exc:
        return ProbeResult("failed", exc.message)
    latency = round((time.perf_counter() - started) * 1000, 1)
    return ProbeResult("ok", f"ok ({path})", latency_ms=latency)


async def probe_all(models: Sequence[ModelSpec]) -> dict[str, ProbeResult]:
    """Every enabled model probed concurrently over one shared client."""
    results: dict[str, ProbeResult] = {}

    async def probe(client: httpx.AsyncClient, spec: ModelSpec) -> None:
        if not spec.enabled:
            results[spec.name] = ProbeResult("skipped", "disabled")
        elif spec.provider == "local":
            results[spec.name] = probe_local(spec)
        elif spec.provider in ENDPOINTS:
            results[spec.name] = await probe_http(client, spec)
        else:
            results[spec.name] = ProbeResult("failed", f"unknown provider {spec.provider!r}")

    async with make_client(len(models)) as client, anyio.create_task_group() as group:
        for spec in models:
            group.start_soon(probe, client, spec)
    return results


# --- the command -----------------------------------------------------------------------------
def run_models_command(settings: Settings, *, check: bool, as_json: bool) -> int:
    checks = anyio.run(probe_all, settings.models) if check else None
    if as_json:
        write_json(settings, checks, sys.stdout)
    else:
        write_table(settings, checks, sys.stdout)
    if checks is None:
        return 0
    return 1 if any(r.state == "failed" for r in checks.values()) else 0


def write_json(settings: Settings, checks: Mapping[str, ProbeResult] | None, out: TextIO) -> None:
    models = []
    for spec in settings.models:
        entry: dict[str, Any] = {
            "name": spec.name,
            "provider": spec.provider,
            "model": spec.model,
            "base_url": spec.base_url,
            "enabled": spec.enabled,
            "key": key_status(spec),
        }
        if checks is not None:
            entry["check"] = checks[spec.name].to_json()
        models.append(entry)
    out.write(json.dumps({"config": str(settings.path), "models": models}, indent=2) + "\n")


def write_table(settings: Settings, checks: Mapping[str, ProbeResult] | None, out: TextIO) -> None:
    out.write(f"config: {settings.path}\n")
    if not settings.models:
        out.write("no models configured\n")
        return
    header = ["name", "provider", "model", "base_url", "enabled", "key"]
    if checks is not None:
        header += ["latency", "check"]
    rows = [header]
    for spec in settings.models:
        row = [
            spec.name,
            spec.provider,
            spec.model,
            spec.base_url or "-",
            "yes" if spec.enabled else "no",
            key_status(spec),
        ]
        if checks is not None:
            result = checks[spec.name]
            latency = "-" if result.latency_ms is None else f"{result.latency_ms:.0f} ms"
            row += [latency, result.detail]
        rows.append(row)
    out.write(format_table(rows, right_aligned={6}))
    if checks is not None:
        states = [checks[m.name].state for m in settings.models if m.enabled]
        out.write(
            f"{states.count('ok')} reachable, {states.count('failed')} failed, "
            f"{states.count('skipped')} not checked\n"
        )
