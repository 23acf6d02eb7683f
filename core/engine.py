"""The fan-out: every model in one anyio task group, one typed event stream out.

    async with FanOut(specs, providers, "question").run() as events:
        async for event in events:
            ...

`FanOut.cancel(name)` / `FanOut.cancel()` stop one model or all of them; their connections
close at once because each model runs in its own cancel scope around the provider's
``async with client.stream(...)``.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Any, Protocol

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from core.answer_cap import CUT, AnswerCap, cut_message
from core.config import ModelSpec, with_overrides
from core.errors import ProviderError
from core.events import (
    Cancelled,
    Event,
    Failed,
    FailureKind,
    FanoutFinished,
    FanoutStarted,
    Finished,
    FirstToken,
    Loading,
    ModelStats,
    ReasoningDelta,
    Retrying,
    Source,
    Started,
    TextDelta,
    UsageReported,
)
from core.pacing import IntakePacer
from core.prompting import system_with_sources, with_sources
from core.providers.base import Message, Provider
from core.sanitize import StreamSanitizer

Clock = Callable[[], float]
Emit = Callable[[Event], None]
Spawn = Callable[[Callable[[], Coroutine[Any, Any, None]]], object]
RunModel = Callable[[ModelSpec, Sequence[Message], Emit], Awaitable[None]]


class ProviderLookup(Protocol):
    """Maps a provider name to a `Provider` (see `core.providers.ProviderSet`)."""

    def get(self, name: str) -> Provider: ...


class FanoutStage(Protocol):
    """Work that follows the answers inside the fan-out (the consensus). It sees every event
    as it is sent and may start tasks in the fan-out's task group (`observe` itself must not
    block); once every model has ended it runs `after`, which may run further models (the
    synthesizer) through the engine. Its events join the one stream, before `FanoutFinished`.
    `FanOut.cancel()` cancels it too."""

    def observe(self, event: Event, spawn: Spawn, emit: Emit) -> None: ...
    async def after(self, emit: Emit, run: RunModel) -> None: ...


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with jitter; a server's own delay wins when it is not absurd."""

    base_delay_s: float = 0.5
    max_delay_s: float = 8.0
    max_server_delay_s: float = 60.0

    def delay(self, retry_number: int, server_delay_s: float | None, rng: random.Random) -> float:
        if server_delay_s is not None and 0 <= server_delay_s <= self.max_server_delay_s:
            return float(server_delay_s)
        ceiling = min(self.max_delay_s, self.base_delay_s * 2.0 ** (retry_number - 1))
        return float(ceiling * (0.5 + rng.random() / 2))


class EventStream:
    """The fan-out's events, for ``async for``.

    anyio's ``receive()`` passes through the event loop once per item, so a consumer got one
    event per loop iteration while every model added one per iteration: with 128 models it fell
    seconds behind them. Here whatever is already buffered is handed over at once; only an empty
    buffer waits.
    """

    __slots__ = ("_receive",)

    def __init__(self, receive: MemoryObjectReceiveStream[Event]) -> None:
        self._receive = receive

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> Event:
        try:
            try:
                return self._receive.receive_nowait()
            except anyio.WouldBlock:
                return await self._receive.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None


