"""Stream delta assembly: OpenAI chat chunks and Anthropic message events -> one turn.

Both accumulators are plain Python (no I/O, no clock of their own): the caller passes `now`
(`time.perf_counter()`) with each chunk, so tests drive time explicitly and the Compare page
can run several accumulators side by side.

Rules taken from the spec (§3 Streaming, §5): null and absent fields mean the same; tool-call
fragments are joined by `index` (the first carries id/name, later ones only argument pieces);
the usage chunk has `choices: []`; on Stop no usage arrives, so completion tokens are
*estimated* from the stream itself and labelled as such.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from . import media
from .catalog import Pricing
from .costs import MAX_REQUEST_TOKENS, Cost, Usage, UsageError, cost_of, format_usd

EstimateMethod = Literal["usage", "chunks", "chars/4"]


@dataclass
class ToolCall:
    """One assembled tool call; `arguments` is the raw JSON text as streamed."""

    index: int
    id: str | None = None
    name: str = ""
    arguments: str = ""
    type: str = "function"

    def parsed_arguments(self) -> tuple[Any, str | None]:
        """(value, None) when the arguments are valid JSON, else (None, reason)."""
        if not self.arguments.strip():
            return {}, None
        try:
            return json.loads(self.arguments), None
        except ValueError as exc:
            return None, f"arguments are not valid JSON: {exc}"

    def to_openai(self) -> dict[str, Any]:
        """The assistant-message shape to send back in the next request."""
        return {
            "id": self.id or f"call_{self.index}",
            "type": self.type,
            "function": {"name": self.name, "arguments": self.arguments or "{}"},
        }


@dataclass(frozen=True)
class TurnMetrics:
    ttft_s: float | None  # request start -> first generated text (content, reasoning or tool)
    duration_s: float | None  # request start -> last chunk
    tokens_per_s: float | None  # completion tokens / (last chunk - first token)
    completion_tokens: int  # from usage when present, else the estimate
    completion_source: EstimateMethod


@dataclass
class _Base:
    started_at: float
    content: str = ""
    reasoning: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None  # raw usage object from the server, None if absent
    response_id: str | None = None
    model: str | None = None
    first_token_at: float | None = None
    last_at: float | None = None
    chunks: int = 0  # every event fed
    token_chunks: int = 0  # events that carried generated text (≈ tokens on SGLang/llama.cpp)

    def _generated(self, now: float) -> None:
        if self.first_token_at is None:
            self.first_token_at = now
        self.token_chunks += 1

    @property
    def text_chars(self) -> int:
        return len(self.content) + len(self.reasoning) + sum(len(t.arguments) for t in
                                                            self.tool_calls)

    def usage_completion_tokens(self) -> int | None:
        raise NotImplementedError

    def estimated_completion_tokens(self) -> tuple[int, EstimateMethod]:
        """Completion tokens when the server sent no usage (Stop, cut stream).

        Counts stream chunks that carried generated text: SGLang and llama.cpp send one token
        per chunk. If chunks were coalesced (fewer chunks than chars/4 suggests by 2x), the
        chars/4 heuristic is used instead. The method is returned so the UI can say which.
        """
        by_chars = (self.text_chars + 3) // 4
        if self.token_chunks and self.token_chunks * 2 >= by_chars:
            return self.token_chunks, "chunks"
        return by_chars, "chars/4"

    def metrics(self) -> TurnMetrics:
        actual = self.usage_completion_tokens()
        if actual is not None and not 0 <= actual <= MAX_REQUEST_TOKENS:
            actual = None  # a negative or absurd count is the server's bug: estimate instead
        if actual is not None:
            tokens, source = actual, "usage"
        else:
            tokens, source = self.estimated_completion_tokens()
        ttft = None if self.first_token_at is None else self.first_token_at - self.started_at
        duration = None if self.last_at is None else self.last_at - self.started_at
        tps = None
        if self.first_token_at is not None and self.last_at is not None and tokens > 1:
            span = self.last_at - self.first_token_at
            # the first token arrives at first_token_at, so n tokens span n-1 intervals
            if span > 0:
                tps = (tokens - 1) / span
        return TurnMetrics(ttft, duration, tps, tokens, source)  # type: ignore[arg-type]


class ChatAccumulator(_Base):
    """Feed `/v1/chat/completions` stream chunks (dicts); reads choice 0."""

    def __init__(self, started_at: float) -> None:
        super().__init__(started_at=started_at)
        self.role: str | None = None
        self.logprobs: list[dict[str, Any]] = []  # choices[0].logprobs.content items
        self.matched_stop: Any = None
        self.system_fingerprint: str | None = None

    def feed(self, chunk: dict[str, Any], now: float) -> None:
        self.chunks += 1
        self.last_at = now
        self.response_id = chunk.get("id") or self.response_id
        self.model = chunk.get("model") or self.model
        self.system_fingerprint = chunk.get("system_fingerprint") or self.system_fingerprint
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self.usage = usage
        for choice in chunk.get("choices") or []:
            if not isinstance(choice, dict) or (choice.get("index") or 0) != 0:
                continue
            self._feed_choice(choice, now)

    def _feed_choice(self, choice: dict[str, Any], now: float) -> None:
        delta = choice.get("delta") or {}
        if delta.get("role"):
            self.role = delta["role"]
        generated = False
        reasoning = delta.get("reasoning_content")
        if reasoning is None:
            reasoning = delta.get("reasoning")  # some OpenAI-compatible servers use this name
        if isinstance(reasoning, str) and reasoning:
            self.reasoning += reasoning
            generated = True
        content = delta.get("content")
        if isinstance(content, str) and content:
            self.content += content
            generated = True
        for frag in delta.get("tool_calls") or []:
            if isinstance(frag, dict):
                generated = self._feed_tool(frag) or generated
        if generated:
            self._generated(now)
        logprobs = choice.get("logprobs")
        if isinstance(logprobs, dict) and isinstance(logprobs.get("content"), list):
            self.logprobs.extend(x for x in logprobs["content"] if isinstance(x, dict))
        if choice.get("finish_reason"):
            self.finish_reason = choice["finish_reason"]
        if choice.get("matched_stop") is not None:
            self.matched_stop = choice["matched_stop"]

    def _feed_tool(self, frag: dict[str, Any]) -> bool:
        index = frag.get("index")
        if not isinstance(index, int):
            # index-less fragments: a new call when an id arrives, else the last call
            index = len(self.tool_calls) if frag.get("id") or not self.tool_calls \
                else self.tool_calls[-1].index
        call = next((t for t in self.tool_calls if t.index == index), None)
        if call is None:
            call = ToolCall(index=index)
            self.tool_calls.append(call)
            self.tool_calls.sort(key=lambda t: t.index)
        if frag.get("id"):
            call.id = frag["id"]
        if frag.get("type"):
            call.type = frag["type"]
        fn = frag.get("function") or {}
        if fn.get("name"):
            # names arrive whole in SGLang/vLLM; concatenating would double them
            call.name = fn["name"]
        args = fn.get("arguments")
        if isinstance(args, str) and args:
            call.arguments += args
            return True
        return bool(fn.get("name"))

    def usage_completion_tokens(self) -> int | None:
        if self.usage is None:
            return None
        n = self.usage.get("completion_tokens")
        return int(n) if isinstance(n, int) else None

    def assistant_message(self) -> dict[str, Any]:
        """The OpenAI assistant message to put in the conversation history."""
        msg: dict[str, Any] = {"role": "assistant", "content": self.content}
        if self.tool_calls:
            msg["tool_calls"] = [t.to_openai() for t in self.tool_calls]
        return msg


class AnthropicAccumulator(_Base):
    """Feed `/v1/messages` stream events (dicts with `type`)."""

    def __init__(self, started_at: float) -> None:
        super().__init__(started_at=started_at)
        self.stop_sequence: str | None = None
        self._blocks: dict[int, dict[str, Any]] = {}  # content index -> block state
        self.signature: str = ""

    def feed(self, event: dict[str, Any], now: float) -> None:
        self.chunks += 1
        self.last_at = now
        kind = event.get("type")
        if kind == "message_start":
            msg = event.get("message") or {}
            self.response_id = msg.get("id") or self.response_id
            self.model = msg.get("model") or self.model
            if isinstance(msg.get("usage"), dict):
                self.usage = dict(msg["usage"])
        elif kind == "content_block_start":
            index = int(event.get("index") or 0)
            block = dict(event.get("content_block") or {})
            self._blocks[index] = block
            if block.get("type") == "tool_use":
                call = ToolCall(index=index, id=block.get("id"), name=block.get("name") or "")
                if block.get("input"):  # non-empty input given whole (rare in streams)
                    call.arguments = json.dumps(block["input"])
                self.tool_calls.append(call)
            elif block.get("type") == "text" and block.get("text"):
                self.content += block["text"]
                self._generated(now)
            elif block.get("type") == "thinking" and block.get("thinking"):
                self.reasoning += block["thinking"]
                self._generated(now)
        elif kind == "content_block_delta":
            self._delta(int(event.get("index") or 0), event.get("delta") or {}, now)
        elif kind == "message_delta":
            delta = event.get("delta") or {}
            if delta.get("stop_reason"):
                self.finish_reason = delta["stop_reason"]
            if delta.get("stop_sequence"):
                self.stop_sequence = delta["stop_sequence"]
            if isinstance(event.get("usage"), dict):
                # message_delta usage is cumulative: later values replace message_start's
                merged = dict(self.usage or {})
                merged.update({k: v for k, v in event["usage"].items() if v is not None})
                self.usage = merged

    def _delta(self, index: int, delta: dict[str, Any], now: float) -> None:
        kind = delta.get("type")
        if kind == "text_delta" and delta.get("text"):
            self.content += delta["text"]
            self._generated(now)
        elif kind == "thinking_delta" and delta.get("thinking"):
            self.reasoning += delta["thinking"]
            self._generated(now)
        elif kind == "signature_delta":
            self.signature += delta.get("signature") or ""
        elif kind == "input_json_delta":
            call = next((t for t in self.tool_calls if t.index == index), None)
            if call is None:
                call = ToolCall(index=index)
                self.tool_calls.append(call)
            piece = delta.get("partial_json") or ""
            if piece:
                call.arguments += piece
                self._generated(now)

    def usage_completion_tokens(self) -> int | None:
        if self.usage is None:
            return None
        n = self.usage.get("output_tokens")
        # message_start carries output_tokens of 1 or 0 before generation: only trust the
        # final value, which arrives with the message_delta that sets stop_reason
        if not isinstance(n, int) or self.finish_reason is None:
            return None
        return n


def openai_usage_view(usage: dict[str, Any] | None) -> dict[str, int | None]:
    """prompt/cached/completion/reasoning tokens from an OpenAI-style usage object."""
    if not usage:
        return {"prompt": None, "cached": None, "completion": None, "reasoning": None}
    pdet = usage.get("prompt_tokens_details") or {}
    cdet = usage.get("completion_tokens_details") or {}
    reasoning = cdet.get("reasoning_tokens")
    if reasoning is None:
        reasoning = usage.get("reasoning_tokens")  # SGLang's top-level variant
    return {
        "prompt": usage.get("prompt_tokens"),
        "cached": pdet.get("cached_tokens"),
        "completion": usage.get("completion_tokens"),
        "reasoning": reasoning,
    }


def anthropic_usage_view(usage: dict[str, Any] | None) -> dict[str, int | None]:
    """The same view for Anthropic usage (cache reads are a subset of prompt tokens)."""
    if not usage:
        return {"prompt": None, "cached": None, "completion": None, "reasoning": None}
    inp = usage.get("input_tokens")
    cached = usage.get("cache_read_input_tokens")
    created = usage.get("cache_creation_input_tokens") or 0
    prompt = None if inp is None else int(inp) + int(cached or 0) + int(created)
    return {"prompt": prompt, "cached": cached, "completion": usage.get("output_tokens"),
            "reasoning": None}


@dataclass(frozen=True)
class TurnFacts:
    """What the UI prints under an answer; `cost.kind` says actual vs estimate."""

    ttft_s: float | None
    tokens_per_s: float | None
    duration_s: float | None
    prompt_tokens: int | None
    cached_tokens: int | None
    completion_tokens: int
    reasoning_tokens: int | None
    completion_source: EstimateMethod
    prompt_source: Literal["usage", "estimate"]
    finish_reason: str | None
    request_id: str | None
    cost: Cost
    usage_note: str | None = None  # why the server's usage object was not used

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe (for session state and the store): Decimals become strings."""
        c = self.cost
        return {
            "ttft_s": self.ttft_s, "tokens_per_s": self.tokens_per_s,
            "duration_s": self.duration_s, "prompt_tokens": self.prompt_tokens,
            "cached_tokens": self.cached_tokens, "completion_tokens": self.completion_tokens,
            "reasoning_tokens": self.reasoning_tokens,
            "completion_source": self.completion_source, "prompt_source": self.prompt_source,
            "finish_reason": self.finish_reason, "request_id": self.request_id,
            "cost_total": None if c.total is None else str(c.total),
            "cost_kind": c.kind, "cost_label": format_usd(c.total),
            "cost_source": c.describe_source(), "cost_notes": list(c.notes),
            "usage_note": self.usage_note,
        }


