"""Chat parameters: the spec table, validation against a model card, request building.

One table (`SPECS`) drives the controls, validation and the request body, so a field cannot be
shown but not sent, or sent but not validated. "Only what the user changed is sent": a field
goes into the body only when its value differs from the spec default (the API's documented
default or "unset"), so the server's own defaults stay in charge otherwise.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from . import media
from .catalog import Model, format_tokens

Kind = Literal["float", "int", "bool", "text", "list", "choice", "json"]
Capability = Literal["tools", "reasoning"]

REASONING_EFFORTS = ("none", "low", "medium", "high", "max")
RESPONSE_FORMATS = ("text", "json_object", "json_schema")
TOOL_CHOICES = ("auto", "none", "required")
MAX_STOP = 4  # OpenAI's documented limit
_TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True)
class ParamSpec:
    name: str  # the body field (or UI-only name for system/schema/tools_json)
    label: str
    kind: Kind
    default: Any
    help: str
    min: float | None = None
    max: float | None = None
    step: float | None = None
    choices: tuple[Any, ...] = ()
    needs: Capability | None = None
    group: str = "Sampling"


SPECS: tuple[ParamSpec, ...] = (
    ParamSpec("system", "System prompt", "text", "", "Sent as the first message "
              "(role `system`); empty = no system message.", group="Prompt"),
    ParamSpec("max_tokens", "Max tokens", "int", None, "Upper bound on generated tokens "
              "(reasoning included). Empty = the server's default.", min=1, max=1_000_000,
              group="Length"),
    ParamSpec("temperature", "Temperature", "float", 1.0, "Randomness; 0 = deterministic.",
              min=0.0, max=2.0, step=0.05),
    ParamSpec("top_p", "Top-p", "float", 1.0, "Nucleus sampling: keep the smallest token set "
              "whose probability mass reaches p.", min=0.0, max=1.0, step=0.01),
    ParamSpec("top_k", "Top-k", "int", 0, "Keep only the k most likely tokens; 0 = off "
              "(not sent). On supported models.", min=0, max=200, step=1),
    ParamSpec("min_p", "Min-p", "float", 0.0, "Drop tokens below min_p × the top token's "
              "probability. On supported models.", min=0.0, max=1.0, step=0.01),
    ParamSpec("frequency_penalty", "Frequency penalty", "float", 0.0, "Penalise tokens by how "
              "often they already appeared.", min=-2.0, max=2.0, step=0.05),
    ParamSpec("presence_penalty", "Presence penalty", "float", 0.0, "Penalise tokens that "
              "appeared at all.", min=-2.0, max=2.0, step=0.05),
    ParamSpec("repetition_penalty", "Repetition penalty", "float", 1.0, "SGLang-style "
              "multiplicative penalty; 1 = off. On supported models.", min=0.01, max=2.0,
              step=0.01),
    ParamSpec("stop", "Stop sequences", "list", (), f"Up to {MAX_STOP} strings; generation "
              "stops before any of them.", group="Length"),
    ParamSpec("seed", "Seed", "int", None, "Fixed seed for repeatable sampling; empty = random.",
              min=0, max=2**63 - 1, group="Length"),
    ParamSpec("logprobs", "Log-probabilities", "bool", False, "Return the log-probability of "
              "each generated token.", group="Output"),
    ParamSpec("top_logprobs", "Top log-probs", "int", 0, "Alternatives per token (needs "
              "log-probabilities); 0 = not sent.", min=0, max=20, step=1, group="Output"),
    ParamSpec("response_format", "Response format", "choice", "text", "`json_object` = JSON "
              "mode; `json_schema` = structured output against the schema below.",
              choices=RESPONSE_FORMATS, group="Output"),
    ParamSpec("json_schema", "JSON schema", "json", "", "The schema for `json_schema` "
              "response format.", group="Output"),
    ParamSpec("tools", "Tools (JSON)", "json", "", "An array of OpenAI function tools. "
              "Validated before sending (Wafer rejects invalid ones with 400).",
              needs="tools", group="Tools"),
    ParamSpec("tool_choice", "Tool choice", "choice", "auto", "`auto`, `none`, `required`, "
              "or the name of one tool. Sent only with tools.", needs="tools", group="Tools"),
    ParamSpec("reasoning_effort", "Reasoning effort", "choice", None, "Wafer normalises this "
              "per model; unsupported values are rejected (400). Empty = model default.",
              choices=(None, *REASONING_EFFORTS), needs="reasoning", group="Reasoning"),
    ParamSpec("thinking", "Thinking", "choice", None, "`thinking: {type: enabled|disabled}`; "
              "reasoning is off by default on most routes.",
              choices=(None, "enabled", "disabled"), needs="reasoning", group="Reasoning"),
)
BY_NAME: dict[str, ParamSpec] = {s.name: s for s in SPECS}


@dataclass(frozen=True)
class ParamIssue:
    param: str
    message: str
    blocking: bool = True  # False: the field is simply left out of the request (said so)

    def __str__(self) -> str:
        return f"{self.param}: {self.message}"


def defaults() -> dict[str, Any]:
    return {s.name: s.default for s in SPECS}


SAMPLING = ("temperature", "top_p", "top_k", "min_p", "repetition_penalty")


def model_defaults(model: Model | None) -> dict[str, Any]:
    """The sampling values a model's card recommends, kept only where they are numbers
    within the parameter's range (cards are untrusted text)."""
    out: dict[str, Any] = {}
    for name, value in (model.recommended_sampling if model else {}).items():
        spec = BY_NAME.get(name)
        if name not in SAMPLING or spec is None or isinstance(value, bool) \
                or not isinstance(value, int | float) or not math.isfinite(value):
            continue
        if (spec.min is not None and value < spec.min) or \
                (spec.max is not None and value > spec.max):
            continue
        out[name] = int(value) if spec.kind == "int" else float(value)
    return out


