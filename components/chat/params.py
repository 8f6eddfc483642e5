"""Chat parameter controls, drawn in a fragment.

Measured: a slider move outside a fragment reruns the page and aborts a running
stream; inside a fragment only the fragment reruns and the stream survives. Values live in a
durable plain dict (`chat_params`) so they survive page switches (widget keys do not).
"""

from __future__ import annotations

import json
import math
from decimal import Decimal, InvalidOperation
from typing import Any

import streamlit as st

from components import presentation
from components.history import share_panel
from wafer_playground.catalog import Model
from wafer_playground.params import (
    BY_NAME,
    REASONING_EFFORTS,
    RESPONSE_FORMATS,
    TOOL_CHOICES,
    ParamSpec,
    card_flag_reason,
    changed,
    defaults,
    model_defaults,
    reasoning_choices,
    reasoning_note,
    tool_names,
    unsupported_reason,
    validate,
)
from wafer_playground.share import ShareState
from wafer_playground.untrusted import md_text

PARAMS = "chat_params"
COST_CAP = "chat_cost_cap"  # durable: the user's "max $ per request" (None = no cap)
_COST_CAP_W = "chat_p_cost_cap"
TAB = "chat_p_tab"  # the open tab of the panel (st.tabs state: its label)
EXAMPLE_TOOLS = [{
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {"type": "object",
                       "properties": {"city": {"type": "string", "description": "City name"},
                                      "unit": {"type": "string",
                                               "enum": ["celsius", "fahrenheit"]}},
                       "required": ["city"]},
    },
}]
EXAMPLE_SCHEMA = {"title": "answer", "type": "object",
                  "properties": {"answer": {"type": "string"},
                                 "confidence": {"type": "number"}},
                  "required": ["answer", "confidence"]}


def _k(name: str) -> str:
    return f"chat_p_{name}"


def values() -> dict[str, Any]:
    """The current parameter values (durable; defaults on first use)."""
    stored = st.session_state.setdefault(PARAMS, defaults())
    for k, v in defaults().items():
        stored.setdefault(k, v)
    return dict(stored)


DEFAULT = "default"  # selectboxes treat None as "nothing selected": a visible sentinel
_SENTINEL_FIELDS = ("reasoning_effort", "thinking")


def _to_widget(name: str, value: Any) -> Any:
    if name in _SENTINEL_FIELDS and value is None:
        return DEFAULT
    return list(value) if isinstance(value, tuple) else value


def _from_widget(name: str, value: Any) -> Any:
    if name in _SENTINEL_FIELDS and value == DEFAULT:
        return None
    return tuple(value) if isinstance(value, list) else value


def _seed_widgets(vals: dict[str, Any]) -> None:
    for name, value in vals.items():
        key = _k(name)
        if key not in st.session_state:
            st.session_state[key] = _to_widget(name, value)


def cost_cap() -> Decimal | None:
    """The user's per-request spend cap; 0 or empty means no cap."""
    raw = st.session_state.get(COST_CAP)
    if raw is None:
        return None
    try:
        cap = Decimal(str(raw))
    except InvalidOperation:
        return None
    return cap if cap > 0 else None


_CHOICES: dict[str, tuple[Any, ...]] = {
    "response_format": tuple(RESPONSE_FORMATS),
    "reasoning_effort": (None, *REASONING_EFFORTS),
    "thinking": (None, "enabled", "disabled"),
}


def _shared_value(name: str, value: Any) -> tuple[bool, Any]:
    """(usable, value) for one shared parameter: a link must never crash a widget, so
    values are coerced to the widget's type and clamped to its range, or dropped."""
    spec = BY_NAME.get(name)
    if spec is None or name == "system":
        return False, None
    if value is None:
        return True, None
    if name in _CHOICES:
        return value in _CHOICES[name], value
    if spec.kind in ("int", "float"):
        if isinstance(value, bool) or not isinstance(value, int | float) \
                or not math.isfinite(value):
            return False, None
        lo = spec.min if spec.min is not None else value
        hi = spec.max if spec.max is not None else value
        v = min(max(value, lo), hi)
        return True, int(v) if spec.kind == "int" else float(v)
    if spec.kind == "bool":
        return isinstance(value, bool), value
    if spec.kind == "list":
        ok = isinstance(value, list | tuple) and all(isinstance(x, str) for x in value)
        return ok, tuple(value) if ok else None
    return isinstance(value, str), value


