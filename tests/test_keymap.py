"""``[keys]``: remaps read from a real config file, and every refusal as the user reads it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from core import paths
from core.config import ConfigError, load_settings
from core.keymap import ACTIONS, DEFAULT_KEYS, label, labels, normalize_key, parse_keys
from tests.conftest import ConfigWriter

MODEL = {"name": "a", "provider": "openai", "model": "a", "api_key": "k"}
_SCRIPT = Path(sys.executable).with_name("quorum")
QUORUM = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "core.cli"]


def config_with_keys(write_config: ConfigWriter, keys: str) -> Path:
    return write_config(
        f'[[models]]\nname = "a"\nprovider = "openai"\nmodel = "a"\napi_key = "k"\n\n'
        f"[keys]\n{keys}\n"
    )


def refusal(write_config: ConfigWriter, keys: str) -> str:
    path = config_with_keys(write_config, keys)
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: [keys]"), message
    assert "\n" not in message
    return message


def test_no_keys_table_means_every_default(write_config: ConfigWriter) -> None:
    settings = load_settings(write_config(models=[MODEL]))
    assert dict(settings.keys) == dict(DEFAULT_KEYS)
    assert settings.keys["app.open-history"] == ("f2",)


def test_the_bundled_config_loads_and_keeps_the_defaults() -> None:
    text = paths.bundled_config_path().read_text(encoding="utf-8")
    assert "[keys]" in text and '# app.help = "f9"' in text
    assert dict(load_settings(paths.bundled_config_path()).keys) == dict(DEFAULT_KEYS)


def test_the_three_spellings_of_an_action(write_config: ConfigWriter) -> None:
    for keys in (
        'app.open-history = "f6"',
        '"app.open-history" = "f6"',
        '[keys.app]\nopen-history = "f6"',
    ):
        settings = load_settings(config_with_keys(write_config, keys))
        assert settings.keys["app.open-history"] == ("f6",), keys
        assert settings.keys["app.help"] == ("f1",)


def test_keys_are_normalised_as_textual_names_them(write_config: ConfigWriter) -> None:
    settings = load_settings(
        config_with_keys(
            write_config,
            'app.open-history = "Ctrl+O, ?"\n'
            'app.new-session = ["alt+n", "F7"]\n'
            'pane.copy = "esc"\n'  # a focused pane's Escape now copies; app.cancel-all moves
            'app.cancel-all = "ctrl+x"',
        )
    )
    assert settings.keys["app.open-history"] == ("ctrl+o", "question_mark")
    assert settings.keys["app.new-session"] == ("alt+n", "f7")
    assert settings.keys["pane.copy"] == ("escape",)
    assert settings.keys["app.cancel-all"] == ("ctrl+x",)


def test_closing_keys_follow_the_key_that_opened_the_screen(write_config: ConfigWriter) -> None:
    settings = load_settings(config_with_keys(write_config, 'app.help = "f9"'))
    assert settings.keys["app.help"] == ("f9",)
    assert settings.keys["help.close"] == ("escape", "q", "f9")  # F1 no longer closes help
    settings = load_settings(
        config_with_keys(write_config, 'app.help = "f9"\nhelp.close = "escape"')
    )
    assert settings.keys["help.close"] == ("escape",)


def test_two_actions_can_swap_keys(write_config: ConfigWriter) -> None:
    settings = load_settings(
        config_with_keys(write_config, 'app.help = "f2"\napp.open-history = "f1"')
    )
    assert settings.keys["app.help"] == ("f2",)
    assert settings.keys["app.open-history"] == ("f1",)


def test_one_key_on_different_screens_is_no_clash(write_config: ConfigWriter) -> None:
    # The history screen's own keys win there; on the main screen Ctrl+F is free.
    settings = load_settings(config_with_keys(write_config, 'app.new-session = "ctrl+f"'))
    assert settings.keys["app.new-session"] == ("ctrl+f",)
    assert settings.keys["history.search"] == ("ctrl+f",)


def test_an_unknown_action_names_the_nearest(write_config: ConfigWriter) -> None:
    message = refusal(write_config, 'app.hlep = "f9"')
    assert message.endswith("unknown action 'app.hlep' (did you mean 'app.help'?)")
    message = refusal(write_config, '[keys.pane]\nretyr = "t"')
    assert "unknown action 'pane.retyr' (did you mean 'pane.retry'?)" in message


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ('"ctrl+"', "app.help = 'ctrl+': nothing after the '+'"),
        ('"shift+shift+a"', "app.help = 'shift+shift+a': it names shift twice"),
        ('"ctrl+shift"', "app.help = 'ctrl+shift': shift is a modifier: name the key it goes with"),
        ('"banana"', "there is no key called 'banana'"),
        ('"pgup2"', "there is no key called 'pgup2'"),
        ('"f99"', "there is no 'f99' key: function keys go from f1 to f24"),
        ('"hyper+a"', "Quorum takes no hyper+ keys"),
        ('"cmd+a"', "unknown modifier 'cmd'"),
        ('"ctrl+h"', "terminals send Ctrl+H as Backspace, so the app never sees Ctrl+H"),
        ('"shift+y"', 'Shift with a character never arrives: the terminal sends "Y"'),
        ('"ctrl+q"', "Ctrl+Q is Textual's own key: it quits the app everywhere"),
        ('"tab"', "Tab is Textual's own key: it moves the focus on everywhere"),
        ('""', "no key named"),
        ("[]", "give at least one key (an action cannot be unbound)"),
        ("3", 'must be a key or an array of keys, such as "f9"'),
    ],
)
def test_an_impossible_key_is_named_with_why(
    write_config: ConfigWriter, value: str, reason: str
) -> None:
    assert reason in refusal(write_config, f"app.help = {value}")


def test_a_clash_names_both_actions(write_config: ConfigWriter) -> None:
    message = refusal(write_config, 'app.help = "f2"')
    assert message.endswith(
        "[keys]: app.open-history (by default) and app.help are both on F2 "
        "(both on the main screen); give one of them another key"
    )
    message = refusal(write_config, 'pane.copy = "ctrl+n"')
    assert "app.new-session (by default) and pane.copy are both on Ctrl+N" in message
    assert "(both on a focused pane)" in message
    message = refusal(write_config, 'history.rerun = "ctrl+f"')
    assert "history.rerun and history.search (by default) are both on Ctrl+F" in message
    message = refusal(write_config, 'app.sources = "f9"\nsources.page-up = "f9"')
    assert "sources.close (which follows app.sources) and sources.page-up" in message


def test_an_action_given_twice(write_config: ConfigWriter) -> None:
    message = refusal(write_config, '"app.help" = "f9"\napp = { help = "f8" }')
    assert message.endswith("[keys]: app.help is given twice")


def test_keys_must_be_a_table() -> None:
    with pytest.raises(ConfigError, match=r"^cfg\.toml: \[keys\] must be a table$"):
        parse_keys("f1", "cfg.toml")


def test_labels_as_a_person_writes_them() -> None:
    assert label("ctrl+r") == "Ctrl+R"
    assert label("pageup") == "PgUp"
    assert label("question_mark") == "?"
    assert label("escape") == "Escape"
    assert labels(("escape", "f3", "q")) == "Escape / F3 / q"
    assert labels(str(n) for n in range(1, 10)) == "1-9"
    assert normalize_key(" Ctrl + R ") == "ctrl+r"


def test_every_default_key_is_itself_valid() -> None:
    for action in ACTIONS:
        for key in action.keys:
            assert normalize_key(key) == key, action.id


def test_the_cli_prints_the_refusal_in_one_line(write_config: ConfigWriter) -> None:
    path = config_with_keys(write_config, 'app.hlep = "f9"')
    result = run_quorum("--config", str(path), "models")
    assert result.returncode == 2
    assert result.stderr == (
        f"quorum: {path}: [keys]: unknown action 'app.hlep' (did you mean 'app.help'?)\n"
    )
    path = config_with_keys(write_config, 'app.help = "shift+shift"')
    result = run_quorum("--config", str(path), "models")
    assert result.returncode == 2
    assert "app.help = 'shift+shift': shift is a modifier: name the key" in result.stderr
    assert "Traceback" not in result.stderr


def run_quorum(*args: str) -> subprocess.CompletedProcess[str]:
    result: subprocess.CompletedProcess[Any] = subprocess.run(
        [*QUORUM, *args], capture_output=True, text=True, timeout=60, check=False
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result
