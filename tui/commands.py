"""The app's command-palette entries and the system clipboard helper."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterable
from typing import TYPE_CHECKING

from textual.app import SystemCommand

from tui.keys import keys_text

if TYPE_CHECKING:
    from tui.app import QuorumApp


def quorum_commands(app: QuorumApp) -> Iterable[SystemCommand]:
    """Quorum's own palette commands (after Textual's: theme, keys, quit, ...)."""
    for spec in app.settings.models:
        on_now = app.enabled.get(spec.name, False)
        verb = "Disable" if on_now else "Enable"
        yield SystemCommand(
            f"{verb} model: {spec.name}",
            f"{spec.provider} · {spec.model}",
            lambda name=spec.name: app.toggle_model(name),
        )
    yield SystemCommand(
        f"Toggle retrieval (turn it {'off' if app.retrieval else 'on'})",
        keys_text(
            app, "sources from the knowledge base for the next questions ({app.sources} shows them)"
        ),
        app.toggle_retrieval,
    )
    synthesis = app.consensus
    yield SystemCommand(
        f"Toggle synthesis (turn it {'off' if synthesis.synthesis else 'on'})",
        keys_text(
            app,
            "one model writes the consensus answer once the answers are in "
            "({app.consensus} shows it)",
        ),
        app.toggle_synthesis,
    )
    first = synthesis.candidates()[:1]
    for spec in app.settings.models:
        if (spec.name,) != first:
            yield SystemCommand(
                f"Synthesize with: {spec.name}",
                f"{spec.provider} · {spec.model}" + ("" if spec.enabled else " · not asked itself"),
                lambda name=spec.name: app.choose_synthesizer(name),
            )
    yield SystemCommand("New session", "start over without earlier context", app.action_new_session)
    yield SystemCommand(
        "Open history",
        keys_text(app, "past sessions and queries ({app.open-history})"),
        app.action_open_history,
    )
    for fmt, label in (("md", "Markdown"), ("json", "JSON"), ("html", "HTML")):
        yield SystemCommand(
            f"Export session as {label}",
            "write this session to a file",
            lambda fmt=fmt: app.export_session(fmt),
        )
    yield SystemCommand("Help", keys_text(app, "every key ({app.help})"), app.action_help)


def system_clipboard_command() -> list[str] | None:
    for command in (
        ["wl-copy"],
        ["xclip", "-selection", "clipboard"],
        ["xsel", "-b", "-i"],
        ["pbcopy"],
    ):
        if shutil.which(command[0]):
            return command
    return None


async def pipe_to(command: list[str], text: str) -> None:
    try:
        process = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        await asyncio.wait_for(process.communicate(text.encode()), 5)
    except (OSError, TimeoutError):
        pass  # OSC 52 already carried the text; the tool is a bonus