def card_flag_reason(model: Model | None, flag: str, what: str) -> str | None:
    """Why the card's `chat_completions.<flag>: false` rules out `what`, or None."""
    if model is None or model.chat_completions.get(flag) is not False:
        return None
    return f"{model.display_name}'s card says chat_completions.{flag} is false ({what})"


def reasoning_choices(model: Model | None) -> tuple[str, ...]:
    """The effort values the reasoning control offers: the card's own list when it has a
    `reasoning_effort` block (values outside it are a 400), else every known value."""
    if model is not None and model.reasoning_effort is not None:
        return model.reasoning_effort.efforts
    return REASONING_EFFORTS


def reasoning_note(model: Model | None) -> str | None:
    """One line on how this model applies effort (from its card), or None."""
    block = model.reasoning_effort if model is not None else None
    if block is None:
        return None
    how = {"system_prompt": "through Wafer's system-prompt conditioning",
           "native_effort": "natively by the model"}.get(block.control or "", "")
    default = f"; default {block.default}" if block.default else ""
    return f"Effort is applied {how or 'as the card says'}: {', '.join(block.efforts)}{default}."


def unsupported_reason(spec: ParamSpec, model: Model | None) -> str | None:
    """Why this control is disabled for `model`, or None when it may be used."""
    if model is None or spec.needs is None:
        return None
    if spec.needs == "tools":
        # every page streams replies, so tools need tool_streaming too
        reason = (card_flag_reason(model, "tools", "no tool calling")
                  or card_flag_reason(model, "tool_streaming",
                                      "no tool calls while streaming, and replies stream here"))
        if reason:
            return reason
    flag = getattr(model, spec.needs)
    what = {"tools": "tool calling", "reasoning": "reasoning"}[spec.needs]
    if flag is False:
        return f"{model.display_name}'s card says it does not support {what}"
    if flag is None and spec.needs == "reasoning":
        # Reasoning knobs only where the card says so: unsupported effort values are a 400
        # and one route hung on them. A silent card on tools is let through.
        return f"{model.display_name}'s card does not list {what}"
    return None


def is_changed(spec: ParamSpec, value: Any) -> bool:
    if spec.kind == "list":
        return bool([s for s in (value or ()) if s != ""])
    if spec.kind in ("text", "json"):
        return bool(str(value or "").strip())
    if spec.kind == "float" and value is not None and spec.default is not None:
        return abs(float(value) - float(spec.default)) > 1e-9
    return value != spec.default


def changed(values: Mapping[str, Any]) -> dict[str, Any]:
    """The subset of `values` the user changed from the defaults."""
    return {k: v for k, v in values.items() if k in BY_NAME and is_changed(BY_NAME[k], v)}


def parse_json_field(name: str, text: str) -> tuple[Any, ParamIssue | None]:
    try:
        return json.loads(text), None
    except ValueError as exc:
        return None, ParamIssue(name, f"not valid JSON: {exc}")


