"""What bench/soak.py samples between questions and while answers stream: RSS, fds, sockets,
TCP connections to the server, threads, tasks and child processes (from /proc)."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import anyio


# --- sampling ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Sample:
    label: str
    question: int
    rss_mb: float
    fds: int
    sockets: int
    tcp: int  # established TCP connections from this process to the server's port
    py_threads: int
    os_threads: int
    tasks: int  # running asyncio tasks (0 outside an event loop)
    children: int  # child processes, the bench server excluded
    s_per_q: float | None = None  # mean seconds per question since the previous sample


COUNTS: tuple[tuple[str, str], ...] = (
    ("fds", "open fds"),
    ("sockets", "sockets"),
    ("tcp", "TCP to server"),
    ("py_threads", "threads (Python)"),
    ("os_threads", "threads (OS)"),
    ("tasks", "asyncio tasks"),
    ("children", "child processes"),
)


def _status(key: str) -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def _socket_inodes() -> set[str]:
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # the fd listing itself, closed meanwhile
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def _established_to(port: int | None, inodes: set[str]) -> int:
    if port is None:
        return 0
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table, encoding="ascii") as rows:
                next(rows)
                for row in rows:
                    cols = row.split()
                    remote_port = int(cols[2].rsplit(":", 1)[1], 16)
                    if cols[3] == "01" and remote_port == port and cols[9] in inodes:
                        count += 1
        except OSError:
            continue
    return count


def _children(exclude: set[int]) -> int:
    pids: set[int] = set()
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/children", encoding="ascii") as f:
                pids.update(int(p) for p in f.read().split())
        except OSError:
            continue
    return len(pids - exclude)


def _running_tasks(ignore: set[asyncio.Task[Any]]) -> int:
    try:
        return len(asyncio.all_tasks() - ignore)
    except RuntimeError:  # no running event loop
        return 0


def held() -> tuple[list[str], list[str]]:
    """What the process holds now: its fds' targets and its threads' names (sorted)."""
    fds = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        fds.append("socket" if target.startswith("socket:") else target)
    names = []
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/comm", encoding="utf-8") as f:
                names.append(f.read().strip())
        except OSError:
            continue
    return sorted(fds), sorted(names)


def difference(now: Sequence[str], then: Sequence[str]) -> str:
    counts: dict[str, int] = {}
    for item in now:
        counts[item] = counts.get(item, 0) + 1
    for item in then:
        counts[item] = counts.get(item, 0) - 1
    shown = [f"{n:+d} {item}" for item, n in sorted(counts.items()) if n]
    return ", ".join(shown) or "nothing"


class Probe:
    def __init__(self, port: int | None = None, exclude: set[int] | None = None) -> None:
        self.port = port
        self.exclude = exclude or set()
        self.samples: list[Sample] = []
        # the highest value seen while questions ran, in each half after the warm-up
        self.peak: dict[str, dict[str, float]] = {"first": {}, "second": {}}
        self.during = 0  # how many samples the background sampler took
        self.ignore: set[asyncio.Task[Any]] = set()
        self._last: tuple[int, float] | None = None
        self.held: dict[str, tuple[list[str], list[str]]] = {}  # fd targets, thread names
        self.server: dict[str, tuple[int, int]] = {}  # label: (connections opened, requests)

    def take(self, label: str, question: int, keep: bool = True) -> Sample:
        now = time.perf_counter()
        rate = None
        if self._last is not None and question > self._last[0]:
            rate = (now - self._last[1]) / (question - self._last[0])
        inodes = _socket_inodes()
        sample = Sample(
            label=label,
            question=question,
            rss_mb=_status("VmRSS") / 1024,
            fds=len(os.listdir("/proc/self/fd")) - 1,  # not the listing's own fd
            sockets=len(inodes),
            tcp=_established_to(self.port, inodes),
            py_threads=threading.active_count(),
            os_threads=_status("Threads"),
            tasks=_running_tasks(self.ignore),
            children=_children(self.exclude),
            s_per_q=rate,
        )
        if keep:
            self.samples.append(sample)
            self._last = (question, now)
            if self.port is not None and label in ("before", "100 %"):
                self.server[label] = server_counts(self.port)
        return sample

    async def sample_during(self, interval: float, phase: Callable[[], str | None]) -> None:
        """Sample in the background while questions run (mid-stream, not between questions);
        the highest value of each resource in each half after the warm-up is kept."""
        task = asyncio.current_task()
        if task is not None:
            self.ignore.add(task)
        while True:
            await anyio.sleep(interval)
            half = phase()
            if half is None:
                continue
            sample = self.take("", 0, keep=False)
            self.during += 1
            peak = self.peak[half]
            for key in ("rss_mb", *(k for k, _ in COUNTS)):
                value = float(getattr(sample, key))
                peak[key] = max(peak.get(key, value), value)


def server_counts(port: int) -> tuple[int, int]:
    """(connections the bench server has accepted, model requests it has served); this request's
    own connection is not counted."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/connections", timeout=10) as reply:
        body = json.load(reply)
    return int(body["opened"]) - 1, int(body["requests"])