def apply_shared(state: ShareState, model: Model | None = None) -> list[str]:
    """Put a share link's parameters and system prompt into the controls (once, before
    the panel draws). Returns the names that could not be applied."""
    stored = st.session_state.setdefault(PARAMS, defaults())
    skipped = []
    for name, value in state.params.items():
        ok, v = _shared_value(name, value)
        limit = (model.max_output_tokens or model.context_length) if model else None
        if ok and name == "max_tokens" and limit and isinstance(v, int):
            v = min(v, limit)  # the widget's own maximum for this model
        if not ok:
            skipped.append(name)
            continue
        stored[name] = v
        st.session_state[_k(name)] = _to_widget(name, v)
    if state.prompt is not None:
        stored["system"] = state.prompt
        st.session_state[_k("system")] = state.prompt
    return skipped


def share_state(model: Model | None, vals: dict[str, Any]) -> ShareState:
    """The page's shareable setup: model, changed parameters, system prompt. Never the
    conversation, never the connection (keys live only in the sidebar's session state)."""
    ch = changed(vals)
    system = str(ch.pop("system", "") or "") or None
    params = {k: list(v) if isinstance(v, tuple) else v for k, v in ch.items()}
    return ShareState(page="chat", model=model.id if model else None, params=params,
                      prompt=system)


def _reset() -> None:
    st.session_state[PARAMS] = defaults()
    for name, value in defaults().items():
        st.session_state[_k(name)] = _to_widget(name, value)


_DEFAULTS_FOR = "chat_model_defaults_for"  # (model id, the values applied for it)


def _apply_model_defaults(model: Model | None) -> dict[str, Any]:
    """Start from the selected model's recommended sampling when the user has not set
    those parameters themselves; undo them when moving to a model without any. Returns
    the recommended values in force (for the label)."""
    wanted = model_defaults(model)
    model_id = model.id if model else None
    prior_id, prior = st.session_state.get(_DEFAULTS_FOR, (None, {}))
    if prior_id == model_id:
        return {k: v for k, v in wanted.items() if values().get(k) == v}
    stored = st.session_state.setdefault(PARAMS, defaults())
    api = defaults()
    names = set(wanted) | set(prior)
    untouched = all(stored.get(n) in (api[n], prior.get(n)) for n in names)
    if untouched:
        for name in names:
            value = wanted.get(name, api[name])
            stored[name] = value
            st.session_state[_k(name)] = _to_widget(name, value)
    st.session_state[_DEFAULTS_FOR] = (model_id, wanted if untouched else {})
    return wanted if untouched else {}


def _insert_example_tools() -> None:
    st.session_state[_k("tools")] = json.dumps(EXAMPLE_TOOLS, indent=2)


def _insert_example_schema() -> None:
    st.session_state[_k("json_schema")] = json.dumps(EXAMPLE_SCHEMA, indent=2)


def _help(spec: ParamSpec, reason: str | None) -> str:
    return spec.help + (f"\n\n**Disabled:** {md_text(reason, 300)}." if reason else "")


def _slider(spec: ParamSpec, model: Model | None) -> None:
    reason = unsupported_reason(spec, model)
    if spec.kind == "int":
        st.slider(spec.label, int(spec.min or 0), int(spec.max or 0), step=int(spec.step or 1),
                  key=_k(spec.name), help=_help(spec, reason), disabled=bool(reason))
    else:
        st.slider(spec.label, float(spec.min or 0), float(spec.max or 0),
                  step=float(spec.step or 0.01), key=_k(spec.name), help=_help(spec, reason),
                  disabled=bool(reason))


def _sampling(model: Model | None) -> None:
    """Temperature and the other sampling sliders."""
    for name in ("temperature", "top_p", "top_k", "min_p", "frequency_penalty",
                 "presence_penalty", "repetition_penalty"):
        _slider(BY_NAME[name], model)


