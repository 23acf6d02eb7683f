"""Readers on real files: structure, line ranges that point at the real lines, skip reasons."""

from __future__ import annotations

import io
import os
import random
from pathlib import Path

import pypdf
import pytest

from core.store.chunking import chunk_document
from core.store.documents import Document, Section, SkipFile
from core.store.readers import SUPPORTED_SUFFIXES, read_document

REPO = Path(__file__).resolve().parent.parent


def words(text: str) -> int:
    return len(text.split())


def make_pdf(pages: list[str], title: str | None = None) -> bytes:
    """A minimal valid PDF written by hand: one text object per page, Helvetica, real xref."""

    def escape(text: str) -> str:
        return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(len(pages)))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    for i, text in enumerate(pages):
        shown = " ".join(f"({escape(line)}) Tj T*" for line in text.split("\n"))
        stream = f"BT /F1 12 Tf 72 720 Td 14 TL {shown} ET".encode("latin-1")
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % (5 + 2 * i)
        )
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream))
    info = ""
    if title:
        objects.append(f"<< /Title ({escape(title)}) >>".encode())
        info = f" /Info {len(objects)} 0 R"
    out = b"%PDF-1.4\n"
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    trailer = f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R{info} >>\nstartxref\n{xref}\n"
    return out + trailer.encode() + b"%%EOF\n"


def skip_reason(path: Path, **kwargs: int) -> str:
    with pytest.raises(SkipFile) as caught:
        read_document(path, **kwargs)
    return caught.value.reason


def source_lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def assert_points_at_source(section: Section, lines: list[str]) -> None:
    """The section's first and last lines are the file's lines ``start`` and ``end``."""
    text = section.text.split("\n")
    assert text[0] == lines[section.start - 1]
    assert text[-1] == lines[section.end - 1]
    assert len(text) == section.end - section.start + 1


MARKDOWN = """\
---
title: front matter is not content
---
# Field Guide

Quorum asks many models at once.
It shows every answer side by side.

## Install

### From source

Clone the repository, then run the installer:

```sh
git clone https://example.invalid/quorum

make install
```

- first item
- second item
  continued

| key | value |
|-----|-------|
| a   | 1     |

## Usage

    indented code block
    still code
"""


def test_markdown_headings_trail_kinds_and_line_ranges(tmp_path: Path) -> None:
    path = tmp_path / "guide.md"
    path.write_text(MARKDOWN, encoding="utf-8")
    doc = read_document(path)
    lines = source_lines(path)
    assert (doc.kind, doc.title, doc.unit) == ("markdown", "Field Guide", "line")
    assert "front matter" not in " ".join(s.text for s in doc.sections)
    kinds = [(s.kind, s.headings) for s in doc.sections]
    assert kinds == [
        ("heading", ("Field Guide",)),
        ("paragraph", ("Field Guide",)),
        ("heading", ("Field Guide", "Install")),
        ("heading", ("Field Guide", "Install", "From source")),
        ("paragraph", ("Field Guide", "Install", "From source")),
        ("code", ("Field Guide", "Install", "From source")),
        ("list", ("Field Guide", "Install", "From source")),
        ("table", ("Field Guide", "Install", "From source")),
        ("heading", ("Field Guide", "Usage")),
        ("code", ("Field Guide", "Usage")),
    ]
    for section in doc.sections:
        assert_points_at_source(section, lines)
    fence = doc.sections[5]
    assert fence.text.startswith("```sh") and fence.text.endswith("```")
    assert "make install" in fence.text  # the blank line inside did not cut the block
    assert (fence.start, fence.end) == (15, 19)


def test_markdown_title_falls_back_to_first_heading_then_file_name(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("## Only a second level\n\ntext\n", encoding="utf-8")
    (tmp_path / "b.md").write_text("no headings at all\n", encoding="utf-8")
    assert read_document(tmp_path / "a.md").title == "Only a second level"
    assert read_document(tmp_path / "b.md").title == "b.md"


def test_terminal_control_sequences_are_stripped_and_lines_kept(tmp_path: Path) -> None:
    path = tmp_path / "evil.md"
    path.write_text(
        "# Title\x1b]0;pwned\x07\n\nred \x1b[31mtext\x1b[0m here\r\n\r\nlast\x9b2J line\n",
        encoding="utf-8",
    )
    doc = read_document(path)
    assert [s.text for s in doc.sections] == ["# Title", "red text here", "last line"]
    assert [s.start for s in doc.sections] == [1, 3, 5]
    assert doc.sections[0].headings == ("Title",)


def test_crlf_files_keep_their_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"one\r\ntwo\r\n\r\nthree\r\n")
    doc = read_document(path)
    assert [(s.text, s.start, s.end) for s in doc.sections] == [("one\ntwo", 1, 2), ("three", 4, 4)]


