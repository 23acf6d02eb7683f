"""Past sessions and their queries, searchable; open one to read its answers or re-run it.

Searching finds past questions by their words and by meaning (hybrid). The word matches are
shown as each key is typed (SQLite FTS is fast); the meaning search runs in an exclusive thread
worker, so a newer key press cancels the search it makes pointless (a cancelled search that
has not reached the index yet never embeds anything), and its hits are merged into the list
when they arrive. No debounce: the words never wait, and stale meaning searches cost nothing.
The helpers here are shared with Ctrl+R (`tui.screens.query_search`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import ClassVar, cast

from rich.console import Group, RenderableType
from rich.rule import Rule
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.dom import DOMNode
from textual.screen import Screen
from textual.widgets import Footer, Input, OptionList, Static
from textual.widgets.option_list import Option
from textual.worker import Worker, WorkerState, get_current_worker

from core.sanitize import strip_control
from tui.history_types import (
    MIN_MEANING_CHARS,
    History,
    MatchedBy,
    MeaningUnavailable,
    QueryMatch,
    QueryRecord,
    merge_matches,
)
from tui.keys import bind
from tui.markdown import FastMarkdown
from tui.timefmt import human_time


def render_record(record: QueryRecord) -> RenderableType:
    parts: list[RenderableType] = [
        Text(record.query, style="bold"),
        Text(human_time(record.when), style="dim"),
    ]
    for answer in record.answers:
        parts.append(Rule(Text(answer.model), align="left"))
        if answer.error:
            parts.append(Text(answer.error, style="red"))
        else:
            parts.append(FastMarkdown(answer.text))
    return Group(*parts)


def first_line(text: str) -> str:
    lines = strip_control(text).strip().splitlines()
    return lines[0] if lines else ""


# --- searching by meaning, shared with Ctrl+R ---------------------------------------------------
MEANING_GROUP = "history-meaning"
MEANING_LIMIT = 20
BY_STYLE: dict[MatchedBy, str] = {"words": "dim", "meaning": "italic", "words+meaning": "bold"}


@dataclass(frozen=True, slots=True)
class MeaningResult:
    needle: str
    matches: list[QueryMatch]
    note: str | None = None  # why searching by meaning cannot run


def one_line(text: str) -> str:
    return " ".join(strip_control(text).split())


def search_meaning(history: History, needle: str, limit: int = MEANING_LIMIT) -> MeaningResult:
    """Run in a thread worker: never raises (a failing store means words only)."""
    worker = get_current_worker()
    try:
        found = history.find_by_meaning(needle, limit, lambda: worker.is_cancelled)
    except MeaningUnavailable as exc:
        return MeaningResult(needle, [], one_line(str(exc)))
    except Exception as exc:  # the store's or chromadb's own failure: a note, not a traceback
        return MeaningResult(needle, [], one_line(f"the meaning search failed: {exc}"))
    return MeaningResult(needle, found)


def start_meaning_search(node: DOMNode, history: History | None, needle: str) -> str | None:
    """Start (or cancel) ``node``'s meaning search for ``needle``; the note to show, if any."""
    node.workers.cancel_group(node, MEANING_GROUP)  # an older needle's search is pointless now
    if history is None:
        return "the history cannot be searched by meaning"
    try:
        reason = history.meaning_unavailable()
    except Exception as exc:
        reason = str(exc)
    if reason is not None:
        return one_line(reason)
    if len(needle.strip()) >= MIN_MEANING_CHARS:
        node.run_worker(
            partial(search_meaning, history, needle),
            name="meaning search",
            group=MEANING_GROUP,
            thread=True,
            exclusive=True,
            exit_on_error=False,
        )
    return None


def meaning_result(event: Worker.StateChanged, needle: str) -> MeaningResult | None:
    """The finished meaning search ``event`` reports, if it is for ``needle``."""
    worker = event.worker
    if worker.group != MEANING_GROUP or event.state != WorkerState.SUCCESS:
        return None
    result = worker.result
    if not isinstance(result, MeaningResult) or result.needle != needle:
        return None
    return result


def show_note(note: Static, text: str | None) -> None:
    note.update(Text(f"by words only: {text}", style="dim") if text else "")
    note.display = bool(text)


def match_label(match: QueryMatch, *, when: bool) -> Text:
    """Time (when asked for), what found it, the question; the snippet below, when it is more
    than the question itself (the start of an answer that matched by meaning)."""
    label = Text(no_wrap=True, overflow="ellipsis")
    if when:
        label.append(human_time(match.when), style="dim")
        label.append("  ")
    label.append(f"{match.by:<13}", style=BY_STYLE[match.by])
    label.append(" ")
    label.append(first_line(match.query))
    snippet = one_line(match.snippet)
    if snippet and snippet != one_line(match.query):
        label.append("\n")
        label.append(f"    {snippet}", style="dim")
    return label


def app_history(app: object) -> History | None:
    """The app's history, when it has one that can be searched."""
    history = getattr(app, "history", None)
    return cast(History, history) if callable(getattr(history, "find_by_meaning", None)) else None