def validate_tools(tools: Any) -> list[ParamIssue]:
    """Wafer's pre-validation (400 `tool_schema_invalid`), done before sending."""
    issues: list[ParamIssue] = []
    if not isinstance(tools, list) or not tools:
        return [ParamIssue("tools", "must be a non-empty JSON array of tool objects")]
    names: set[str] = set()
    for i, tool in enumerate(tools):
        where = f"tools[{i}]"
        if not isinstance(tool, dict):
            issues.append(ParamIssue(where, "must be an object"))
            continue
        if tool.get("type") != "function":
            issues.append(ParamIssue(f"{where}.type", 'must be "function"'))
        fn = tool.get("function")
        if not isinstance(fn, dict):
            issues.append(ParamIssue(f"{where}.function", "must be an object with a name"))
            continue
        name = fn.get("name")
        if not isinstance(name, str) or not _TOOL_NAME.match(name):
            issues.append(ParamIssue(f"{where}.function.name",
                                     "must be 1-64 letters, digits, _ or -"))
        elif name in names:
            issues.append(ParamIssue(f"{where}.function.name", f"duplicate name {name!r}"))
        else:
            names.add(name)
        params = fn.get("parameters")
        if params is None:
            continue
        pwhere = f"{where}.function.parameters"
        if not isinstance(params, dict) or params.get("type") != "object" \
                or not isinstance(params.get("properties"), dict):
            issues.append(ParamIssue(pwhere, 'must be a JSON Schema object with "type": '
                                             '"object" and "properties"'))
            continue
        try:
            Draft202012Validator.check_schema(params)
        except SchemaError as exc:
            path = "".join(f"[{p!r}]" for p in exc.path)
            issues.append(ParamIssue(pwhere + path, f"invalid JSON Schema: {exc.message}"))
    return issues


def tool_names(tools_json: str) -> list[str]:
    """Names of the tools in the editor, for the tool_choice picker (invalid JSON -> [])."""
    try:
        tools = json.loads(tools_json) if tools_json.strip() else []
    except ValueError:
        return []
    if not isinstance(tools, list):
        return []
    return [str(t["function"]["name"]) for t in tools if isinstance(t, dict)
            and isinstance(t.get("function"), dict) and t["function"].get("name")]


def validate(values: Mapping[str, Any], model: Model | None) -> list[ParamIssue]:
    """Every problem with the user's values for `model`, each naming the parameter."""
    issues: list[ParamIssue] = []
    ch = changed(values)
    for name, value in ch.items():
        spec = BY_NAME[name]
        reason = unsupported_reason(spec, model)
        if reason:
            issues.append(ParamIssue(name, f"not sent: {reason}", blocking=False))
            continue
        if spec.kind in ("float", "int") and value is not None:
            if spec.kind == "int" and (isinstance(value, bool) or not isinstance(value, int)):
                issues.append(ParamIssue(name, f"must be a whole number, got {value!r}"))
                continue
            if spec.min is not None and value < spec.min:
                issues.append(ParamIssue(name, f"{value} is below the minimum {spec.min:g}"))
            if spec.max is not None and value > spec.max:
                issues.append(ParamIssue(name, f"{value} is above the maximum {spec.max:g}"))
        if spec.kind == "choice" and spec.choices and value not in spec.choices \
                and name != "tool_choice":
            issues.append(ParamIssue(name, f"must be one of {', '.join(map(str, spec.choices))}"))
        elif name == "reasoning_effort" and value is not None \
                and value not in reasoning_choices(model) \
                and unsupported_reason(spec, model) is None:
            issues.append(ParamIssue(name, f"{value} is not offered by this model (its card "
                                           f"lists {', '.join(reasoning_choices(model))})"))
    max_tokens = ch.get("max_tokens")
    if isinstance(max_tokens, int) and model is not None:
        if model.max_output_tokens and max_tokens > model.max_output_tokens:
            issues.append(ParamIssue("max_tokens", f"{max_tokens} exceeds the model's max "
                                                   f"output of {model.max_output_tokens}"))
        elif model.context_length and max_tokens >= model.context_length:
            window = format_tokens(model.context_length)
            issues.append(ParamIssue("max_tokens", f"{max_tokens} does not fit the "
                                                   f"{window}-token context"))
    stops = [s for s in (values.get("stop") or ()) if s != ""]
    if len(stops) > MAX_STOP:
        issues.append(ParamIssue("stop", f"at most {MAX_STOP} sequences ({len(stops)} given)"))
    if ch.get("top_logprobs") and not values.get("logprobs"):
        issues.append(ParamIssue("top_logprobs", "needs log-probabilities turned on"))
    fmt = values.get("response_format") or "text"
    if fmt != "text":
        why = card_flag_reason(model, fmt, "pick another response format")
        if why:
            issues.append(ParamIssue("response_format", why))
        if str(values.get("tools") or "").strip() \
                and unsupported_reason(BY_NAME["tools"], model) is None:
            why = card_flag_reason(model, "tools_with_response_format",
                                   "send tools or a response format, not both")
            if why:
                issues.append(ParamIssue("tools", why))
    if fmt == "json_schema":
        text = str(values.get("json_schema") or "")
        if not text.strip():
            issues.append(ParamIssue("json_schema", "json_schema response format needs a "
                                                    "schema"))
        else:
            schema, err = parse_json_field("json_schema", text)
            if err:
                issues.append(err)
            elif not isinstance(schema, dict):
                issues.append(ParamIssue("json_schema", "must be a JSON object"))
            else:
                try:
                    Draft202012Validator.check_schema(schema)
                except SchemaError as exc:
                    issues.append(ParamIssue("json_schema", f"invalid JSON Schema: "
                                                            f"{exc.message}"))
    tools_text = str(values.get("tools") or "")
    if tools_text.strip() and unsupported_reason(BY_NAME["tools"], model) is None:
        tools, err = parse_json_field("tools", tools_text)
        if err:
            issues.append(err)
        else:
            issues.extend(validate_tools(tools))
            choice = values.get("tool_choice") or "auto"
            if choice not in TOOL_CHOICES and choice not in tool_names(tools_text):
                issues.append(ParamIssue("tool_choice", f"no tool named {choice!r} in tools"))
    elif values.get("tool_choice") not in (None, "auto", "none") and \
            unsupported_reason(BY_NAME["tools"], model) is None:
        issues.append(ParamIssue("tool_choice", "needs at least one tool"))
    return issues