def _length(model: Model | None) -> None:
    """Max tokens, stop sequences, seed and the spend guard."""
    limit = (model.max_output_tokens or model.context_length) if model else None
    st.number_input("Max tokens", min_value=1, max_value=limit or None, step=64,
                    key=_k("max_tokens"), placeholder="server default",
                    help=BY_NAME["max_tokens"].help
                    + (f" This model allows up to {limit:,}." if limit else ""))
    st.multiselect("Stop sequences", options=[], key=_k("stop"),
                   accept_new_options=True, max_selections=4,
                   placeholder="type a sequence, press Enter", help=BY_NAME["stop"].help)
    st.number_input("Seed", min_value=0, step=1, key=_k("seed"), placeholder="random",
                    help=BY_NAME["seed"].help)
    st.number_input("Max $ per request", min_value=0.0, step=0.01, format="%.4f",
                    key=_COST_CAP_W, placeholder="no cap",
                    help="Spend guard: a message is not sent when its worst case (the "
                         "prompt plus the full max_tokens at list price) could cost more. "
                         "0 or empty = no cap.")


def _output(model: Model | None) -> None:
    """Log-probabilities and the response format."""
    st.toggle("Log-probabilities", key=_k("logprobs"), help=BY_NAME["logprobs"].help)
    st.slider("Top log-probs", 0, 20, key=_k("top_logprobs"),
              disabled=not st.session_state.get(_k("logprobs")),
              help=_help(BY_NAME["top_logprobs"], None if st.session_state.get(
                  _k("logprobs")) else "turn on log-probabilities first"))
    st.radio("Response format", RESPONSE_FORMATS, key=_k("response_format"),
             horizontal=True, help=BY_NAME["response_format"].help,
             format_func={"text": "Text", "json_object": "JSON mode",
                          "json_schema": "JSON schema"}.get)
    for fmt in ("json_object", "json_schema"):
        why = card_flag_reason(model, fmt, "not offered")
        if why:
            st.caption(f":material/block: {md_text(why, 300)}.")
    if st.session_state.get(_k("response_format")) == "json_schema":
        st.text_area("JSON schema", key=_k("json_schema"), height=180,
                     help=BY_NAME["json_schema"].help)
        st.button("Insert example schema", key="chat_p_ex_schema", type="tertiary",
                  on_click=_insert_example_schema)


def _tools(model: Model | None) -> None:
    """Tools and tool choice."""
    reason = unsupported_reason(BY_NAME["tools"], model)
    if reason:
        st.caption(f":material/block: Tools disabled: {md_text(reason, 300)}.")
    st.text_area("Tools (JSON array)", key=_k("tools"), height=180, disabled=bool(reason),
                 help=_help(BY_NAME["tools"], reason), placeholder='[{"type": "function", …}]')
    names = tool_names(str(st.session_state.get(_k("tools")) or ""))
    options = [*TOOL_CHOICES, *names]
    if st.session_state.get(_k("tool_choice")) not in options:
        st.session_state[_k("tool_choice")] = "auto"
    st.selectbox("Tool choice", options, key=_k("tool_choice"), disabled=bool(reason),
                 help=_help(BY_NAME["tool_choice"], reason),
                 format_func=lambda c: c if c in TOOL_CHOICES else f"function: {c}")
    st.button("Insert example tool", key="chat_p_ex_tools", type="tertiary",
              on_click=_insert_example_tools, disabled=bool(reason))


def _reasoning(model: Model | None) -> None:
    """Reasoning effort and thinking."""
    reason = unsupported_reason(BY_NAME["reasoning_effort"], model)
    if reason:
        st.caption(f":material/block: Reasoning controls disabled: {md_text(reason, 300)}.")
    efforts = (DEFAULT, *reasoning_choices(model))  # the card's own list, if it has one
    if st.session_state.get(_k("reasoning_effort")) not in efforts:
        st.session_state[_k("reasoning_effort")] = DEFAULT
    note = reasoning_note(model)
    if note and not reason:
        st.caption(md_text(note, 300))
    st.selectbox("Reasoning effort", efforts,
                 key=_k("reasoning_effort"),
                 format_func=lambda v: "model default" if v == DEFAULT else v,
                 disabled=bool(reason), help=_help(BY_NAME["reasoning_effort"], reason))
    st.selectbox("Thinking", (DEFAULT, "enabled", "disabled"), key=_k("thinking"),
                 format_func=lambda v: "model default" if v == DEFAULT else v,
                 disabled=bool(reason), help=_help(BY_NAME["thinking"], reason))


