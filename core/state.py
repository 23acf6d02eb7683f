"""Quorum's own state file: choices made in the app (the theme), kept out of the user's config.

    state, notice = load_state()           # a missing file is the empty state; a corrupt one too,
                                           # with a notice saying it was ignored
    save_state(replace(state, theme="x"))  # atomic (temp file + os.replace); raises OSError

The file is ``<data dir>/state.json``: ``{"version": 1, "theme": "..."}``. Keys this version
does not know are kept when it writes the file, and a file written by a newer Quorum (a higher
version) is read as empty and never overwritten.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core import paths

STATE_NAME = "state.json"
STATE_VERSION = 1


@dataclass(frozen=True, slots=True)
class AppState:
    theme: str | None = None


def state_path() -> Path:
    return paths.data_dir() / STATE_NAME


def load_state(path: Path | None = None) -> tuple[AppState, str | None]:
    """The saved state, and a notice when the file exists but could not be used."""
    path = path or state_path()
    data, notice = _read(path)
    if notice is not None:
        return AppState(), notice
    theme = data.get("theme")
    if theme is not None and not isinstance(theme, str):
        return AppState(), f"ignored {path}: theme is not a string"
    return AppState(theme=theme), None


def save_state(state: AppState, path: Path | None = None) -> str | None:
    """Write ``state`` atomically, keeping keys it does not know; a notice when it was not
    written (the file belongs to a newer Quorum). Raises OSError."""
    path = path or state_path()
    data, notice = _read(path)
    if isinstance(data.get("version"), int) and data["version"] > STATE_VERSION:
        return f"not saved: {notice}"
    if notice is not None:
        data = {}
    data.update(version=STATE_VERSION, theme=state.theme)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".state-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, ensure_ascii=False, indent=2, sort_keys=True)
            handle.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return None


def _read(path: Path) -> tuple[dict[str, Any], str | None]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}, None
    except (OSError, UnicodeDecodeError) as exc:
        return {}, f"ignored {path}: {exc}"
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return {}, f"ignored {path}: not valid JSON"
    if not isinstance(data, dict):
        return {}, f"ignored {path}: not a JSON object"
    version = data.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        return {}, f"ignored {path}: no valid version"
    if version > STATE_VERSION:
        return data, f"ignored {path}: written by a newer Quorum (version {version})"
    return data, None
