"""Chunking real files: within the token limit, on structure, with overlap, exact line ranges."""

from __future__ import annotations

import itertools
import math
import textwrap
from pathlib import Path

import pytest

from core.store.chunking import chunk_document
from core.store.documents import Chunk, Document, Section
from core.store.readers import read_document


def words(text: str) -> int:
    return len(text.split())


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def sentences(count: int, start: int = 0) -> list[str]:
    return [
        f"Sentence number {n} says something useful about topic {n}."
        for n in range(start, start + count)
    ]


def assert_exact_range(chunk: Chunk, lines: list[str]) -> None:
    """The chunk's first and last text lines come from its first and last source lines."""
    text = chunk.text.split("\n")
    first, last = text[0], text[-1]
    assert first.strip() in lines[chunk.start - 1]
    assert last.strip() in lines[chunk.end - 1]
    assert lines[chunk.start - 1].strip() and lines[chunk.end - 1].strip()


def test_sections_under_one_heading_are_packed_and_trails_never_mix(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "notes.md",
        "# Notes\n\nAlpha one.\n\nAlpha two.\n\n## Sub\n\nBeta one.\n\nBeta two.\n\n"
        "# Other\n\nGamma.\n",
    )
    chunks = chunk_document(read_document(path), count_tokens=words, max_tokens=50)
    assert [(c.headings, c.text, c.location) for c in chunks] == [
        (("Notes",), "# Notes\n\nAlpha one.\n\nAlpha two.", "lines 1-5"),
        (("Notes", "Sub"), "## Sub\n\nBeta one.\n\nBeta two.", "lines 7-11"),
        (("Other",), "# Other\n\nGamma.", "lines 13-15"),
    ]
    assert [c.ordinal for c in chunks] == [0, 1, 2]
    assert chunks[1].label == f"{path} › Notes › Sub"
    assert {c.title for c in chunks} == {"Notes"}


def test_a_title_with_only_a_subheading_under_it_joins_that_subheading(tmp_path: Path) -> None:
    path = write(tmp_path, "a.md", "# Project\n\n## Install\n\nRun the installer.\n")
    chunks = chunk_document(read_document(path), count_tokens=words)
    assert [(c.headings, c.text) for c in chunks] == [
        (("Project", "Install"), "# Project\n\n## Install\n\nRun the installer.")
    ]


def test_a_long_paragraph_splits_on_sentences_with_overlap(tmp_path: Path) -> None:
    said = sentences(30)
    # hard-wrapped the way people write Markdown: sentences cross line ends
    body = " ".join(said)
    wrapped = "\n".join(textwrap.wrap(body, 72))
    path = write(tmp_path, "long.md", "# Long\n\n" + wrapped + "\n")
    source_lines = path.read_text(encoding="utf-8").split("\n")
    chunks = chunk_document(
        read_document(path), count_tokens=words, max_tokens=60, overlap_tokens=12
    )
    assert len(chunks) >= 5
    for chunk in chunks:
        assert words(chunk.text) <= 60
        assert chunk.text.rstrip().endswith(".")  # cut after a sentence, never inside one
        assert_exact_range(chunk, source_lines)
    flat = [" ".join(c.text.split()) for c in chunks]
    for before, after in itertools.pairwise(flat):
        (tail,) = [s for s in said if before.endswith(s)]
        assert after.startswith(tail), "the next chunk repeats the previous one's last sentence"
        assert after != tail
    joined = " ".join(flat)
    assert all(s in joined for s in said), "nothing is lost"


def test_a_code_block_that_fits_is_never_split(tmp_path: Path) -> None:
    code = "\n".join(f"line_{n} = compute({n})" for n in range(25))  # 75 words
    prose = " ".join(sentences(6))  # 54 words
    path = write(tmp_path, "c.md", f"# Code\n\n{prose}\n\n```python\n{code}\n```\n\n{prose}\n")
    lines = path.read_text(encoding="utf-8").split("\n")
    chunks = chunk_document(
        read_document(path), count_tokens=words, max_tokens=80, overlap_tokens=10
    )
    holding = [c for c in chunks if "line_0 =" in c.text or "line_24 =" in c.text]
    assert len(holding) == 1
    assert f"```python\n{code}\n```" in holding[0].text
    after = chunks[chunks.index(holding[0]) + 1]
    assert "line_24" not in after.text, "no overlap is cut out of a code block kept whole"
    for chunk in chunks:
        assert words(chunk.text) <= 80
        assert_exact_range(chunk, lines)


