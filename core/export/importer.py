"""`import_session`: restore a JSON session export into a history store."""

from __future__ import annotations

from core.export.json_format import parse_session
from core.history.store import HistoryStore


def import_session(store: HistoryStore, text: str) -> str:
    """Store the session exported in ``text``; return its id (a new one if the id was taken).

    All or nothing: the whole file is checked before anything is written, and the session is
    written in one transaction. Raises `core.export.json_format.ExportFormatError` when ``text``
    is not a valid export, `core.history.HistoryError` when the database refuses it.
    """
    return store.add_session(parse_session(text))
