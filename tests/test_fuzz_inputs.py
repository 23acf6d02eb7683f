"""Property-based tests of the parsers of the user's files: the config loader, the session
importer and the knowledge base's readers. Whatever the input, each ends in its own clear
error (`ConfigError`, `ExportFormatError`, `SkipFile`, each with a message) or in a result;
never in another exception, which the command line would show as a traceback.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import tomli_w
from hypothesis import example, given, settings
from hypothesis import strategies as st

from core.config import ConfigError, Settings, load_settings
from core.export import export_session, import_session
from core.export.json_format import ExportFormatError, parse_session
from core.history import HistoryStore
from core.store.chunking import chunk_document
from core.store.documents import Document, SkipFile
from core.store.readers import read_document
from tests.test_export import recorded_session

FUZZ = settings(max_examples=100, deadline=None)


@contextmanager
def scratch() -> Iterator[Path]:
    """A directory of one's own for one example (Hypothesis runs many per test)."""
    with tempfile.TemporaryDirectory() as name:
        yield Path(name)


def _either(
    first: st.SearchStrategy[Any], second: st.SearchStrategy[Any]
) -> st.SearchStrategy[Any]:
    """One or the other, even odds (``|`` flattens unions: a union of nine would win 9 to 1)."""
    return st.booleans().flatmap(lambda pick: first if pick else second)


# --- the config loader ------------------------------------------------------------------------
def load(text: str | bytes) -> Settings | None:
    """`load_settings` on a file holding ``text``: the settings, or None after a ConfigError."""
    with scratch() as root:
        path = root / "config.toml"
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            return load_settings(path)
        except ConfigError as error:
            assert str(error).strip(), "a ConfigError without a message"
            return None


_TOML_WORDS = [
    "[models]",
    "[[models]]",
    "[store]",
    "[ui]",
    "[history]",
    "[consensus]",
    "[limits]",
    "name = ",
    'provider = "openai"',
    'model = "m"',
    "base_url = ",
    "=",
    '"',
    "'",
    '"""',
    "[",
    "]",
    "{",
    "}",
    ",",
    "\n",
    "\r\n",
    "#",
    "1",
    "-1",
    "1e999",
    "nan",
    "inf",
    "true",
    "1979-05-27T07:32:00Z",
    "\\u00e9",
    "\\",
    "\x00",
    "\ufeff",
]
toml_ish = st.lists(st.one_of(st.sampled_from(_TOML_WORDS), st.text(max_size=8)), max_size=40).map(
    "".join
)


@FUZZ
@given(text=toml_ish)
def test_any_config_text_loads_or_is_a_config_error(text: str) -> None:
    load(text)


@FUZZ
@given(data=st.binary(max_size=200))
def test_any_config_bytes_load_or_are_a_config_error(data: bytes) -> None:
    load(data)


# Valid TOML documents shaped like a config: the real tables and keys, any values.
toml_scalars: st.SearchStrategy[Any] = (
    st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(
        ["openai", "anthropic", "gemini", "ollama", "local", "builtin", "openai:m", "ollama:x"]
    )
    | st.sampled_from(["http://127.0.0.1:1", "https://x.test/v1", "", "own", "synthesis", "gpt"])
    | st.datetimes()
)
toml_values: st.SearchStrategy[Any] = st.recursive(
    toml_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)
_MODEL_KEYS = [
    "name",
    "provider",
    "model",
    "base_url",
    "api_key_env",
    "api_key",
    "temperature",
    "max_tokens",
    "system",
    "description",
    "timeout_s",
    "connect_timeout_s",
    "first_token_timeout_s",
    "idle_timeout_s",
    "max_retries",
    "enabled",
    "top_p",
    "seed",
    "threads",
    "n_ctx",
    "max_answer_chars",
    "extra_body",
]
_TABLES = {
    "ui": ["theme"],
    "history": ["enabled", "max_turns", "follow_up"],
    "store": ["embedding", "embedding_model", "rag", "top_k", "min_score", "url", "max_file_mb"],
    "consensus": ["synthesizer", "fallback", "synthesis", "prompt"],
    "limits": ["max_answer_chars"],
}


def _table(keys: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(st.sampled_from([*keys, "unknown"]), toml_values, max_size=len(keys))


def _good_model(name: str) -> dict[str, Any]:
    return {"name": name, "provider": "openai", "model": "m", "base_url": "http://127.0.0.1:1"}


models = st.lists(
    st.builds(
        lambda name, extra: {**_good_model(name), **extra},
        st.sampled_from(["gpt", "claude", "x"]),
        _table(_MODEL_KEYS),
    ),
    max_size=3,
)
config_documents = st.fixed_dictionaries(
    {"models": _either(models, toml_values)},
    optional={table: _either(_table(keys), toml_values) for table, keys in _TABLES.items()},
)


FOUND_CONFIG_BUG = {  # was a TypeError in parse_store (`via not in {names}` on a list)
    "models": [{"name": "gpt", "provider": "openai", "model": "m"}],
    "store": {"embedding": "openai:m", "embedding_model": []},
}


@settings(max_examples=300, deadline=None)
@given(document=config_documents)
@example(document=FOUND_CONFIG_BUG)
def test_any_toml_config_loads_or_is_a_config_error(document: dict[str, Any]) -> None:
    settings_ = load(tomli_w.dumps(document))
    if settings_ is not None:
        assert len({m.name for m in settings_.models}) == len(settings_.models)


# --- the session importer -----------------------------------------------------------------------
json_values: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["quorum-session", "2026-01-31T12:00:00+00:00", "0123456789abcdef"]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)


