"""Session export and import: Markdown, the versioned JSON round trip, HTML that never runs
a model's markup, and clear errors for bad import files."""

from __future__ import annotations

import json
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest

from core.cli import main
from core.events import (
    Failed,
    FailureKind,
    FanoutFinished,
    Finished,
    ModelStats,
    ReasoningDelta,
    Started,
    TextDelta,
)
from core.export import export_session, import_session
from core.export.json_format import ExportFormatError
from core.history import HistoryStore, HistoryWriter, SessionRecord
from tests.test_history import spec_of

EVIL = (
    "Sure! <script>alert(1)</script>\n\n<img src=x onerror=alert(1)>\n\n"
    "[x](javascript:alert(1)) and [y](JAVASCRIPT:alert(2)) and <javascript:alert(3)> and "
    "[ok](https://example.com/a?b=1) and ![pic](https://tracker.example/p.png)\n\n"
    "```html\n<script>alert(4)</script>\n```\n"
)


def recorded_session(store: HistoryStore, answer: str = "**Paris** is the capital.") -> str:
    sid = store.new_session("Geography <b>quiz</b>")
    specs = [spec_of("gpt <i>4</i>"), spec_of("claude"), spec_of("broken")]
    writer = HistoryWriter(store, sid, "Capital of France? <script>q()</script>", specs)
    writer.apply(Started("gpt <i>4</i>", "openai", 1))
    writer.apply(ReasoningDelta("gpt <i>4</i>", "Thinking <b>hard</b>"))
    writer.apply(TextDelta("gpt <i>4</i>", answer))
    stats = ModelStats(
        ttft_ms=123.456, total_ms=2345.0, tokens_in=12, tokens_out=34, tokens_per_s=15.2, attempts=1
    )
    writer.apply(Finished("gpt <i>4</i>", "stop", stats))
    writer.apply(Started("claude", "anthropic", 1))
    writer.apply(TextDelta("claude", "It is Paris."))
    writer.apply(Finished("claude", "end_turn", ModelStats(ttft_ms=50.0, total_ms=900.0)))
    writer.apply(Started("broken", "openai", 2))
    writer.apply(
        Failed(
            "broken",
            FailureKind.HTTP,
            "bad <script>x()</script>",
            503,
            ModelStats(total_ms=10.0, attempts=2),
        )
    )
    writer.apply(FanoutFinished(2400.5))
    writer.close()
    store.set_turn_consensus(sid, 1, {"text": "All agree: **Paris**.", "agreement": 1.0})
    store.set_turn_context(
        sid,
        1,
        {
            "sources": [
                {"title": "atlas.md", "path": "/docs/atlas.md", "excerpt": "France: Paris"},
                {"title": "evil", "url": "javascript:alert(5)"},
                {"title": "wiki", "url": "https://en.wikipedia.org/wiki/Paris"},
            ]
        },
    )
    return sid


@pytest.fixture
def store(tmp_path: Path) -> Iterator[HistoryStore]:
    with HistoryStore.open(tmp_path / "a.sqlite3") as opened:
        yield opened


def test_json_round_trip_through_a_fresh_database_is_lossless(
    store: HistoryStore, tmp_path: Path
) -> None:
    sid = recorded_session(store)
    first = export_session(store.load_session(sid), "json")
    data = json.loads(first)
    assert (data["format"], data["version"]) == ("quorum-session", 1)
    response = data["session"]["turns"][0]["responses"][0]
    assert (response["ttft_ms"], response["tokens_out"]) == (123.456, 34)
    assert data["session"]["turns"][0]["consensus"]["agreement"] == 1.0

    with HistoryStore.open(tmp_path / "fresh.sqlite3") as fresh:
        assert import_session(fresh, first) == sid
        second = export_session(fresh.load_session(sid), "json")
        assert fresh.search("Paris")  # imported text is searchable
    assert second == first


def test_importing_a_session_whose_id_exists_gives_it_a_new_id(store: HistoryStore) -> None:
    sid = recorded_session(store)
    text = export_session(store.load_session(sid), "json")
    new_id = import_session(store, text)
    assert new_id != sid
    assert store.load_session(new_id).turns == store.load_session(sid).turns


