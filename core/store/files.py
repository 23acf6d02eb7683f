"""Which files `quorum ingest PATH…` reads: a deterministic walk with gitignore semantics.

Folders are walked in sorted order. Skipped silently, as git and ripgrep do: hidden files and
folders (unless ``include_hidden``), version-control and dependency folders, whatever a
``.gitignore`` in a walked folder or an ``excludes`` pattern matches, and files of a type no
reader handles. A path named on the command line is taken even if hidden or gitignored, and
reported as `Skipped` (never silently dropped) when it is missing, excluded or unsupported.
Symbolic links are followed, each real folder and file at most once, so a link loop ends.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pathspec

from core.store.readers import SUPPORTED_SUFFIXES

ALWAYS_SKIPPED = frozenset(
    {".git", ".hg", ".svn", "node_modules", "__pycache__", "venv", ".venv", ".tox", ".nox"}
)


@dataclass(frozen=True)
class Skipped:
    path: Path
    reason: str


_Rules = list[tuple[Path, pathspec.GitIgnoreSpec]]  # (folder, its patterns), outermost first


def discover(
    paths: Sequence[Path], *, excludes: Sequence[str] = (), include_hidden: bool = False
) -> Iterator[Path | Skipped]:
    """Files to ingest under ``paths`` (in the order given, each folder sorted), and skips."""
    walk = _Walk(excludes, include_hidden)
    for path in paths:
        yield from walk.named(path)


class _Walk:
    def __init__(self, excludes: Sequence[str], include_hidden: bool) -> None:
        self._excludes = pathspec.GitIgnoreSpec.from_lines(excludes)
        self._hidden = include_hidden
        self._seen: set[tuple[int, int]] = set()  # (device, inode) of every folder and file

    def named(self, path: Path) -> Iterator[Path | Skipped]:
        try:
            info = path.stat()
        except FileNotFoundError:
            exists = path.is_symlink()
            yield Skipped(path, "broken symbolic link" if exists else "no such file or folder")
            return
        except OSError as exc:
            yield Skipped(path, f"unreadable: {(exc.strerror or str(exc)).lower()}")
            return
        if path.is_dir():
            yield from self._folder(path, path, [])
        elif self._excludes.match_file(path.as_posix()):
            yield Skipped(path, "excluded")
        elif _suffix_unsupported(path):
            yield Skipped(path, f"unsupported type {path.suffix.lower()}")
        elif self._first_visit(info):
            yield path

    def _folder(self, folder: Path, root: Path, rules: _Rules) -> Iterator[Path | Skipped]:
        try:
            if not self._first_visit(folder.stat()):
                return
            entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
        except OSError as exc:
            yield Skipped(folder, f"unreadable: {(exc.strerror or str(exc)).lower()}")
            return
        rules = rules + _gitignore(folder)
        for entry in entries:
            name = entry.name
            if name in ALWAYS_SKIPPED or (name.startswith(".") and not self._hidden):
                continue
            path = Path(entry.path)
            try:
                is_dir = entry.is_dir()  # follows links
                is_file = not is_dir and entry.is_file()
            except OSError:
                continue
            if not (is_dir or is_file) or _ignored(path, is_dir, rules):
                continue
            relative = path.relative_to(root).as_posix() + ("/" if is_dir else "")
            if self._excludes.match_file(relative):
                continue
            if is_dir:
                yield from self._folder(path, root, rules)
            elif not _suffix_unsupported(path):
                try:
                    info = entry.stat()
                except OSError:
                    continue
                if self._first_visit(info):
                    yield path

    def _first_visit(self, info: os.stat_result) -> bool:
        key = (info.st_dev, info.st_ino)
        if key in self._seen:
            return False
        self._seen.add(key)
        return True


def _suffix_unsupported(path: Path) -> bool:
    suffix = path.suffix.lower()
    return bool(suffix) and suffix not in SUPPORTED_SUFFIXES


def _gitignore(folder: Path) -> _Rules:
    try:
        lines = (folder / ".gitignore").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    return [(folder, pathspec.GitIgnoreSpec.from_lines(lines.splitlines()))]


def _ignored(path: Path, is_dir: bool, rules: _Rules) -> bool:
    """Git's rule: the deepest .gitignore with a pattern matching the path decides."""
    for folder, spec in reversed(rules):
        relative = path.relative_to(folder).as_posix() + ("/" if is_dir else "")
        verdict = spec.check_file(relative).include
        if verdict is not None:
            return verdict
    return False
