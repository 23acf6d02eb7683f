"""The app process's side of ``quorum web``: it must not outlive the server that started it."""

from __future__ import annotations

import os
import signal
import sys
from contextlib import suppress

PARENT_ENV = "QUORUM_WEB_PARENT"  # the server's pid, set in each app process's environment
_PR_SET_PDEATHSIG = 1


def bind_to_parent() -> bool:
    """On Linux, ask for SIGTERM (which ends the app as Ctrl+Q does) when the server dies, even
    by SIGKILL, when nothing could end this process in order. False: the server is already
    gone (it died between starting this process and this call)."""
    if sys.platform.startswith("linux"):
        import ctypes

        with suppress(OSError, AttributeError):  # a libc without prctl: no such guarantee
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    parent = os.environ.get(PARENT_ENV)
    return parent is None or parent == str(os.getppid())


def under_web_server() -> bool:
    """Whether textual-serve started this process (it sets Textual's web driver)."""
    return os.environ.get("TEXTUAL_DRIVER", "").endswith(":WebDriver")
