"""Theme files: TOML tables of colours, parsed into plain data (the TUI registers them).

A theme file looks like::

    name = "quorum-dark"
    dark = true
    primary = "#7aa2f7"
    background = "#1a1b26"
    ...

Bad files are reported, never fatal: `load_theme_dir` returns the good themes and one message
per file it skipped.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

COLOR_KEYS = (
    "primary",
    "secondary",
    "accent",
    "background",
    "surface",
    "panel",
    "foreground",
    "success",
    "warning",
    "error",
    "boost",
)
_COLOR = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class ThemeError(Exception):
    """A theme file that cannot be used, phrased for the user."""


@dataclass(frozen=True, slots=True)
class ThemeSpec:
    name: str
    dark: bool
    colors: Mapping[str, str]  # COLOR_KEYS that the file sets; "primary" is always present
    variables: Mapping[str, str] = field(default_factory=dict)
    source: Path | None = None


def parse_theme(data: Mapping[str, Any], source: Path | None = None) -> ThemeSpec:
    where = str(source) if source is not None else "theme"
    name = data.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ThemeError(f"{where}: 'name' must be a short name of letters, digits, '-', '_'")
    dark = data.get("dark", True)
    if not isinstance(dark, bool):
        raise ThemeError(f"{where}: 'dark' must be true or false")
    colors: dict[str, str] = {}
    for key in COLOR_KEYS:
        if key in data:
            value = data[key]
            if not isinstance(value, str) or not _COLOR.match(value):
                raise ThemeError(f'{where}: {key} must be a colour like "#1e90ff", got {value!r}')
            colors[key] = value
    if "primary" not in colors:
        raise ThemeError(f"{where}: missing required colour 'primary'")
    variables = data.get("variables", {})
    if not isinstance(variables, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in variables.items()
    ):
        raise ThemeError(f"{where}: [variables] must map names to strings")
    unknown = sorted(set(data) - {"name", "dark", "variables", *COLOR_KEYS})
    if unknown:
        raise ThemeError(f"{where}: unknown key {unknown[0]!r}")
    return ThemeSpec(name, dark, colors, dict(variables), source)


def load_theme_file(path: Path) -> ThemeSpec:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ThemeError(f"cannot read theme file {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ThemeError(f"{path}: invalid TOML: {exc}") from None
    return parse_theme(data, path)


def load_theme_dirs(directories: Iterable[Path]) -> tuple[list[ThemeSpec], list[str]]:
    """Every ``*.toml`` in the directories, in order; a later file with the same name wins
    (so a user's theme can replace a bundled one). Returns (themes, problems)."""
    found: dict[str, ThemeSpec] = {}
    problems: list[str] = []
    for directory in directories:
        if not directory.is_dir():
            continue
        for path in sorted(directory.glob("*.toml")):
            try:
                spec = load_theme_file(path)
            except ThemeError as exc:
                problems.append(str(exc))
                continue
            found[spec.name] = spec
    return list(found.values()), problems
