"""What a local model's file is, said before llama.cpp tries it (its own error names none)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from core.errors import ProviderError
from core.events import FailureKind

GGUF_MAGIC = b"GGUF"


def check_model_file(path: Path) -> int:
    """The file's size, once it is a readable GGUF file; otherwise a `ProviderError` (kind
    ``local``) saying what it is instead."""
    try:
        with path.open("rb") as handle:
            info = os.fstat(handle.fileno())
            head = handle.read(len(GGUF_MAGIC)) if stat.S_ISREG(info.st_mode) else b""
    except FileNotFoundError:
        raise _local(f"model file not found: {path}") from None
    except IsADirectoryError:
        raise _local(f"{path} is a directory, not a model file") from None
    except PermissionError:
        raise _local(f"cannot read model file {path}: permission denied") from None
    except OSError as exc:
        raise _local(f"cannot read model file {path}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        raise _local(f"{path} is not a regular file")
    if info.st_size == 0:
        raise _local(f"model file {path} is empty")
    if head != GGUF_MAGIC:
        raise _local(
            f"{path} is not a GGUF model file (it starts with {head!r}; llama.cpp reads GGUF only)"
        )
    return info.st_size


def load_failure(path: Path, size: int, reason: str) -> ProviderError:
    """llama.cpp refused a file that looks like GGUF: most often a download cut short."""
    reason = reason.replace(f": {path}", "")  # llama-cpp-python's message repeats the path
    return _local(
        f"cannot load model file {path} ({size / 1e6:.1f} MB): it may be truncated or damaged "
        f"(download it again), or made for a newer llama.cpp ({reason})"
    )


def _local(message: str) -> ProviderError:
    return ProviderError(FailureKind.LOCAL, message)
