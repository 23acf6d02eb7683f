"""Ingest embeds the chunks of several files together and still records each file whole."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from core.config import StoreSettings
from core.store import ingest as ingest_module
from core.store.embedder import BuiltinEmbedder, Vector
from core.store.ingest import Progress, ingest
from core.store.kb import KnowledgeBase


class Counting(BuiltinEmbedder):
    """The built-in embedder, recording how many texts each call had; ``stop_at`` interrupts
    that call (1 = the first) as Ctrl+C would."""

    def __init__(self, stop_at: int | None = None) -> None:
        super().__init__()
        self.calls: list[int] = []
        self.stop_at = stop_at

    def embed(self, texts: Sequence[str]) -> list[Vector]:
        self.calls.append(len(texts))
        if len(self.calls) == self.stop_at:
            raise KeyboardInterrupt
        return super().embed(texts)


def notes(root: Path, count: int) -> list[Path]:
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = root / f"note{i:02}.md"
        path.write_text(f"# Note {i}\n\nThe pager code for team {i} is P{i:04}.\n", "utf-8")
        paths.append(path)
    return paths


def test_small_files_are_embedded_in_one_call_and_reported_one_by_one(tmp_path: Path) -> None:
    notes(tmp_path / "docs", 6)
    (tmp_path / "docs" / "empty.md").write_text("", encoding="utf-8")
    embedder = Counting()
    seen: list[Progress] = []
    with KnowledgeBase(StoreSettings(), root=tmp_path / "store", embedder=embedder) as kb:
        report = ingest(kb, [tmp_path / "docs"], progress=seen.append)
        assert (report.added, report.chunks) == (6, 6)
        assert [s.reason for s in report.skipped] == ["empty"]
        assert embedder.calls == [6]
        # each file is reported when it is done: the empty one at once, the others once written
        assert [(p.done, p.total) for p in seen] == [(i, 7) for i in range(1, 8)]
        assert [p.outcome for p in seen] == ["skipped"] + ["added"] * 6
        assert kb.search("pager code for team 3", mode="keyword")[0].text.endswith("P0003.")


def test_an_interrupted_ingest_leaves_whole_files_and_the_next_run_adds_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingest_module, "EMBED_BATCH", 2)
    notes(tmp_path / "docs", 6)
    store = tmp_path / "store"
    interrupted = Counting(stop_at=2)
    with KnowledgeBase(StoreSettings(), root=store, embedder=interrupted) as kb:
        with pytest.raises(KeyboardInterrupt):
            ingest(kb, [tmp_path / "docs"])
        files = kb.catalog.files()
        assert len(files) == 2  # the first batch; the second was being embedded
        assert kb.catalog.stats()["chunks"] == sum(f.chunks for f in files) == 2
    resumed = Counting()
    with KnowledgeBase(StoreSettings(), root=store, embedder=resumed) as kb:
        report = ingest(kb, [tmp_path / "docs"])
        assert (report.unchanged, report.added) == (2, 4)
        assert resumed.calls == [2, 2]
        assert kb.index.count() == 6


def test_a_changed_file_in_a_batch_replaces_its_chunks(tmp_path: Path) -> None:
    paths = notes(tmp_path / "docs", 3)
    with KnowledgeBase(StoreSettings(), root=tmp_path / "store", embedder=Counting()) as kb:
        ingest(kb, [tmp_path / "docs"])
        paths[1].write_text("# Note 1\n\nThe pager code for team 1 is now Q7777.\n", "utf-8")
        report = ingest(kb, [tmp_path / "docs"])
        assert (report.unchanged, report.updated, report.chunks) == (2, 1, 1)
        assert kb.catalog.stats()["chunks"] == 3
        assert [s.text[-6:] for s in kb.search("Q7777", mode="keyword")] == ["Q7777."]
        assert kb.search("P0001", mode="keyword") == ()
