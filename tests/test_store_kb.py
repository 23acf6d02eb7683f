"""The knowledge base on a real embedded chromadb with the real built-in embedder."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from core.config import StoreSettings
from core.store import catalog as catalog_module
from core.store.documents import Chunk
from core.store.embedder import BuiltinEmbedder
from core.store.kb import KnowledgeBase, StoreError, embedding_text
from core.store.retrieval import fuse
from tests.chroma_server import chroma_server

NOTES = {
    "/notes/deploy.md": [
        ("Deploying", "Run make deploy from a clean checkout; it builds the image and pushes it."),
        ("Rollback", "To roll back, run make rollback with the previous release tag."),
    ],
    "/notes/errors.md": [
        ("Errors", "E4012 means the upstream token expired: refresh it with the vault CLI."),
        ("Errors", "A timeout against the billing API usually means the VPN is down."),
    ],
    "/notes/food.md": [
        ("Lunch", "The canteen serves pasta on Tuesdays and fish on Fridays."),
    ],
}


@pytest.fixture(scope="module")
def embedder() -> BuiltinEmbedder:
    return BuiltinEmbedder()


def add(kb: KnowledgeBase, path: str, sections: list[tuple[str, str]], sha: str = "v1") -> None:
    chunks = [
        Chunk(text, path, heading, (heading,), i * 10 + 1, i * 10 + 5, "line", i)
        for i, (heading, text) in enumerate(sections)
    ]
    vectors = kb.embed([embedding_text(c.headings, c.title, c.text) for c in chunks])
    kb.catalog.replace_file(path, sha, 100, "markdown", path, chunks, vectors)


@pytest.fixture
def kb(tmp_path: Path, embedder: BuiltinEmbedder) -> KnowledgeBase:
    base = KnowledgeBase(StoreSettings(min_score=0.2), root=tmp_path / "store", embedder=embedder)
    for path, sections in NOTES.items():
        add(base, path, sections)
    assert base.sync()
    return base


def test_a_question_finds_the_passage_that_answers_it(kb: KnowledgeBase) -> None:
    sources = kb.search("how do I undo a bad release?")
    assert sources[0].source == "/notes/deploy.md"
    assert "roll back" in sources[0].text
    assert sources[0].location == "lines 11-15"
    assert 0 < sources[0].score <= 1


def test_an_exact_error_code_is_kept_even_below_min_score(kb: KnowledgeBase) -> None:
    strict = KnowledgeBase(
        StoreSettings(min_score=0.5), root=kb.root, embedder=kb.embedder
    )  # a bare code embeds close to nothing: its similarity is well under 0.5
    assert strict.search("E4012", mode="vector") == ()
    hybrid = strict.search("E4012")
    assert [s.text[:5] for s in hybrid] == ["E4012"]


def test_a_rare_error_string_among_common_words_is_the_first_keyword_hit(
    kb: KnowledgeBase, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(catalog_module, "MATCH_BUDGET", 4)  # as 5000 is in a big knowledge base
    log = [
        ("Deploy log", f"Deploy {i} of the billing service to the server went fine.")
        for i in range(8)
    ]
    log.append(("Deploy log", "Deploy 9 stopped on the server: ERR_UPSTREAM_7731 from billing."))
    add(kb, "/notes/log.md", log)
    question = "why did my deploy of the billing service stop with ERR_UPSTREAM_7731 on the server?"
    match = kb.catalog.keyword_query(question)
    # only the rare words choose the candidates; the common ones only rank them
    rare = '"did" OR "stop" OR "err_upstream_7731"'  # in no chunk or in one
    assert match == f'({rare}) OR (({rare}) AND ("service" OR "server" OR "billing" OR "deploy"))'
    assert next(s.text for s in kb.search(question, mode="keyword")).startswith("Deploy 9")
    # when every word is common, a candidate has to hold all of them
    common = kb.catalog.keyword_query("billing deploy server") or ""
    assert sorted(common.split(" AND ")) == ['"billing"', '"deploy"', '"server"']
    assert len(kb.catalog.keyword_search("billing deploy server", 20)) == 9


def test_unrelated_questions_bring_no_sources(kb: KnowledgeBase) -> None:
    assert kb.search("what is the boiling point of liquid nitrogen?") == ()


def test_a_changed_file_replaces_its_chunks(kb: KnowledgeBase) -> None:
    add(kb, "/notes/food.md", [("Lunch", "The canteen now serves curry on Tuesdays.")], sha="v2")
    kb.sync()
    found = kb.search("what does the canteen serve on Tuesday?")
    texts = [s.text for s in found]
    assert any("curry" in t for t in texts)
    assert not any("pasta" in t for t in texts)
    assert kb.index.count() == 5


def test_removed_files_leave_the_vector_index_too(kb: KnowledgeBase) -> None:
    assert kb.catalog.remove_files(["/notes/errors.md"]) == 1
    kb.sync()
    assert kb.index.count() == 3
    assert all(s.source != "/notes/errors.md" for s in kb.search("E4012 token expired"))


def test_an_empty_knowledge_base_costs_no_embedding(tmp_path: Path) -> None:
    class Refuses(BuiltinEmbedder):
        def embed(self, texts):  # type: ignore[no-untyped-def]
            raise AssertionError("an empty knowledge base must not embed the question")

    empty = KnowledgeBase(StoreSettings(), root=tmp_path / "empty", embedder=Refuses())
    assert empty.search("anything") == ()


def test_changing_the_embedder_is_an_error_that_says_how_to_rebuild(
    kb: KnowledgeBase, tmp_path: Path
) -> None:
    class Other(BuiltinEmbedder):
        name = "ollama:nomic-embed-text"

    reopened = KnowledgeBase(StoreSettings(), root=kb.root, embedder=Other())
    with pytest.raises(StoreError, match="quorum kb rebuild"):
        reopened.search("how do I roll back?")


def test_rebuild_re_embeds_and_adopts_the_new_embedder(kb: KnowledgeBase) -> None:
    class Renamed(BuiltinEmbedder):
        name = "builtin:renamed"

    rebuilt = KnowledgeBase(StoreSettings(min_score=0.2), root=kb.root, embedder=Renamed())
    assert rebuilt.rebuild() == 5
    assert rebuilt.search("how do I undo a bad release?")[0].source == "/notes/deploy.md"


def test_another_writer_holding_the_lock_is_caught_up_later(kb: KnowledgeBase) -> None:
    with kb.lock.hold():
        second = KnowledgeBase(StoreSettings(), root=kb.root, embedder=kb.embedder)
        add(second, "/notes/new.md", [("Pager", "The pager rota lives in the ops wiki.")])
        assert second.sync(wait_s=0) is False  # busy: recorded in SQLite, not yet indexed
        assert second.catalog.stats()["pending"] == 1
    assert kb.sync()  # whoever holds the lock next copies everyone's pending chunks
    assert kb.index.count() == 6
    assert kb.catalog.stats()["pending"] == 0


def test_reciprocal_rank_fusion_rewards_agreement() -> None:
    fused = fuse([["a", "b", "c"], ["c", "a", "d"]])
    assert [item for item, _ in fused][:2] == ["a", "c"]
    assert {item for item, _ in fused} == {"a", "b", "c", "d"}


def test_a_shared_chroma_server_serves_what_another_machine_ingested(
    tmp_path: Path, embedder: BuiltinEmbedder
) -> None:
    with chroma_server(tmp_path) as url:
        settings = StoreSettings(url=url, min_score=0.2)
        alice = KnowledgeBase(settings, root=tmp_path / "alice", embedder=embedder)
        for path, sections in NOTES.items():
            add(alice, path, sections)
        assert alice.sync()
        # bob has an empty local catalog: every source comes from the server
        bob = KnowledgeBase(settings, root=tmp_path / "bob", embedder=embedder)
        found = bob.search("how do I undo a bad release?")
        assert found[0].source == "/notes/deploy.md"
        assert "roll back" in found[0].text
        assert found[0].location == "lines 11-15"


def test_an_unreachable_server_is_a_clear_error(tmp_path: Path, embedder: BuiltinEmbedder) -> None:
    from tests.conftest import closed_port

    settings = StoreSettings(url=f"http://127.0.0.1:{closed_port()}")
    kb = KnowledgeBase(settings, root=tmp_path / "s", embedder=embedder)
    with pytest.raises(StoreError, match=r"127\.0\.0\.1"):
        kb.search("anything")


def _open_files_under(root: Path, settle_s: float = 5.0) -> list[str]:
    """This process's open files under ``root``, once chromadb has had ``settle_s`` to close
    them (its SQLite pool closes its connections on worker threads of its own, a few ms late)."""
    deadline = time.monotonic() + settle_s
    while True:
        held = []
        for fd in Path("/proc/self/fd").iterdir():
            try:
                target = fd.readlink()
            except OSError:
                continue
            if target.is_relative_to(root):
                held.append(str(target))
        if not held or time.monotonic() > deadline:
            return held
        time.sleep(0.01)


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_closing_a_knowledge_base_releases_its_vector_store(
    tmp_path: Path, embedder: BuiltinEmbedder
) -> None:
    # bench/soak.py found the app's chromadb files (and its threads) still open after the app
    # had exited: KnowledgeBase.close() closed the catalog but never the chromadb client.
    for round_ in range(3):  # the same store opened again is released again
        kb = KnowledgeBase(StoreSettings(), root=tmp_path / "store", embedder=embedder)
        add(kb, "/notes/deploy.md", NOTES["/notes/deploy.md"], sha=f"v{round_}")
        assert kb.sync()
        assert kb.search("how do I roll back?")
        kb.close()
        assert _open_files_under(tmp_path) == []