class FanOut:
    def __init__(
        self,
        models: Sequence[ModelSpec],
        providers: ProviderLookup,
        query: str,
        *,
        conversations: Mapping[str, Sequence[Message]] | None = None,
        context: Sequence[Source] = (),
        stages: Sequence[FanoutStage] = (),
        retry: RetryPolicy | None = None,
        clock: Clock = time.perf_counter,
        rng: random.Random | None = None,
        pacer: IntakePacer | None = None,
    ) -> None:
        names = [m.name for m in models]
        if len(set(names)) != len(names):
            raise ValueError("model names must be unique")
        self.context = tuple(context)
        if self.context:  # every model is told that the sources are data, and how to cite them
            models = [with_overrides(m, system=system_with_sources(m.system)) for m in models]
        self.models = tuple(models)
        self.query = query
        self._providers = providers
        self._conversations = conversations or {}
        self._retry = retry or RetryPolicy()
        self._clock = clock
        self._rng = rng or random.Random()
        self._pacer = pacer  # a UI on the same event loop passes one (see core.pacing)
        self._scopes = {m.name: anyio.CancelScope() for m in models}
        self._stages = tuple(stages)
        self._after_scope = anyio.CancelScope()  # the stages' own work (e.g. a synthesis)

    def messages_for(self, spec: ModelSpec) -> list[Message]:
        """The model's own conversation so far, then the new question."""
        question = with_sources(self.query, self.context)
        return [*self._conversations.get(spec.name, ()), Message("user", question)]

    def cancel(self, model: str | None = None) -> None:
        """Cancel one model (by name) or, with no name, every model still running."""
        if model is None:
            self._after_scope.cancel()
        targets = [self._scopes[model]] if model is not None else self._scopes.values()
        for scope in targets:
            scope.cancel()

    @asynccontextmanager
    async def run(self) -> AsyncIterator[EventStream]:
        send, receive = anyio.create_memory_object_stream[Event](max_buffer_size=math.inf)
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(self._run_all, send)
                try:
                    async with receive:
                        yield EventStream(receive)
                finally:
                    self.cancel()  # the consumer left early: stop everything still running
        except BaseExceptionGroup as error:
            # The consumer's own failure (e.g. BrokenPipeError) reaches it as itself, not wrapped.
            if len(error.exceptions) == 1:
                raise error.exceptions[0] from None
            raise

    async def _run_all(self, send: MemoryObjectSendStream[Event]) -> None:
        def emit(event: Event) -> None:
            # Once the consumer has left, `run` is cancelling every model: drop their last words.
            with suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                send.send_nowait(event)

        async with send:
            started = self._clock()
            emit(FanoutStarted(self.query, tuple(m.name for m in self.models), self.context))
            async with anyio.create_task_group() as group:
                observed = emit
                if self._stages:

                    def observed(event: Event) -> None:
                        emit(event)
                        for stage in self._stages:
                            stage.observe(event, group.start_soon, emit)

                for spec in self.models:
                    group.start_soon(self._run_model, spec, observed)
            with self._after_scope:
                for stage in self._stages:
                    await stage.after(emit, self.run_model)
            emit(FanoutFinished(round((self._clock() - started) * 1000, 3)))

    async def _run_model(self, spec: ModelSpec, emit: Emit) -> None:
        await self.run_model(spec, self.messages_for(spec), emit, self._scopes[spec.name])

    async def run_model(
        self,
        spec: ModelSpec,
        messages: Sequence[Message],
        emit: Emit,
        scope: anyio.CancelScope | None = None,
    ) -> None:
        """One model's whole run (retries, deadlines, its terminal event) into ``emit``."""
        run = ModelRun(spec, emit, self._clock, self._pacer)
        scope = scope or anyio.CancelScope()
        with scope:
            try:
                provider = self._providers.get(spec.provider)
            except KeyError:
                run.fail(ProviderError(FailureKind.CONFIG, f"unknown provider {spec.provider!r}"))
                return
            try:
                await run.execute(provider, messages, self._retry, self._rng)
            except Exception as exc:  # a bug must cost one model, never the fan-out
                if not run.ended:
                    run.fail(
                        ProviderError(
                            FailureKind.INTERNAL, f"internal error: {type(exc).__name__}: {exc}"
                        )
                    )
        if scope.cancelled_caught and not run.ended:
            run.cancelled()


