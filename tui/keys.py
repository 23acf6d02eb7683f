"""``[keys]`` on the Textual side: bindings by id, the keymap, and keys as the user has them.

Every remappable binding is made by `bind` with its id from `core.keymap` (which owns the
default keys); `KeymapApp` hands the config's remaps to `App.set_keymap`. Text that names a key
is written as a template (``"history ({app.open-history})"``) and filled in from the bindings
under the keymap, so the help screen and the palette say what a key press really does.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from textual.app import App
from textual.binding import Binding, BindingsMap, Keymap
from textual.dom import DOMNode
from textual.keys import key_to_character

from core.keymap import DEFAULT_KEYS, label, labels
from tui.widgets.prompt import NEWLINE_KEYS, SEND_KEY, PromptArea

_SLOT = re.compile(r"\{([a-z0-9.-]+)(\*)?(:first)?\}")


def bind(action_id: str, action: str, description: str = "", *, show: bool = True) -> Binding:
    """The binding of ``action_id`` on its default keys (a keymap may move it)."""
    return Binding(",".join(DEFAULT_KEYS[action_id]), action, description, show=show, id=action_id)


def keymap(keys: Mapping[str, tuple[str, ...]]) -> dict[str, str]:
    """Textual's keymap for ``keys`` (`Settings.keys`): the actions not on their defaults."""
    return {i: ",".join(k) for i, k in keys.items() if k != DEFAULT_KEYS[i]}


def bound_keys(owners: Iterable[type[DOMNode]], remap: Keymap) -> dict[str, tuple[str, ...]]:
    """Each binding id of ``owners`` with the keys Textual binds it to under ``remap``."""
    found: dict[str, list[str]] = {}
    for owner in owners:
        bindings = BindingsMap(owner.BINDINGS)
        bindings.apply_keymap(remap)
        for key, binding in bindings:
            if binding.id is not None:
                found.setdefault(binding.id, []).append(key)
    # Textual's apply_keymap adds a moved binding once per key it had: each key once here.
    return {action_id: tuple(dict.fromkeys(keys)) for action_id, keys in found.items()}


def fill(template: str, keys: Mapping[str, tuple[str, ...]]) -> str:
    """``{id}`` → that action's keys, ``{prefix-*}`` → a family's (``1-9``), ``:first`` → one."""

    def keys_of(match: re.Match[str]) -> str:
        name, family, first = match.groups()
        if family:  # in the table's order, wherever a remap put them
            found = tuple(k for i in DEFAULT_KEYS if i.startswith(name) for k in keys.get(i, ()))
        else:
            found = keys[name]
        return labels(found[:1] if first else found)

    return _SLOT.sub(keys_of, template)


def current_keys(app: App[Any], *owners: type[DOMNode]) -> dict[str, tuple[str, ...]]:
    """Each binding id of ``owners`` (the app's when none are given) with its keys in ``app``."""
    remap = app.keymap if isinstance(app, KeymapApp) else {}
    return bound_keys(owners or (type(app),), remap)


def keys_text(app: App[Any], template: str, *owners: type[DOMNode]) -> str:
    """``template`` with the keys of ``owners``' bindings (the app's when none are given)."""
    return fill(template, current_keys(app, *owners))


class KeymapApp(App[int]):
    """An app whose bindings are moved by ``[keys]``; what cannot work is said, not dropped."""

    def __init__(self, keys: Mapping[str, tuple[str, ...]]) -> None:
        super().__init__()
        self.keymap = keymap(keys)
        self.set_keymap(self.keymap)
        self._clashes_told: set[str] = set()

    def on_mount(self) -> None:
        prompt = next(iter(self.query(PromptArea)), None)
        if prompt is None or not self.keymap:
            return
        notes = []
        for action_id, keys in bound_keys((type(self),), self.keymap).items():
            for key in keys:
                use = prompt_use(prompt, key)
                if use and action_id in self.keymap:
                    notes.append(f"{action_id} = {label(key)}: the prompt {use}")
        if notes:
            self.notify(
                "\n".join(notes) + "\nThese work only while the prompt does not have the focus.",
                title="[keys]",
                severity="warning",
                timeout=15,
                markup=False,
            )

    def handle_bindings_clash(self, clashed_bindings: set[Binding], node: DOMNode) -> None:
        lost = {f"{label(b.key)} ({b.id or b.action})" for b in clashed_bindings}
        new = sorted(lost - self._clashes_told)
        if new:
            self._clashes_told.update(new)
            self.notify(
                f"A remapped key replaced {', '.join(new)} on {type(node).__name__}.",
                title="[keys] clash",
                severity="error",
                timeout=15,
                markup=False,
            )


def prompt_use(prompt: PromptArea, key: str) -> str | None:
    """What the prompt does with ``key`` itself, before any app binding sees it."""
    if key == SEND_KEY:
        return "sends the question with it"
    if key in NEWLINE_KEYS:
        return "starts a new line with it"
    if prompt.check_consume_key(key, key_to_character(key)):
        return "types it"
    own = prompt._bindings.key_to_bindings.get(key)
    if own:
        return f"uses it to {own[0].action.replace('_', ' ')}"
    return None
