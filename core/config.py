"""Loading and validating ``config.toml``.

Every problem becomes one `ConfigError` with a message a person can act on (file, line, key);
callers print it and exit 2. A model whose API key variable is unset is *not* a config error:
that model alone fails when it runs (see `ModelSpec.resolve_api_key`).
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from core import paths
from core.consensus.settings import ConsensusSettings, parse_consensus
from core.keymap import DEFAULT_KEYS, parse_keys

PROVIDERS = ("openai", "anthropic", "gemini", "ollama", "local")

DEFAULT_BASE_URLS: Mapping[str, str] = {
    "openai": "https://api.openai.com/v1",
    "anthropic": "https://api.anthropic.com",
    "gemini": "https://generativelanguage.googleapis.com",
    "ollama": "http://localhost:11434",
    "local": "",
}

DEFAULT_KEY_ENV: Mapping[str, str | None] = {
    "openai": "OPENAI_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
    "gemini": "GEMINI_API_KEY",
    "ollama": None,
    "local": None,
}


FOLLOW_UPS = ("own", "synthesis")
DEFAULT_MAX_ANSWER_CHARS = 2_000_000
_LIMIT_KEYS = ("max_answer_chars",)  # [limits]: defaults for every model, each may override


class ConfigError(Exception):
    """A configuration problem, already phrased for the user."""


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """One configured model. Immutable; passed from the config to the engine and providers."""

    name: str
    provider: str
    model: str
    base_url: str = ""
    api_key_env: str | None = None
    api_key: str | None = field(default=None, repr=False)  # never printed
    temperature: float | None = None
    max_tokens: int | None = None
    system: str | None = None
    description: str = ""
    timeout_s: float = 120.0
    connect_timeout_s: float = 10.0
    first_token_timeout_s: float = 60.0
    idle_timeout_s: float = 30.0
    max_retries: int = 2
    enabled: bool = True
    top_p: float | None = None
    seed: int | None = None
    threads: int | None = None  # local models: CPU threads for this member
    n_ctx: int = 2048  # local models: context window
    max_answer_chars: int = DEFAULT_MAX_ANSWER_CHARS  # text + reasoning kept; beyond it: "cut"
    extra_body: Mapping[str, Any] = field(default_factory=dict)  # merged into the request JSON

    def resolve_api_key(self) -> str | None:
        """The key from ``api_key`` or the named environment variable, or None."""
        if self.api_key:
            return self.api_key
        if self.api_key_env:
            return os.environ.get(self.api_key_env) or None
        return None


@dataclass(frozen=True, slots=True)
class StoreSettings:
    """``[store]``: the knowledge base and its embedder."""

    embedding: str = "builtin"  # "builtin" | "openai:<model>" | "ollama:<model>"
    embedding_model: str | None = None  # the configured model whose base URL and key serve it
    rag: bool = True  # retrieved sources go into every prompt when the knowledge base has any
    top_k: int = 5
    min_score: float = 0.3
    url: str | None = None  # a Chroma server instead of the embedded store
    max_file_mb: float = 5.0


@dataclass(frozen=True, slots=True)
class Settings:
    path: Path
    models: tuple[ModelSpec, ...]
    theme: str | None = None
    history: bool = True
    history_turns: int = 10
    store: StoreSettings = field(default_factory=lambda: StoreSettings())
    consensus: ConsensusSettings = field(default_factory=lambda: ConsensusSettings())
    follow_up: str = "own"  # what a model's next turn sees: "own" answer or the "synthesis"
    keys: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: DEFAULT_KEYS)  # [keys]
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def enabled_models(self) -> tuple[ModelSpec, ...]:
        return tuple(m for m in self.models if m.enabled)

    def select(self, names: Sequence[str]) -> tuple[ModelSpec, ...]:
        """The models named (enabled or not), in the order given; unknown names are an error."""
        by_name = {m.name: m for m in self.models}
        unknown = [n for n in names if n not in by_name]
        if unknown:
            raise ConfigError(
                f"unknown model {unknown[0]!r}{suggest(unknown[0], by_name)}; "
                f"configured: {', '.join(by_name) or '(none)'}"
            )
        return tuple(by_name[n] for n in names)


_SPEC_FIELDS = {f.name: f for f in fields(ModelSpec)}
_FLOAT_KEYS = {
    "temperature",
    "top_p",
    "timeout_s",
    "connect_timeout_s",
    "first_token_timeout_s",
    "idle_timeout_s",
}
_INT_KEYS = {"max_tokens", "max_retries", "seed", "threads", "n_ctx", "max_answer_chars"}
_POSITIVE_INT_KEYS = {"max_tokens", "threads", "n_ctx", "max_answer_chars"}
_STR_KEYS = {
    "name",
    "provider",
    "model",
    "base_url",
    "api_key_env",
    "api_key",
    "system",
    "description",
}


def suggest(word: str, options: Any) -> str:
    close = difflib.get_close_matches(word, list(options), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _check_type(where: str, key: str, value: Any) -> Any:
    if key in _STR_KEYS:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: {key} must be a string, got {_tname(value)}")
    elif key in _FLOAT_KEYS:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: {key} must be a number, got {_tname(value)}")
        if value < 0 or (key.endswith("_s") and value == 0):
            raise ConfigError(f"{where}: {key} must be positive, got {value}")
        return float(value)
    elif key in _INT_KEYS:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: {key} must be an integer, got {_tname(value)}")
        if value < 0 or (key in _POSITIVE_INT_KEYS and value == 0):
            raise ConfigError(f"{where}: {key} must be positive, got {value}")
    elif key == "enabled":
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: enabled must be true or false, got {_tname(value)}")
    elif key == "extra_body" and not isinstance(value, dict):
        raise ConfigError(f"{where}: extra_body must be a table, got {_tname(value)}")
    return value


def _tname(value: Any) -> str:
    return {
        str: "a string",
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        list: "an array",
        dict: "a table",
    }.get(type(value), type(value).__name__)


def parse_model(
    raw: Any, index: int, source: str, defaults: Mapping[str, Any] | None = None
) -> ModelSpec:
    """One ``[[models]]`` table; ``defaults`` (from ``[limits]``) fill the keys it omits."""
    where = f"{source}: [[models]] #{index + 1}"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a table")
    if isinstance(raw.get("name"), str):
        where = f"{source}: model {raw['name']!r}"
    for key in ("name", "provider", "model"):
        if key not in raw:
            raise ConfigError(f"{where}: missing required key {key!r}")
    values: dict[str, Any] = dict(defaults or {})
    for key, value in raw.items():
        if key not in _SPEC_FIELDS:
            raise ConfigError(f"{where}: unknown key {key!r}{suggest(key, _SPEC_FIELDS)}")
        values[key] = _check_type(where, key, value)
    provider = values["provider"]
    if provider not in PROVIDERS:
        raise ConfigError(
            f"{where}: unknown provider {provider!r}{suggest(provider, PROVIDERS)}; "
            f"choose one of {', '.join(PROVIDERS)}"
        )
    if not values["name"].strip():
        raise ConfigError(f"{where}: name must not be empty")
    values.setdefault("base_url", DEFAULT_BASE_URLS[provider])
    values["base_url"] = values["base_url"].rstrip("/")
    if provider != "local":
        _check_base_url(where, values["base_url"])
    if "api_key" not in values:
        values.setdefault("api_key_env", DEFAULT_KEY_ENV[provider])
    return ModelSpec(**values)


def _check_base_url(where: str, url: str, key: str = "base_url") -> None:
    """An HTTP provider's URL must name a scheme and a host, or every request fails later with
    an obscure transport error (after retries)."""
    try:
        parts = urlsplit(url)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        valid = False
    if not valid:
        got = repr(url) if url else "an empty string"
        raise ConfigError(
            f"{where}: {key} must be an http:// or https:// URL "
            f"(such as https://api.example.com/v1), got {got}"
        )


def parse_settings(data: Mapping[str, Any], path: Path) -> Settings:
    source = str(path)
    models_raw = data.get("models", [])
    if not isinstance(models_raw, list):
        raise ConfigError(f"{source}: 'models' must be an array of tables ([[models]])")
    limits = parse_limits(data.get("limits", {}), source)
    models = tuple(parse_model(raw, i, source, limits) for i, raw in enumerate(models_raw))
    seen: set[str] = set()
    for spec in models:
        if spec.name in seen:
            raise ConfigError(f"{source}: duplicate model name {spec.name!r}; names must be unique")
        seen.add(spec.name)
    ui = data.get("ui", {})
    history = data.get("history", {})
    if not isinstance(ui, dict) or not isinstance(history, dict):
        raise ConfigError(f"{source}: [ui] and [history] must be tables")
    theme = ui.get("theme")
    if theme is not None and not isinstance(theme, str):
        raise ConfigError(f"{source}: [ui] theme must be a string")
    enabled = history.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ConfigError(f"{source}: [history] enabled must be true or false")
    turns = history.get("max_turns", 10)
    if isinstance(turns, bool) or not isinstance(turns, int) or turns < 0:
        raise ConfigError(f"{source}: [history] max_turns must be a non-negative integer")
    follow_up = history.get("follow_up", "own")
    if follow_up not in FOLLOW_UPS:
        raise ConfigError(
            f'{source}: [history] follow_up must be "own" or "synthesis", got {follow_up!r}'
        )
    return Settings(
        path=path,
        models=models,
        theme=theme,
        history=enabled,
        history_turns=turns,
        store=parse_store(data.get("store", {}), source, models),
        consensus=parse_consensus(data.get("consensus", {}), source, [m.name for m in models]),
        follow_up=follow_up,
        keys=parse_keys(data.get("keys", {}), source),
        raw=data,
    )


def check_table(raw: Any, where: str, known: Collection[str], what: str = "key") -> None:
    """``raw`` must be a table whose keys are all ``known`` (the first other one is named)."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a table")
    for key in raw:
        if key not in known:
            raise ConfigError(f"{where}: unknown {what} {key!r}{suggest(key, known)}")


