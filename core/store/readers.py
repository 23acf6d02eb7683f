"""Files → `Document`s: one reader per kind, every failure a `SkipFile` with a reason.

Markdown goes through markdown-it-py (its token ``map`` gives line ranges), HTML through the
stdlib parser, PDF through pypdf (imported on first use); reStructuredText, plain text and
source code are split by small hand parsers. Sections keep the file's own text (Markdown stays
Markdown) so line ranges point at what a person sees in their editor. Everything returned is
text for prompts: terminal control sequences are stripped line by line, which keeps line
numbers exact.
"""

from __future__ import annotations

import io
import logging
import re
import warnings
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from pathlib import Path

from core.sanitize import strip_control
from core.store.documents import Document, Section, SectionKind, SkipFile

_CODE = (  # source and config files, read as code
    "py pyi js mjs cjs jsx ts tsx go rs c h cc cpp cxx hpp hh java kt scala swift rb php pl lua",
    "sh bash zsh fish ps1 toml yaml yml json ini cfg css scss sql r jl hs ml ex exs erl cs xml",
)
SUPPORTED_SUFFIXES: dict[str, str] = {
    ".md": "markdown",
    ".markdown": "markdown",
    ".txt": "text",
    ".text": "text",
    ".rst": "rst",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
    **{f".{suffix}": "code" for group in _CODE for suffix in group.split()},
}
_SNIFF = 8192
_Trail = list[tuple[int, str]]  # (level, heading) from the outermost in


def read_document(path: Path, *, max_bytes: int = 5_000_000) -> Document:
    """Read one file; raises `SkipFile` (and nothing else) when it cannot be ingested. A file
    without a suffix is read as plain text if it is text."""
    suffix = path.suffix.lower()
    kind = SUPPORTED_SUFFIXES.get(suffix, "text" if not suffix else "")
    if not kind:
        raise SkipFile(f"unsupported type {suffix}")
    data = _read_bytes(path, max_bytes)
    try:
        if kind == "pdf":
            document = _read_pdf(path, data)
        else:
            text = _clean(_decode(data))
            document = _TEXT_READERS[kind](path, text)
    except SkipFile:
        raise
    except Exception as exc:  # a parser's own error must never escape as a traceback
        raise SkipFile(f"cannot parse: {_brief(exc)}") from None
    if not any(section.text.strip() for section in document.sections):
        raise SkipFile("no extractable text" if kind == "pdf" else "empty")
    return document


def _read_bytes(path: Path, max_bytes: int) -> bytes:
    try:
        info = path.stat()
        if not path.is_file():
            raise SkipFile("not a regular file")
        if info.st_size > max_bytes:
            raise SkipFile(f"larger than {_size(max_bytes)}")
        if info.st_size == 0:
            raise SkipFile("empty")
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        raise SkipFile(f"unreadable: {(exc.strerror or str(exc)).lower()}") from None
    if len(data) > max_bytes:  # grew since stat
        raise SkipFile(f"larger than {_size(max_bytes)}")
    return data


def _size(n: int) -> str:
    for unit, scale in (("GB", 10**9), ("MB", 10**6), ("KB", 10**3)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n} bytes"


