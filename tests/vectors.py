"""Discover and classify the recorded provider streams in ``../shared/vectors``.

The recordings are read in place (never copied into the repo). Each file becomes one
`Recording`: which wire protocol it speaks, the exact bytes a server should send, the HTTP status
and content type, or the reason it cannot be replayed against Quorum's streaming client.

File conventions (see the directory's SOURCES.md):

* ``X.sse`` - a raw ``text/event-stream`` body, served verbatim;
* ``X.N.body`` + ``X.N.meta.json`` - one interaction of a VCR cassette: raw body, status and
  headers; served verbatim with its recorded status;
* ``X.chunks.jsonl`` - one SSE ``data:`` payload per line, framing stripped by the fixture's
  author; re-framed the way its own test harness frames it (``data: <payload>\\n\\n``, plus
  ``data: [DONE]`` for the OpenAI shape and the ``event:`` line Anthropic always sends);
* ``X.ndjson`` - a raw Ollama body; ``X.json`` - a provider's error body (status in the name).

Gemini's JSON-array mode (``streamGenerateContent`` without ``alt=sse``) is re-framed as one SSE
event per array element: Quorum and google-genai both always ask for ``alt=sse``, so a server
would send those same objects as SSE events.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

Protocol = Literal["openai", "anthropic", "gemini", "ollama"]

_CANDIDATES = (
    Path(__file__).resolve().parents[2] / "shared" / "vectors",
    Path("/work/shared/vectors"),
)


def vectors_dir() -> Path | None:
    """The recordings directory, or None when this checkout has no ``../shared/vectors``."""
    override = os.environ.get("QUORUM_VECTORS")
    candidates = (Path(override),) if override else _CANDIDATES
    return next((p for p in candidates if (p / "NOTES.md").is_file()), None)


@dataclass(frozen=True)
class Recording:
    id: str  # path relative to the vectors directory
    protocol: Protocol
    source: str  # who produced it: openai, openrouter, groq, deepseek, ollama, llamacpp, ...
    body: bytes = b""
    status: int = 200
    content_type: str = "text/event-stream; charset=utf-8"
    reframed: bool = False  # the bytes were framed by us (chunks.jsonl, Gemini JSON array)
    skip: str | None = None  # why this file is not replayed

    @property
    def is_http_error(self) -> bool:
        return self.status >= 400


_SOURCE_HOSTS = {
    "api.openai.com": "openai",
    "openrouter.ai": "openrouter",
    "api.groq.com": "groq",
    "api.deepseek.com": "deepseek",
    "api.mistral.ai": "mistral",
    "api.z.ai": "zai",
    "api.anthropic.com": "anthropic",
    "generativelanguage.googleapis.com": "gemini",
}


def discover(root: Path) -> list[Recording]:
    """Every candidate file under ``root``, classified, in a stable order."""
    found: list[Recording] = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if not path.is_file() or rel.startswith(("_tools/", "sse_decoder_tests/")):
            continue
        name = path.name
        if name.endswith(".meta.json") or name.endswith((".yaml", ".md")):
            continue
        if name.endswith(".body"):
            found.append(_cassette_body(root, path, rel))
        elif name.endswith(".chunks.jsonl"):
            found.append(_chunks(path, rel))
        elif name.endswith(".sse"):
            found.append(Recording(rel, _protocol(rel), _source(rel), path.read_bytes()))
        elif name.endswith(".ndjson"):
            found.append(_ndjson(path, rel))
        elif name.endswith(".json"):
            found.append(_json_file(path, rel))
    return found


def streaming(recordings: list[Recording]) -> Iterator[Recording]:
    return (r for r in recordings if r.skip is None)


# --- classification -------------------------------------------------------------------------
def _top(rel: str) -> str:
    return rel.split("/", 1)[0]


def _protocol(rel: str) -> Protocol:
    top = _top(rel)
    if top == "issue_snippets":  # named after the provider they were quoted from
        top = rel.split("/", 1)[1].split("_", 1)[0]
    if top == "anthropic" or top == "gemini":
        return top
    if top == "ollama" and not rel.endswith(".sse"):  # Ollama's /v1 speaks OpenAI's SSE
        return "ollama"
    return "openai"


def _source(rel: str) -> str:
    top = _top(rel)
    stem = rel.rsplit("/", 1)[-1]
    if top == "issue_snippets" and stem.startswith("llamacpp_"):
        return "llamacpp"
    if top == "ollama" and stem.endswith(".sse"):
        return "ollama-v1"
    for vendor in ("deepseek", "groq", "mistral", "zai"):
        if stem.startswith(vendor):
            return vendor
    return top


def _cassette_body(root: Path, path: Path, rel: str) -> Recording:
    meta_path = path.with_name(path.name.removesuffix(".body") + ".meta.json")
    protocol = _protocol(rel)
    if not meta_path.is_file():
        return Recording(rel, protocol, _source(rel), skip="cassette body without its meta.json")
    meta: dict[str, Any] = json.loads(meta_path.read_text(encoding="utf-8"))
    uri = str(meta.get("request", {}).get("uri", ""))
    status = int(meta.get("status", {}).get("code", 200))
    content_type = _header(meta.get("headers") or {}, "content-type") or ""
    host = re.sub(r"^https?://([^/]+).*$", r"\1", uri)
    source = _SOURCE_HOSTS.get(host, _source(rel))
    body = path.read_bytes()
    base = Recording(rel, protocol, source, body, status, content_type or "application/json")
    if host not in _SOURCE_HOSTS:
        return _skip(base, f"not a model response (the test fetched {uri})")
    if meta.get("request", {}).get("method") == "GET":
        return _skip(base, "a model listing (GET), not a generation")
    if status >= 400:
        return base
    if "event-stream" in content_type:
        return base
    if protocol == "gemini" and ":streamGenerateContent" in uri:
        return _gemini_array(base)
    return _skip(base, "a non-streaming JSON response; Quorum always streams")


def _chunks(path: Path, rel: str) -> Recording:
    protocol = _protocol(rel)
    frames: list[bytes] = []
    for line in path.read_bytes().splitlines():
        if not line.strip():
            continue
        if protocol == "anthropic":
            kind = json.loads(line).get("type", "")
            frames.append(b"event: %s\ndata: %s\n\n" % (kind.encode(), line))
        else:
            frames.append(b"data: %s\n\n" % line)
    if protocol == "openai":
        frames.append(b"data: [DONE]\n\n")
    return Recording(rel, protocol, _source(rel), b"".join(frames), reframed=True)


def _gemini_array(base: Recording) -> Recording:
    try:
        items = json.loads(base.body)
    except ValueError:
        return _skip(base, "a JSON-array stream that is not valid JSON")
    frames = [
        b"data: %s\r\n\r\n" % json.dumps(item, ensure_ascii=False, separators=(",", ":")).encode()
        for item in (items if isinstance(items, list) else [items])
    ]
    return Recording(base.id, "gemini", base.source, b"".join(frames), reframed=True)


def _ndjson(path: Path, rel: str) -> Recording:
    body = path.read_bytes()
    rec = Recording(rel, "ollama", "ollama", body, content_type="application/x-ndjson")
    first = json.loads(body.splitlines()[0]) if body.strip() else {}
    if "response" in first and "message" not in first:
        return _skip(rec, "an /api/generate stream; Quorum speaks /api/chat")
    return rec


def _json_file(path: Path, rel: str) -> Recording:
    body = path.read_bytes()
    protocol = _protocol(rel)
    rec = Recording(rel, protocol, _source(rel), body, content_type="application/json")
    if _top(rel) == "issue_snippets":
        return _skip(rec, "a quoted snippet, not a whole response; see the targeted tests")
    match = re.search(r"(?:^|[_-])([45]\d\d)(?:[_.-]|$)", path.name)
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if match and isinstance(data, dict) and "error" in data:
        return Recording(rel, protocol, rec.source, body, int(match.group(1)), "application/json")
    return _skip(rec, "a non-streaming JSON response; Quorum always streams")


def _skip(rec: Recording, reason: str) -> Recording:
    return replace(rec, skip=reason)


def _header(headers: dict[str, Any], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return str(value[0] if isinstance(value, list) else value)
    return None
