"""Request validation for the local engine, with Wafer's error codes.

Wafer pre-validates bodies and answers 422 `schema_validation_failed` with a `param` path
instead of passing unknown or ill-typed fields to the backend (which would ignore some of
them silently: llama-server drops `regex`, `ebnf`, `min_tokens`, `repetition_penalty`...).
Every field an endpoint accepts is listed here; anything else is rejected.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jsonschema

from wafer_playground.media import MediaRef, media_ref

DOCS = "https://docs.wafer.ai/errors#"

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}


class ApiError(Exception):
    """An error answer in Wafer's envelope."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        param: str | None = None,
        type: str | None = None,  # noqa: A002 - the envelope's field name
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.param = param
        self.type = type or _TYPES.get(status, "api_error")
        self.headers = headers or {}

    def envelope(self, request_id: str) -> dict[str, Any]:
        return {
            "type": self.type,
            "code": self.code,
            "message": self.message,
            "param": self.param,
            "request_id": request_id,
            "docs_url": DOCS + self.code,
        }


def schema_error(param: str, message: str) -> ApiError:
    return ApiError(422, "schema_validation_failed", message, param=param)


# --- primitive checks ---------------------------------------------------------------------

Check = Callable[[Any, str], None]


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def integer(lo: int | None = None, hi: int | None = None) -> Check:
    def check(v: Any, p: str) -> None:
        if not _is_int(v):
            raise schema_error(p, f"{p} must be an integer")
        if lo is not None and v < lo:
            raise schema_error(p, f"{p} must be >= {lo}, got {v}")
        if hi is not None and v > hi:
            raise schema_error(p, f"{p} must be <= {hi}, got {v}")

    return check


def number(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False) -> Check:
    def check(v: Any, p: str) -> None:
        if not _is_num(v):
            raise schema_error(p, f"{p} must be a finite number")
        if lo is not None and (v < lo or (lo_open and v == lo)):
            op = ">" if lo_open else ">="
            raise schema_error(p, f"{p} must be {op} {lo:g}, got {v}")
        if hi is not None and v > hi:
            raise schema_error(p, f"{p} must be <= {hi:g}, got {v}")

    return check


def boolean(v: Any, p: str) -> None:
    if not isinstance(v, bool):
        raise schema_error(p, f"{p} must be a boolean")


def string(v: Any, p: str) -> None:
    if not isinstance(v, str):
        raise schema_error(p, f"{p} must be a string")


def nonempty_string(v: Any, p: str) -> None:
    string(v, p)
    if not v:
        raise schema_error(p, f"{p} must not be empty")


def any_json(v: Any, p: str) -> None:
    return None


def stop(v: Any, p: str) -> None:
    if isinstance(v, str):
        return
    if not isinstance(v, list) or len(v) > 16:
        raise schema_error(p, f"{p} must be a string or an array of up to 16 strings")
    for i, s in enumerate(v):
        if not isinstance(s, str) or not s:
            raise schema_error(f"{p}[{i}]", f"{p}[{i}] must be a non-empty string")


def stream_options(v: Any, p: str) -> None:
    if not isinstance(v, dict):
        raise schema_error(p, f"{p} must be an object")
    for k, val in v.items():
        if k == "include_usage":
            boolean(val, f"{p}.include_usage")
        else:
            raise schema_error(f"{p}.{k}", f"Unsupported parameter '{p}.{k}'")


def logit_bias(v: Any, p: str) -> None:
    if not isinstance(v, dict):
        raise schema_error(p, f"{p} must be an object of token id -> bias")
    for k, val in v.items():
        if not str(k).lstrip("-").isdigit():
            raise schema_error(f"{p}.{k}", f"{p} keys must be token ids")
        number(-100, 100)(val, f"{p}.{k}")


def int_list(v: Any, p: str) -> None:
    if not isinstance(v, list):
        raise schema_error(p, f"{p} must be an array of integers")
    for i, x in enumerate(v):
        if not _is_int(x):
            raise schema_error(f"{p}[{i}]", f"{p}[{i}] must be an integer")


def obj(v: Any, p: str) -> None:
    if not isinstance(v, dict):
        raise schema_error(p, f"{p} must be an object")


def check_fields(body: dict[str, Any], spec: dict[str, Check], endpoint: str) -> None:
    """Reject unknown fields and type/range errors, in body order (first problem wins)."""
    for key, value in body.items():
        check = spec.get(key)
        if check is None:
            raise schema_error(key, f"Unsupported parameter '{key}' for {endpoint} on the local "
                                    "engine; unsupported parameters are rejected, not ignored")
        if value is None:
            continue  # explicit null means "default", as in the OpenAI SDKs
        check(value, key)


