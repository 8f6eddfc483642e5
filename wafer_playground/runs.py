"""The one run path: send a request, stream it, assemble it, time it, price it, log it.

Chat, Token & grammar, Compare and Evaluate all send through `Run` (docs/ARCHITECTURE.md);
their components only draw the events. A run's request-log row is written as "streaming"
before the request goes out and finalised when it ends, whatever the ending (done, Stop, an
error, a dropped tab): a process that dies mid-run leaves the "streaming" row that
`Store.recover_interrupted` later marks "interrupted".

Threads: `Run.events()` runs on one thread (the script thread, or a Compare/Evaluate worker);
`stop()` and `snapshot()` may be called from any other. Everything `finish()` does is plain
Python plus the store, because after a Streamlit Stop no `st.*` call may run
(components/chat/transcript.py).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from . import media
from .assembly import AnthropicAccumulator, ChatAccumulator, TurnFacts, turn_facts
from .catalog import Pricing
from .client import Result, Stream, WaferClient
from .costs import Cost
from .errors import WaferError
from .params import estimate_prompt_tokens

if TYPE_CHECKING:
    from .store import Store

Surface = Literal["chat", "messages", "completions"]
RunStatus = Literal["pending", "streaming", "done", "stopped", "error"]
FINAL: tuple[RunStatus, ...] = ("done", "stopped", "error")


# ---------------------------------------------------------------------------- events


@dataclass(frozen=True)
class TextDelta:
    text: str
    chunk: dict[str, Any] | None = None


@dataclass(frozen=True)
class ReasoningDelta:
    text: str
    chunk: dict[str, Any] | None = None


@dataclass(frozen=True)
class ToolCallDelta:
    index: int
    chunk: dict[str, Any] | None = None


@dataclass(frozen=True)
class UsageEvent:
    usage: dict[str, Any]
    chunk: dict[str, Any] | None = None


@dataclass(frozen=True)
class ChunkEvent:
    """A chunk that carried none of the above (role, finish reason, token ids only…)."""

    chunk: dict[str, Any]


@dataclass(frozen=True)
class ErrorEvent:
    error: WaferError


@dataclass(frozen=True)
class Done:
    status: RunStatus


Event = TextDelta | ReasoningDelta | ToolCallDelta | UsageEvent | ChunkEvent | ErrorEvent | Done


def completion_as_chat(chunk: dict[str, Any]) -> dict[str, Any]:
    """A text-completion chunk in chat shape, so one accumulator serves every surface."""
    choices = []
    for choice in chunk.get("choices") or []:
        if isinstance(choice, dict):
            choices.append({"index": choice.get("index") or 0,
                            "delta": {"content": choice.get("text")},
                            "logprobs": None,
                            "finish_reason": choice.get("finish_reason"),
                            "matched_stop": choice.get("matched_stop")})
    return {**chunk, "choices": choices}


def _message_as_chunk(data: dict[str, Any]) -> dict[str, Any]:
    """A non-streamed chat response in chunk shape (its message becomes one delta)."""
    choices = []
    for choice in data.get("choices") or []:
        if isinstance(choice, dict):
            msg = choice.get("message") if isinstance(choice.get("message"), dict) else {}
            choices.append({**choice, "delta": msg})
    return {**data, "choices": choices}


def _anthropic_as_events(data: dict[str, Any]) -> list[dict[str, Any]]:
    """A non-streamed Messages response as the stream events that would have carried it."""
    events: list[dict[str, Any]] = [{"type": "message_start",
                                     "message": {**data, "content": []}}]
    for i, block in enumerate(data.get("content") or []):
        if not isinstance(block, dict):
            continue
        if block.get("type") == "text":
            events.append({"type": "content_block_start", "index": i,
                           "content_block": {"type": "text", "text": ""}})
            events.append({"type": "content_block_delta", "index": i,
                           "delta": {"type": "text_delta", "text": block.get("text") or ""}})
        else:
            events.append({"type": "content_block_start", "index": i, "content_block": block})
        events.append({"type": "content_block_stop", "index": i})
    events.append({"type": "message_delta", "delta": {"stop_reason": data.get("stop_reason")},
                   "usage": data.get("usage") or {}})
    events.append({"type": "message_stop"})
    return events


# ---------------------------------------------------------------------------- the log


class RequestLog:
    """The request-log record of runs (one row per run): "streaming" when sent, then final.

    Store failures never break a run: they are collected in `problems`, and the store is
    dropped for the rest of this log's life."""

    def __init__(self, store: Store | None, *, base_url: str,
                 problems: list[str] | None = None, meta: dict[str, Any] | None = None,
                 keep_output: int = 0, **links: Any) -> None:
        self.store = store
        self.base_url = base_url
        self.links = dict(links)  # conversation_id, turn_id
        self.problems: list[str] = problems if problems is not None else []
        # kept in the row's `response` JSON: what groups it (a Compare run's id and pane
        # label) and, with keep_output, the answer's first characters (History shows them)
        self.meta = dict(meta or {})
        self.keep_output = keep_output

    def _fail(self, exc: Exception) -> None:
        text = f"the request log is not being saved: {exc}"
        if text not in self.problems:
            self.problems.append(text)
        self.store = None

    def start(self, run: Run) -> str | None:
        if self.store is None:
            return None
        try:
            return self.store.log_request(
                model=str(run.body.get("model") or ""), base_url=self.base_url,
                surface=run.surface, params=media.without_inline(run.body),
                status="streaming", **({"response": self.meta} if self.meta else {}),
                **{k: v for k, v in self.links.items() if v is not None})
        except Exception as exc:  # noqa: BLE001 - a full disk must not stop the request
            self._fail(exc)
            return None

    def finish(self, run: Run, row: str | None) -> None:
        if self.store is None or row is None:
            return
        fields = run.record_fields()
        if self.keep_output:
            fields["response"] = {**self.meta, "output": run.content[:self.keep_output]}
        try:
            self.store.update_request(row, **fields)
        except Exception as exc:  # noqa: BLE001
            self._fail(exc)

    def progress(self, run: Run) -> None:
        """Called about once a second while text arrives (TurnLog saves the partial text)."""

    def annotate(self, row: str | None, **fields: Any) -> None:
        """Add to a finished row (e.g. the Token page's decoded ids as `response`)."""
        if self.store is None or row is None:
            return
        try:
            self.store.update_request(row, **fields)
        except Exception as exc:  # noqa: BLE001
            self._fail(exc)


