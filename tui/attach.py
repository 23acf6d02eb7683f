"""``@path`` in the prompt: a whole file's text attached to the question (not retrieval).

A token is ``@`` at the start of the prompt or after a space, then the path (no spaces), relative
to the working directory. It names a file when that path exists, or when it looks like one (a
``/`` in it, or a suffix the knowledge base reads, as in ``@notes.md``): then it must be
readable, within `core.attachments`' size cap, or the question is not sent. Anything else
(``@alice``, ``@pytest.fixture``) is just words. Punctuation after a path (``@notes.md?``)
is not part of it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

from core.attachments import AttachmentError

_TOKEN = re.compile(r"(?:^|(?<=\s))@(\S+)")
_TRAILING = ",;:!?)]}\"'."


def resolve(typed: str, cwd: Path) -> Path:
    return cwd / Path(typed).expanduser()


def mentioned_files(text: str, cwd: Path) -> list[str]:
    """The ``@paths`` of ``text`` that name files (as typed, without the ``@``), each once."""
    from core.store.readers import SUPPORTED_SUFFIXES

    found: list[str] = []
    for match in _TOKEN.finditer(text):
        typed = match.group(1)
        if not resolve(typed, cwd).exists():
            typed = typed.rstrip(_TRAILING) or typed
        path = resolve(typed, cwd)
        named = path.exists() or "/" in typed or path.suffix.lower() in SUPPORTED_SUFFIXES
        if named and typed not in found:
            found.append(typed)
    return found


def with_files(text: str, cwd: Path | None = None) -> str:
    """The question with every file it mentions attached; `AttachmentError` says why not."""
    from core.attachments import read_attachments
    from core.prompting import with_attachments

    cwd = cwd or Path.cwd()
    typed = mentioned_files(text, cwd)
    if not typed:
        return text
    paths = [resolve(t, cwd) for t in typed]
    _no_folders(typed, paths)
    return with_attachments(text, read_attachments(paths, labels=[f"@{t}" for t in typed]))


def _no_folders(typed: Sequence[str], paths: Sequence[Path]) -> None:
    for name, path in zip(typed, paths, strict=True):
        if path.is_dir():
            raise AttachmentError(f"@{name} is a folder: name a file in it (Tab completes)")


MAX_SCANNED = 2000  # entries read from one folder per key press: a huge folder stays cheap
MAX_COMPLETIONS = 50


def completions(typed: str, cwd: Path) -> list[str]:
    """What ``typed`` (the token after ``@``) can complete to: folders (ending in ``/``) first,
    then files, each as the whole token; hidden entries only once ``.`` is typed."""
    head = typed[: typed.rfind("/") + 1]
    prefix = typed[len(head) :].casefold()
    folder = resolve(head, cwd) if head else cwd
    found: list[tuple[bool, str]] = []
    try:
        with os.scandir(folder) as entries:
            for count, entry in enumerate(entries):
                if count >= MAX_SCANNED:
                    break
                name = entry.name
                if not name.casefold().startswith(prefix):
                    continue
                if name.startswith(".") and not prefix.startswith("."):
                    continue
                try:
                    is_dir = entry.is_dir()
                except OSError:
                    continue
                found.append((not is_dir, head + name + ("/" if is_dir else "")))
    except OSError:
        return []
    found.sort(key=lambda item: (item[0], item[1].casefold()))
    return [path for _, path in found[:MAX_COMPLETIONS]]


def token_at(line: str, column: int) -> tuple[int, str] | None:
    """The ``@path`` token ending at ``column`` of ``line``: (where its path starts, the path)."""
    match = _AT_CURSOR.search(line[:column])
    return None if match is None else (match.start(1), match.group(1))


_AT_CURSOR = re.compile(r"(?:^|(?<=\s))@(\S*)$")