SAMPLING: dict[str, Check] = {
    "model": nonempty_string,
    "max_tokens": integer(1),
    "temperature": number(0, 2),
    "top_p": number(0, 1, lo_open=True),
    "top_k": integer(-1),
    "min_p": number(0, 1),
    "frequency_penalty": number(-2, 2),
    "presence_penalty": number(-2, 2),
    "repetition_penalty": number(0, 2, lo_open=True),
    "stop": stop,
    "stream": boolean,
    "stream_options": stream_options,
    "seed": integer(),
    "n": integer(1, 1),
    "logit_bias": logit_bias,
}

CHAT_FIELDS: dict[str, Check] = {
    **SAMPLING,
    "messages": any_json,  # checked in depth by check_messages
    "max_completion_tokens": integer(1),
    "tools": any_json,
    "tool_choice": any_json,
    "parallel_tool_calls": boolean,
    "response_format": any_json,
    "logprobs": boolean,
    "top_logprobs": integer(0, 20),
    "reasoning_effort": string,
    "thinking": any_json,
    "enable_thinking": boolean,
    "chat_template_kwargs": obj,
}

COMPLETION_FIELDS: dict[str, Check] = {
    **SAMPLING,
    "prompt": any_json,  # checked in depth by check_prompt
    "min_tokens": integer(0),
    "stop_token_ids": int_list,
    "ignore_eos": boolean,
    "ebnf": string,
    "regex": string,
    "json_schema": any_json,
    "logprobs": integer(0, 20),
    "echo": boolean,
    "return_token_ids": boolean,
}

MESSAGES_FIELDS: dict[str, Check] = {
    "model": nonempty_string,
    "max_tokens": integer(1),
    "messages": any_json,
    "system": any_json,
    "stream": boolean,
    "temperature": number(0, 1),
    "top_p": number(0, 1, lo_open=True),
    "top_k": integer(0),
    "stop_sequences": stop,
    "tools": any_json,
    "tool_choice": any_json,
    "thinking": any_json,
    "metadata": obj,
}


# --- deeper checks -------------------------------------------------------------------------

CHAT_ROLES = ("system", "developer", "user", "assistant", "tool")


def check_messages(messages: Any) -> list[MediaRef]:
    """Check chat messages; return the media parts they carry (well-formed, not resolved:
    the server resolves file ids and decides whether the model takes media)."""
    refs: list[MediaRef] = []
    if not isinstance(messages, list) or not messages:
        raise schema_error("messages", "messages must be a non-empty array")
    for i, m in enumerate(messages):
        p = f"messages[{i}]"
        if not isinstance(m, dict):
            raise schema_error(p, f"{p} must be an object")
        role = m.get("role")
        if role not in CHAT_ROLES:
            raise schema_error(f"{p}.role", f"{p}.role must be one of {', '.join(CHAT_ROLES)}")
        for k in m:
            if k not in ("role", "content", "name", "tool_calls", "tool_call_id",
                         "reasoning_content"):
                raise schema_error(f"{p}.{k}", f"Unsupported message field '{k}'")
        content = m.get("content")
        if content is None:
            if role != "assistant" or not m.get("tool_calls"):
                raise schema_error(f"{p}.content", f"{p}.content is required")
        elif isinstance(content, list):
            for j, part in enumerate(content):
                pp = f"{p}.content[{j}]"
                if not isinstance(part, dict) or "type" not in part:
                    raise schema_error(pp, f"{pp} must be a content part with a type")
                try:
                    ref = media_ref(part, pp)
                except ValueError as exc:
                    raise schema_error(str(exc).split(" ", 1)[0], str(exc)) from None
                if ref is not None:
                    refs.append(ref)
                    continue
                if part["type"] != "text" or not isinstance(part.get("text"), str):
                    raise schema_error(pp, f"{pp} must be a text part {{type: text, text}}")
        elif not isinstance(content, str):
            raise schema_error(f"{p}.content", f"{p}.content must be a string or an array")
        if role == "tool" and not isinstance(m.get("tool_call_id"), str):
            raise schema_error(f"{p}.tool_call_id", "tool messages need tool_call_id")
        if "tool_calls" in m and m["tool_calls"] is not None:
            if role != "assistant" or not isinstance(m["tool_calls"], list):
                raise schema_error(f"{p}.tool_calls", "tool_calls must be an array on an "
                                                      "assistant message")
            for j, tc in enumerate(m["tool_calls"]):
                fn = tc.get("function") if isinstance(tc, dict) else None
                if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
                    raise schema_error(f"{p}.tool_calls[{j}]",
                                       "each tool call needs function.name and arguments")
    return refs


def check_parameters_schema(schema: Any, param: str) -> None:
    """Wafer's rule: a tool's parameters must be a JSON-Schema object with `properties`."""
    ok = (isinstance(schema, dict) and schema.get("type") == "object"
          and isinstance(schema.get("properties"), dict))
    if ok:
        try:
            jsonschema.Draft202012Validator.check_schema(schema)
        except jsonschema.SchemaError as exc:
            raise ApiError(400, "tool_schema_invalid",
                           f"{param} is not a valid JSON Schema: {exc.message}",
                           param=param) from None
        return
    raise ApiError(400, "tool_schema_invalid",
                   f"{param} must be a JSON Schema object (type \"object\" with properties)",
                   param=param)