class HistoryScreen(Screen[str | None]):
    """Dismisses with a query to re-run, or None."""

    BINDINGS: ClassVar[list[BindingType]] = [
        bind("history.back", "dismiss(None)", "Back"),
        bind("history.rerun", "rerun", "Re-run query"),
        bind("history.search", "focus_search", "Search"),
    ]
    DEFAULT_CSS = """
    HistoryScreen #lists { width: 45%; }
    HistoryScreen OptionList { height: 1fr; text-wrap: nowrap; text-overflow: ellipsis; }
    HistoryScreen #reader { width: 1fr; border: round $panel; padding: 0 1; }
    HistoryScreen #search-note { height: auto; padding: 0 1; }
    """

    def __init__(self, history: History) -> None:
        super().__init__()
        self.history = history
        self.records: list[QueryRecord] = []
        self.selected: QueryRecord | None = None
        self.needle = ""
        self.matches: dict[str, QueryMatch] = {}  # option id → match, while searching
        self._by_words: list[QueryMatch] = []
        self._by_meaning: list[QueryMatch] = []

    def compose(self) -> ComposeResult:
        with Horizontal():
            with Vertical(id="lists"):
                yield Input(placeholder="search history…", id="search")
                yield Static("", id="search-note")
                yield OptionList(id="sessions")
                yield OptionList(id="queries")
            with VerticalScroll(id="reader"):
                yield Static("", id="answers")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#search-note", Static).display = False
        self._fill_sessions("")
        self.query_one("#search", Input).focus()  # typing right away searches

    @on(Input.Changed, "#search")
    def _search(self, event: Input.Changed) -> None:
        self._fill_sessions(event.value)

    def _fill_sessions(self, needle: str) -> None:
        self.needle = needle
        note = self.query_one("#search-note", Static)
        if needle.strip():
            try:
                self._by_words = self.history.find_by_words(needle)
            except Exception:  # an unreadable history: nothing found by words
                self._by_words = []
            self._by_meaning = []
            self._show_matches()
            show_note(note, start_meaning_search(self, self.history, needle))
            return
        self.workers.cancel_group(self, MEANING_GROUP)
        show_note(note, None)
        self.matches = {}
        sessions = self.query_one("#sessions", OptionList)
        sessions.clear_options()
        for info in self.history.sessions():
            label = Text(no_wrap=True, overflow="ellipsis")
            label.append(human_time(info.when), style="dim")
            label.append("  ")
            label.append(first_line(info.title))
            sessions.add_option(Option(label, id=info.id))
        if sessions.option_count:
            sessions.highlighted = 0
            return
        self._nothing_found(needle)

    @on(Worker.StateChanged)
    def _meaning_found(self, event: Worker.StateChanged) -> None:
        result = meaning_result(event, self.needle)
        if result is None:
            return
        self._by_meaning = result.matches
        show_note(self.query_one("#search-note", Static), result.note)
        self._show_matches()

    def _show_matches(self) -> None:
        """The questions found, words and meaning fused; the one highlighted stays so."""
        sessions = self.query_one("#sessions", OptionList)
        highlighted = sessions.highlighted
        kept = None if highlighted is None else sessions.get_option_at_index(highlighted).id
        found = merge_matches(self._by_words, self._by_meaning)
        self.matches = {f"{m.session_id}:{m.seq}": m for m in found}
        sessions.clear_options()
        sessions.add_options(
            [Option(match_label(m, when=True), id=key) for key, m in self.matches.items()]
        )
        if not self.matches:
            self._nothing_found(self.needle)
            return
        ids = list(self.matches)
        sessions.highlighted = ids.index(kept) if kept in ids else 0

    def _nothing_found(self, needle: str) -> None:
        self._fill_queries([])  # nothing is selected: no questions and no answers either
        if needle.strip():
            message = Text.assemble("No session matches ", (needle.strip(), "bold"), ".")
        else:
            message = Text("No past sessions yet.")
        message.stylize("dim")
        self.query_one("#answers", Static).update(message)

    @on(OptionList.OptionHighlighted, "#sessions")
    def _session(self, event: OptionList.OptionHighlighted) -> None:
        option = event.option.id or ""
        match = self.matches.get(option)
        if match is None:
            self._fill_queries(self.history.session_queries(option))
        else:  # a question found: its session, with that question open
            self._fill_queries(self.history.session_queries(match.session_id), match.seq)

    def _fill_queries(self, records: list[QueryRecord], seq: int | None = None) -> None:
        self.records = records
        self.selected = None
        queries = self.query_one("#queries", OptionList)
        queries.clear_options()
        for index, record in enumerate(records):
            queries.add_option(
                Option(
                    Text(first_line(record.query), no_wrap=True, overflow="ellipsis"), id=str(index)
                )
            )
        if records:
            index = next((i for i, r in enumerate(records) if r.seq == seq), 0)
            queries.highlighted = index
            self._show(records[index])

    @on(OptionList.OptionHighlighted, "#queries")
    @on(OptionList.OptionSelected, "#queries")
    def _query(self, event: OptionList.OptionHighlighted | OptionList.OptionSelected) -> None:
        self._show(self.records[int(event.option.id or 0)])

    def _show(self, record: QueryRecord) -> None:
        self.selected = record
        self.query_one("#answers", Static).update(render_record(record))

    def action_rerun(self) -> None:
        if self.selected is not None:
            self.dismiss(self.selected.query)

    def action_focus_search(self) -> None:
        self.query_one("#search", Input).focus()
