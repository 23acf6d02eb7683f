"""The prompt: a multi-line TextArea where Enter sends and Up/Down walk the query history.

Typing ``@`` then a path lists the files and folders it can complete to (relative to the working
directory) just above the prompt; Tab takes the highlighted one, Up/Down choose, Escape hides
the list. TextArea has no suggester of its own, so the list is a sibling the prompt drives.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from rich.text import Text
from textual import events
from textual.message import Message
from textual.widget import Widget
from textual.widgets import OptionList, TextArea
from textual.widgets.option_list import Option

from tui.attach import completions, token_at

SEND_KEY = "enter"
NEWLINE_KEYS = ("shift+enter", "ctrl+j")


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


class PathSuggestions(OptionList, can_focus=False):
    """The ``@path`` completions; hidden while there are none."""

    DEFAULT_CSS = """
    PathSuggestions {
        height: auto; max-height: 7; border: none; padding: 0 1; display: none;
        background: $panel;
    }
    """

    def __init__(self) -> None:
        super().__init__(id="path-suggestions")
        self.paths: list[str] = []

    def show_paths(self, paths: Sequence[str]) -> None:
        if list(paths) == self.paths:
            return
        self.paths = list(paths)
        self.clear_options()
        self.add_options(Option(Text(f"@{p}"), id=p) for p in self.paths)
        self.display = bool(self.paths)
        if self.paths:
            self.highlighted = 0

    @property
    def chosen(self) -> str | None:
        index = self.highlighted
        return self.paths[index] if self.display and index is not None else None


class PromptArea(TextArea):
    """Enter sends; Shift+Enter or Ctrl+J inserts a newline; Tab completes an ``@path``."""

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
        self.suggestions = PathSuggestions()

    def on_mount(self) -> None:
        if isinstance(self.parent, Widget):
            self.parent.mount(self.suggestions, before=self)

    def set_query(self, text: str, *, at_end: bool = True) -> None:
        self.text = text
        self.move_cursor(self.document.end if at_end else (0, 0))

    async def _on_key(self, event: events.Key) -> None:
        key = event.key
        if self.suggestions.display and self._suggestion_key(key):
            event.stop()
            event.prevent_default()
            return
        if key == SEND_KEY:
            event.stop()
            event.prevent_default()
            text = self.text
            if text.strip():
                self.post_message(self.Submitted(text))
            elif text:
                self.set_query("")  # blank: nothing to send, and nothing left to join the next
            return
        if key in NEWLINE_KEYS:
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

    # --- @path completion ---------------------------------------------------------------
    def on_text_area_changed(self) -> None:
        self._suggest()

    def on_text_area_selection_changed(self) -> None:
        self._suggest()

    def _token(self) -> tuple[int, str] | None:
        if self.selection_active():
            return None
        row, column = self.cursor_location
        return token_at(self.document.get_line(row), column)

    def _suggest(self) -> None:
        token = self._token()
        found = [] if token is None else completions(token[1], Path.cwd())
        if token is not None and found == [token[1]]:
            found = []  # the path is complete already
        self.suggestions.show_paths(found)

    def _suggestion_key(self, key: str) -> bool:
        """Tab, Up, Down and Escape act on the list while it shows; True when one did."""
        if key == "escape":
            self.suggestions.show_paths([])
        elif key == "up":
            self.suggestions.action_cursor_up()
        elif key == "down":
            self.suggestions.action_cursor_down()
        elif key == "tab":
            self.complete(self.suggestions.chosen)
        else:
            return False
        return True

    def complete(self, path: str | None) -> None:
        """Put ``path`` in place of the ``@`` token at the cursor (a file ends it with a space)."""
        token = self._token()
        if path is None or token is None:
            return
        row, column = self.cursor_location
        text = path if path.endswith("/") else f"{path} "
        self.replace(text, (row, token[0]), (row, column))
        self.move_cursor((row, token[0] + len(text)))
