"""``[keys]``: every remappable action of the app, its default keys, and the checks of a remap.

An action id is ``<scope>.<action>``, both kebab-case: ``app.*`` on the main screen (and
history), ``pane.*`` on a focused pane, ``history.*``,
``query-search.*``, ``sources.*`` and ``help.*`` on their screen. In ``config.toml`` a dotted key
is a nested table, so ``app.help = "f9"`` under ``[keys]``, ``"app.help" = "f9"`` and
``[keys.app] help = "f9"`` all say the same thing.

Keys are written as Textual names them (``ctrl+r``, ``f9``, ``escape``, ``question_mark`` or
``?``), alone, comma-separated or as an array; a remap replaces the action's default keys. Three
closing keys follow the key that opened their screen (F1 also closes help, wherever help moves)
unless they are remapped themselves. Refused at load: an unknown action, a name no key has, a
combination that never reaches the app as itself, Textual's own keys, and two actions on one
key where both are live at once. The prompt's own keys (Enter sends, Shift+Enter / Ctrl+J, Up /
Down through past questions) are the text field's, not bindings, and are not remapped.

Plain data and text only: the app (``tui.keys``) hands the result to Textual's keymap.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any


@dataclass(frozen=True, slots=True)
class Action:
    id: str
    keys: tuple[str, ...]  # the defaults, as Textual names them
    does: str  # for the help screen and the README


@dataclass(frozen=True, slots=True)
class Scope:
    title: str  # the help screen's heading
    where: str  # "both ... " in a clash's message


SCOPES: Mapping[str, Scope] = MappingProxyType(
    {
        "app": Scope("Main screen (and history)", "on the main screen"),
        "pane": Scope("Focused pane", "on a focused pane"),
        "history": Scope("History screen", "on the history screen"),
        "query-search": Scope("Query search", "in the query search"),
        "sources": Scope("Sources screen", "on the sources screen"),
        "help": Scope("Help screen", "on the help screen"),
    }
)

# Scopes whose keys are live at the same moment: the main screen's with a focused pane's. A
# screen's own keys win over the main screen's on that screen (Escape goes
# back on the history screen instead of cancelling), so those are not clashes.
TOGETHER = frozenset({frozenset({"app", "pane"})})


def _numbered(scope: str, action: str, does: str) -> tuple[Action, ...]:
    return tuple(Action(f"{scope}.{action}-{n}", (str(n),), does) for n in range(1, 10))


ACTIONS: tuple[Action, ...] = (
    Action("app.cancel-all", ("escape",), "cancel every model still answering"),
    Action("app.search-queries", ("ctrl+r",), "search past questions"),
    Action("app.open-history", ("f2",), "history: past sessions, search, re-run"),
    Action("app.sources", ("f3",), "the question's sources in full (or click a [n])"),
    Action(
        "app.consensus",
        ("f4",),
        "the consensus panel maximised: agreement grid, support, synthesis (again: restore)",
    ),
    Action("app.new-session", ("ctrl+n",), "new session (models forget earlier turns)"),
    Action("app.help", ("f1",), "this help"),
    Action("pane.cancel", ("c",), "cancel this model"),
    Action("pane.retry", ("r",), "retry this model with the same question"),
    Action("pane.copy", ("y",), "copy the answer"),
    Action("pane.maximize", ("m",), "maximize / restore"),
    *_numbered("pane", "source", "open the source an [n] citation names"),
    Action("pane.scroll-up", ("up",), "scroll up a line"),
    Action("pane.scroll-down", ("down",), "scroll down a line"),
    Action("pane.page-up", ("pageup",), "scroll up a page"),
    Action("pane.page-down", ("pagedown",), "scroll down a page"),
    Action("pane.top", ("home",), "to the start of the answer"),
    Action("pane.bottom", ("end",), "to the end of the answer (and follow it)"),
    Action("history.back", ("escape",), "back to the main screen"),
    Action("history.rerun", ("ctrl+r",), "ask the selected question again"),
    Action("history.search", ("ctrl+f",), "to the search field"),
    Action("query-search.close", ("escape",), "close without choosing"),
    Action("query-search.older", ("down", "ctrl+r"), "the next older match"),
    Action("query-search.newer", ("up",), "the next newer match"),
    Action("sources.close", ("escape", "f3", "q"), "close"),
    Action("sources.scroll-up", ("up",), "scroll up a line"),
    Action("sources.scroll-down", ("down",), "scroll down a line"),
    Action("sources.page-up", ("pageup",), "scroll up a page"),
    Action("sources.page-down", ("pagedown",), "scroll down a page"),
    *_numbered("sources", "source", "jump to source n"),
    Action("help.close", ("escape", "f1", "q"), "close"),
)
DEFAULT_KEYS: Mapping[str, tuple[str, ...]] = MappingProxyType({a.id: a.keys for a in ACTIONS})

# Closing a screen with the key that opened it: these take the other action's new keys in
# place of its defaults when only that other action is remapped.
FOLLOWS: Mapping[str, str] = MappingProxyType(
    {
        "help.close": "app.help",
        "sources.close": "app.sources",
        "query-search.older": "app.search-queries",
    }
)

# Textual's own bindings on every app and screen (checked against Textual in the tests).
RESERVED: Mapping[str, str] = MappingProxyType(
    {
        "ctrl+q": "quits the app",
        "ctrl+p": "opens the command palette",
        "ctrl+c": "copies the selection",
        "super+c": "copies the selection",
        "tab": "moves the focus on",
        "shift+tab": "moves the focus back",
    }
)

# What most terminals send for these, so the app can never tell them apart.
_SENT_AS = {
    "ctrl+h": "backspace",
    "ctrl+i": "tab",
    "ctrl+m": "enter",
    "ctrl+left_square_bracket": "escape",
    "ctrl+space": "ctrl+@",
}

MODIFIERS = ("alt", "ctrl", "shift", "super")  # in Textual's (sorted) order
_NOT_TAKEN = {
    "hyper": "ordinary keyboards have no Hyper key: use ctrl, alt or shift",
    "meta": "a terminal's Meta is Alt: write alt+",
}
_MODIFIER_ALIASES = {"control": "ctrl", "option": "alt", "opt": "alt"}
NAMED_KEYS = frozenset(
    {
        "escape",
        "enter",
        "tab",
        "space",
        "backspace",
        "insert",
        "delete",
        "home",
        "end",
        "pageup",
        "pagedown",
        "up",
        "down",
        "left",
        "right",
        *(f"f{n}" for n in range(1, 25)),
    }
)
_FRIENDLY = {
    "esc": "escape",
    "return": "enter",
    "pgup": "pageup",
    "pgdn": "pagedown",
    "del": "delete",
    "ins": "insert",
}
# Textual's shorter names for a few characters' Unicode names.
_SHORTER = {
    "solidus": "slash",
    "reverse_solidus": "backslash",
    "commercial_at": "at",
    "hyphen_minus": "minus",
    "plus_sign": "plus",
    "low_line": "underscore",
}
_LABELS = {"pageup": "PgUp", "pagedown": "PgDn"}


def character_key(char: str) -> str:
    """Textual's name for the key that types ``char``: ``a``, ``7``, ``question_mark``."""
    if char.isalnum():
        return char
    name = unicodedata.name(char).lower().replace("-", "_").replace(" ", "_")
    return _SHORTER.get(name, name)


