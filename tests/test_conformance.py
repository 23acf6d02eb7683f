"""Every recording in ../shared/vectors, served byte for byte (whole and in 1-, 7- and 64-byte
pieces) through Quorum's real client path, must read the way the provider's official SDK reads
the same bytes. The oracles, and where Quorum deliberately differs, are in tests/sdk_oracles.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.loopback import LoopbackServer
from tests.sdk_oracles import (
    CHUNK_SIZES,
    NO_VECTORS,
    RECORDINGS,
    VECTORS,
    Recording,
    assert_agrees,
    recording_reply,
    run_oracle,
    run_quorum,
)

# google-genai (the Gemini oracle) subclasses aiohttp.ClientSession, which aiohttp deprecates
pytestmark = pytest.mark.filterwarnings("ignore:Inheritance class AiohttpClientSession")


def _recording_params() -> list[Any]:
    if not RECORDINGS:
        return [pytest.param(None, id="no-vectors", marks=pytest.mark.skip(reason=NO_VECTORS))]
    return [
        pytest.param(rec, id=rec.id, marks=[pytest.mark.skip(reason=rec.skip)] if rec.skip else [])
        for rec in RECORDINGS
    ]


@pytest.fixture(scope="module")
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer() as srv:
        yield srv


# --- the sweep: every recording, every chunking ---------------------------------------------
@pytest.mark.anyio
@pytest.mark.parametrize("rec", _recording_params())
async def test_recording_matches_the_official_sdk(server: LoopbackServer, rec: Recording) -> None:
    oracle = await run_oracle(server, rec)
    for chunk_size in CHUNK_SIZES:
        quorum = await run_quorum(server, rec.protocol, recording_reply(rec, chunk_size))
        assert_agrees(quorum, oracle, f"{rec.id} (chunk size {chunk_size or 'whole'})")


def test_discovery_finds_streams_of_all_four_protocols() -> None:
    if VECTORS is None:
        pytest.skip(NO_VECTORS)
    streams = [r for r in RECORDINGS if r.skip is None]
    assert {r.protocol for r in streams} == {"openai", "anthropic", "gemini", "ollama"}
    assert all(r.skip for r in RECORDINGS if r.id.endswith(".yaml"))
