"""History found by meaning: a real history SQLite file, the real embedder, real chromadb."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from core.config import ModelSpec, StoreSettings
from core.history import HistoryStore
from core.history.records import ResponseProgress
from core.store.embedder import BuiltinEmbedder
from core.store.history_index import HistoryIndex
from core.store.kb import KnowledgeBase

MODEL = ModelSpec(name="gpt", provider="openai", model="gpt", base_url="http://127.0.0.1:9")
TURNS = [
    ("How do I make sourdough bread rise better?", "Feed the starter twice and proof it warm."),
    ("What is the time complexity of quicksort?", "O(n log n) on average, O(n^2) worst case."),
    ("Best way to learn the violin as an adult?", "A teacher, slow scales and daily practice."),
]


def record(store: HistoryStore, query: str, answer: str) -> tuple[str, int]:
    session = store.new_session(query)
    turn = store.begin_turn(session, query, [MODEL])
    progress = ResponseProgress(
        turn.response_ids["gpt"],
        answer,
        "",
        "openai",
        "done",
        "stop",
        None,
        None,
        None,
        10.0,
        20.0,
        3,
        5,
        50.0,
        1,
    )
    store.write_progress([progress])
    store.end_turn(turn.turn_id, "done", 20.0)
    return session, turn.seq


@pytest.fixture(scope="module")
def embedder() -> BuiltinEmbedder:
    return BuiltinEmbedder()


def test_a_past_question_is_found_by_meaning_not_only_words(
    tmp_path: Path, embedder: BuiltinEmbedder
) -> None:
    db = tmp_path / "history.sqlite3"
    with HistoryStore.open(db) as store:
        keys = [record(store, q, a) for q, a in TURNS]
        kb = KnowledgeBase(StoreSettings(), root=tmp_path / "store", embedder=embedder)
        index = HistoryIndex(kb, db)
        assert index.catch_up() == 6  # three questions, three answers
        assert index.catch_up() == 0  # nothing twice
        # no word in common with the question about quicksort
        assert store.search("sorting algorithm speed") == []
        hits = index.search("sorting algorithm speed")
    assert (hits[0].session_id, hits[0].seq) == keys[1]
    assert "quicksort" in hits[0].snippet or "n log n" in hits[0].snippet


def test_two_processes_catching_up_at_once_lose_nothing(
    tmp_path: Path, embedder: BuiltinEmbedder
) -> None:
    """Two real processes write turns to one history and catch the index up concurrently; the
    index ends with every question and answer exactly once."""
    db = tmp_path / "history.sqlite3"
    with HistoryStore.open(db):
        pass
    writer = f"""
import sys
from pathlib import Path
sys.path.insert(0, {str(Path(__file__).resolve().parent.parent)!r})
from core.config import StoreSettings
from core.history import HistoryStore
from core.store.history_index import HistoryIndex
from core.store.kb import KnowledgeBase
from tests.test_store_history import record
who = sys.argv[1]
kb = KnowledgeBase(StoreSettings(), root=Path({str(tmp_path / "store")!r}))
index = HistoryIndex(kb, Path({str(db)!r}))
with HistoryStore.open(Path({str(db)!r})) as store:
    for i in range(8):
        record(store, f"question {{i}} from {{who}} about topic {{i}}", f"answer {{i}} by {{who}}")
        index.catch_up(wait_s=5.0)
"""
    procs = [
        subprocess.Popen([sys.executable, "-c", writer, name], stderr=subprocess.PIPE, text=True)
        for name in ("alpha", "beta")
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err
    kb = KnowledgeBase(StoreSettings(), root=tmp_path / "store", embedder=embedder)
    index = HistoryIndex(kb, db)
    index.catch_up()  # whatever a busy lock left for later
    assert kb.collection("quorum_history").count() == 32  # 2 writers x 8 turns x 2 texts
    assert len(kb.catalog.history_keys()) == 32
