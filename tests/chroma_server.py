"""A real Chroma server (`chroma run`, chromadb's own binary) on 127.0.0.1, for the tests."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def chroma_binary() -> str | None:
    beside = Path(sys.executable).with_name("chroma")
    return str(beside) if beside.exists() else shutil.which("chroma")


@contextmanager
def chroma_server(path: Path, startup_s: float = 60.0) -> Iterator[str]:
    """Start ``chroma run`` on a free loopback port; yields its URL; stops it on exit."""
    binary = chroma_binary()
    if binary is None:
        raise RuntimeError("the chroma binary (from the chromadb package) is not installed")
    port = _free_port()
    log = (path / "chroma.log").open("wb")
    process = subprocess.Popen(
        [binary, "run", "--path", str(path / "data"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={"ANONYMIZED_TELEMETRY": "False", "PATH": "/usr/bin:/bin"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + startup_s
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"chroma run exited: {(path / 'chroma.log').read_text()}")
            try:
                if httpx.get(f"{url}/api/v2/heartbeat", timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("chroma run did not answer its heartbeat in time")
            time.sleep(0.1)  # polling a child process's readiness, not synchronising a test
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