def test_cli_export_and_import_round_trip(
    store: HistoryStore,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("QUORUM_HOME", str(tmp_path / "home1"))
    with HistoryStore.open() as home:
        sid = recorded_session(home)
    out = tmp_path / "s.json"
    assert main(["export", "--last", "--format", "json", "-o", str(out)]) == 0
    assert main(["export", sid[:6], "--format", "md"]) == 0  # an id prefix is enough
    assert "## Turn 1" in capsys.readouterr().out

    monkeypatch.setenv("QUORUM_HOME", str(tmp_path / "home2"))
    assert main(["import", str(out)]) == 0
    assert sid in capsys.readouterr().out
    again = tmp_path / "again.json"
    assert main(["export", sid, "--format", "json", "-o", str(again)]) == 0
    assert again.read_text(encoding="utf-8") == out.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not JSON"),
        ('{"format": "something-else"}', "not a Quorum session export"),
        ('{"format": "quorum-session", "version": 99, "session": {}}', "unsupported export"),
        (
            '{"format": "quorum-session", "version": 1, "session": {"id": "x", "title": null, '
            '"created_at": "t", "updated_at": "t", "turns": [{"seq": "one"}]}}',
            "session.id: must be 16 lowercase hex digits",
        ),
    ],
)
def test_bad_import_files_get_a_clear_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(content, encoding="utf-8")
    assert main(["import", str(bad)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    with pytest.raises(ExportFormatError):
        import_session(HistoryStore.open(tmp_path / "x.sqlite3"), content)


def test_export_usage_errors_are_clear(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", "--last"]) == 2
    assert "no sessions yet" in capsys.readouterr().err
    assert main(["export"]) == 2
    assert "SESSION_ID or --last" in capsys.readouterr().err
    assert main(["import", "/nonexistent/file.json"]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_markdown_has_every_answer_with_timings_consensus_and_sources(
    store: HistoryStore,
) -> None:
    md = export_session(store.load_session(recorded_session(store)), "md")
    assert md.startswith("# Geography <b>quiz</b>\n")
    assert "### gpt <i>4</i> — openai/gpt <i>4</i>-id · ok" in md
    assert "first token 123 ms · total 2345 ms · 12 tokens in · 34 tokens out" in md
    assert "**Paris** is the capital." in md
    assert "### claude — openai/claude-id · ok" not in md  # provider comes from the events
    assert "### claude — anthropic/claude-id · ok" in md
    assert "> ✗ http: HTTP 503: bad <script>x()</script>" in md
    assert "### Consensus\n\nAll agree: **Paris**." in md
    assert "- atlas.md" in md and "[wiki](https://en.wikipedia.org/wiki/Paris)" in md


class _Markup(HTMLParser):
    """Collects the live markup of a page: tags, attributes and links."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str]] = []
        self.metas: list[dict[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs += [(name, value or "") for name, value in attrs]
        if tag == "meta":
            self.metas.append({name: value or "" for name, value in attrs})


def test_html_never_runs_model_markup(store: HistoryStore) -> None:
    page = export_session(store.load_session(recorded_session(store, answer=EVIL)), "html")
    markup = _Markup()
    markup.feed(page)

    assert "script" not in markup.tags and "img" not in markup.tags
    assert "iframe" not in markup.tags and "i" not in markup.tags and "b" not in markup.tags
    assert not [name for name, _ in markup.attrs if name.startswith("on")]
    assert not [name for name, _ in markup.attrs if name == "src"]  # nothing loads by itself
    links = [value for name, value in markup.attrs if name == "href"]
    assert links == [  # safe links stay clickable; an image becomes a plain link
        "https://example.com/a?b=1",
        "https://tracker.example/p.png",
        "https://en.wikipedia.org/wiki/Paris",
    ]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # shown as text, not run
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "gpt &lt;i&gt;4&lt;/i&gt;" in page  # names, queries, errors escaped too
    assert "bad &lt;script&gt;x()&lt;/script&gt;" in page
    assert "Capital of France? &lt;script&gt;q()&lt;/script&gt;" in page
    assert "<strong>Paris</strong>" in page  # Markdown is still rendered


def test_html_is_self_contained_with_a_restrictive_csp(store: HistoryStore) -> None:
    page = export_session(store.load_session(recorded_session(store)), "html")
    markup = _Markup()
    markup.feed(page)
    (csp,) = [
        m["content"] for m in markup.metas if m.get("http-equiv") == "Content-Security-Policy"
    ]
    assert "default-src 'none'" in csp and "script-src" not in csp
    assert "link" not in markup.tags and "script" not in markup.tags
    assert "@import" not in page and "url(" not in page


def test_export_of_every_format_handles_an_empty_and_an_unfinished_session(
    store: HistoryStore,
) -> None:
    empty = store.load_session(store.new_session())
    sid = store.new_session()
    writer = HistoryWriter(store, sid, "q", [spec_of("a")], timer=False)
    writer.apply(Started("a", "openai", 1))
    writer.apply(TextDelta("a", "partial"))
    writer.close()
    unfinished: SessionRecord = store.load_session(sid)
    for fmt in ("md", "json", "html"):
        assert export_session(empty, fmt)  # type: ignore[arg-type]
        assert "partial" in export_session(unfinished, fmt)  # type: ignore[arg-type]
    assert "interrupted (partial answer)" in export_session(unfinished, "md")
