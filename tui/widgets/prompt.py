"""The prompt: a multi-line TextArea where Enter sends and Up/Down walk the query history."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from textual import events
from textual.message import Message
from textual.widgets import TextArea


class QueryHistory:
    """Newest-first past queries and a cursor walking them (no Textual here)."""

    def __init__(
        self, queries: Sequence[str] = (), loader: Callable[[], Sequence[str]] | None = None
    ) -> None:
        self._queries: list[str] = list(queries)
        self._loader = loader  # read the stored queries only when first needed
        self._index = -1
        self._draft = ""

    @property
    def queries(self) -> list[str]:
        if self._loader is not None:
            loader, self._loader = self._loader, None
            self._queries += [q for q in loader() if q not in self._queries]
        return self._queries

    def add(self, query: str) -> None:
        if self.queries and self.queries[0] == query:
            pass
        else:
            self.queries.insert(0, query)
        self._index = -1

    def older(self, current: str) -> str | None:
        if self._index + 1 >= len(self.queries):
            return None
        if self._index == -1:
            self._draft = current
        self._index += 1
        return self.queries[self._index]

    def newer(self) -> str | None:
        if self._index < 0:
            return None
        self._index -= 1
        return self._draft if self._index == -1 else self.queries[self._index]

    def search(self, text: str, limit: int = 200) -> list[str]:
        needle = text.casefold()
        seen: set[str] = set()
        out = []
        for query in self.queries:
            if needle in query.casefold() and query not in seen:
                seen.add(query)
                out.append(query)
                if len(out) >= limit:
                    break
        return out


class PromptArea(TextArea):
    """Enter sends; Shift+Enter or Ctrl+J inserts a newline."""

    DEFAULT_CSS = """
    PromptArea { height: auto; max-height: 8; min-height: 3; }
    """

    class Submitted(Message):
        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    def __init__(self, history: QueryHistory, *, id: str | None = None) -> None:
        super().__init__(id=id, soft_wrap=True, show_line_numbers=False, tab_behavior="focus")
        self.queries = history

    def set_query(self, text: str, *, at_end: bool = True) -> None:
        self.text = text
        self.move_cursor(self.document.end if at_end else (0, 0))

    async def _on_key(self, event: events.Key) -> None:
        key = event.key
        if key == "enter":
            event.stop()
            event.prevent_default()
            text = self.text
            if text.strip():
                self.post_message(self.Submitted(text))
            elif text:
                self.set_query("")  # blank: nothing to send, and nothing left to join the next
            return
        if key in ("shift+enter", "ctrl+j"):
            event.stop()
            event.prevent_default()
            start, end = self.selection
            self._replace_via_keyboard("\n", start, end)
            return
        row = self.cursor_location[0]
        if key == "up" and row == 0 and not self.selection_active():
            recalled = self.queries.older(self.text)
            if recalled is not None:
                event.stop()
                event.prevent_default()
                self.set_query(recalled, at_end=False)
                return
        if key == "down" and row == self.document.line_count - 1 and not self.selection_active():
            recalled = self.queries.newer()
            if recalled is not None:
                event.stop()
                event.prevent_default()
                self.set_query(recalled)
                return
        await super()._on_key(event)

    def selection_active(self) -> bool:
        start, end = self.selection
        return start != end