def turn_facts(acc: ChatAccumulator | AnthropicAccumulator, pricing: Pricing, *,
               prompt_estimate: int, request_id: str | None) -> TurnFacts:
    """Metrics, token counts and cost of one streamed turn.

    With a usage object the cost is "actual"; without one (Stop, a cut stream) it is an
    "estimate" from the estimated prompt tokens and the streamed completion tokens.
    """
    m = acc.metrics()
    usage: Usage | None = None
    note: str | None = None
    if acc.usage is not None:
        try:
            usage = (Usage.from_anthropic(acc.usage) if isinstance(acc, AnthropicAccumulator)
                     else Usage.from_openai(acc.usage))
        except UsageError as exc:
            # a malformed usage object is priced as an estimate, not trusted, and said so
            note = f"the server's usage was not used ({exc}): tokens and cost are estimates"
        if m.completion_source != "usage":
            usage = None  # e.g. Anthropic's usage before the final message_delta
    if usage is not None:
        cost = cost_of(usage, pricing, kind="actual")
        return TurnFacts(m.ttft_s, m.tokens_per_s, m.duration_s, usage.prompt_tokens,
                         usage.cached_tokens, usage.completion_tokens,
                         usage.reasoning_tokens or None, "usage", "usage", acc.finish_reason,
                         request_id, cost)
    est = Usage(prompt_tokens=max(0, prompt_estimate), completion_tokens=m.completion_tokens)
    source: EstimateMethod = m.completion_source if m.completion_source != "usage" \
        else "chunks"
    return TurnFacts(m.ttft_s, m.tokens_per_s, m.duration_s, est.prompt_tokens, None,
                     est.completion_tokens, None, source, "estimate", acc.finish_reason,
                     request_id, cost_of(est, pricing, kind="estimate"), note)


