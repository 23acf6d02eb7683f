"""Sharing the event loop between a fan-out's streams and whatever else runs on it (a UI).

Sixteen models streaming at socket speed kept every loop iteration full: each stream's step
decoded a whole read (hundreds of frames) and a key press, which needs several iterations to
reach the screen, waited about a second. Streams ask `IntakePacer.pause_s` after each frame
(through their `ChunkSink`). While the streams together take in fewer than ``busy_frames``
frames per window (any number of models at a reading pace), none waits and timings are
untouched. Past
that the fan-out is busy: it may run only in the first ``share`` of each window, and a frame
that ends later waits for the next window, leaving the rest of the loop to everyone else.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class IntakePacer:
    __slots__ = ("_busy_frames", "_clock", "_frames", "_open_s", "_window", "_window_s")

    def __init__(
        self,
        *,
        window_s: float = 0.02,
        share: float = 0.5,
        busy_frames: int = 64,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 < share <= 1:
            raise ValueError("share must be in (0, 1]")
        self._window_s = window_s
        self._open_s = window_s * share
        self._busy_frames = busy_frames
        self._clock = clock
        self._window = -1  # the index of the current window
        self._frames = 0  # frames taken in during it

    def pause_s(self) -> float:
        """Count one frame; how long its stream should wait before the next (0: go on)."""
        now = self._clock()
        window, phase = divmod(now, self._window_s)
        if window != self._window:
            self._window = int(window)
            self._frames = 0
        self._frames += 1
        if self._frames <= self._busy_frames or phase < self._open_s:
            return 0.0
        return self._window_s - phase
