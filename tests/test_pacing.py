"""The intake pacer (core.pacing): models at a reading pace never wait; a flood of frames runs
only in the first part of each window, so the rest of the event loop stays free for keys."""

from __future__ import annotations

from collections.abc import Callable

import anyio
import anyio.lowlevel
import pytest

from core.config import ModelSpec
from core.events import TextDelta
from core.pacing import IntakePacer
from tests.conftest import run_fanout
from tests.loopback import LoopbackServer, openai_stream


class Clock:
    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_models_at_a_reading_pace_never_wait() -> None:
    clock = Clock()
    pacer = IntakePacer(window_s=0.02, share=0.5, busy_frames=64, clock=clock)
    for _ in range(2000):  # 16 models x 100 tokens/s for ~1.25 s: 32 frames per window
        clock.now += 1 / 1600
        assert pacer.pause_s() == 0.0


def test_a_flood_waits_for_the_next_window_in_its_closed_part() -> None:
    clock = Clock(100.001)  # 1 ms into a window
    pacer = IntakePacer(window_s=0.02, share=0.5, busy_frames=64, clock=clock)
    pauses = [pacer.pause_s() for _ in range(500)]  # 500 frames at one instant, early on
    assert pauses == [0.0] * 500  # still in the open part of the window: no wait
    clock.now = 100.016  # four fifths through the window
    assert abs(pacer.pause_s() - 0.004) < 1e-6  # until the next window begins
    clock.now = 100.021  # the next window: its first frames go at once
    assert pacer.pause_s() == 0.0


def test_few_frames_late_in_a_window_go_at_once() -> None:
    clock = Clock(100.019)
    pacer = IntakePacer(window_s=0.02, share=0.5, busy_frames=64, clock=clock)
    assert [pacer.pause_s() for _ in range(64)] == [0.0] * 64
    assert pacer.pause_s() > 0  # the 65th in the same window is a flood


def test_share_must_be_a_fraction() -> None:
    for share in (0.0, 1.5):
        try:
            IntakePacer(share=share)
        except ValueError as exc:
            assert "share" in str(exc)
        else:
            raise AssertionError(f"share={share} accepted")


class EveryTwentieth(IntakePacer):
    """Asks the stream to pause after every 20th frame (the real rule needs a clock)."""

    def __init__(self) -> None:
        super().__init__()
        self.frames = 0

    def pause_s(self) -> float:
        self.frames += 1
        return 0.002 if self.frames % 20 == 0 else 0.0


@pytest.mark.anyio
async def test_a_paused_stream_leaves_the_loop_to_others_and_loses_nothing(
    loopback: LoopbackServer, spec: Callable[..., ModelSpec]
) -> None:
    tokens = [f"w{i} " for i in range(200)]
    loopback.script("a", openai_stream(tokens))  # the whole answer sent at once
    others_ran = 0
    seen: list[int] = []  # how often the other task had run, at each piece of text

    async def someone_else() -> None:  # a UI's keys and frames
        nonlocal others_ran
        while True:
            others_ran += 1
            await anyio.lowlevel.checkpoint()

    def note(_: object, event: object) -> bool:
        if isinstance(event, TextDelta):
            seen.append(others_ran)
        return False

    async with anyio.create_task_group() as group:
        group.start_soon(someone_else)
        run = await run_fanout([spec("openai", "a")], pacer=EveryTwentieth(), react=note)
        group.cancel_scope.cancel()
    assert run.result.responses["a"].text == "".join(tokens)
    # Frame 1 is the role; text i is frame i + 2. After every 20th frame the stream waited
    # and the other task ran before the next piece of text.
    paused_after = [i for i in range(len(seen) - 1) if (i + 2) % 20 == 0]
    assert len(paused_after) == 10
    assert all(seen[i + 1] > seen[i] for i in paused_after), seen