MAX_LOGPROB_TOKENS = 4000  # keeps session state and the store row bounded
TURN_META = ("reasoning", "tool_calls", "tool_call_id", "name", "facts", "error", "model",
             "surface", "logprobs", "media")  # what a stored turn keeps beside its text


def turn_of(run: Run) -> dict[str, Any]:
    """The assistant turn a run produced, as Chat keeps it and the store saves it."""
    acc = run.acc
    turn: dict[str, Any] = {"content": acc.content, "reasoning": acc.reasoning,
                            "tool_calls": [t.to_openai() for t in acc.tool_calls],
                            "status": run.status}
    if isinstance(acc, ChatAccumulator) and acc.logprobs:
        turn["logprobs"] = acc.logprobs[:MAX_LOGPROB_TOKENS]
    if run.error is not None:
        turn["error"] = run.error.to_dict()
    facts = run.facts()
    # None: refused before any token (401/404/422/429…), nothing generated or billed
    turn["facts"] = facts.to_dict() if facts is not None else (
        {"usage_note": run.facts_note} if run.facts_note else None)
    return turn


def turn_meta(turn: dict[str, Any]) -> dict[str, Any]:
    """A turn's stored meta; attachments by id, name and type, never their bytes."""
    return {k: media.stored(turn[k]) if k == "media" else turn[k]
            for k in TURN_META if turn.get(k) is not None}


class TurnLog(RequestLog):
    """The record of a chat answer: its turn in the conversation as well as its request.

    The empty answer is saved as "streaming" before the request goes out, its text about
    once a second, and the finished turn with its facts at the end; a process that dies
    mid-answer leaves the partial text for recovery to mark "interrupted"."""

    def __init__(self, store: Store | None, *, base_url: str, conversation_id: str | None,
                 turn: dict[str, Any], problems: list[str] | None = None) -> None:
        super().__init__(store, base_url=base_url, problems=problems,
                         conversation_id=conversation_id)
        self.turn = turn

    def start(self, run: Run) -> str | None:
        conv = self.links.get("conversation_id")
        if self.store is not None and conv is not None:
            try:
                self.turn["store_id"] = self.store.start_turn(
                    conv, "assistant", "", turn_meta(self.turn), status="streaming")
                self.links["turn_id"] = self.turn["store_id"]
            except Exception as exc:  # noqa: BLE001 - the answer matters more than its record
                self._fail(exc)
        return super().start(run)

    def progress(self, run: Run) -> None:
        row = self.turn.get("store_id")
        if self.store is None or row is None:
            return
        try:
            self.store.update_turn(row, content=run.acc.content,
                                   meta={"reasoning": run.acc.reasoning or None})
        except Exception as exc:  # noqa: BLE001
            self._fail(exc)

    def finish(self, run: Run, row: str | None) -> None:
        turn_row = self.turn.get("store_id")
        if self.store is not None and turn_row is not None:
            final = {**self.turn, **turn_of(run)}
            try:
                self.store.update_turn(turn_row, content=final["content"],
                                       status=final["status"], meta=turn_meta(final))
            except Exception as exc:  # noqa: BLE001
                self._fail(exc)
        super().finish(run, row)