def check_tools(tools: Any, tool_choice: Any) -> list[str]:
    """Validate OpenAI tools + tool_choice; return the tool names."""
    names: list[str] = []
    if tools is not None:
        if not isinstance(tools, list):
            raise schema_error("tools", "tools must be an array")
        for i, t in enumerate(tools):
            p = f"tools[{i}]"
            if not isinstance(t, dict) or t.get("type") != "function":
                raise schema_error(f"{p}.type", f"{p}.type must be \"function\"")
            fn = t.get("function")
            if not isinstance(fn, dict):
                raise schema_error(f"{p}.function", f"{p}.function must be an object")
            name = fn.get("name")
            if not isinstance(name, str) or not name:
                raise schema_error(f"{p}.function.name", f"{p}.function.name is required")
            check_parameters_schema(fn.get("parameters"), f"{p}.function.parameters")
            names.append(name)
    if tool_choice is None:
        return names
    if isinstance(tool_choice, str):
        if tool_choice not in ("none", "auto", "required"):
            raise schema_error("tool_choice", "tool_choice must be none, auto, required or "
                                              "{type: function, function: {name}}")
        if tool_choice == "required" and not names:
            raise ApiError(400, "invalid_request_error",
                           "tool_choice \"required\" needs tools", param="tool_choice")
        return names
    if not isinstance(tool_choice, dict) or tool_choice.get("type") != "function":
        raise schema_error("tool_choice", "tool_choice object must be {type: function, ...}")
    fn = tool_choice.get("function")
    name = fn.get("name") if isinstance(fn, dict) else None
    if not isinstance(name, str):
        raise schema_error("tool_choice.function.name", "tool_choice.function.name is required")
    if name not in names:
        raise ApiError(400, "tool_choice_unknown_tool",
                       f"tool_choice names function '{name}', which is not among tools",
                       param="tool_choice.function.name")
    return names


def check_response_format(rf: Any) -> None:
    if not isinstance(rf, dict):
        raise schema_error("response_format", "response_format must be an object")
    kind = rf.get("type")
    if kind in ("text", "json_object"):
        return
    if kind != "json_schema":
        raise schema_error("response_format.type",
                           "response_format.type must be text, json_object or json_schema")
    js = rf.get("json_schema")
    if not isinstance(js, dict) or not isinstance(js.get("schema"), dict):
        raise schema_error("response_format.json_schema.schema",
                           "response_format.json_schema.schema must be an object")
    try:
        jsonschema.Draft202012Validator.check_schema(js["schema"])
    except jsonschema.SchemaError as exc:
        raise ApiError(400, "invalid_json_schema", f"Invalid JSON Schema: {exc.message}",
                       param="response_format.json_schema.schema") from None


def check_prompt(prompt: Any, n_vocab: int) -> list[list[int]]:
    """Wafer token-ID prompts: a non-empty id array, or an array of such arrays."""
    if isinstance(prompt, str) or (isinstance(prompt, list) and prompt
                                   and all(isinstance(x, str) for x in prompt)):
        raise ApiError(400, "invalid_prompt",
                       "prompt must be an array of token IDs (or an array of such arrays); "
                       "text prompts belong on /v1/chat/completions. Use /v1/tokenize to get "
                       "ids", param="prompt")
    if not isinstance(prompt, list) or not prompt:
        raise ApiError(400, "invalid_prompt", "Prompt cannot be empty: send a non-empty "
                                              "array of token IDs", param="prompt")
    batched = isinstance(prompt[0], list)
    batch = prompt if batched else [prompt]
    out: list[list[int]] = []
    for b, ids in enumerate(batch):
        p = f"prompt[{b}]" if batched else "prompt"
        if not isinstance(ids, list) or not ids:
            raise ApiError(400, "invalid_prompt", f"{p} must be a non-empty array of token IDs",
                           param=p)
        for i, t in enumerate(ids):
            if not _is_int(t):
                raise ApiError(400, "invalid_prompt", f"{p}[{i}] is not a token ID: {t!r}",
                               param=f"{p}[{i}]")
            if t < 0 or t >= n_vocab:
                raise ApiError(400, "invalid_token_id",
                               f"Token ID {t} at {p}[{i}] is outside the model's vocabulary "
                               f"(0..{n_vocab - 1})", param=f"{p}[{i}]")
        out.append(ids)
    return out


def check_token_ids(ids: Any, n_vocab: int, param: str) -> list[int]:
    int_list(ids, param)
    for i, t in enumerate(ids):
        if t < 0 or t >= n_vocab:
            raise ApiError(400, "invalid_token_id",
                           f"Token ID {t} at {param}[{i}] is outside the model's vocabulary "
                           f"(0..{n_vocab - 1})", param=f"{param}[{i}]")
    return list(ids)
