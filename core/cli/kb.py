"""``quorum ingest`` and ``quorum kb list | stats | search | remove | rebuild``.

The store (chromadb, onnxruntime) is imported inside the commands, never at start-up.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from core.cli.argtypes import positive_int
from core.cli.exits import EXIT_OK, EXIT_USAGE
from core.cli.table import cell, format_table
from core.config import Settings

if TYPE_CHECKING:
    from core.store.ingest import IngestReport, Progress
    from core.store.kb import KnowledgeBase

COMMANDS = ("ingest", "kb")


def add_parsers(sub: Any) -> None:
    ingest = sub.add("ingest", help="add files and folders to the knowledge base")
    ingest.add_argument("paths", nargs="+", metavar="PATH", help="files or folders")
    ingest.add_argument(
        "--prune", action="store_true", help="drop recorded files under PATH that are gone"
    )
    ingest.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="PATTERN",
        help="skip files matching this .gitignore-style pattern (repeatable)",
    )
    ingest.add_argument("--hidden", action="store_true", help="include hidden files and folders")
    ingest.add_argument("--json", action="store_true", help="print the summary as JSON")

    kb = sub.add("kb", help="inspect and manage the knowledge base")
    actions = sub.nested(kb, "kb_command")
    listing = actions.add("list", help="the files in the knowledge base")
    listing.add_argument("under", nargs="?", metavar="PATH", help="only files under this path")
    listing.add_argument("--json", action="store_true")
    stats = actions.add("stats", help="files, chunks, size and embedder")
    stats.add_argument("--json", action="store_true")
    search = actions.add("search", help="what retrieval finds for a question")
    search.add_argument("query", metavar="QUESTION")
    search.add_argument("-k", "--top-k", type=positive_int, metavar="N", dest="top_k")
    search.add_argument("--mode", choices=("hybrid", "vector", "keyword"), default="hybrid")
    search.add_argument("--json", action="store_true")
    remove = actions.add("remove", help="drop files (or everything under folders)")
    remove.add_argument("paths", nargs="+", metavar="PATH")
    actions.add("rebuild", help="re-embed every chunk with the configured embedder")


def run(args: argparse.Namespace, settings: Settings, out: TextIO | None = None) -> int:
    from core.store.kb import KnowledgeBase, StoreError

    out = out or sys.stdout
    try:
        with KnowledgeBase.open(settings) as kb:
            if args.command == "ingest":
                return _ingest(kb, args, out)
            return _KB_ACTIONS[args.kb_command](kb, args, out)
    except StoreError as exc:
        sys.stderr.write(f"quorum: {exc}\n")
        return EXIT_USAGE


def _ingest(kb: KnowledgeBase, args: argparse.Namespace, out: TextIO) -> int:
    from core.store.ingest import ingest

    paths = [Path(p).expanduser() for p in args.paths]
    bar = ProgressLine(sys.stderr)
    report = ingest(
        kb,
        paths,
        prune=args.prune,
        excludes=args.exclude,
        include_hidden=args.hidden,
        progress=bar.show,
    )
    bar.close()
    if args.json:
        out.write(json.dumps(report.to_json(), ensure_ascii=False, indent=2) + "\n")
    else:
        out.write(summary(report))
    return EXIT_OK


def summary(report: IngestReport) -> str:
    lines = [
        f"{report.files} files ({report.added} added, {report.updated} updated, "
        f"{report.unchanged} unchanged"
        + (f", {report.removed} removed" if report.removed else "")
        + f"), {report.chunks} new chunks, {len(report.skipped)} skipped, "
        f"{report.seconds:.1f} s"
    ]
    lines += [f"  skipped {cell(str(s.path), 70)}: {s.reason}" for s in report.skipped]
    if not report.indexed:
        lines.append(
            "  the vector index is busy in another Quorum process; it will add these chunks"
        )
    return "\n".join(lines) + "\n"


class ProgressLine:
    """A progress bar redrawn in place on a terminal; one plain line per file when piped."""

    def __init__(self, err: TextIO, width: int = 28) -> None:
        self.err = err
        self.tty = err.isatty()
        self.width = width
        self._drawn = False

    def show(self, p: Progress) -> None:
        if not self.tty:
            self.err.write(f"[{p.done}/{p.total}] {p.outcome}: {cell(p.path, 90)}\n")
            return
        filled = round(self.width * p.done / max(p.total, 1))
        bar = "#" * filled + "-" * (self.width - filled)
        self.err.write(f"\r\x1b[2K[{bar}] {p.done}/{p.total} {cell(Path(p.path).name, 40)}")
        self.err.flush()
        self._drawn = True

    def close(self) -> None:
        if self._drawn:
            self.err.write("\r\x1b[2K")
            self.err.flush()


def _list(kb: KnowledgeBase, args: argparse.Namespace, out: TextIO) -> int:
    under = str(Path(args.under).expanduser().resolve()) if args.under else None
    files = kb.catalog.files(under)
    if args.json:
        rows = [
            {
                "path": f.path,
                "kind": f.kind,
                "title": f.title,
                "chunks": f.chunks,
                "bytes": f.size,
                "sha256": f.sha256,
                "ingested_at": f.ingested_at,
            }
            for f in files
        ]
        out.write(json.dumps({"files": rows}, ensure_ascii=False, indent=2) + "\n")
    elif not files:
        out.write("the knowledge base is empty; add files with `quorum ingest PATH`\n")
    else:
        table = [("PATH", "KIND", "CHUNKS", "SIZE", "INGESTED")]
        table += [
            (cell(f.path, 70), f.kind, str(f.chunks), _size(f.size), f.ingested_at[:16])
            for f in files
        ]
        out.write(format_table(table, right_aligned={2, 3}))
    return EXIT_OK


def _stats(kb: KnowledgeBase, args: argparse.Namespace, out: TextIO) -> int:
    numbers = kb.catalog.stats()
    facts = {
        **numbers,
        "embedder": kb.catalog.meta("embedder") or kb.settings.embedding,
        "store": kb.settings.url or str(kb.root),
    }
    if args.json:
        out.write(json.dumps(facts, indent=2) + "\n")
    else:
        out.write(
            f"{numbers['files']} files, {numbers['chunks']} chunks ({_size(numbers['bytes'])} "
            f"of text files); embedder {facts['embedder']}; stored in {facts['store']}\n"
        )
        if numbers["pending"]:
            out.write(f"{numbers['pending']} chunks not yet in the vector index\n")
    return EXIT_OK


def _search(kb: KnowledgeBase, args: argparse.Namespace, out: TextIO) -> int:
    from core.results import source_json

    sources = kb.search(args.query, top_k=args.top_k, mode=args.mode)
    if args.json:
        out.write(json.dumps([source_json(s) for s in sources], ensure_ascii=False, indent=2))
        out.write("\n")
        return EXIT_OK
    if not sources:
        out.write("nothing in the knowledge base matches\n")
    for number, s in enumerate(sources, start=1):
        label = f"{s.source} › {s.title}" if s.title else s.source
        out.write(f"[{number}] {s.score:.2f}  {cell(label, 90)} ({s.location})\n")
        out.write(f"    {cell(s.text, 110)}\n")
    return EXIT_OK


def _remove(kb: KnowledgeBase, args: argparse.Namespace, out: TextIO) -> int:
    targets: list[str] = []
    for raw in args.paths:
        targets += [f.path for f in kb.catalog.files(str(Path(raw).expanduser().resolve()))]
    if not targets:
        sys.stderr.write("quorum: no file in the knowledge base is under those paths\n")
        return EXIT_USAGE
    removed = kb.catalog.remove_files(targets)
    kb.sync()
    out.write(f"removed {removed} file{'s' if removed != 1 else ''}\n")
    return EXIT_OK


def _rebuild(kb: KnowledgeBase, args: argparse.Namespace, out: TextIO) -> int:
    count = kb.rebuild()
    out.write(f"re-embedded {count} chunks with {kb.embedder.name}\n")
    return EXIT_OK


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB"):
        if n < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000  # type: ignore[assignment]
    return f"{n:.1f} GB"


_KB_ACTIONS = {
    "list": _list,
    "stats": _stats,
    "search": _search,
    "remove": _remove,
    "rebuild": _rebuild,
}