_CHARACTERS = {character_key(c): c for c in string.punctuation}


def normalize_key(text: str) -> str:
    """``text`` as Textual names the key (``"Ctrl+R"`` → ``"ctrl+r"``, ``"?"`` →
    ``"question_mark"``); `ValueError` saying why when the app could never receive it."""
    from core.config import suggest  # here: core.config imports this module

    raw = text.strip()
    if not raw:
        raise ValueError('no key named (write "space" for the space bar)')
    if raw == "+" or raw.endswith("++"):
        raise ValueError('write "plus" for the + key')
    *mods, base = [part.strip() for part in raw.split("+")]
    if not base:
        raise ValueError("nothing after the '+': name the key after its modifiers")
    if _MODIFIER_ALIASES.get(base.lower(), base.lower()) in MODIFIERS:
        raise ValueError(f"{base} is a modifier: name the key it goes with ({base}+a)")
    modifiers: list[str] = []
    for mod in mods:
        name = _MODIFIER_ALIASES.get(mod.lower(), mod.lower())
        if name in _NOT_TAKEN:
            raise ValueError(f"Quorum takes no {name}+ keys ({_NOT_TAKEN[name]})")
        if name not in MODIFIERS:
            raise ValueError(
                f"unknown modifier {mod!r}{suggest(name, MODIFIERS)}; "
                f"the modifiers are {', '.join(MODIFIERS)}"
            )
        if name in modifiers:
            raise ValueError(f"it names {name} twice")
        modifiers.append(name)
    if len(base) == 1:
        if not base.isprintable() or base == " ":
            raise ValueError('write "space" for the space bar')
        name = character_key(base.lower() if modifiers else base)
    else:
        name = _FRIENDLY.get(base.lower(), base.lower())
        if name not in NAMED_KEYS and name not in _CHARACTERS:
            if re.fullmatch(r"f\d+", name):
                raise ValueError(f"there is no {base!r} key: function keys go from f1 to f24")
            raise ValueError(f"there is no key called {base!r}{suggest(name, NAMED_KEYS)}")
    if modifiers == ["shift"] and (len(base) == 1 or name in _CHARACTERS):
        instead = f'"{base.upper()}"' if base.isalpha() else "the character it types"
        raise ValueError(f"Shift with a character never arrives: the terminal sends {instead}")
    key = "+".join([*sorted(modifiers), name])
    if key == "ctrl+at":
        key = "ctrl+@"  # the one name Textual spells with its character (Keys.ControlAt)
    if key in _SENT_AS:
        raise ValueError(
            f"terminals send {label(key)} as {label(_SENT_AS[key])}, so the app never sees "
            f"{label(key)}: choose another key"
        )
    if key in RESERVED:
        raise ValueError(f"{label(key)} is Textual's own key: it {RESERVED[key]} everywhere")
    return key