def test_plain_text_and_extensionless_text_split_on_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "NOTES"
    path.write_text("\n\nfirst paragraph\nwraps here\n\n\nsecond\n", encoding="utf-8")
    doc = read_document(path)
    assert (doc.kind, doc.title) == ("text", "NOTES")
    assert [(s.kind, s.text, s.start, s.end) for s in doc.sections] == [
        ("paragraph", "first paragraph\nwraps here", 3, 4),
        ("paragraph", "second", 7, 7),
    ]


def test_utf16_text_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    path = tmp_path / "windows.txt"
    path.write_bytes("Grüße aus Wien\n".encode("utf-16"))
    assert read_document(path).sections[0].text == "Grüße aus Wien"


RST = """\
=========
User Book
=========

Intro paragraph
over two lines.

Getting started
===============

Run this::

    pip install quorum

    quorum ask "hi"

Back to prose.

.. code-block:: python

   print("hello")

- a bullet
- another

Details
-------

.. note::

   A note body.

.. _target:

Deep text.

Second chapter
==============

Last words.
"""


def test_rst_headings_literal_blocks_and_code_directives(tmp_path: Path) -> None:
    path = tmp_path / "book.rst"
    path.write_text(RST, encoding="utf-8")
    doc = read_document(path)
    lines = source_lines(path)
    assert (doc.kind, doc.title) == ("rst", "User Book")
    found = [
        (s.kind, s.headings[-1] if s.headings else "", s.text.split("\n")[0]) for s in doc.sections
    ]
    assert found == [
        ("heading", "User Book", "========="),
        ("paragraph", "User Book", "Intro paragraph"),
        ("heading", "Getting started", "Getting started"),
        ("paragraph", "Getting started", "Run this::"),
        ("code", "Getting started", "    pip install quorum"),
        ("paragraph", "Getting started", "Back to prose."),
        ("code", "Getting started", ".. code-block:: python"),
        ("list", "Getting started", "- a bullet"),
        ("heading", "Details", "Details"),
        ("paragraph", "Details", ".. note::"),
        ("paragraph", "Details", "Deep text."),
        ("heading", "Second chapter", "Second chapter"),
        ("paragraph", "Second chapter", "Last words."),
    ]
    by_heading = {s.headings[-1]: s.headings for s in doc.sections}
    assert by_heading["Details"] == ("User Book", "Getting started", "Details")
    assert by_heading["Second chapter"] == ("User Book", "Second chapter")
    literal = doc.sections[4]
    assert 'quorum ask "hi"' in literal.text  # the blank line inside the literal block
    for section in doc.sections:
        assert_points_at_source(section, lines)


PYTHON = '''\
"""Module docstring."""

import os


def first(x):
    total = x

    return total + 1


class Thing:
    def method(self):
        return 1

    def other(self):
        return 2
'''


def test_source_code_splits_at_top_level_blocks_only(tmp_path: Path) -> None:
    path = tmp_path / "thing.py"
    path.write_text(PYTHON, encoding="utf-8")
    doc = read_document(path)
    lines = source_lines(path)
    assert (doc.kind, doc.title) == ("code", "thing.py")
    assert [s.kind for s in doc.sections] == ["code"] * 4
    assert [s.text.split("\n")[0] for s in doc.sections] == [
        '"""Module docstring."""',
        "import os",
        "def first(x):",
        "class Thing:",
    ]
    assert doc.sections[2].text.endswith("return total + 1")  # blank line inside the function
    assert doc.sections[3].text.endswith("return 2")
    for section in doc.sections:
        assert_points_at_source(section, lines)


def test_brace_languages_keep_a_closing_brace_with_its_block(tmp_path: Path) -> None:
    path = tmp_path / "main.go"
    path.write_text("func main() {\n\tx := 1\n\n}\n\nfunc other() {}\n", encoding="utf-8")
    doc = read_document(path)
    assert [s.text for s in doc.sections] == ["func main() {\n\tx := 1\n\n}", "func other() {}"]


