"""Loading and validating ``config.toml``; where files live."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from core import paths
from core.config import (
    PROVIDERS,
    ConfigError,
    ModelSpec,
    load_settings,
)
from tests.conftest import ConfigWriter

GPT = {"name": "gpt", "provider": "openai", "model": "gpt-4o-mini"}
CLAUDE = {"name": "claude", "provider": "anthropic", "model": "claude-haiku"}


def config_error(path: Path | str | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    message = str(info.value)
    assert "Traceback" not in message
    return message


# --- resolution ----------------------------------------------------------------------------
def test_explicit_path_wins_over_environment_and_user_file(
    write_config: ConfigWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    explicit = write_config(models=[GPT], name="explicit.toml")
    monkeypatch.setenv("QUORUM_CONFIG", str(write_config(models=[CLAUDE], name="env.toml")))
    paths.user_config_path().parent.mkdir(parents=True)
    paths.user_config_path().write_text('[[models]]\nname="u"\nprovider="ollama"\nmodel="u"\n')

    assert [m.name for m in load_settings(explicit).models] == ["gpt"]
    assert [m.name for m in load_settings().models] == ["claude"]
    monkeypatch.delenv("QUORUM_CONFIG")
    assert [m.name for m in load_settings().models] == ["u"]


def test_bundled_default_when_nothing_else_exists() -> None:
    assert not paths.user_config_path().exists()
    settings = load_settings()
    assert settings.path == paths.bundled_config_path()
    assert settings.models
    assert all(m.provider in PROVIDERS for m in settings.models)


def test_user_dirs_follow_xdg_and_quorum_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    assert paths.user_config_path() == tmp_path / "cfg" / "quorum" / "config.toml"
    monkeypatch.setenv("QUORUM_HOME", str(tmp_path / "qh"))
    assert paths.data_dir() == tmp_path / "qh"
    monkeypatch.delenv("QUORUM_HOME")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert paths.data_dir() == tmp_path / "data" / "quorum"


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    message = config_error(tmp_path / "nope.toml")
    assert "not found" in message and "nope.toml" in message


# --- a valid file --------------------------------------------------------------------------
def test_every_key_is_read_with_defaults_filled_in(write_config: ConfigWriter) -> None:
    path = write_config(
        models=[
            {
                **GPT,
                "base_url": "https://example.test/v1/",
                "api_key_env": "MY_KEY",
                "temperature": 1,
                "max_tokens": 256,
                "system": "Be brief.",
                "timeout_s": 30,
                "connect_timeout_s": 2.5,
                "first_token_timeout_s": 20,
                "idle_timeout_s": 5,
                "enabled": False,
            },
            {"name": "gem", "provider": "gemini", "model": "gemini-flash"},
            {"name": "llama", "provider": "ollama", "model": "llama3"},
        ],
        ui={"theme": "nord"},
        history={"enabled": False, "max_turns": 4},
    )
    settings = load_settings(path)

    gpt, gem, llama = settings.models
    assert gpt.base_url == "https://example.test/v1"  # trailing slash dropped
    assert (gpt.api_key_env, gpt.temperature, gpt.max_tokens) == ("MY_KEY", 1.0, 256)
    assert isinstance(gpt.temperature, float)
    assert (gpt.timeout_s, gpt.connect_timeout_s, gpt.first_token_timeout_s) == (30, 2.5, 20)
    assert (gpt.idle_timeout_s, gpt.system, gpt.enabled) == (5, "Be brief.", False)
    assert gem.base_url == "https://generativelanguage.googleapis.com"
    assert gem.api_key_env == "GEMINI_API_KEY"
    assert llama.base_url == "http://localhost:11434"
    assert llama.api_key_env is None
    assert settings.enabled_models == (gem, llama)
    assert (settings.theme, settings.history, settings.history_turns) == ("nord", False, 4)


def test_api_key_resolution_and_it_is_never_in_repr(
    write_config: ConfigWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QUORUM_TEST_KEY_VAR", "sk-env-abcdefgh12345")
    monkeypatch.delenv("QUORUM_TEST_UNSET_VAR", raising=False)
    path = write_config(
        models=[
            {**GPT, "name": "inline", "api_key": "sk-inline-abcdefgh12345"},
            {**GPT, "name": "env", "api_key_env": "QUORUM_TEST_KEY_VAR"},
            {**GPT, "name": "unset", "api_key_env": "QUORUM_TEST_UNSET_VAR"},
        ]
    )
    inline, env, unset = load_settings(path).models  # an unset key is not a config error

    assert inline.resolve_api_key() == "sk-inline-abcdefgh12345"
    assert inline.api_key_env is None
    assert env.resolve_api_key() == "sk-env-abcdefgh12345"
    assert unset.resolve_api_key() is None
    assert "sk-inline" not in repr(inline) and "sk-inline" not in str(load_settings(path))


def test_select_by_name(write_config: ConfigWriter) -> None:
    settings = load_settings(write_config(models=[GPT, {**CLAUDE, "enabled": False}]))
    assert [m.name for m in settings.select(["claude", "gpt"])] == ["claude", "gpt"]
    with pytest.raises(ConfigError, match=r"unknown model 'gtp' \(did you mean 'gpt'\?\)"):
        settings.select(["gtp"])


# --- invalid files: one clear message each -------------------------------------------------
def test_toml_syntax_error_gives_line_and_column(write_config: ConfigWriter) -> None:
    path = write_config('[[models]]\nname = "a"\nprovider "openai"\n')
    message = config_error(path)
    assert str(path) in message
    assert "invalid TOML" in message
    assert "line 3" in message and "column" in message


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ({**GPT, "provider": "opeanai"}, "unknown provider 'opeanai' (did you mean 'openai'?)"),
        ({**GPT, "provider": "bard"}, "choose one of openai, anthropic, gemini, ollama, local"),
        ({**GPT, "temprature": 0.5}, "unknown key 'temprature' (did you mean 'temperature'?)"),
        ({**GPT, "temperature": "hot"}, "temperature must be a number, got a string"),
        ({**GPT, "max_tokens": 1.5}, "max_tokens must be an integer, got a number"),
        ({**GPT, "max_tokens": True}, "max_tokens must be an integer, got a boolean"),
        ({**GPT, "enabled": "yes"}, "enabled must be true or false, got a string"),
        ({**GPT, "model": 4}, "model must be a string, got an integer"),
        ({**GPT, "timeout_s": 0}, "timeout_s must be positive"),
        ({**GPT, "temperature": -1}, "temperature must be positive"),
        ({**GPT, "extra_body": "x"}, "extra_body must be a table"),
        ({"name": "m", "provider": "openai"}, "missing required key 'model'"),
        ({**GPT, "name": " "}, "name must not be empty"),
        ({**GPT, "base_url": "localhost:11434"}, "model 'gpt': base_url must be an http://"),
        ({**GPT, "base_url": ""}, "base_url must be an http:// or https:// URL"),
        ({**GPT, "base_url": "https://"}, "got 'https:'"),
        ({**GPT, "base_url": "ftp://host/v1"}, "got 'ftp://host/v1'"),
        ({**GPT, "base_url": "http://[::1"}, "base_url must be an http://"),
    ],
)
def test_model_validation_errors(
    model: dict[str, Any], expected: str, write_config: ConfigWriter
) -> None:
    message = config_error(write_config(models=[model]))
    assert expected in message
    assert "config.toml" in message


def test_a_local_model_needs_no_base_url(write_config: ConfigWriter) -> None:
    local = {"name": "smol", "provider": "local", "model": "smollm2-135m"}
    assert load_settings(write_config(models=[local])).models[0].base_url == ""


def test_error_names_the_model(write_config: ConfigWriter) -> None:
    message = config_error(write_config(models=[GPT, {**CLAUDE, "max_tokens": "many"}]))
    assert "model 'claude'" in message


def test_duplicate_model_names(write_config: ConfigWriter) -> None:
    message = config_error(write_config(models=[GPT, {**CLAUDE, "name": "gpt"}]))
    assert "duplicate model name 'gpt'" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('models = "gpt"\n', "'models' must be an array of tables"),
        ("models = [1]\n", "[[models]] #1 must be a table"),
        ('ui = "dark"\n', "[ui] and [history] must be tables"),
        ("[ui]\ntheme = 3\n", "[ui] theme must be a string"),
        ('[history]\nenabled = "no"\n', "[history] enabled must be true or false"),
        ("[history]\nmax_turns = -2\n", "[history] max_turns must be a non-negative integer"),
    ],
)
def test_top_level_validation_errors(text: str, expected: str, write_config: ConfigWriter) -> None:
    assert expected in config_error(write_config(text))


def test_unreadable_bytes(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'[ui]\ntheme = "caf\xe9"\n')
    assert "cannot read config file" in config_error(path)


def test_model_spec_is_immutable() -> None:
    spec = ModelSpec(name="a", provider="openai", model="m")
    with pytest.raises(AttributeError):
        spec.name = "b"  # type: ignore[misc]
