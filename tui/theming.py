"""Theme files → registered Textual themes."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from textual.app import App
from textual.theme import Theme

from core import paths
from core.themes import ThemeSpec, load_theme_dirs

DEFAULT_THEME = "quorum-dark"


def textual_theme(spec: ThemeSpec) -> Theme:
    colors: dict[str, Any] = dict(spec.colors)
    return Theme(name=spec.name, dark=spec.dark, variables=dict(spec.variables), **colors)


def theme_dirs() -> list[Path]:
    return [paths.bundled_themes_dir(), paths.user_themes_dir()]


def register_themes(app: App[Any], directories: list[Path] | None = None) -> list[str]:
    """Register every theme file found; return one message per file that was skipped."""
    specs, problems = load_theme_dirs(directories if directories is not None else theme_dirs())
    for spec in specs:
        try:
            app.register_theme(textual_theme(spec))
        except Exception as exc:  # Textual rejected the colours: skip this theme only
            problems.append(f"theme {spec.name!r} ({spec.source}) skipped: {exc}")
    return problems


def initial_theme(
    available: Iterable[str], configured: str | None, saved: str | None
) -> tuple[str, str | None]:
    """The theme to start with: the config's ``[ui] theme``, else the one last chosen in the
    app, else the default; and a notice when the wanted theme is not installed."""
    names = set(available)
    fallback = DEFAULT_THEME if DEFAULT_THEME in names else "textual-dark"
    for wanted, origin in ((configured, "[ui] theme"), (saved, "the theme chosen last time")):
        if wanted is None:
            continue
        if wanted in names:
            return wanted, None
        return fallback, f"unknown theme {wanted!r} ({origin}); using {fallback}"
    return fallback, None