def test_a_code_block_longer_than_the_limit_splits_on_lines_with_overlap(tmp_path: Path) -> None:
    source = "def big():\n" + "\n".join(f"    value_{n} = step({n}) + 1" for n in range(60)) + "\n"
    path = write(tmp_path, "big.py", source)
    lines = source.split("\n")
    chunks = chunk_document(
        read_document(path), count_tokens=words, max_tokens=50, overlap_tokens=10
    )
    assert len(chunks) > 1
    for chunk in chunks:
        assert words(chunk.text) <= 50
        for line in chunk.text.split("\n"):
            assert line in lines, "every chunk line is a whole source line, indentation kept"
        assert chunk.text.split("\n") == lines[chunk.start - 1 : chunk.end]
    for before, after in itertools.pairwise(chunks):
        assert after.start <= before.end, "consecutive chunks overlap by a few lines"
        assert before.end - after.start + 1 <= 2  # about 10 words: two lines of five
    covered = set().union(*(range(c.start, c.end + 1) for c in chunks))
    assert covered == set(range(1, 62))


def test_lists_split_on_item_lines(tmp_path: Path) -> None:
    items = "\n".join(f"- item {n} with a few words" for n in range(40))
    path = write(tmp_path, "list.md", f"# List\n\n{items}\n")
    lines = path.read_text(encoding="utf-8").split("\n")
    chunks = chunk_document(
        read_document(path), count_tokens=words, max_tokens=40, overlap_tokens=7
    )
    for chunk in chunks:
        assert all(line.startswith(("- ", "# ")) or not line for line in chunk.text.split("\n"))
        assert chunk.text.split("\n")[-1] == lines[chunk.end - 1]


def test_a_word_longer_than_the_limit_is_cut_to_fit(tmp_path: Path) -> None:
    def pieces(text: str) -> int:  # a subword tokenizer: one token per 8 characters of a word
        return sum(math.ceil(len(word) / 8) for word in text.split())

    blob = "ab0123456789" * 100  # 1200 characters, 150 tokens, no space anywhere
    path = write(tmp_path, "key.txt", f"The key follows.\n\n{blob}\n\nThe end.\n")
    chunks = chunk_document(
        read_document(path), count_tokens=pieces, max_tokens=40, overlap_tokens=5
    )
    assert all(pieces(c.text) <= 40 for c in chunks)
    prose = ("The key follows.", "The end.")
    cut = [c for c in chunks if c.text not in prose]
    assert "".join(c.text.removesuffix("\n\nThe end.") for c in cut) == blob, "nothing is lost"
    assert all(c.start == 3 for c in cut)


def test_special_tokens_and_non_additive_counts_still_respect_the_limit(tmp_path: Path) -> None:
    path = write(tmp_path, "p.txt", "\n\n".join(" ".join(sentences(3, n)) for n in range(0, 60, 3)))

    def with_specials(text: str) -> int:  # [CLS] and [SEP] on every text
        return words(text) + 2

    def newline_costs(text: str) -> int:  # joins cost tokens the pieces did not
        return words(text) + 3 * text.count("\n")

    for count in (with_specials, newline_costs):
        chunks = chunk_document(
            read_document(path), count_tokens=count, max_tokens=45, overlap_tokens=9
        )
        assert all(count(c.text) <= 45 for c in chunks)
        text = " ".join(" ".join(c.text.split()) for c in chunks)
        assert all(s in text for s in sentences(60))
    fitted = chunk_document(read_document(path), count_tokens=with_specials, max_tokens=45)
    # 27-word paragraphs of 9-word sentences: the fullest chunk is a paragraph plus one sentence
    # of overlap plus the two specials, 38, which fits only when specials are counted once
    assert max(with_specials(c.text) for c in fitted) == 38


def test_pdf_chunks_carry_page_ranges() -> None:
    doc = Document(
        "manual.pdf",
        "pdf",
        "Manual",
        "page",
        tuple(Section(" ".join(sentences(4, 4 * n)), "page", (), n + 1, n + 1) for n in range(4)),
    )
    chunks = chunk_document(doc, count_tokens=words, max_tokens=80, overlap_tokens=0)
    assert [c.location for c in chunks] == ["pages 1-2", "pages 3-4"]
    single = chunk_document(doc, count_tokens=words, max_tokens=40, overlap_tokens=0)
    assert [c.location for c in single] == ["page 1", "page 2", "page 3", "page 4"]


def test_chunking_is_deterministic_and_chunks_are_plain_document_text(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "d.md",
        "# T\n\n" + "\n\n".join(" ".join(sentences(5, n)) for n in range(0, 50, 5)),
    )
    doc = read_document(path)
    first = chunk_document(doc, count_tokens=words, max_tokens=70)
    second = chunk_document(read_document(path), count_tokens=words, max_tokens=70)
    assert first == second
    assert first[1].text.startswith("Sentence number"), "no title or heading prefix is added"


def test_bad_limits_are_refused() -> None:
    doc = Document("x.txt", "text", "x.txt", "line", (Section("a", "paragraph", (), 1, 1),))
    with pytest.raises(ValueError):
        chunk_document(doc, count_tokens=words, max_tokens=10, overlap_tokens=10)
    with pytest.raises(ValueError):
        chunk_document(doc, count_tokens=words, max_tokens=0)