HTML = """\
<!DOCTYPE html>
<html>
<head>
  <title>The &amp; Page</title>
  <style>body { color: red }</style>
  <script>var secret = "script text";</script>
</head>
<body>
<nav><a href="/">Home</a> <a href="/x">Navigation link</a></nav>
<h1>Welcome</h1>
<p>First paragraph with <b>bold</b>
and a second line.</p>
<h2>Install <code>quorum</code></h2>
<pre>
pip install quorum
  indented
</pre>
<ul><li>alpha</li><li>beta <i>two</i></li></ul>
<table><tr><th>key</th><th>value</th></tr><tr><td>a</td><td>1</td></tr></table>
<script>document.write("late script")</script>
<p>Closing words.</p>
</body>
</html>
"""


def test_html_drops_script_style_nav_and_builds_the_trail(tmp_path: Path) -> None:
    path = tmp_path / "page.html"
    path.write_text(HTML, encoding="utf-8")
    doc = read_document(path)
    text = "\n".join(s.text for s in doc.sections)
    assert (doc.kind, doc.title) == ("html", "The & Page")
    for hidden in ("secret", "late script", "color: red", "Navigation link", "Home"):
        assert hidden not in text
    assert [(s.kind, s.text, s.headings) for s in doc.sections] == [
        ("heading", "Welcome", ("Welcome",)),
        ("paragraph", "First paragraph with bold and a second line.", ("Welcome",)),
        ("heading", "Install quorum", ("Welcome", "Install quorum")),
        ("code", "pip install quorum\n  indented", ("Welcome", "Install quorum")),
        ("list", "- alpha\n- beta two", ("Welcome", "Install quorum")),
        ("table", "key | value\na | 1", ("Welcome", "Install quorum")),
        ("paragraph", "Closing words.", ("Welcome", "Install quorum")),
    ]
    lines = source_lines(path)
    paragraph = doc.sections[1]
    assert (paragraph.start, paragraph.end) == (11, 12)
    assert "First paragraph" in lines[paragraph.start - 1]
    assert "second line" in lines[paragraph.end - 1]


def test_pdf_one_section_per_page_with_its_title(tmp_path: Path) -> None:
    path = tmp_path / "guide.pdf"
    path.write_bytes(
        make_pdf(["Hello from page one.\nIt has (two) lines.", "", "Page three."], "Field Guide")
    )
    doc = read_document(path)
    assert (doc.kind, doc.title, doc.unit) == ("pdf", "Field Guide", "page")
    assert [(s.kind, s.text, s.start, s.end) for s in doc.sections] == [
        ("page", "Hello from page one.\nIt has (two) lines.", 1, 1),
        ("page", "Page three.", 3, 3),
    ]
    chunks = chunk_document(doc, count_tokens=words)
    assert [c.location for c in chunks] == ["pages 1-3"]