def logprob_rows(items: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Chat logprobs content items -> table rows: token, logprob, probability, alternatives."""
    rows: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        lp = item.get("logprob")
        alts = [f"{a.get('token')!r} {math.exp(a['logprob']):.1%}"
                for a in item.get("top_logprobs") or []
                if isinstance(a, dict) and isinstance(a.get("logprob"), int | float)]
        rows.append({
            "#": i, "token": item.get("token"),
            "logprob": lp if isinstance(lp, int | float) else None,
            "probability": math.exp(lp) if isinstance(lp, int | float) else None,
            "alternatives": ", ".join(alts),
        })
    return rows


def conversation_messages(turns: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Playground turns -> OpenAI chat messages (error turns are not part of the chat)."""
    out: list[dict[str, Any]] = []
    for t in turns:
        role = t.get("role")
        if t.get("status") == "error":
            continue
        if role == "user":
            parts = media.parts_for(t.get("media"))
            text = str(t.get("content") or "")
            out.append({"role": "user", "content": [{"type": "text", "text": text}, *parts]
                        if parts else text})
        elif role == "assistant":
            msg: dict[str, Any] = {"role": "assistant", "content": str(t.get("content") or "")}
            if t.get("tool_calls"):
                msg["tool_calls"] = [dict(c) for c in t["tool_calls"]]
            out.append(msg)
        elif role == "tool":
            out.append({"role": "tool", "tool_call_id": t.get("tool_call_id"),
                        "content": str(t.get("content") or "")})
    return out


def unanswered_tool_calls(turns: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Tool calls of the last assistant turn that have no tool result after them yet."""
    for i in range(len(turns) - 1, -1, -1):
        t = turns[i]
        if t.get("role") == "assistant" and t.get("status") != "error":
            answered = {x.get("tool_call_id") for x in turns[i + 1:] if x.get("role") == "tool"}
            return [c for c in (t.get("tool_calls") or []) if c.get("id") not in answered]
        if t.get("role") == "user":
            return []
    return []


__all__ = [
    "AnthropicAccumulator",
    "TurnFacts",
    "conversation_messages",
    "logprob_rows",
    "turn_facts",
    "unanswered_tool_calls",
    "ChatAccumulator",
    "EstimateMethod",
    "ToolCall",
    "TurnMetrics",
    "anthropic_usage_view",
    "openai_usage_view",
]
