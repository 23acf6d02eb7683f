"""Whole files attached to a question (``quorum ask --file``, ``@path`` in the app).

Not retrieval: the file itself goes to every model, delimited as data like retrieved sources,
within a size cap. Any kind the knowledge base reads works (text, Markdown, code, HTML, PDF).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

MAX_ATTACHED_CHARS = 200_000  # all files of one question together; about 50k tokens


class AttachmentError(Exception):
    """A file cannot be attached; the message says why."""


@dataclass(frozen=True, slots=True)
class Attachment:
    name: str
    text: str


def read_attachment(path: Path, *, label: str | None = None) -> Attachment:
    """The file's whole text. ``label`` names it in an error (``--file PATH`` unless told:
    the app says ``@path``, as the user typed it)."""
    from core.store.documents import SkipFile
    from core.store.readers import read_document

    label = label or f"--file {path}"
    if not path.is_file():
        raise AttachmentError(f"{label}: no such file")
    try:
        document = read_document(path, max_bytes=20 * MAX_ATTACHED_CHARS)
    except SkipFile as exc:
        raise AttachmentError(f"{label}: {exc.reason}") from None
    text = "\n\n".join(section.text for section in document.sections)
    if len(text) > MAX_ATTACHED_CHARS:
        raise AttachmentError(
            f"{label}: {len(text):,} characters of text, more than the "
            f"{MAX_ATTACHED_CHARS:,} a question can carry; add it to the knowledge base with "
            "`quorum ingest` instead, and ask about it"
        )
    return Attachment(path.name, text)


def read_attachments(
    paths: Sequence[Path], *, labels: Sequence[str] | None = None
) -> tuple[Attachment, ...]:
    """Every file whole, within the cap for all of them together; ``labels`` (one per path)
    name them in errors, as `read_attachment`'s ``label``."""
    names: Sequence[str | None] = labels if labels is not None else [None] * len(paths)
    attachments = tuple(read_attachment(p, label=n) for p, n in zip(paths, names, strict=True))
    total = sum(len(a.text) for a in attachments)
    if total > MAX_ATTACHED_CHARS:
        raise AttachmentError(
            f"the attached files hold {total:,} characters together, more than the "
            f"{MAX_ATTACHED_CHARS:,} a question can carry"
        )
    return attachments
