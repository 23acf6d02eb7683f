"""Durable history: sessions → turns → model responses, in SQLite under the data directory.

- `HistoryStore` (store.py): open/migrate the database, sessions, search, conversations.
- `HistoryWriter` (writer.py): records one turn from the engine's event stream.
- records.py: the frozen records the store returns; schema.py: the schema and migrations.
"""

from core.history.records import (
    ResponseRecord,
    SessionRecord,
    SessionSummary,
    TurnRecord,
    TurnSummary,
)
from core.history.store import HistoryError, HistoryStore
from core.history.writer import HistoryWriter

__all__ = [
    "HistoryError",
    "HistoryStore",
    "HistoryWriter",
    "ResponseRecord",
    "SessionRecord",
    "SessionSummary",
    "TurnRecord",
    "TurnSummary",
]
