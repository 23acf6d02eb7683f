"""Opening the app's history: `core.history` (SQLite) when it is enabled and opens, else memory.

The screens and the app see only `tui.history_types`; this module is the one that knows both
implementations. The settings tell the SQLite history which store and embedder its meaning
index uses (without them it reads the configuration as `quorum` finds it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tui.history_memory import MemoryHistory
from tui.history_types import History

if TYPE_CHECKING:
    from core.config import Settings

__all__ = ["MemoryHistory", "open_history"]


def open_history(
    enabled: bool = True, settings: Settings | None = None
) -> tuple[History, str | None]:
    """The persistent store if possible, else memory; the second value explains a fallback."""
    if not enabled:
        return MemoryHistory(), None
    from tui.history_store import StoreHistory  # the store pulls in httpx: after the first paint

    try:
        return StoreHistory.open(settings), None
    except Exception as exc:  # a broken history file must not stop the app
        return MemoryHistory(), f"history unavailable, kept in memory only: {exc}"