class ModelRun:
    """One model's answer in progress: the provider's `ChunkSink`, its timers and its stats."""

    def __init__(
        self,
        spec: ModelSpec,
        emit: Callable[[Event], None],
        clock: Clock,
        pacer: IntakePacer | None = None,
    ) -> None:
        self.spec = spec
        self.name = spec.name
        self._emit = emit
        self._clock = clock
        self._sanitize_text = StreamSanitizer()
        self._sanitize_reasoning = StreamSanitizer()
        self.started_at = clock()
        self.total_deadline = anyio.current_time() + spec.timeout_s
        self.first_at: float | None = None
        self.attempts = 0
        self.text_chunks = 0
        self.tokens_in: int | None = None
        self.tokens_out: int | None = None
        self.finish_reason: str | None = None
        self.ended = False
        self._deadline_scope: anyio.CancelScope | None = None
        self._idle_refreshed = 0.0
        self._cap = AnswerCap(spec.max_answer_chars)
        self.pause_s = pacer.pause_s if pacer is not None else _no_pause

    # --- ChunkSink -----------------------------------------------------------------------
    def text(self, text: str) -> None:
        clean = self._sanitize_text.feed(text) if not self._cap.cut else ""
        if clean:
            self._visible()
            self.text_chunks += 1
            self._keep(clean, TextDelta)

    def reasoning(self, text: str) -> None:
        clean = self._sanitize_reasoning.feed(text) if not self._cap.cut else ""
        if clean:
            self._visible()
            self._keep(clean, ReasoningDelta)

    def _keep(self, text: str, kind: type[TextDelta | ReasoningDelta]) -> None:
        """Emit what fits under max_answer_chars; past it, stop the stream (the attempt's
        scope is cancelled: the HTTP response closes, a local generation stops)."""
        kept = self._cap.take(text)
        if kept:
            self._emit(kind(self.name, kept))
        if self._cap.cut and self._deadline_scope is not None:
            self._deadline_scope.cancel()

    def usage(self, tokens_in: int | None, tokens_out: int | None) -> None:
        if tokens_in is not None:
            self.tokens_in = tokens_in
        if tokens_out is not None:
            self.tokens_out = tokens_out
        self._emit(UsageReported(self.name, self.tokens_in, self.tokens_out))

    def finish(self, reason: str | None) -> None:
        self.finish_reason = reason

    def loading(self) -> None:
        self._emit(Loading(self.name))

    def loaded(self) -> None:
        """An in-process model finished loading: its first-token clock starts now."""
        if self._deadline_scope is not None and self.first_at is None:
            self._deadline_scope.deadline = min(
                self.total_deadline, anyio.current_time() + self.spec.first_token_timeout_s
            )

    def _visible(self) -> None:
        now = anyio.current_time()
        if self.first_at is None:
            self.first_at = self._clock()
            self._emit(FirstToken(self.name, _ms(self.first_at - self.started_at)))
            self._refresh_idle(now)
        elif now - self._idle_refreshed > self.spec.idle_timeout_s / 8:
            self._refresh_idle(now)

    def _refresh_idle(self, now: float) -> None:
        self._idle_refreshed = now
        if self._deadline_scope is not None:
            self._deadline_scope.deadline = min(self.total_deadline, now + self.spec.idle_timeout_s)

    # --- lifecycle -----------------------------------------------------------------------
    async def execute(
        self,
        provider: Provider,
        messages: Sequence[Message],
        retry: RetryPolicy,
        rng: random.Random,
    ) -> None:
        spec = self.spec
        retry_in = 0.0
        while True:
            self.attempts += 1
            self._emit(Started(self.name, spec.provider, self.attempts))
            now = anyio.current_time()
            first_token_deadline = now + spec.first_token_timeout_s
            with anyio.CancelScope(deadline=min(self.total_deadline, first_token_deadline)) as dl:
                self._deadline_scope = dl
                try:
                    await provider.stream(spec, messages, self)
                except ProviderError as error:
                    if self._cap.cut:  # in what came after the cut, which is not kept
                        self.finished()
                        return
                    delay = self._retry_delay(error, retry, rng)
                    if delay is None:
                        self.fail(error)
                        return
                    retry_in = delay
                    self._emit(
                        Retrying(
                            self.name, self.attempts + 1, round(retry_in, 3), _retry_reason(error)
                        )
                    )
                else:
                    self.finished()
                    return
                finally:
                    self._deadline_scope = None
            if self._cap.cut:  # the stream was stopped at max_answer_chars
                self.finished()
                return
            if dl.cancelled_caught:
                self.fail(self._timeout_error(dl.deadline))
                return
            await anyio.sleep(retry_in)

    def _retry_delay(
        self, error: ProviderError, retry: RetryPolicy, rng: random.Random
    ) -> float | None:
        if not error.retryable or self.first_at is not None:
            return None
        if self.attempts > self.spec.max_retries:
            return None
        delay = retry.delay(self.attempts, error.retry_after_s, rng)
        if anyio.current_time() + delay >= self.total_deadline:
            return None
        return delay

    def _timeout_error(self, deadline: float) -> ProviderError:
        spec = self.spec
        if deadline >= self.total_deadline:
            message = f"no complete answer within the total timeout of {spec.timeout_s:g} s"
        elif self.first_at is None:
            message = f"no first token within {spec.first_token_timeout_s:g} s"
        else:
            message = f"the stream stalled for {spec.idle_timeout_s:g} s (idle timeout)"
        return ProviderError(FailureKind.TIMEOUT, message)

    def stats(self) -> ModelStats:
        end = self._clock()
        total_ms = _ms(end - self.started_at)
        ttft_ms = _ms(self.first_at - self.started_at) if self.first_at is not None else None
        tokens_out = (
            self.tokens_out
            if self.tokens_out is not None
            else (self.text_chunks if self.first_at is not None else None)
        )
        rate = None
        if tokens_out and ttft_ms is not None and total_ms - ttft_ms >= 1:
            rate = round(tokens_out / ((total_ms - ttft_ms) / 1000), 1)
        return ModelStats(
            ttft_ms=ttft_ms,
            total_ms=total_ms,
            tokens_in=self.tokens_in,
            tokens_out=tokens_out,
            tokens_per_s=rate,
            attempts=self.attempts,
        )

    def _flush(self) -> None:
        if self._cap.cut:
            return
        tail = self._sanitize_text.flush()
        if tail:
            self._keep(tail, TextDelta)
        tail = self._sanitize_reasoning.flush()
        if tail and not self._cap.cut:
            self._keep(tail, ReasoningDelta)

    def finished(self) -> None:
        self._flush()
        self.ended = True
        if self._cap.cut:
            message = cut_message(self._cap.limit)
            self._emit(Finished(self.name, CUT, self.stats(), message))
        else:
            self._emit(Finished(self.name, self.finish_reason, self.stats()))

    def fail(self, error: ProviderError) -> None:
        self._flush()
        self.ended = True
        self._emit(Failed(self.name, error.kind, error.message, error.status, self.stats()))

    def cancelled(self) -> None:
        self._flush()
        self.ended = True
        self._emit(Cancelled(self.name, self.stats()))


def _retry_reason(error: ProviderError) -> str:
    if error.status is not None:
        return f"HTTP {error.status}: {error.message}"
    return error.message


def _no_pause() -> float:
    return 0.0


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)