# ---------------------------------------------------------------------------- the run


class _Stopped(Exception):
    pass


class Run:
    """One request, from send to its priced, logged end."""

    def __init__(self, client: WaferClient, surface: Surface, body: dict[str, Any], *,
                 pricing: Pricing, prompt_tokens: int | None = None,
                 prompt_estimate: int | None = None, log: RequestLog | None = None,
                 stream: bool = True, progress_every_s: float = 1.0,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        # `clock` must share time.perf_counter's origin: Stream.started_at is stamped with it
        self.client = client
        self.surface = surface
        self.body = body
        self.pricing = pricing
        self.prompt_tokens = prompt_tokens
        self.prompt_estimate = (prompt_tokens if prompt_tokens is not None else
                                prompt_estimate if prompt_estimate is not None else
                                estimate_prompt_tokens(body))
        self.log = log
        self.streamed = stream
        self.progress_every_s = progress_every_s
        self._progress_at = 0.0
        self.clock = clock
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self.status: RunStatus = "pending"
        self.error: WaferError | None = None
        self.acc: ChatAccumulator | AnthropicAccumulator = (
            AnthropicAccumulator(clock()) if surface == "messages" else ChatAccumulator(clock()))
        self.stream: Stream | None = None
        self.result: Result | None = None
        self.request_json: dict[str, Any] = body
        self.headers: dict[str, str] | None = None
        self.request_id: str | None = None
        self.record_id: str | None = None
        self.sent = False  # a response (stream head or body) arrived: something may be billed
        self.started_at: float | None = None
        self.ended_at: float | None = None
        self._facts: TurnFacts | None = None
        self.facts_note: str | None = None
        self._finished = False

    # -- reading

    @property
    def content(self) -> str:
        return self.acc.content

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def facts(self) -> TurnFacts | None:
        """Speed, tokens and cost: final after `finish()`, live (an estimate) before it."""
        if self._finished:
            return self._facts
        with self.lock:
            return self._compute_facts()

    def cost(self) -> Cost | None:
        facts = self.facts()
        return facts.cost if facts else None

    def _compute_facts(self) -> TurnFacts | None:
        if not self.sent and self.error is not None:
            return None  # refused before any answer (401/404/422/429…): nothing billed
        try:
            return turn_facts(self.acc, self.pricing, prompt_estimate=self.prompt_estimate,
                              request_id=self.request_id)
        except (ValueError, ArithmeticError) as exc:  # numbers no server should send
            self.facts_note = f"tokens and cost could not be worked out: {exc}"
            return None

    def record_fields(self) -> dict[str, Any]:
        """What the request log keeps of a finished run (never keys or headers)."""
        facts = self._facts
        err = self.error
        fields: dict[str, Any] = {
            "status": self.status,
            "request_id": self.request_id or (err.request_id if err else None),
            "http_status": err.status if err else None,
            "error_code": err.code if err else None,
            "duration_s": (self.ended_at - self.started_at
                           if self.ended_at is not None and self.started_at is not None
                           else None),
        }
        if facts is not None:
            fields.update(prompt_tokens=facts.prompt_tokens,
                          completion_tokens=facts.completion_tokens,
                          cached_tokens=facts.cached_tokens,
                          reasoning_tokens=facts.reasoning_tokens, ttft_s=facts.ttft_s,
                          tokens_per_s=facts.tokens_per_s)
            if facts.cost.total is not None:
                fields["cost"] = facts.cost
        return {k: v for k, v in fields.items() if v is not None}

    # -- running

    def stop(self) -> None:
        """Thread-safe: the run ends "stopped" at its next chunk (or now, if not streaming)."""
        self._stop.set()

    def run(self) -> Run:
        """Run to the end, drawing nothing (background workers)."""
        for _ in self.events():
            pass
        return self

    def events(self) -> Iterator[Event]:
        """Send and stream; yields typed events and always ends with `Done`.

        Errors become an `ErrorEvent`, never an exception. If the consumer abandons the
        iteration (a Stop, a rerun), closing the generator finishes the run as "stopped"."""
        try:
            yield from self._events()
        finally:
            self.finish()

    def _begin(self) -> None:
        with self.lock:
            self.status = "streaming"
            self.started_at = self.clock()
            self.acc.started_at = self.started_at
        if self.log is not None:
            self.record_id = self.log.start(self)

    def _events(self) -> Iterator[Event]:
        self._begin()
        self._progress_at = self.clock()
        try:
            if self._stop.is_set():
                raise _Stopped
            if self.streamed:
                yield from self._stream()
            else:
                yield from self._whole()
            final: RunStatus = "done"
        except _Stopped:
            final = "stopped"
        except WaferError as exc:
            # whatever fails after a Stop (the server dropping us) is part of the Stop
            if self._stop.is_set():
                final = "stopped"
            else:
                final, self.error = "error", exc
                yield ErrorEvent(exc)
        except Exception as exc:  # noqa: BLE001 - a client bug must not lose the partial answer
            if self._stop.is_set():
                final = "stopped"
            else:
                err = WaferError(f"unexpected {type(exc).__name__} while streaming: {exc}"[:300])
                final, self.error = "error", err
                yield ErrorEvent(err)
        self.finish(final)
        yield Done(self.status)

    def _open(self) -> Stream:
        if self.surface == "messages":
            return self.client.messages_stream(self.body)
        if self.surface == "completions":
            return self.client.completions_stream(self.body)
        return self.client.chat_stream(self.body)

    def _stream(self) -> Iterator[Event]:
        stream = self._open()
        with self.lock:
            self.stream = stream
            self.sent = True
            self.request_json = stream.request_json
            self.headers = dict(stream.headers)
            self.request_id = stream.request_id
            self.acc.started_at = stream.started_at
        with stream:
            if self._stop.is_set():  # stop() ran while the request was being sent
                raise _Stopped
            for chunk in stream:
                if self._stop.is_set():
                    raise _Stopped
                yield from self._feed(chunk, self.clock())

    def _whole(self) -> Iterator[Event]:
        call = {"chat": self.client.chat, "completions": self.client.completions,
                "messages": self.client.messages}[self.surface]
        res = call(self.body)
        with self.lock:
            self.result = res
            self.sent = True
            self.request_json = res.request_json or self.body
            self.headers = dict(res.headers)
            self.request_id = res.request_id
        data = res.data if isinstance(res.data, dict) else {}
        now = self.clock()
        if self.surface == "messages":
            for event in _anthropic_as_events(data):
                yield from self._feed(event, now)
        elif self.surface == "completions":
            yield from self._feed(data, now)
        else:
            yield from self._feed(_message_as_chunk(data), now)

    def _feed(self, chunk: dict[str, Any], now: float) -> Iterator[Event]:
        fed = completion_as_chat(chunk) if self.surface == "completions" else chunk
        acc = self.acc
        with self.lock:
            n_content, n_reasoning = len(acc.content), len(acc.reasoning)
            tools = [len(t.arguments) + len(t.name) for t in acc.tool_calls]
            had_usage = acc.usage
            acc.feed(fed, now)
            content, reasoning = acc.content[n_content:], acc.reasoning[n_reasoning:]
            changed = [t.index for i, t in enumerate(acc.tool_calls)
                       if i >= len(tools) or len(t.arguments) + len(t.name) != tools[i]]
            usage = acc.usage if acc.usage is not had_usage else None
        if self.log is not None and (content or reasoning) and \
                now - self._progress_at >= self.progress_every_s:
            self._progress_at = now
            self.log.progress(self)
        yielded = False
        if reasoning:
            yield ReasoningDelta(reasoning, chunk)
            yielded = True
        if content:
            yield TextDelta(content, chunk)
            yielded = True
        for index in changed:
            yield ToolCallDelta(index, chunk)
            yielded = True
        if usage is not None:
            yield UsageEvent(usage, chunk)
            yielded = True
        if not yielded:
            yield ChunkEvent(chunk)

    def finish(self, status: RunStatus | None = None) -> None:
        """End the run once: close the stream, settle facts and cost, finalise the record.

        Idempotent and Stop-safe. Without a status a run that has not ended is "stopped"."""
        with self.lock:
            if self._finished:
                return
            self._finished = True
            if status is None:
                status = self.status if self.status in FINAL else "stopped"
            if self._stop.is_set() and status == "done" and self.stream is not None and \
                    not self.stream.finished:
                status = "stopped"
            self.status = status
            self.ended_at = self.clock()
            if self.started_at is None:
                self.started_at = self.ended_at
            stream = self.stream
        if stream is not None:
            stream.close()
        with self.lock:
            self._facts = self._compute_facts()
        if self.log is not None and self.record_id is not None:
            self.log.finish(self, self.record_id)

    @property
    def finished(self) -> bool:
        return self._finished


__all__ = [
    "FINAL", "TURN_META", "ChunkEvent", "Done", "ErrorEvent", "Event", "ReasoningDelta",
    "RequestLog", "Run", "RunStatus", "Surface", "TextDelta", "ToolCallDelta", "TurnLog",
    "UsageEvent", "completion_as_chat", "estimate_prompt_tokens", "turn_meta", "turn_of",
]