SUMMARY_SKIP = ("system", "tools", "json_schema")  # long text: named, not quoted


def summary_line(model: Model | None) -> str:
    """The parameters as one line (presentation mode): only what is sent."""
    vals = values()
    parts = []
    for name in changed(vals):
        if unsupported_reason(BY_NAME[name], model):
            continue
        parts.append(name if name in SUMMARY_SKIP else f"{name} {vals[name]}")
    caps = presentation.caps()
    if caps is not None and caps.max_tokens and not vals.get("max_tokens"):
        parts.append(f"max_tokens {caps.max_tokens} (cap)")
    return "Parameters · " + (" · ".join(parts[:6]) if parts else "API defaults")


@st.fragment
def params_panel(model: Model | None) -> None:
    """All controls; each rerun of this fragment copies widget values into `chat_params`."""
    recommended = _apply_model_defaults(model)
    vals = values()
    _seed_widgets(vals)
    if _COST_CAP_W not in st.session_state:
        st.session_state[_COST_CAP_W] = st.session_state.get(COST_CAP)
    with st.container(horizontal=True, vertical_alignment="center", gap="small"):
        st.markdown("**Parameters**", width="stretch")
        st.button("Reset", key="chat_p_reset", on_click=_reset,
                  icon=":material/restart_alt:", type="tertiary",
                  help="Back to the API defaults: nothing but model and messages is sent.")
        share_slot = st.container(width="content")  # filled last, from this run's values
    if recommended and model is not None:
        st.caption(":material/tune: Starting from this model's recommended sampling ("
                   + ", ".join(f"{k} {v:g}" for k, v in recommended.items())
                   + "), from its card. **Reset** goes back to the API defaults.")
    st.text_area("System prompt", key=_k("system"), height=90,
                 placeholder="You are a helpful assistant.", help=BY_NAME["system"].help)
    # Three tabs fit the side panel (five overflowed it). Only the open tab is drawn: every
    # element on the page is re-rendered by the browser when a run starts, so the two
    # closed tabs' widgets slowed the first token (benchmarks/render_cost.py, issue 20).
    # Widget values live in `chat_params`, and _seed_widgets restores a closed tab's keys.
    tabs = st.tabs(["Sampling", "Length · output", "Tools · reasoning"], key=TAB, on_change="rerun")
    for tab, groups in zip(tabs, ((_sampling,), (_length, _output), (_tools, _reasoning)),
                           strict=True):
        if tab.open:
            with tab:
                for group in groups:
                    group(model)

    stored = st.session_state[PARAMS]
    for name in defaults():
        stored[name] = _from_widget(name, st.session_state.get(_k(name)))
    st.session_state[COST_CAP] = st.session_state.get(_COST_CAP_W)
    with share_slot:
        share_panel(share_state(model, stored), key="chat_share")
    sent = changed(stored)
    shown = [k for k in sent if not unsupported_reason(BY_NAME[k], model)]
    st.caption("Sending only what you changed: " + (", ".join(f"`{k}`" for k in shown)
                                                   if shown else "nothing (API defaults)"))
    caps = presentation.caps()
    if caps is not None and caps.max_tokens and not stored.get("max_tokens"):
        st.caption(f":material/co_present: Presentation mode adds `max_tokens` "
                   f"{caps.max_tokens} (its per-request cap).")
    for issue in validate(stored, model):
        if issue.blocking:
            st.error(f"`{issue.param}`: {issue.message}", icon=":material/error:")
        else:
            st.caption(f":material/info: `{issue.param}` {issue.message}")


__all__ = ["COST_CAP", "EXAMPLE_TOOLS", "PARAMS", "TAB", "apply_shared", "cost_cap", "params_panel",
           "share_state", "summary_line", "values"]