def _sessions(store: HistoryStore) -> list[str]:
    return [s.id for s in store.list_sessions(limit=10_000)]


def import_or_refuse(store: HistoryStore, text: str) -> str | None:
    """Import ``text``: the new session's id, or None when it was refused with nothing written.
    A session that was accepted exports again in every format and re-imports the same."""
    before = _sessions(store)
    try:
        new_id = import_session(store, text)
    except ExportFormatError as error:
        assert str(error).strip(), "an ExportFormatError without a message"
        assert _sessions(store) == before, "a refused import wrote something"
        return None
    record = store.load_session(new_id)
    for fmt in ("md", "html"):
        assert export_session(record, fmt)
    again = parse_session(export_session(record, "json"))
    assert again == record
    assert dataclasses.replace(parse_session(text), id=new_id) == record
    return new_id


@contextmanager
def history() -> Iterator[tuple[HistoryStore, dict[str, Any]]]:
    """A store holding one recorded session, and that session's JSON export."""
    with scratch() as root:
        store = HistoryStore.open(root / "history.db")
        try:
            sid = recorded_session(store)
            yield store, json.loads(export_session(store.load_session(sid), "json"))
        finally:
            store.close()


def test_any_json_value_imports_or_is_refused() -> None:
    with history() as (store, _):

        @FUZZ
        @given(value=json_values)
        def check(value: Any) -> None:
            import_or_refuse(store, json.dumps(value))

        check()


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


def _change(data: Any, path: tuple[Any, ...], new: Any, delete: bool) -> Any:
    """``data`` with the value at ``path`` replaced by ``new`` (or its key deleted)."""
    if not path:
        return new
    parent = data
    for step in path[:-1]:
        parent = parent[step]
    if delete and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = new
    return data


def test_a_valid_export_with_any_value_changed_imports_or_is_refused() -> None:
    with history() as (store, export):

        @settings(max_examples=250, deadline=None)
        @given(data=st.data())
        def check(data: st.DataObject) -> None:
            changed = copy.deepcopy(export)
            for _ in range(data.draw(st.integers(1, 3), label="changes")):
                path = data.draw(st.sampled_from(_paths(changed)), label="path")
                delete = data.draw(st.booleans(), label="delete the key")
                new = data.draw(json_values, label="new value")
                changed = _change(changed, path, new, delete)
            import_or_refuse(store, json.dumps(changed, ensure_ascii=False))

        check()


# --- the knowledge base's readers ---------------------------------------------------------------
SUFFIXES = (".md", ".txt", ".rst", ".py", ".html", ".pdf")
_DOC_WORDS = [
    b"# Title\n",
    b"## Sub\n",
    b"Title\n=====\n",
    b"-----\n",
    b".. code-block:: python\n\n",
    b"   indented\n",
    b"```\n",
    b"~~~\n",
    b"- item\n",
    b"| a | b |\n|---|---|\n",
    b"def f():\n    return 1\n",
    b"class C:\n",
    b"<h1>",
    b"</h1>",
    b"<p>",
    b"<pre>",
    b"<table><tr><td>",
    b"<script>",
    b"<!--",
    b"&#27;",
    b"&amp;",
    b"%PDF-1.4\n",
    b"1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n",
    b"xref\n0 1\n",
    b"trailer\n<< /Root 1 0 R >>\n",
    b"stream\n",
    b"endstream\n",
    b"%%EOF\n",
    b"\xff\xfe",
    b"\xef\xbb\xbf",
    b"\x00",
    b"\x1b[31m",
    b"\r\n",
    b"\r",
    b"\n\n",
    "é漢🎉".encode(),
    b"\xc3",
]
file_bytes = st.lists(
    st.one_of(st.sampled_from(_DOC_WORDS), st.binary(max_size=12)), max_size=40
).map(b"".join)


def _tokens(text: str) -> int:
    return len(text.split())


@settings(max_examples=80, deadline=None)
@given(suffix=st.sampled_from(SUFFIXES), data=file_bytes)
def test_any_file_reads_as_a_document_or_is_skipped(suffix: str, data: bytes) -> None:
    with scratch() as root:
        path = root / f"file{suffix}"
        path.write_bytes(data)
        try:
            document = read_document(path)
        except SkipFile as skip:
            assert skip.reason.strip(), "a SkipFile without a reason"
            return
    assert isinstance(document, Document)
    assert any(section.text.strip() for section in document.sections)
    for section in document.sections:
        assert 1 <= section.start <= section.end, section
    # what was read can be chunked for the embedder
    chunks = chunk_document(document, count_tokens=_tokens, max_tokens=20, overlap_tokens=4)
    assert chunks