def _response_format(values: Mapping[str, Any]) -> dict[str, Any] | None:
    fmt = values.get("response_format") or "text"
    if fmt == "json_object":
        return {"type": "json_object"}
    if fmt == "json_schema":
        schema = _loads_or_none(str(values.get("json_schema") or ""))
        if not isinstance(schema, dict):
            return None  # validate() reports it; a preview must not crash on half-typed JSON
        name = str(schema.get("title") or "response") if isinstance(schema, dict) else "response"
        name = re.sub(r"[^A-Za-z0-9_-]", "_", name)[:64] or "response"
        return {"type": "json_schema", "json_schema": {"name": name, "schema": schema,
                                                       "strict": True}}
    return None


def _loads_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _tool_choice(choice: str) -> str | dict[str, Any]:
    if choice in TOOL_CHOICES:
        return choice
    return {"type": "function", "function": {"name": choice}}


def build_chat_body(model: Model | str, messages: Sequence[Mapping[str, Any]],
                    values: Mapping[str, Any], *, always: Sequence[str] = ()) -> dict[str, Any]:
    """THE `/v1/chat/completions` body (Chat and Compare): model, messages, and only the
    changed fields, plus the fields in `always` even at their default (Compare shows every
    pane's temperature, top_p and max_tokens, so it sends them).

    Call `validate` first; fields the model cannot use (card says no) are left out here.
    """
    card = model if isinstance(model, Model) else None
    model_id = model.id if isinstance(model, Model) else model
    ch = changed(values)
    ch.update({k: values[k] for k in always if values.get(k) is not None})
    msgs: list[dict[str, Any]] = []
    if ch.get("system"):
        msgs.append({"role": "system", "content": str(ch["system"])})
    msgs.extend(dict(m) for m in messages)
    body: dict[str, Any] = {"model": model_id, "messages": msgs}
    for spec in SPECS:
        if spec.name not in ch or spec.name in ("system", "json_schema", "tool_choice",
                                                "response_format", "tools", "stop",
                                                "top_logprobs"):
            continue
        if unsupported_reason(spec, card):
            continue
        value = ch[spec.name]
        if spec.name == "thinking":
            value = {"type": value}
        body[spec.name] = value
    stops = [s for s in (values.get("stop") or ()) if s != ""]
    if stops:
        body["stop"] = stops
    if values.get("logprobs") and ch.get("top_logprobs"):
        body["top_logprobs"] = ch["top_logprobs"]
    rf = _response_format(values)
    if rf is not None:
        body["response_format"] = rf
    tools = _loads_or_none(str(ch["tools"])) if "tools" in ch else None
    if isinstance(tools, list) and not unsupported_reason(BY_NAME["tools"], card):
        body["tools"] = tools
        if "tool_choice" in ch:
            body["tool_choice"] = _tool_choice(str(ch["tool_choice"]))
    return body


