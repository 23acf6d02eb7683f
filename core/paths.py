"""Where Quorum reads its configuration and keeps its data."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import platformdirs

APP_NAME = "quorum"


def bundled_dir() -> Path:
    """Files shipped with Quorum: the default config.toml and the themes.

    In a wheel they live in ``core/bundled``; in a source checkout (editable install) they are
    the repository's own top-level ``config.toml`` and ``themes/``.
    """
    packaged = Path(str(resources.files("core"))) / "bundled"
    if (packaged / "config.toml").is_file():
        return packaged
    return Path(__file__).resolve().parent.parent


def bundled_config_path() -> Path:
    return bundled_dir() / "config.toml"


def bundled_themes_dir() -> Path:
    return bundled_dir() / "themes"


def user_config_dir() -> Path:
    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))


def user_config_path() -> Path:
    return user_config_dir() / "config.toml"


def user_themes_dir() -> Path:
    return user_config_dir() / "themes"


def resolve_config_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """``--config PATH``, else ``$QUORUM_CONFIG``, else the user's file, else the bundled one."""
    return config_choice(explicit)[0]


def config_choice(explicit: str | os.PathLike[str] | None = None) -> tuple[Path, str]:
    """The config file in use and why: ``--config``, ``$QUORUM_CONFIG``, ``user`` or
    ``bundled`` (`resolve_config_path`'s order)."""
    if explicit:
        return Path(explicit).expanduser(), "--config"
    from_env = os.environ.get("QUORUM_CONFIG")
    if from_env:
        return Path(from_env).expanduser(), "$QUORUM_CONFIG"
    user = user_config_path()
    if user.is_file():
        return user, "user"
    return bundled_config_path(), "bundled"


def data_dir() -> Path:
    """History, vector store and exports: ``$QUORUM_HOME`` or the platform's data dir."""
    home = os.environ.get("QUORUM_HOME")
    path = Path(home).expanduser() if home else Path(platformdirs.user_data_dir(APP_NAME, False))
    return path
