"""Session export (Markdown, JSON, HTML) and import (JSON).

text = export_session(store.load_session(sid), "html")
new_id = import_session(store, json_text)      # raises ExportFormatError on bad input
"""

from __future__ import annotations

from typing import Literal

from core.export.importer import import_session
from core.export.json_format import ExportFormatError, session_to_json
from core.export.markdown import to_markdown
from core.history.records import SessionRecord

ExportFormat = Literal["md", "json", "html"]
FORMATS: tuple[ExportFormat, ...] = ("md", "json", "html")


def export_session(record: SessionRecord, fmt: ExportFormat) -> str:
    if fmt == "md":
        return to_markdown(record)
    if fmt == "json":
        return session_to_json(record)
    if fmt == "html":
        from core.export.html import to_html  # markdown-it is loaded only when needed

        return to_html(record)
    raise ValueError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")


__all__ = ["FORMATS", "ExportFormat", "ExportFormatError", "export_session", "import_session"]