# ---- the Anthropic Messages surface ------------------------------------------------------

DEFAULT_MESSAGES_MAX_TOKENS = 1024  # Messages requires max_tokens; used when none was set


def to_anthropic_messages(messages: Sequence[Mapping[str, Any]]) -> tuple[str | None,
                                                                            list[dict[str, Any]]]:
    """OpenAI chat history -> (system, Anthropic messages): tool calls become tool_use blocks,
    tool results become user tool_result blocks; consecutive same-role turns are merged."""
    system_parts: list[str] = []
    out: list[dict[str, Any]] = []

    def push(role: str, blocks: list[dict[str, Any]]) -> None:
        if out and out[-1]["role"] == role:
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})

    for m in messages:
        role = m.get("role")
        content = m.get("content") or ""
        if role == "system":
            system_parts.append(str(content))
        elif role == "user":
            # attachments never reach this surface (the Chat page refuses them on
            # /v1/messages); the text of a parts list is what remains
            text = media.split_content(content)[0] if isinstance(content, list) else content
            push("user", [{"type": "text", "text": str(text)}])
        elif role == "assistant":
            blocks: list[dict[str, Any]] = []
            if content:
                blocks.append({"type": "text", "text": str(content)})
            for call in m.get("tool_calls") or []:
                fn = call.get("function") or {}
                try:
                    args = json.loads(fn.get("arguments") or "{}")
                except ValueError:
                    args = {"_raw": fn.get("arguments")}
                blocks.append({"type": "tool_use", "id": call.get("id"),
                               "name": fn.get("name"), "input": args})
            if blocks:
                push("assistant", blocks)
        elif role == "tool":
            push("user", [{"type": "tool_result", "tool_use_id": m.get("tool_call_id"),
                           "content": str(content)}])
    # plain single-text turns read better as strings (and match what people write by hand)
    for msg in out:
        c = msg["content"]
        if len(c) == 1 and c[0]["type"] == "text":
            msg["content"] = c[0]["text"]
    return ("\n\n".join(system_parts) or None), out


