"""Choosing a theme in the app: kept in Quorum's own state file, never in the user's config."""

from __future__ import annotations

import json
from typing import Any

import pytest
from textual.pilot import Pilot

from core import state
from core.config import load_settings
from tests.conftest import ConfigWriter
from tests.loopback import LoopbackServer
from tests.test_tui import SIZE, _palette_has, until
from tui.app import QuorumApp

pytestmark = pytest.mark.anyio


def commented_config(server: LoopbackServer, ui: str = "") -> str:
    return f"""# My Quorum setup -- hand-written, keep these notes.
{ui}
[[models]]   # the fast one
name = "m"
provider = "openai"
model = "m"
base_url = "{server.url}/v1"   # loopback
api_key = "test-key-123456"

# [[models]]            ready to uncomment
# name = "claude"
# provider = "anthropic"
"""


async def pick_theme(pilot: Pilot[Any], name: str) -> None:
    """Ctrl+P → Theme → the theme's name, as a person does it."""
    await pilot.press("ctrl+p")
    await until(pilot, lambda: type(pilot.app.screen).__name__ == "CommandPalette")
    commands = pilot.app.screen
    await pilot.press(*"theme")
    await until(pilot, lambda: _palette_has(pilot, "theme"))
    await pilot.press("enter")
    await until(
        pilot,
        lambda: (
            pilot.app.screen is not commands and type(pilot.app.screen).__name__ == "CommandPalette"
        ),
    )
    await pilot.press(*name)
    await until(pilot, lambda: _palette_has(pilot, name))
    await pilot.press("enter")
    await until(pilot, lambda: type(pilot.app.screen).__name__ != "CommandPalette")
    await until(pilot, lambda: pilot.app.theme == name)


async def test_choosing_a_theme_keeps_the_config_byte_identical(
    loopback: LoopbackServer, write_config: ConfigWriter
) -> None:
    path = write_config(commented_config(loopback))
    before = path.read_bytes()
    app = QuorumApp(load_settings(path))
    async with app.run_test(size=SIZE) as pilot:
        assert app.theme == "quorum-dark"
        assert {"quorum-light", "fjord", "solstice", "ember"} <= set(app.available_themes)
        await pick_theme(pilot, "solstice")
        await until(pilot, lambda: state.state_path().is_file())
    assert path.read_bytes() == before
    assert json.loads(state.state_path().read_text())["theme"] == "solstice"
    again = QuorumApp(load_settings(path))
    async with again.run_test(size=SIZE):
        assert again.theme == "solstice"


async def test_the_configs_theme_wins_over_the_one_chosen_in_the_app(
    loopback: LoopbackServer, write_config: ConfigWriter
) -> None:
    path = write_config(commented_config(loopback, ui='[ui]\ntheme = "ember"   # mine\n'))
    before = path.read_bytes()
    state.save_state(state.AppState(theme="fjord"))
    app = QuorumApp(load_settings(path))
    async with app.run_test(size=SIZE) as pilot:
        assert app.theme == "ember"
        await pick_theme(pilot, "solstice")
        assert app.theme == "solstice"  # applied for this run
        await until(
            pilot,
            lambda: any("[ui] theme" in str(n.message) for n in app._notifications),
        )
    assert path.read_bytes() == before
    assert state.load_state()[0].theme == "fjord"  # nothing saved: the config decides
    again = QuorumApp(load_settings(path))
    async with again.run_test(size=SIZE):
        assert again.theme == "ember"


@pytest.mark.parametrize(
    "content",
    ["{not json", "[1, 2]", '{"version": 1, "theme": 7}', '{"theme": "fjord"}', "\xff"],
)
async def test_a_corrupt_state_file_is_ignored_with_a_notice(
    loopback: LoopbackServer, write_config: ConfigWriter, content: str
) -> None:
    path = write_config(commented_config(loopback))
    state.state_path().parent.mkdir(parents=True, exist_ok=True)
    state.state_path().write_text(content, encoding="latin-1")
    app = QuorumApp(load_settings(path))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert app.theme == "quorum-dark"
        assert any(str(state.state_path()) in str(n.message) for n in app._notifications)
        await pick_theme(pilot, "fjord")  # and choosing a theme replaces the broken file
        await until(pilot, lambda: state.load_state() == (state.AppState(theme="fjord"), None))


def test_a_newer_state_file_is_read_as_empty_and_never_overwritten() -> None:
    path = state.state_path()
    path.parent.mkdir(parents=True)
    newer = '{"version": 99, "theme": "fjord", "layout": "x"}'
    path.write_text(newer)
    loaded, notice = state.load_state()
    assert loaded == state.AppState() and notice is not None and "newer Quorum" in notice
    assert state.save_state(state.AppState(theme="ember")) is not None
    assert path.read_text() == newer


def test_unknown_keys_survive_a_save() -> None:
    path = state.state_path()
    path.parent.mkdir(parents=True)
    path.write_text('{"version": 1, "theme": "fjord", "later": [1]}')
    state.save_state(state.AppState(theme="ember"))
    assert json.loads(path.read_text()) == {"version": 1, "theme": "ember", "later": [1]}
    assert not [p for p in path.parent.iterdir() if p.name != path.name]  # no temp file left
