"""``[keys]`` in the running app: a remapped action answers to its new key only, and the footer,
the help screen and the palette name the key it is on now."""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any

import pytest
from textual.app import App
from textual.keys import _character_to_key
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets import Footer, Static
from textual.widgets._footer import FooterKey

from core.config import load_settings
from core.keymap import DEFAULT_KEYS, RESERVED, character_key
from tests.conftest import ConfigWriter
from tests.test_tui import rendered_text, until
from tui.app import QuorumApp
from tui.commands import quorum_commands
from tui.history_memory import MemoryHistory
from tui.keys import bound_keys
from tui.screens.help import HelpScreen
from tui.screens.history import HistoryScreen
from tui.screens.query_search import QuerySearchScreen
from tui.screens.sources import SourcesScreen
from tui.widgets.pane import ModelPane

pytestmark = pytest.mark.anyio
SIZE = (120, 40)
OWNERS = (QuorumApp, ModelPane, HistoryScreen, QuerySearchScreen, SourcesScreen, HelpScreen)


def app_with_keys(write_config: ConfigWriter, keys: str) -> QuorumApp:
    path: Path = write_config(
        '[[models]]\nname = "a"\nprovider = "openai"\nmodel = "a"\napi_key = "k"\n\n'
        f"[keys]\n{keys}\n"
    )
    return QuorumApp(load_settings(path), history=MemoryHistory())


def footer_keys(app: QuorumApp) -> dict[str, str]:
    """The footer's entries: description → key."""
    return {k.description: k.key for k in app.screen.query_one(Footer).query(FooterKey)}


def help_text(app: QuorumApp) -> str:
    assert isinstance(app.screen, HelpScreen)
    return rendered_text(app.screen.query_one(Static).content)


async def settled(pilot: Pilot[Any]) -> None:
    await pilot.pause()
    await pilot.pause()


async def test_a_remapped_action_opens_on_its_new_key_only(write_config: ConfigWriter) -> None:
    app = app_with_keys(write_config, 'app.open-history = "f8"')
    async with app.run_test(size=SIZE) as pilot:
        await settled(pilot)
        await pilot.press("f2")
        await settled(pilot)
        assert not isinstance(app.screen, HistoryScreen)
        await pilot.press("f8")
        await until(pilot, lambda: isinstance(app.screen, HistoryScreen))
        await pilot.press("escape")  # history.back, not moved
        await until(pilot, lambda: not isinstance(app.screen, HistoryScreen))


async def test_the_footer_shows_the_new_key(write_config: ConfigWriter) -> None:
    app = app_with_keys(write_config, 'app.open-history = "f8"\napp.help = "ctrl+o"')
    async with app.run_test(size=SIZE) as pilot:
        await settled(pilot)
        keys = footer_keys(app)
        assert keys["History"] == "f8"
        assert keys["Help"] == "ctrl+o"
        assert keys["Sources"] == "f3"  # the rest stay where they were
        assert "[keys]" not in {n.title for n in app._notifications}
    default = app_with_keys(write_config, "")
    async with default.run_test(size=SIZE) as pilot:
        await settled(pilot)
        assert footer_keys(default)["History"] == "f2"


async def test_a_key_the_prompt_uses_is_shown_where_it_works(write_config: ConfigWriter) -> None:
    # The prompt's own F6 (select the line) wins while it has the focus: the app says so, the
    # footer leaves it out there, and with the focus on a pane F6 opens history.
    app = app_with_keys(write_config, 'app.open-history = "f6"\napp.help = "question_mark"')
    async with app.run_test(size=SIZE) as pilot:
        await settled(pilot)
        notes = [n.message for n in app._notifications if n.title == "[keys]"]
        assert len(notes) == 1
        assert "app.open-history = F6: the prompt uses it to select line" in notes[0]
        assert "app.help = ?: the prompt types it" in notes[0]
        keys = footer_keys(app)
        assert "History" not in keys
        next(iter(app.panes.values())).focus()
        await settled(pilot)
        keys = footer_keys(app)
        assert keys["History"] == "f6"
        assert keys["Help"] == "question_mark"
        assert keys["Sources"] == "f3"  # the rest stay where they were
    default = app_with_keys(write_config, "")
    async with default.run_test(size=SIZE) as pilot:
        await settled(pilot)
        assert footer_keys(default)["History"] == "f2"


