"""What Quorum keeps is the user's alone: the data directory (history, the vector store, state,
exports) is 0700 and what Quorum writes there 0600, and a config file that holds a literal API
key and that others can read is pointed out, with the command that fixes it.

Windows has no such permission bits: there every function here does nothing.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

from core.config import Settings

_OTHERS = stat.S_IRWXG | stat.S_IRWXO


def keep_private() -> None:
    """Files and folders this process creates are its user's only (umask 077 added)."""
    if sys.platform != "win32":
        os.umask(os.umask(0) | 0o077)


def tighten(folder: Path) -> None:
    """Make an existing data directory 0700 (it may hold years of questions and answers)."""
    if sys.platform == "win32":
        return
    try:
        mode = folder.stat().st_mode
        if mode & _OTHERS:
            folder.chmod(stat.S_IMODE(mode) & ~_OTHERS)
    except OSError:
        pass  # not there yet (created private), or not ours: nothing to tighten


def exposed_key_warning(settings: Settings) -> str | None:
    """A warning when the config holds a literal ``api_key`` and others can read the file."""
    if sys.platform == "win32" or not any(m.api_key for m in settings.models):
        return None
    try:
        mode = settings.path.stat().st_mode
    except OSError:
        return None
    if not mode & (stat.S_IRGRP | stat.S_IROTH):
        return None
    return (
        f"{settings.path} holds an API key and other users can read it: run "
        f"chmod 600 {settings.path} (or move the key to an environment variable, api_key_env)"
    )