def test_broken_pdfs_are_skipped_with_a_reason(tmp_path: Path) -> None:
    good = make_pdf(["Some text on a page."])
    (tmp_path / "truncated.pdf").write_bytes(good[: len(good) // 2])
    (tmp_path / "garbage.pdf").write_bytes(b"%PDF-1.4\nthis is not a PDF at all\n")
    (tmp_path / "scan.pdf").write_bytes(make_pdf([""]))
    writer = pypdf.PdfWriter(clone_from=pypdf.PdfReader(io.BytesIO(good)))
    writer.encrypt("secret")
    buffer = io.BytesIO()
    writer.write(buffer)
    (tmp_path / "locked.pdf").write_bytes(buffer.getvalue())
    assert skip_reason(tmp_path / "truncated.pdf").startswith("malformed PDF: ")
    assert skip_reason(tmp_path / "garbage.pdf").startswith("malformed PDF: ")
    assert skip_reason(tmp_path / "locked.pdf") == "malformed PDF: encrypted, needs a password"
    assert skip_reason(tmp_path / "scan.pdf") == "no extractable text"


def test_a_pdf_locked_only_against_editing_is_read(tmp_path: Path) -> None:
    writer = pypdf.PdfWriter(clone_from=pypdf.PdfReader(io.BytesIO(make_pdf(["Open text."]))))
    writer.encrypt(user_password="", owner_password="owner")
    buffer = io.BytesIO()
    writer.write(buffer)
    (tmp_path / "owner.pdf").write_bytes(buffer.getvalue())
    assert read_document(tmp_path / "owner.pdf").sections[0].text == "Open text."


def test_skip_reasons_for_files_that_are_not_text(tmp_path: Path) -> None:
    (tmp_path / "image.md").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    (tmp_path / "noise.txt").write_bytes(
        bytes(random.Random(7).randrange(128, 256) for _ in range(4000))
    )
    (tmp_path / "latin1.txt").write_bytes("Café crème, déjà vu. ".encode("latin-1") * 20)
    (tmp_path / "empty.md").write_bytes(b"")
    (tmp_path / "blank.txt").write_text("\n   \n\t\n", encoding="utf-8")
    (tmp_path / "archive.xyz").write_text("text", encoding="utf-8")
    (tmp_path / "folder.md").mkdir()
    assert skip_reason(tmp_path / "image.md") == "binary file"
    assert skip_reason(tmp_path / "noise.txt") == "binary file"
    assert skip_reason(tmp_path / "latin1.txt") == "not UTF-8 text"
    assert skip_reason(tmp_path / "empty.md") == "empty"
    assert skip_reason(tmp_path / "blank.txt") == "empty"
    assert skip_reason(tmp_path / "archive.xyz") == "unsupported type .xyz"
    assert skip_reason(tmp_path / "folder.md") == "not a regular file"
    assert skip_reason(tmp_path / "missing.md") == "unreadable: no such file or directory"


def test_oversized_files_are_skipped_before_they_are_read(tmp_path: Path) -> None:
    huge = tmp_path / "huge.txt"
    with huge.open("wb") as handle:  # sparse: 5 MB and one byte, nothing written
        handle.truncate(5_000_001)
    assert skip_reason(huge) == "larger than 5 MB"
    small = tmp_path / "small.md"
    small.write_text("word " * 400, encoding="utf-8")
    assert skip_reason(small, max_bytes=1500) == "larger than 1.5 KB"
    assert read_document(small, max_bytes=2000).sections


def test_unreadable_files_are_skipped_with_the_system_reason(tmp_path: Path) -> None:
    loop = tmp_path / "loop.md"
    loop.symlink_to(tmp_path / "other.md")
    (tmp_path / "other.md").symlink_to(loop)
    assert skip_reason(loop) == "unreadable: too many levels of symbolic links"
    (tmp_path / "plain.txt").write_text("x", encoding="utf-8")
    assert skip_reason(tmp_path / "plain.txt" / "under.md") == "unreadable: not a directory"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_a_file_without_read_permission_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "secret.md"
    path.write_text("# private\n", encoding="utf-8")
    path.chmod(0)
    try:
        assert skip_reason(path) == "unreadable: permission denied"
    finally:
        path.chmod(0o600)


@pytest.mark.parametrize("suffix", sorted({".md", ".rst", ".html", ".pdf", ".py", ".txt", ""}))
def test_random_bytes_never_raise_anything_but_skipfile(tmp_path: Path, suffix: str) -> None:
    rng = random.Random(suffix)
    seeds = [b"", b"%PDF-1.4\n", b"<html><h1>", b"# t\n```\n", b"==\nx\n==\n"]
    for attempt in range(25):
        data = rng.choice(seeds) + bytes(rng.randrange(256) for _ in range(rng.randrange(1, 600)))
        path = tmp_path / f"f{attempt}{suffix}"
        path.write_bytes(data)
        try:
            doc = read_document(path)
        except SkipFile as exc:
            assert exc.reason
        else:
            assert isinstance(doc, Document)


def test_every_supported_suffix_has_a_reader(tmp_path: Path) -> None:
    for suffix in SUPPORTED_SUFFIXES:
        if suffix == ".pdf":
            continue
        path = tmp_path / f"file{suffix}"
        path.write_text("some words here\n", encoding="utf-8")
        assert read_document(path).sections, suffix


def repository_docs() -> list[Path]:
    return sorted([REPO / "README.md", REPO / "ARCHITECTURE.md", *(REPO / "docs").glob("*.md")])


@pytest.mark.parametrize("path", repository_docs(), ids=lambda p: p.name)
def test_the_repository_docs_read_and_chunk_within_the_limit(path: Path) -> None:
    doc = read_document(path)
    lines = source_lines(path)
    for section in doc.sections:
        assert_points_at_source(section, lines)
    chunks = chunk_document(doc, count_tokens=words, max_tokens=64, overlap_tokens=12)
    assert chunks
    for chunk in chunks:
        assert words(chunk.text) <= 64
        assert chunk.text.split("\n")[-1].strip() in lines[chunk.end - 1]
        assert chunk.text.split("\n")[0].strip() in lines[chunk.start - 1]