def parse_limits(raw: Any, source: str) -> dict[str, Any]:
    """``[limits]``: the defaults every model gets unless its own table sets the key."""
    where = f"{source}: [limits]"
    check_table(raw, where, _LIMIT_KEYS)
    return {key: _check_type(where, key, value) for key, value in raw.items()}


def load_settings(explicit: str | os.PathLike[str] | None = None) -> Settings:
    """Resolve, read and validate the configuration. Raises `ConfigError`."""
    path = paths.resolve_config_path(explicit)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message already ends with "(at line L, column C)".
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    return parse_settings(data, path)


def with_overrides(spec: ModelSpec, **changes: Any) -> ModelSpec:
    return replace(spec, **changes)


_STORE_KEYS = {f.name for f in fields(StoreSettings)}


def parse_store(raw: Any, source: str, models: Sequence[ModelSpec]) -> StoreSettings:
    where = f"{source}: [store]"
    check_table(raw, where, _STORE_KEYS)
    store = StoreSettings()
    embedding = raw.get("embedding", store.embedding)
    if (
        not isinstance(embedding, str)
        or not (embedding == "builtin" or embedding.partition(":")[0] in ("openai", "ollama"))
        or (embedding != "builtin" and not embedding.partition(":")[2])
    ):
        raise ConfigError(
            f'{where}: embedding must be "builtin", "openai:<model>" or "ollama:<model>", '
            f"got {embedding!r}"
        )
    via = raw.get("embedding_model")
    if via is not None and not isinstance(via, str):
        raise ConfigError(f"{where}: embedding_model must be a model name (a string)")
    if embedding != "builtin":
        kind = embedding.partition(":")[0]
        candidates = [m for m in models if m.provider == kind]
        if via is not None and via not in {m.name for m in models}:
            raise ConfigError(f"{where}: embedding_model {via!r} is not a configured model")
        if via is None and not candidates:
            raise ConfigError(
                f"{where}: embedding {embedding!r} needs a configured {kind} model whose "
                "base_url and key it uses; add one or name it with embedding_model"
            )
    top_k = raw.get("top_k", store.top_k)
    if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= 50:
        raise ConfigError(f"{where}: top_k must be an integer from 1 to 50, got {top_k!r}")
    min_score = raw.get("min_score", store.min_score)
    if (
        isinstance(min_score, bool)
        or not isinstance(min_score, int | float)
        or not (0.0 <= min_score <= 1.0)
    ):
        raise ConfigError(f"{where}: min_score must be a number from 0 to 1, got {min_score!r}")
    url = raw.get("url")
    if url is not None:
        if not isinstance(url, str):
            raise ConfigError(f"{where}: url must be a string")
        _check_base_url(where, url, key="url")
    rag = raw.get("rag", store.rag)
    if not isinstance(rag, bool):
        raise ConfigError(f"{where}: rag must be true or false")
    max_mb = raw.get("max_file_mb", store.max_file_mb)
    if isinstance(max_mb, bool) or not isinstance(max_mb, int | float) or not 0 < max_mb <= 1024:
        raise ConfigError(f"{where}: max_file_mb must be a number from 0 to 1024")
    return StoreSettings(
        embedding=embedding,
        embedding_model=via,
        rag=rag,
        top_k=top_k,
        min_score=float(min_score),
        url=url.rstrip("/") if url else None,
        max_file_mb=float(max_mb),
    )
