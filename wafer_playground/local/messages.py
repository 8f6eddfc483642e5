"""Anthropic Messages <-> OpenAI chat translation for the local engine's /v1/messages.

The local models run behind llama-server's OpenAI chat endpoint; this module turns an
Anthropic request into that shape (after validating it like Wafer would) and turns the
answer, or the chunk stream, back into Anthropic's message / event shapes.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from wafer_playground.local.validation import (
    ApiError,
    check_parameters_schema,
    schema_error,
)


def _text_of(blocks: Any, p: str) -> str:
    """Text of a string or an array of text blocks (system prompts, tool results)."""
    if isinstance(blocks, str):
        return blocks
    if not isinstance(blocks, list):
        raise schema_error(p, f"{p} must be a string or an array of text blocks")
    out = []
    for i, b in enumerate(blocks):
        if not isinstance(b, dict) or b.get("type") != "text" or not isinstance(b.get("text"), str):
            if isinstance(b, dict) and b.get("type") == "image":
                raise ApiError(400, "model_capability_unsupported",
                               "This local model has no vision support", param=f"{p}[{i}]")
            raise schema_error(f"{p}[{i}]", f"{p}[{i}] must be a text block")
        out.append(b["text"])
    return "\n".join(out)


def check_thinking(thinking: Any) -> None:
    if thinking is None:
        return
    if not isinstance(thinking, dict) or thinking.get("type") not in ("enabled", "disabled",
                                                                       "adaptive"):
        raise schema_error("thinking", "thinking must be {type: enabled|disabled, ...}")
    if thinking["type"] != "disabled":
        raise ApiError(400, "reasoning_not_supported",
                       "This model does not support reasoning (capabilities.reasoning is "
                       "false); omit thinking or send {\"type\": \"disabled\"}", param="thinking")


def to_openai(body: dict[str, Any]) -> dict[str, Any]:
    """Validate an Anthropic request body and return the OpenAI chat fields it maps to."""
    out: list[dict[str, Any]] = []
    if body.get("system") is not None:
        out.append({"role": "system", "content": _text_of(body["system"], "system")})
    msgs = body.get("messages")
    if not isinstance(msgs, list) or not msgs:
        raise schema_error("messages", "messages must be a non-empty array")
    for i, m in enumerate(msgs):
        p = f"messages[{i}]"
        if not isinstance(m, dict) or m.get("role") not in ("user", "assistant"):
            raise schema_error(f"{p}.role", f"{p}.role must be user or assistant")
        extra = set(m) - {"role", "content"}
        if extra:
            k = sorted(extra)[0]
            raise schema_error(f"{p}.{k}", f"Unsupported message field '{k}'")
        role, content = m["role"], m.get("content")
        if isinstance(content, str):
            out.append({"role": role, "content": content})
            continue
        if not isinstance(content, list):
            raise schema_error(f"{p}.content", f"{p}.content must be a string or blocks")
        texts: list[str] = []
        calls: list[dict[str, Any]] = []
        for j, b in enumerate(content):
            bp = f"{p}.content[{j}]"
            kind = b.get("type") if isinstance(b, dict) else None
            if kind == "text" and isinstance(b.get("text"), str):
                texts.append(b["text"])
            elif kind == "image":
                raise ApiError(400, "model_capability_unsupported",
                               "This local model has no vision support", param=bp)
            elif kind in ("thinking", "redacted_thinking"):
                raise ApiError(400, "reasoning_not_supported",
                               "This model does not support reasoning; remove thinking blocks",
                               param=bp)
            elif kind == "tool_use" and role == "assistant":
                if not isinstance(b.get("id"), str) or not isinstance(b.get("name"), str):
                    raise schema_error(bp, f"{bp} needs id and name")
                calls.append({"id": b["id"], "type": "function", "function": {
                    "name": b["name"], "arguments": json.dumps(b.get("input", {}))}})
            elif kind == "tool_result" and role == "user":
                if not isinstance(b.get("tool_use_id"), str):
                    raise schema_error(f"{bp}.tool_use_id", f"{bp}.tool_use_id is required")
                res = b.get("content", "")
                text = _text_of(res, f"{bp}.content") if res else ""
                if b.get("is_error"):
                    text = "Error: " + text
                # tool messages must directly follow the assistant turn that called the tool
                out.append({"role": "tool", "tool_call_id": b["tool_use_id"], "content": text})
            else:
                raise schema_error(bp, f"{bp} has an unsupported block type {kind!r} for role "
                                       f"{role}")
        if role == "assistant":
            msg: dict[str, Any] = {"role": "assistant", "content": "".join(texts) or None}
            if calls:
                msg["tool_calls"] = calls
            elif msg["content"] is None:
                msg["content"] = ""
            out.append(msg)
        elif texts:
            out.append({"role": "user", "content": "\n".join(texts)})
    result: dict[str, Any] = {"messages": out}

    tools = body.get("tools")
    names: list[str] = []
    if tools is not None:
        if not isinstance(tools, list):
            raise schema_error("tools", "tools must be an array")
        oa_tools = []
        for i, t in enumerate(tools):
            if not isinstance(t, dict) or not isinstance(t.get("name"), str) or not t["name"]:
                raise schema_error(f"tools[{i}].name", f"tools[{i}].name is required")
            check_parameters_schema(t.get("input_schema"), f"tools[{i}].input_schema")
            names.append(t["name"])
            fn: dict[str, Any] = {"name": t["name"], "parameters": t["input_schema"]}
            if isinstance(t.get("description"), str):
                fn["description"] = t["description"]
            oa_tools.append({"type": "function", "function": fn})
        result["tools"] = oa_tools
    tc = body.get("tool_choice")
    if tc is not None:
        if not isinstance(tc, dict) or tc.get("type") not in ("auto", "any", "tool", "none"):
            raise schema_error("tool_choice", "tool_choice.type must be auto, any, tool or none")
        if tc["type"] == "tool":
            if tc.get("name") not in names:
                raise ApiError(400, "tool_choice_unknown_tool",
                               f"tool_choice names tool {tc.get('name')!r}, which is not among "
                               "tools", param="tool_choice.name")
            result["tool_choice"] = {"type": "function", "function": {"name": tc["name"]}}
        else:
            if tc["type"] == "any" and not names:
                raise ApiError(400, "invalid_request_error", "tool_choice any needs tools",
                               param="tool_choice")
            result["tool_choice"] = {"auto": "auto", "any": "required",
                                     "none": "none"}[tc["type"]]
        if tc.get("disable_parallel_tool_use") is True:
            result["parallel_tool_calls"] = False
    check_thinking(body.get("thinking"))
    return result


def new_message_id() -> str:
    return "msg_" + secrets.token_hex(12)


def stop_reason(finish_reason: str | None, verbose: dict[str, Any] | None
                ) -> tuple[str, str | None]:
    if finish_reason == "tool_calls":
        return "tool_use", None
    if finish_reason == "length":
        return "max_tokens", None
    if verbose and verbose.get("stop_type") == "word" and verbose.get("stopping_word"):
        return "stop_sequence", str(verbose["stopping_word"])
    return "end_turn", None


def _parse_args(raw: str | None) -> Any:
    try:
        return json.loads(raw or "{}")
    except ValueError:
        return {"_raw_arguments": raw}  # keep what the model produced rather than drop it


def anthropic_usage(usage: dict[str, Any]) -> dict[str, int]:
    prompt = int(usage.get("prompt_tokens", 0))
    cached = int((usage.get("prompt_tokens_details") or {}).get("cached_tokens", 0) or 0)
    return {
        "input_tokens": prompt - cached,  # Anthropic counts cache reads separately
        "output_tokens": int(usage.get("completion_tokens", 0)),
        "cache_read_input_tokens": cached,
        "cache_creation_input_tokens": 0,
    }


def from_openai(data: dict[str, Any], model: str) -> dict[str, Any]:
    choice = (data.get("choices") or [{}])[0]
    msg = choice.get("message") or {}
    content: list[dict[str, Any]] = []
    if msg.get("content"):
        content.append({"type": "text", "text": msg["content"]})
    for tc in msg.get("tool_calls") or []:
        fn = tc.get("function") or {}
        content.append({"type": "tool_use", "id": tc.get("id") or "toolu_" + secrets.token_hex(8),
                        "name": fn.get("name", ""), "input": _parse_args(fn.get("arguments"))})
    reason, seq = stop_reason(choice.get("finish_reason"), data.get("__verbose"))
    return {
        "id": new_message_id(),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": reason,
        "stop_sequence": seq,
        "usage": anthropic_usage(data.get("usage") or {}),
    }


def sse_event(name: str, data: dict[str, Any]) -> bytes:
    return (f"event: {name}\ndata: "
            + json.dumps(data, separators=(",", ":"), ensure_ascii=False) + "\n\n").encode()


class StreamTranslator:
    """Turns OpenAI chat chunks into Anthropic stream events, one block at a time."""

    def __init__(self, model: str, input_tokens: int) -> None:
        self.model = model
        self.input_tokens = input_tokens
        self.index = -1
        self.open: str | None = None  # "text" | "tool_use"
        self.tool_slots: dict[int, int] = {}  # OpenAI tool index -> block index
        self.finish_reason: str | None = None
        self.verbose: dict[str, Any] | None = None
        self.started_content = False

    def start(self) -> bytes:
        msg: dict[str, Any] = {
            "id": new_message_id(), "type": "message", "role": "assistant",
            "model": self.model, "content": [], "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": self.input_tokens, "output_tokens": 0,
                      "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0}}
        return sse_event("message_start", {"type": "message_start", "message": msg}) + \
            sse_event("ping", {"type": "ping"})

    def _close(self) -> bytes:
        if self.open is None:
            return b""
        self.open = None
        return sse_event("content_block_stop", {"type": "content_block_stop",
                                                "index": self.index})

    def _open(self, block: dict[str, Any], kind: str) -> bytes:
        out = self._close()
        self.index += 1
        self.open = kind
        return out + sse_event("content_block_start", {"type": "content_block_start",
                                                       "index": self.index,
                                                       "content_block": block})

    def feed(self, chunk: dict[str, Any]) -> bytes:
        if "__verbose" in chunk:
            self.verbose = chunk["__verbose"]
        out = b""
        for ch in chunk.get("choices") or []:
            if ch.get("finish_reason"):
                self.finish_reason = ch["finish_reason"]
            delta = ch.get("delta") or {}
            text = delta.get("content")
            if text:
                self.started_content = True
                if self.open != "text":
                    out += self._open({"type": "text", "text": ""}, "text")
                out += sse_event("content_block_delta", {
                    "type": "content_block_delta", "index": self.index,
                    "delta": {"type": "text_delta", "text": text}})
            for tc in delta.get("tool_calls") or []:
                self.started_content = True
                i = int(tc.get("index", 0))
                fn = tc.get("function") or {}
                if i not in self.tool_slots:
                    out += self._open({"type": "tool_use",
                                       "id": tc.get("id") or "toolu_" + secrets.token_hex(8),
                                       "name": fn.get("name", ""), "input": {}}, "tool_use")
                    self.tool_slots[i] = self.index
                if fn.get("arguments"):
                    out += sse_event("content_block_delta", {
                        "type": "content_block_delta", "index": self.tool_slots[i],
                        "delta": {"type": "input_json_delta", "partial_json": fn["arguments"]}})
        return out

    def finish(self, usage: dict[str, Any]) -> bytes:
        out = self._close()
        reason, seq = stop_reason(self.finish_reason, self.verbose)
        u = anthropic_usage(usage)
        out += sse_event("message_delta", {
            "type": "message_delta", "delta": {"stop_reason": reason, "stop_sequence": seq},
            "usage": {"output_tokens": u["output_tokens"], "input_tokens": u["input_tokens"],
                      "cache_read_input_tokens": u["cache_read_input_tokens"]}})
        return out + sse_event("message_stop", {"type": "message_stop"})