def label(key: str) -> str:
    """A key as a person writes it: ``ctrl+r`` → ``Ctrl+R``, ``pageup`` → ``PgUp``."""
    *mods, base = key.split("+")
    if base in _CHARACTERS:
        shown = _CHARACTERS[base]
    elif len(base) == 1:
        shown = base.upper() if mods else base
    elif base in _LABELS:
        shown = _LABELS[base]
    else:
        shown = base.upper() if re.fullmatch(r"f\d+", base) else base.capitalize()
    return "+".join([*(m.capitalize() for m in mods), shown])


def labels(keys: Iterable[str]) -> str:
    """Several keys for one row of help: ``F1 / F9``; the digits 1 to 9 as ``1-9``."""
    shown = [label(k) for k in keys]
    if len(shown) > 2 and shown == [str(n) for n in range(1, len(shown) + 1)]:
        return f"1-{len(shown)}"
    return " / ".join(shown)


def groups(scope: str) -> tuple[tuple[Action, ...], ...]:
    """``scope``'s actions for a table, a numbered family (``pane.source-1`` to ``-9``) as one."""
    rows: list[list[Action]] = []
    for action in ACTIONS:
        if action.id.partition(".")[0] != scope:
            continue
        last = rows[-1][-1] if rows else None
        family = re.sub(r"-\d+$", "-", action.id)
        if last and family != action.id and re.sub(r"-\d+$", "-", last.id) == family:
            rows[-1].append(action)
        else:
            rows.append([action])
    return tuple(tuple(row) for row in rows)