async def test_the_help_screen_lists_every_action_with_its_keys(
    write_config: ConfigWriter,
) -> None:
    app = app_with_keys(
        write_config,
        'app.open-history = "f8"\napp.help = "f9"\npane.copy = "ctrl+y"\nhistory.rerun = "f5"',
    )
    async with app.run_test(size=SIZE) as pilot:
        await settled(pilot)
        await pilot.press("f1")  # moved away: nothing opens
        await settled(pilot)
        assert not isinstance(app.screen, HelpScreen)
        await pilot.press("f9")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        text = help_text(app)
        lines = {line.split()[0]: line for line in text.splitlines() if line.strip()}
        assert "history: past sessions, search, re-run (F5" in lines["F8"]
        assert "this help" in lines["F9"]
        assert "copy the answer" in lines["Ctrl+Y"]
        assert "F2" not in lines and "F1" not in text.replace("F10", "")
        assert "Escape / q / F9" in text  # help.close follows app.help
        for action in DEFAULT_KEYS:  # every screen's own action is there by its id
            if action.partition(".")[0] in ("history", "query-search", "sources", "help"):
                assert action.rsplit("-", 1)[0] in text, action
        await pilot.press("f9")  # and F9 closes it again
        await until(pilot, lambda: not isinstance(app.screen, HelpScreen))


async def test_the_palette_names_the_new_keys(write_config: ConfigWriter) -> None:
    app = app_with_keys(write_config, 'app.open-history = "ctrl+o"\napp.consensus = "f7"')
    async with app.run_test(size=SIZE) as pilot:
        await settled(pilot)
        help_of = {c.title: c.help for c in quorum_commands(app)}
        assert help_of["Open history"] == "past sessions and queries (Ctrl+O)"
        assert "(F7 shows it)" in help_of["Toggle synthesis (turn it off)"] + help_of.get(
            "Toggle synthesis (turn it on)", ""
        )
        assert help_of["Help"] == "every key (F1)"


async def test_a_remapped_pane_key_works_on_a_focused_pane(write_config: ConfigWriter) -> None:
    app = app_with_keys(write_config, 'pane.maximize = "z"')
    async with app.run_test(size=SIZE) as pilot:
        await settled(pilot)
        pane = next(iter(app.panes.values()))
        pane.focus()
        await settled(pilot)
        await pilot.press("m")
        await settled(pilot)
        assert app.screen.maximized is None
        await pilot.press("z")
        await until(pilot, lambda: app.screen.maximized is pane)


def test_every_binding_has_its_id_and_default_keys() -> None:
    bound = bound_keys(OWNERS, {})
    assert set(bound) == set(DEFAULT_KEYS)
    for action, keys in DEFAULT_KEYS.items():
        assert sorted(bound[action]) == sorted(keys), action


def test_a_keymap_moves_the_bindings_as_textual_applies_it() -> None:
    bound = bound_keys(OWNERS, {"app.open-history": "f6,ctrl+o", "help.close": "escape"})
    assert sorted(bound["app.open-history"]) == ["ctrl+o", "f6"]
    assert bound["help.close"] == ("escape",)
    assert bound["app.help"] == ("f1",)


def test_character_names_match_textual() -> None:
    for char in string.punctuation + string.ascii_letters + string.digits:
        assert character_key(char) == _character_to_key(char), char


def test_the_reserved_keys_are_textuals_own() -> None:
    specs = [*App.BINDINGS, *Screen.BINDINGS]
    textual_keys = {App.COMMAND_PALETTE_BINDING} | {
        key.strip()
        for binding in specs
        for key in (binding.key if hasattr(binding, "key") else binding[0]).split(",")
    }
    assert set(RESERVED) <= textual_keys | {"tab", "shift+tab"}
    assert {"ctrl+q", "ctrl+p", "ctrl+c"} <= set(RESERVED)