def build_messages_body(model: Model | str, messages: Sequence[Mapping[str, Any]],
                        values: Mapping[str, Any]) -> dict[str, Any]:
    """The same conversation and settings as an Anthropic `/v1/messages` body."""
    card = model if isinstance(model, Model) else None
    model_id = model.id if isinstance(model, Model) else model
    ch = changed(values)
    system, msgs = to_anthropic_messages(
        ([{"role": "system", "content": ch["system"]}] if ch.get("system") else [])
        + [dict(m) for m in messages])
    body: dict[str, Any] = {"model": model_id,
                            "max_tokens": ch.get("max_tokens") or DEFAULT_MESSAGES_MAX_TOKENS,
                            "messages": msgs}
    if system:
        body["system"] = system
    for name in ("temperature", "top_p", "top_k"):
        if name in ch:
            body[name] = ch[name]
    stops = [s for s in (values.get("stop") or ()) if s != ""]
    if stops:
        body["stop_sequences"] = stops
    if "thinking" in ch and not unsupported_reason(BY_NAME["thinking"], card):
        if ch["thinking"] == "enabled":
            # Anthropic requires budget_tokens < max_tokens: half the output for thinking
            budget = max(1, int(body["max_tokens"]) // 2)
            body["thinking"] = {"type": "enabled", "budget_tokens": budget}
        else:
            body["thinking"] = {"type": "disabled"}
    tools = _loads_or_none(str(ch["tools"])) if "tools" in ch else None
    if isinstance(tools, list) and not unsupported_reason(BY_NAME["tools"], card) \
            and not validate_tools(tools):
        body["tools"] = [{"name": t["function"]["name"],
                          "description": t["function"].get("description", ""),
                          "input_schema": t["function"].get("parameters")
                          or {"type": "object", "properties": {}}} for t in tools]
        choice = str(values.get("tool_choice") or "auto")
        if "tool_choice" in ch:
            body["tool_choice"] = ({"type": "any"} if choice == "required" else
                                   {"type": choice} if choice in TOOL_CHOICES else
                                   {"type": "tool", "name": choice})
    return body


def messages_dropped_fields(values: Mapping[str, Any]) -> list[str]:
    """Changed fields the Messages surface has no equivalent for (said in the UI)."""
    kept = {"system", "max_tokens", "temperature", "top_p", "top_k", "stop", "thinking",
            "tools", "tool_choice"}
    return [k for k in changed(values) if k not in kept]


# ---- context-window estimate --------------------------------------------------------------

CHARS_PER_TOKEN = 4  # heuristic; labelled "estimate" wherever shown
PER_MESSAGE_OVERHEAD = 4  # role markers and separators of a chat template


def estimate_tokens(text: str) -> int:
    return (len(text) + CHARS_PER_TOKEN - 1) // CHARS_PER_TOKEN


def estimate_prompt_tokens(body: Mapping[str, Any]) -> int:
    """THE prompt-token estimate of a request body, any surface: chars/4 plus the chat
    template's overhead (an estimate, not a count). A token-id prompt is counted exactly.
    The spend guard errs high on top of this (wafer_playground/guard.py)."""
    prompt = body.get("prompt")
    if isinstance(prompt, list) and all(isinstance(i, int) for i in prompt):
        return len(prompt)
    if isinstance(prompt, str):
        return estimate_tokens(prompt)
    total = 3  # the assistant turn header
    system = body.get("system")  # the Messages surface carries it outside `messages`
    if isinstance(system, str) and system:
        total += PER_MESSAGE_OVERHEAD + estimate_tokens(system)
    elif isinstance(system, list):
        total += PER_MESSAGE_OVERHEAD + estimate_tokens(json.dumps(system))
    for m in body.get("messages") or []:
        total += PER_MESSAGE_OVERHEAD
        content = m.get("content")
        if isinstance(content, str):
            total += estimate_tokens(content)
        elif isinstance(content, list):  # parts: their text, plus a guess per medium
            text, n_media = media.split_content(content)
            total += estimate_tokens(text) + n_media * media.MEDIA_TOKENS_GUESS
        elif content is not None:
            total += estimate_tokens(json.dumps(content))
        if m.get("tool_calls"):
            total += estimate_tokens(json.dumps(m["tool_calls"]))
    if body.get("tools"):
        total += estimate_tokens(json.dumps(body["tools"]))
    if body.get("response_format"):
        total += estimate_tokens(json.dumps(body["response_format"]))
    return total


@dataclass(frozen=True)
class ContextCheck:
    prompt_tokens: int  # estimated
    reserved_output: int  # max_tokens if set, else 0
    limit: int | None
    level: Literal["ok", "warn", "over", "unknown"]
    message: str

    @property
    def fraction(self) -> float:
        if not self.limit:
            return 0.0
        return min(1.0, (self.prompt_tokens + self.reserved_output) / self.limit)


def context_check(body: Mapping[str, Any], model: Model | None) -> ContextCheck:
    """Will this request fit `max_model_len`? Warn at 80 %, refuse-level when over."""
    prompt = estimate_prompt_tokens(body)
    out = int(body.get("max_tokens") or 0)
    limit = model.context_length if model else None
    if not limit:
        return ContextCheck(prompt, out, None, "unknown",
                            f"≈{prompt:,} prompt tokens (estimated); the model card gives no "
                            "context length")
    used = prompt + out
    pct = used / limit * 100
    what = f"≈{prompt:,} prompt" + (f" + {out:,} max_tokens" if out else "") + \
        f" of the {format_tokens(limit)} context ({pct:.0f} %, estimated)"
    if used > limit:
        return ContextCheck(prompt, out, limit, "over",
                            f"{what}: the server will likely reject this "
                            "(context_length_exceeded). Shorten the chat or lower max_tokens.")
    if pct >= 80:
        return ContextCheck(prompt, out, limit, "warn", f"{what}: close to the limit")
    return ContextCheck(prompt, out, limit, "ok", what)


__all__ = [
    "BY_NAME", "SPECS", "ContextCheck", "ParamIssue", "ParamSpec", "build_chat_body",
    "build_messages_body", "changed", "context_check", "defaults", "estimate_prompt_tokens",
    "estimate_tokens", "is_changed", "messages_dropped_fields", "model_defaults",
    "to_anthropic_messages",
    "tool_names", "unsupported_reason", "validate", "validate_tools",
]