def _decode(data: bytes) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise SkipFile("not UTF-8 text") from None
    if b"\x00" in data[:_SNIFF]:
        raise SkipFile("binary file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    sample = data[:_SNIFF].decode("utf-8", errors="replace")
    odd = sum(1 for c in sample if c == "\ufffd" or (c < " " and c not in "\t\n\r\f"))
    raise SkipFile("binary file" if odd > len(sample) * 0.3 else "not UTF-8 text")


def _clean(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return "\n".join(strip_control(line) for line in text.split("\n"))


def _brief(exc: BaseException) -> str:
    message = strip_control(str(exc)).strip().splitlines()
    text = message[0] if message else type(exc).__name__
    return text if len(text) <= 120 else text[:119] + "…"


def _section(
    lines: list[str], begin: int, stop: int, kind: SectionKind, trail: _Trail
) -> Section | None:
    """Lines ``[begin, stop)`` (0-based) as a section, blank lines at both ends dropped."""
    while begin < stop and not lines[begin].strip():
        begin += 1
    while stop > begin and not lines[stop - 1].strip():
        stop -= 1
    if begin >= stop:
        return None
    text = "\n".join(lines[begin:stop])
    return Section(text, kind, tuple(h for _, h in trail), begin + 1, stop)


def _push(trail: _Trail, level: int, heading: str) -> None:
    while trail and trail[-1][0] >= level:
        trail.pop()
    trail.append((level, heading))


def _title(trail_titles: list[str], path: Path) -> str:
    return trail_titles[0] if trail_titles else path.name


# --- Markdown -------------------------------------------------------------------------------

_MD_KINDS: dict[str, SectionKind] = {
    "paragraph_open": "paragraph",
    "fence": "code",
    "code_block": "code",
    "bullet_list_open": "list",
    "ordered_list_open": "list",
    "table_open": "table",
    "blockquote_open": "paragraph",
    "html_block": "paragraph",
}
_FRONT_MATTER = re.compile(r"\A---\n.*?\n(?:---|\.\.\.)\n", re.DOTALL)


def _read_markdown(path: Path, text: str) -> Document:
    from markdown_it import MarkdownIt

    front = _FRONT_MATTER.match(text)
    if front:  # YAML front matter: blanked so that line numbers stay those of the file
        text = "\n" * front.group(0).count("\n") + text[front.end() :]
    lines = text.split("\n")
    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    trail: _Trail = []
    sections: list[Section] = []
    h1: list[str] = []
    for index, token in enumerate(tokens):
        if token.level != 0 or token.map is None or token.nesting < 0:
            continue
        begin, stop = token.map
        if token.type == "heading_open":
            heading = tokens[index + 1].content.strip()
            level = int(token.tag[1])
            _push(trail, level, heading)
            if level == 1:
                h1.append(heading)
            kind: SectionKind = "heading"
        elif token.type in _MD_KINDS:
            kind = _MD_KINDS[token.type]
        else:
            continue
        section = _section(lines, begin, stop, kind, trail)
        if section is not None:
            sections.append(section)
    first = h1 or [s.headings[-1] for s in sections if s.kind == "heading"][:1]
    return Document(str(path), "markdown", _title(first, path), "line", tuple(sections))


# --- plain text and source code ---------------------------------------------------------------


def _blocks(lines: list[str], split: Callable[[int], bool]) -> Iterator[tuple[int, int]]:
    """0-based ``[begin, stop)`` runs of lines, cut at blank lines where ``split(next)``."""
    begin = None
    for i, line in enumerate(lines):
        if line.strip():
            if begin is None:
                begin = i
            elif not lines[i - 1].strip() and split(i):
                yield begin, i
                begin = i
    if begin is not None:
        yield begin, len(lines)


def _read_text(path: Path, text: str) -> Document:
    lines = text.split("\n")
    sections = [_section(lines, b, e, "paragraph", []) for b, e in _blocks(lines, lambda i: True)]
    found = tuple(s for s in sections if s is not None)
    return Document(str(path), "text", path.name, "line", found)


def _read_code(path: Path, text: str) -> Document:
    lines = text.split("\n")

    def top_level(i: int) -> bool:  # a blank line followed by a new top-level statement
        line = lines[i]
        return not line[0].isspace() and line[0] not in ")]}"

    sections = [_section(lines, b, e, "code", []) for b, e in _blocks(lines, top_level)]
    found = tuple(s for s in sections if s is not None)
    return Document(str(path), "code", path.name, "line", found)


# --- reStructuredText -------------------------------------------------------------------------

_ADORNMENT = re.compile(r"^([!-/:-@\[-`{-~])\1+\s*$")  # one repeated punctuation character
_RST_CODE = re.compile(r"^\s*\.\.\s+(code-block|code|sourcecode)::")
_RST_DIRECTIVE = re.compile(r"^\s*\.\.\s+[\w:-]+::")
_RST_LIST = re.compile(r"^\s*([-*+•]|\d+[.)]|#\.|\(\d+\))\s")
_RST_TABLE = re.compile(r"^\s*(\+[-=+]+\+|=+( +=+)+)\s*$")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _read_rst(path: Path, text: str) -> Document:
    lines = text.split("\n")
    n = len(lines)
    styles: list[tuple[str, bool]] = []  # heading adornments, in order of first use
    trail: _Trail = []
    sections: list[Section] = []

    def add(begin: int, stop: int, kind: SectionKind) -> None:
        section = _section(lines, begin, stop, kind, trail)
        if section is not None:
            sections.append(section)

    def indented_end(begin: int, indent: int) -> int:
        j = begin
        while j < n and (not lines[j].strip() or _indent(lines[j]) > indent):
            j += 1
        return j

    def heading(title: str, char: str, over: bool, begin: int, stop: int) -> None:
        if (char, over) not in styles:
            styles.append((char, over))
        _push(trail, styles.index((char, over)) + 1, title)
        add(begin, stop, "heading")

    i = 0
    while i < n:
        line = lines[i]
        if not line.strip():
            i += 1
            continue
        nxt = lines[i + 1] if i + 1 < n else ""
        over = _ADORNMENT.match(line)
        if over and i + 2 < n and nxt.strip() and lines[i + 2].rstrip() == line.rstrip():
            heading(nxt.strip(), over.group(1), True, i, i + 3)
            i += 3
        elif over and not nxt.strip():  # a transition (horizontal rule)
            i += 1
        elif (under := _ADORNMENT.match(nxt)) and not line[0].isspace() and not over:
            if len(nxt.rstrip()) >= len(line.rstrip()):
                heading(line.strip(), under.group(1), False, i, i + 2)
                i += 2
            else:
                add(i, i + 2, "paragraph")
                i += 2
        elif _RST_DIRECTIVE.match(line):
            stop = indented_end(i + 1, _indent(line))
            add(i, stop, "code" if _RST_CODE.match(line) else "paragraph")
            i = stop
        elif line.lstrip().startswith(".."):  # a comment or link target: not prose
            i = indented_end(i + 1, _indent(line))
        else:
            stop = i
            while stop < n and lines[stop].strip():
                stop += 1
            kind: SectionKind = "paragraph"
            if _RST_LIST.match(line):
                kind = "list"
            elif _RST_TABLE.match(line):
                kind = "table"
            add(i, stop, kind)
            i = stop
            if lines[stop - 1].rstrip().endswith("::"):  # a literal block follows
                literal = indented_end(stop, _indent(line))
                add(stop, literal, "code")
                i = literal
    first = [s.headings[0] for s in sections if s.kind == "heading"][:1]
    return Document(str(path), "rst", _title(first, path), "line", tuple(sections))


# --- HTML -------------------------------------------------------------------------------------

_DROPPED = frozenset({"script", "style", "nav", "noscript", "template", "svg", "iframe"})
_HEADING = re.compile(r"h[1-6]")
_BLOCK_TAGS = "p div section article main header footer aside blockquote figure figcaption dl dt dd"
_BLOCK = frozenset([*_BLOCK_TAGS.split(" "), "form", "fieldset", "address", "hr", "br", "body"])
_SPACE = re.compile(r"\s+")


class _HtmlReader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.title = ""
        self.sections: list[Section] = []
        self.trail: _Trail = []
        self._dropped = 0
        self._in_title = False
        self._parts: list[str] = []
        self._kind: SectionKind = "paragraph"
        self._span: tuple[int, int] | None = None
        self._containers = 0  # open lists and tables: one section each, flushed at the end
        self._pre = 0
        self._lists: list[int] = []  # per open list: the next number, or 0 if unordered
        self._cells = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        if tag in _DROPPED or self._dropped:
            self._dropped += tag in _DROPPED
            return
        if tag in ("ul", "ol", "table"):
            self._open_container("table" if tag == "table" else "list")
            if tag != "table":
                self._lists.append(1 if tag == "ol" else 0)
        elif tag == "li" and self._lists:
            marker = f"{self._lists[-1]}." if self._lists[-1] else "-"
            self._lists[-1] += bool(self._lists[-1])
            self._parts.append("\n" + "  " * (len(self._lists) - 1) + marker + " ")
        elif tag == "tr":
            self._parts.append("\n")
            self._cells = 0
        elif tag in ("td", "th"):
            self._parts.append(" | " if self._cells else "")
            self._cells += 1
        elif self._containers:
            self._parts.append("\n" if tag in _BLOCK or tag == "pre" else "")
        elif tag == "pre" or _HEADING.fullmatch(tag) or tag in _BLOCK:
            self._flush()
            if tag == "pre":
                self._kind = "code"
            elif tag[0] == "h" and tag not in _BLOCK:
                self._kind = "heading"
        if tag == "pre":
            self._pre += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        if self._dropped:
            self._dropped -= tag in _DROPPED
            return
        if tag == "pre":
            self._pre = max(0, self._pre - 1)
        if tag in ("ul", "ol", "table") and self._containers:
            if tag != "table" and self._lists:
                self._lists.pop()
            self._containers -= 1
            if not self._containers:
                self._flush()
        elif not self._containers and _HEADING.fullmatch(tag) and self._kind == "heading":
            heading = _SPACE.sub(" ", "".join(self._parts)).strip()
            if heading:
                _push(self.trail, int(tag[1]), heading)
            self._flush()
        elif not self._containers and (tag == "pre" or tag in _BLOCK):
            self._flush()

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
            return
        if self._dropped or not data.strip():
            if data and not self._pre and not self._dropped:
                self._parts.append(" ")
            return
        line = self.getpos()[0]
        first = line + data[: len(data) - len(data.lstrip())].count("\n")
        last = line + data.rstrip().count("\n")
        self._span = (self._span[0] if self._span else first, last)
        self._parts.append(data if self._pre else _SPACE.sub(" ", data))

    def _open_container(self, kind: SectionKind) -> None:
        if not self._containers:
            self._flush()
            self._kind = kind
        self._containers += 1

    def _flush(self) -> None:
        text = "".join(self._parts)
        if self._kind == "code":
            text = text.strip("\n").rstrip()
        else:
            text = "\n".join(part.strip() for part in text.split("\n") if part.strip())
        if text and self._span:
            headings = tuple(h for _, h in self.trail)
            self.sections.append(Section(text, self._kind, headings, *self._span))
        self._parts, self._span, self._kind = [], None, "paragraph"

    def close(self) -> None:
        super().close()
        self._flush()


def _read_html(path: Path, text: str) -> Document:
    reader = _HtmlReader()
    reader.feed(text)
    reader.close()
    h1 = [s.headings[0] for s in reader.sections if s.kind == "heading"][:1]
    title = _SPACE.sub(" ", reader.title).strip() or _title(h1, path)
    return Document(str(path), "html", title, "line", tuple(reader.sections))


# --- PDF --------------------------------------------------------------------------------------


def _read_pdf(path: Path, data: bytes) -> Document:
    import pypdf

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # its warnings would print to stderr
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reader = pypdf.PdfReader(io.BytesIO(data))
            if reader.is_encrypted and not reader.decrypt(""):
                raise SkipFile("malformed PDF: encrypted, needs a password")
            sections = []
            for number, page in enumerate(reader.pages, start=1):
                text = _clean(page.extract_text() or "").strip()
                if text:
                    sections.append(Section(text, "page", (), number, number))
            meta = reader.metadata
            title = strip_control(str(meta.title or "")).strip() if meta else ""
    except SkipFile:
        raise
    except Exception as exc:  # pypdf raises many types (PdfReadError, ValueError, KeyError…)
        raise SkipFile(f"malformed PDF: {_brief(exc)}") from None
    return Document(str(path), "pdf", title or path.name, "page", tuple(sections))


_TEXT_READERS: dict[str, Callable[[Path, str], Document]] = {
    "markdown": _read_markdown,
    "text": _read_text,
    "rst": _read_rst,
    "code": _read_code,
    "html": _read_html,
}