def group_id(group: tuple[Action, ...]) -> str:
    """``app.help``, or ``pane.source-1…9`` for a family."""
    if len(group) == 1:
        return group[0].id
    return f"{group[0].id}…{group[-1].id.rpartition('-')[2]}"


def group_keys(group: tuple[Action, ...], keys: Mapping[str, tuple[str, ...]]) -> str:
    return labels(k for action in group for k in keys[action.id])


def resolve(remapped: Mapping[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
    """Every action's keys once ``remapped`` (already valid) replaces some defaults."""
    keys: dict[str, tuple[str, ...]] = {}
    for action, default in DEFAULT_KEYS.items():
        leader = FOLLOWS.get(action)
        if action in remapped:
            keys[action] = remapped[action]
        elif leader is not None and leader in remapped:
            own = tuple(k for k in default if k not in DEFAULT_KEYS[leader])
            keys[action] = tuple(dict.fromkeys((*own, *remapped[leader])))
        else:
            keys[action] = default
    return keys


def parse_keys(raw: Any, source: str) -> Mapping[str, tuple[str, ...]]:
    """``[keys]`` → every action id with its keys (`ConfigError` on any problem)."""
    from core.config import ConfigError, check_table

    where = f"{source}: [keys]"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a table")
    flat: dict[str, Any] = {}
    for name, value in raw.items():
        items = (
            {f"{name}.{sub}": v for sub, v in value.items()}
            if isinstance(value, dict)
            else {name: value}
        )
        for action, keys in items.items():
            if action in flat:
                raise ConfigError(f"{where}: {action} is given twice")
            flat[action] = keys
    check_table(flat, where, DEFAULT_KEYS, what="action")
    remapped = {action: _key_list(value, action, where) for action, value in flat.items()}
    keys = resolve(remapped)
    _check_clashes(keys, remapped, where)
    return MappingProxyType(keys)


def _key_list(value: Any, action: str, table: str) -> tuple[str, ...]:
    from core.config import ConfigError

    where = f"{table} {action}"
    if isinstance(value, str):
        texts = value.split(",")
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        texts = value
    else:
        raise ConfigError(f'{where}: must be a key or an array of keys, such as "f9"')
    if not texts:
        raise ConfigError(f"{where}: give at least one key (an action cannot be unbound)")
    keys: list[str] = []
    for text in texts:
        try:
            key = normalize_key(text)
        except ValueError as exc:
            raise ConfigError(f"{where} = {text.strip()!r}: {exc}") from None
        keys.append(key)
    return tuple(dict.fromkeys(keys))


def _live_together(one: str, other: str) -> str | None:
    """Where the actions ``one`` and ``other`` both take keys at once, or None."""
    first, second = one.partition(".")[0], other.partition(".")[0]
    if first != second and frozenset({first, second}) not in TOGETHER:
        return None
    narrower = first if second == "app" else second
    return SCOPES[narrower].where


def _check_clashes(
    keys: Mapping[str, tuple[str, ...]], remapped: Mapping[str, tuple[str, ...]], where: str
) -> None:
    from core.config import ConfigError

    holders: dict[str, list[str]] = {}
    for action, bound in keys.items():
        for key in bound:
            for other in holders.setdefault(key, []):
                place = _live_together(other, action)
                if place is not None:
                    names = " and ".join(_as_set(a, remapped) for a in (other, action))
                    raise ConfigError(
                        f"{where}: {names} are both on {label(key)} (both {place}); "
                        "give one of them another key"
                    )
            holders[key].append(action)


def _as_set(action: str, remapped: Mapping[str, tuple[str, ...]]) -> str:
    if action in remapped:
        return action
    leader = FOLLOWS.get(action)
    if leader in remapped:
        return f"{action} (which follows {leader})"
    return f"{action} (by default)"
