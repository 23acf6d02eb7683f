"""One launch of the real app in a fresh process: seconds to first paint, and to the moment the
past questions (Up / Ctrl+R) are loaded from history. Used by tui_stream.py and history.py."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_SCRIPT = """
import sys, time
t0, panes, memory = float(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "memory"
import asyncio
from pathlib import Path
HEAVY = ("chromadb", "onnxruntime", "tokenizers", "llama_cpp")
from core.config import ModelSpec, Settings
from tui.app import QuorumApp
from tui.history_bridge import MemoryHistory
specs = tuple(ModelSpec(name=f"m{i}", provider="openai", model="x", api_key="k")
              for i in range(panes))
app = QuorumApp(Settings(path=Path("bench.toml"), models=specs),
                history=MemoryHistory() if memory else None)
painted = []
heavy = []
original = app._display
def display(screen, renderable):
    original(screen, renderable)
    if renderable is not None and not painted:
        painted.append(time.monotonic())
        heavy.extend(m for m in HEAVY if m in sys.modules)
app._display = display
async def main():
    async with app.run_test(size=(200, 60)) as pilot:
        while not painted or app.queries._loader is not None:  # loaded after the first paint
            await pilot.pause()
        return time.monotonic()
ready = asyncio.run(main())
store = "core.store.kb" in sys.modules  # has the app opened a knowledge base by now?
print(f"{painted[0] - t0:.4f} {ready - t0:.4f} {','.join(heavy) or '-'} {int(store)}")
"""


@dataclass(frozen=True, slots=True)
class AppStart:
    first_paint_s: float
    history_loaded_s: float
    heavy_modules: str  # chromadb / onnxruntime / tokenizers / llama_cpp at first paint, or "-"
    store_opened: bool = False  # core.store.kb imported by the time history was loaded


def launch(panes: int, *, home: Path | None = None) -> AppStart:
    """Time one launch; with ``home`` the app opens the real history store under it (as
    ``$QUORUM_HOME``), without it an in-memory history."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if home is not None:
        env["QUORUM_HOME"] = str(home)
    started = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(started), str(panes), "store" if home else "memory"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout.split()
    return AppStart(float(out[0]), float(out[1]), out[2], out[3] == "1")
