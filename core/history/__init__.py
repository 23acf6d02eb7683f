"""Durable history: sessions → turns → model responses, in SQLite under the data directory.

- `HistoryStore` (store.py): open/migrate the database, sessions, search, conversations.
- `HistoryWriter` (writer.py): records one turn from the engine's event stream.
- records.py: the frozen records the store returns; schema.py: the schema and migrations;
  sqlite.py: the file's location, ids, JSON columns, FTS5 queries, errors phrased for the user.
"""

from core.history.records import (
    ResponseRecord,
    SessionRecord,
    SessionSummary,
    TurnRecord,
    TurnSummary,
)
from core.history.sqlite import HistoryError
from core.history.store import HistoryStore
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
