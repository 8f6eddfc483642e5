"""The chat transcript: turns, per-turn facts and actions, streaming a new answer, Stop.

Turns are plain dicts in `st.session_state["chat_turns"]` (role, content, reasoning,
tool_calls, tool_call_id, status, facts, error, store_id) so they map 1:1 to store turns.

Stop: after a Stop every `st.*` call raises again, so `generate` grabs the
turn list, the spend total and the store BEFORE streaming, and its `finally` touches only
plain Python objects (the accumulator, the turn dict, the store) to keep the partial answer.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

import pandas as pd
import streamlit as st
from streamlit.runtime.scriptrunner_utils.exceptions import StopException

from components import media_attach, presentation
from components.chat import store as chat_store
from components.code_view import code_view
from components.errors import show_error
from components.streaming import LiveTurn, rerun_after_stop, wait_until_sent
from components.tokens.view import generated_html
from components.untrusted import md_code, md_text, model_output
from wafer_playground import errors as wafer_errors
from wafer_playground import guard
from wafer_playground.assembly import (
    conversation_messages,
    logprob_rows,
    unanswered_tool_calls,
)
from wafer_playground.catalog import Model
from wafer_playground.client import WaferClient, streamed_body
from wafer_playground.costs import MAX_REQUEST_TOKENS, SessionTotal, Usage, cost_of, worst_case
from wafer_playground.errors import WaferError
from wafer_playground.params import (
    ContextCheck,
    build_chat_body,
    build_messages_body,
    context_check,
    validate,
)
from wafer_playground.runs import Done, ErrorEvent, Run, TurnLog, turn_of
from wafer_playground.tokens import chat_logprob_tokens

TURNS = chat_store.TURNS
CODE_OPEN = "raw_turn_code_"  # + turn id: that answer's "Code & raw" popover is open
ACTION = "chat_action"
SPEND = "chat_spend"
LAST = "chat_last"
EDITING = "chat_editing"
DRAWN = "chat_drawn"  # turns drawn by the last full run (above the conversation fragment)
# A full run draws the last WINDOW turns; earlier ones wait behind a button. The browser's
# work grows with every element on the page: Streamlit's frontend renders most components
# again on each commit (~280 per commit here, ~120 on the write_stream page), ~12 commits
# before a first token (benchmarks/render_cost.py). benchmarks/long_chat.py, 200 turns vs
# 2, Enter -> first token: 3.4x with all turns shown, 1.73x with 40, 1.25x with 24; a slider
# change's wall time (the browser's renders) 1.50-1.59x with 24 in two of four runs, so 16.
WINDOW = 16
FRAGMENT_TURNS = 2  # the conversation fragment redraws at most the last exchange on a send
SHOW_ALL = "chat_show_all_turns"
ChatSurface = Literal["chat", "messages"]
STORE_EVERY_S = 1.0  # stream progress is saved about once a second
TICK_EVERY_S = 0.25  # the presentation ticker redraws about four times a second


@dataclass
class ChatContext:
    client: WaferClient
    base_url: str
    zdr: bool
    model: Model
    surface: ChatSurface
    values: dict[str, Any]


def init_state() -> None:
    """Call at the top of every full page run."""
    st.session_state.setdefault(TURNS, [])
    st.session_state.setdefault(SPEND, SessionTotal())
    st.session_state.setdefault(LAST, {})


def turns() -> list[dict[str, Any]]:
    return st.session_state[TURNS]


def new_turn(role: str, content: str = "", **extra: Any) -> dict[str, Any]:
    return {"id": uuid.uuid4().hex[:12], "role": role, "content": content, "status": "done",
            **extra}


def request_action(kind: str = "generate") -> None:
    st.session_state[ACTION] = {"kind": kind}


def pop_action() -> dict[str, Any] | None:
    return st.session_state.pop(ACTION, None)


# ---- actions (button callbacks: they run before the script, st.* is safe) ---------------

def _truncate(index: int) -> None:
    ts = turns()
    del ts[index:]
    chat_store.resync(ts, index)


def _delete(index: int) -> None:
    ts = turns()
    if 0 <= index < len(ts):
        del ts[index]
        chat_store.resync(ts, index)


def _regenerate(index: int) -> None:
    _truncate(index)
    request_action()


def _retry(index: int) -> None:
    _regenerate(index)


def _save_edit(index: int) -> None:
    text = str(st.session_state.get(f"chat_edit_{turns()[index]['id']}") or "").strip()
    if not text:
        return
    ts = turns()
    ts[index] = {**ts[index], "content": text}
    _truncate(index + 1)
    chat_store.resync(ts, index)
    st.session_state.pop(EDITING, None)
    request_action()


def _start_edit(index: int) -> None:
    st.session_state[EDITING] = turns()[index]["id"]


def _cancel_edit() -> None:
    st.session_state.pop(EDITING, None)


def clear_chat() -> None:
    st.session_state[TURNS] = []
    st.session_state[LAST] = {}
    st.session_state.pop(EDITING, None)
    st.session_state.pop(SHOW_ALL, None)
    chat_store.forget()


def _submit_tool_result(call_id: str, name: str) -> None:
    text = str(st.session_state.get(f"chat_tool_{call_id}") or "")
    ts = turns()
    ts.append(new_turn("tool", text, tool_call_id=call_id, name=name))
    chat_store.append(ts[-1])
    if not unanswered_tool_calls(ts):
        request_action()  # every call answered: continue the conversation


# ---- drawing ----------------------------------------------------------------------------

def _rebuild_error(d: dict[str, Any]) -> WaferError:
    cls = getattr(wafer_errors, str(d.get("kind")), WaferError)
    if not (isinstance(cls, type) and issubclass(cls, WaferError)):
        cls = WaferError
    return cls(str(d.get("message") or "request failed"), status=d.get("status"),
               type=d.get("type"), code=d.get("code"), param=d.get("param"),
               request_id=d.get("request_id"), retry_after=d.get("retry_after"))


def _count(value: Any) -> float | None:
    """A figure from turn facts (an import can hold anything): finite and >= 0, else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value if math.isfinite(value) and 0 <= value <= MAX_REQUEST_TOKENS else None


def facts_line(f: dict[str, Any]) -> str:
    """One compact caption: speed, tokens, finish, cost (actual/estimate), request id."""
    parts: list[str] = []
    if (ttft := _count(f.get("ttft_s"))) is not None:
        parts.append(f"TTFT {ttft * 1000:.0f} ms" if ttft < 1 else f"TTFT {ttft:.2f} s")
    if (tps := _count(f.get("tokens_per_s"))) is not None:
        parts.append(f"{tps:.1f} tok/s")
    est = f.get("prompt_source") == "estimate"
    tilde = "≈" if est else ""
    prompt = _count(f.get("prompt_tokens"))
    if prompt is not None:
        cached = _count(f.get("cached_tokens"))
        parts.append(f"{tilde}{prompt:,.0f} prompt" + (f" ({cached:,.0f} cached)" if cached
                                                        else ""))
    comp = _count(f.get("completion_tokens"))
    if comp is not None:
        how = {"chunks": " (counted chunks)", "chars/4": " (chars/4)"}.get(
            str(f.get("completion_source")), "")
        reasoning = _count(f.get("reasoning_tokens"))
        parts.append(f"{'≈' if how else ''}{comp:,.0f} completion"
                     + (f" incl. {reasoning:,.0f} reasoning" if reasoning else "") + how)
    if f.get("finish_reason"):
        parts.append(f"finish {md_code(f['finish_reason'], 40)}")
    kind = f.get("cost_kind")
    badge = ":green-badge[actual]" if kind == "actual" else ":orange-badge[estimate]"
    parts.append(f"**{md_text(f.get('cost_label', '?'), 40)}** {badge}")
    if f.get("request_id"):
        parts.append(md_code(f["request_id"], 80))
    if f.get("usage_note"):
        parts.append(f":orange-badge[usage ignored] {md_text(f['usage_note'], 300)}")
    return " · ".join(parts)


def _tool_calls_view(calls: list[dict[str, Any]]) -> None:
    for call in calls:
        fn = call.get("function") or {}
        try:
            args: Any = json.loads(fn.get("arguments") or "{}")
            text = json.dumps(args, indent=2, ensure_ascii=False)
        except ValueError:
            text = str(fn.get("arguments"))
        with st.container(border=True):
            st.markdown(f":material/build: **{md_text(fn.get('name'))}** "
                        f"{md_code(call.get('id'))}")
            st.code(text, language="json")


def _actions(index: int, turn: dict[str, Any], busy: bool) -> None:
    with st.container(horizontal=True, gap="small"):
        tid = turn["id"]
        if turn["role"] == "user":
            st.button("Edit", key=f"chat_edit_btn_{tid}", icon=":material/edit:",
                      type="tertiary", on_click=_start_edit, args=(index,), disabled=busy,
                      help="Edit this message and resend (later turns are replaced)")
        if turn["role"] == "assistant":
            if turn.get("status") == "error":
                st.button("Retry", key=f"chat_retry_{tid}", icon=":material/replay:",
                          type="secondary", on_click=_retry, args=(index,), disabled=busy)
            else:
                st.button("Regenerate", key=f"chat_regen_{tid}", icon=":material/refresh:",
                          type="tertiary", on_click=_regenerate, args=(index,),
                          disabled=busy, help="Replace this answer with a new one")
        st.button("Delete", key=f"chat_del_{tid}", icon=":material/delete:", type="tertiary",
                  on_click=_delete, args=(index,), disabled=busy,
                  help="Remove this turn from the conversation")
        req = turn.get("request")
        if req and not presentation.is_presenting():
            # keyed "raw…" (CODE_OPEN): a request payload, which the presentation CSS hides
            # too. Drawn only while open: a closed popover's content is still sent, and with
            # the whole request as snippets in every answer a new message cost 12.6x the
            # bytes at 200 turns as at 2 (benchmarks/long_chat.py). Opening it reruns once.
            with st.popover("Code & raw", icon=":material/code:", type="tertiary",
                            key=f"{CODE_OPEN}{tid}", on_change="rerun") as pop:
                if not pop.open:
                    return
                last = st.session_state.get(LAST) or {}
                latest = last.get("request_id") is not None and \
                    last.get("request_id") == req.get("request_id")
                code_view(req["surface"], req["base_url"], req["body"], zdr=req["zdr"],
                          response_headers=req.get("headers"),
                          events=last.get("events") if latest else None,
                          note="Exactly what was sent for this answer (request id "
                               f"{md_code(req.get('request_id') or 'not received')}).")


def render_history(*, busy: bool = False, start: int = 0) -> None:
    """Draw the turns from `start` on. The page draws all of them on full runs and records
    how many (`mark_drawn`); a send reruns only the conversation fragment, which draws just
    the turns added since (`undrawn`), so older turns are not redrawn (issue 20)."""
    ts = turns()
    editing = st.session_state.get(EDITING)
    for i, turn in enumerate(ts):
        if i < start:
            continue
        role = turn["role"]
        avatar = {"user": ":material/person:", "assistant": ":material/smart_toy:",
                  "tool": ":material/build:"}.get(role)
        with st.chat_message("user" if role == "tool" else role, avatar=avatar):
            if role == "tool":
                st.caption(f"Tool result for {md_code(turn.get('name') or '-')} "
                           f"({md_code(turn.get('tool_call_id'))})")
                st.code(turn.get("content") or "", language="json")
                _actions(i, turn, busy)
                continue
            if role == "user" and editing == turn["id"]:
                st.text_area("Edit message", value=turn["content"],
                             key=f"chat_edit_{turn['id']}", label_visibility="collapsed")
                with st.container(horizontal=True):
                    st.button("Save & resend", key=f"chat_save_{turn['id']}", type="primary",
                              on_click=_save_edit, args=(i,), icon=":material/send:")
                    st.button("Cancel", key=f"chat_cancel_{turn['id']}", on_click=_cancel_edit)
                continue
            if turn.get("reasoning"):
                with st.expander(f"Thinking ({len(turn['reasoning']):,} chars)",
                                 icon=":material/psychology:"):
                    model_output(turn["reasoning"], key=f"{turn['id']}_r")
            if turn.get("content"):
                model_output(turn["content"], key=turn["id"])
            if turn.get("media"):
                media_attach.show(turn["media"], key=turn["id"])
            if turn.get("tool_calls"):
                _tool_calls_view(turn["tool_calls"])
            if turn.get("logprobs"):
                with st.expander(f"Log-probabilities ({len(turn['logprobs']):,} tokens)",
                                 icon=":material/percent:"):
                    # coloured by probability, alternatives on hover: as on the Token page
                    st.html(generated_html(chat_logprob_tokens(turn["logprobs"])))
                    st.caption("As a table:")
                    st.dataframe(pd.DataFrame(logprob_rows(turn["logprobs"])),
                                 hide_index=True, width="stretch",
                                 column_config={"probability": st.column_config.ProgressColumn(
                                     "probability", min_value=0.0, max_value=1.0,
                                     format="percent")})
            status = turn.get("status")
            if role == "assistant" and status == "stopped":
                st.markdown(":orange-badge[:material/stop_circle: stopped] "
                            "partial answer kept; no usage arrives on abort, so tokens and "
                            "cost are estimates")
            if status == "error" and turn.get("error"):
                show_error(_rebuild_error(turn["error"]))
            if role == "assistant" and turn.get("facts"):
                surface = " · via `/v1/messages`" if turn.get("surface") == "messages" else ""
                st.caption(facts_line(turn["facts"]) + surface)
            _actions(i, turn, busy)


def mark_drawn() -> None:
    st.session_state[DRAWN] = len(turns())


def first_shown() -> int:
    """Index of the first turn a full run draws: the last WINDOW, unless all were asked
    for. It never hides the turn being edited."""
    n = len(turns())
    if st.session_state.get(SHOW_ALL) or n <= WINDOW:
        return 0
    start = n - WINDOW
    editing = st.session_state.get(EDITING)
    for i, turn in enumerate(turns()[:start]):
        if turn["id"] == editing:
            return i
    return start


def show_all_turns() -> None:
    st.session_state[SHOW_ALL] = True


def undrawn() -> int:
    """Index of the first turn the page has not drawn outside the conversation fragment."""
    return min(int(st.session_state.get(DRAWN) or 0), len(turns()))


def tool_result_forms() -> None:
    """Answer the last answer's tool calls; when all are answered the chat continues."""
    for call in unanswered_tool_calls(turns()):
        fn = call.get("function") or {}
        cid = str(call.get("id"))
        with st.form(f"chat_tool_form_{cid}", border=True):
            st.markdown(f":material/build: Answer tool call **{md_text(fn.get('name'))}** "
                        f"{md_code(cid)}")
            st.text_area("Tool result", key=f"chat_tool_{cid}", height=80,
                         placeholder='{"temperature": 18, "sky": "clear"}')
            st.form_submit_button("Send tool result", on_click=_submit_tool_result,
                                  args=(cid, str(fn.get("name") or "")), type="primary",
                                  icon=":material/send:")


# ---- building and streaming ---------------------------------------------------------------

def request_body(ctx: ChatContext, ts: list[dict[str, Any]]) -> dict[str, Any]:
    messages = conversation_messages(ts)
    if ctx.surface == "messages":
        return build_messages_body(ctx.model, messages, ctx.values)
    return build_chat_body(ctx.model, messages, ctx.values)


def preview_body(ctx: ChatContext) -> dict[str, Any]:
    """The next request as the client will send it (it adds stream + include_usage)."""
    return streamed_body(request_body(ctx, turns()), anthropic=ctx.surface == "messages")


def context_for(ctx: ChatContext) -> ContextCheck:
    """Context-window meter for the next request (estimated from the OpenAI-shaped body)."""
    return context_check(build_chat_body(ctx.model, conversation_messages(turns()), ctx.values),
                         ctx.model)


def spend_check(ctx: ChatContext, cap: Decimal | None) -> str | None:
    """The spend guard for the next request: None = send, else the reason it is blocked.

    The prompt estimate is the guard's deliberately high one over every message and the
    tools; an unset max_tokens is bounded by what the model could generate at most."""
    body = request_body(ctx, turns())
    prompt = guard.high_estimate(body)  # media parts count as a guess each, not their base64
    max_tokens = body.get("max_tokens") or ctx.model.max_output_tokens or (
        ctx.model.context_length - prompt if ctx.model.context_length else 0)
    return guard.check_request(prompt, max(0, int(max_tokens)), ctx.model.pricing, cap=cap,
                               caps=presentation.caps(), model=ctx.model.display_name)


def held_back(ctx: ChatContext, cap: Decimal | None, slot: Any) -> bool:
    """Check the pending send; if it must not go out, say why in `slot` and return True.

    Blocking parameter problems first, then the spend guard. The message stays in the
    history, unanswered, for a resend."""
    issues = [i for i in validate(ctx.values, ctx.model) if i.blocking]
    if issues:
        with slot:
            st.error("Not sent: fix these parameters first.\n\n"
                     + "\n".join(f"- `{i.param}`: {i.message}" for i in issues),
                     icon=":material/error:")
        return True
    if blocked := spend_check(ctx, cap):
        with slot:
            st.error(blocked, icon=":material/savings:")
            st.button("Send again", key="chat_send_again", icon=":material/send:",
                      on_click=request_action,
                      help="After lowering max tokens or raising the cap")
        return True
    return False


def _tick(slot: Any, run: Run, now: float, *, live: bool) -> None:
    acc = run.acc
    tokens, _ = acc.estimated_completion_tokens()
    began = acc.first_token_at
    speed = tokens / (now - began) if began is not None and now > began and tokens else None
    cost = cost_of(Usage(run.prompt_estimate, tokens), run.pricing, kind="estimate").total
    presentation.ticker(slot, tokens_per_s=speed, dollars=cost, tokens=tokens,
                        elapsed_s=now - acc.started_at, live=live, dollars_kind="estimate")


def _sent(run: Run, turn: dict[str, Any], last: dict[str, Any]) -> None:
    """The request is out: keep exactly what was sent with the turn and as `last`."""
    events = run.stream.events if run.stream is not None else []
    last.update(body=run.request_json, headers=run.headers, events=events,
                request_id=run.request_id)
    turn["request"].update(body=run.request_json, headers=dict(run.headers or {}),
                           request_id=run.request_id)


def generate(ctx: ChatContext, *, rerun: Literal["app", "fragment"] = "app") -> None:
    """Stream one assistant answer for the current turns through the one run path
    (wafer_playground/runs.py); this module only draws its events and keeps the turn.
    `rerun`: what reruns after the answer; "fragment" only from a fragment's own rerun
    (Streamlit refuses it while the fragment runs as part of the whole page)."""
    ts = turns()  # grabbed before streaming: see the module docstring
    spend: SessionTotal = st.session_state[SPEND]
    last: dict[str, Any] = st.session_state[LAST]
    stopped_by_user = False
    saver = chat_store.Saver.begin(ts, ctx.model.id, ctx.surface)
    body = request_body(ctx, ts)
    turn = new_turn("assistant", status="streaming", model=ctx.model.id, surface=ctx.surface)
    ts.append(turn)
    # the run records the answer: its turn and its request, from send to end (runs.py)
    run = Run(ctx.client, ctx.surface, body, pricing=ctx.model.pricing,
              log=TurnLog(saver.store, base_url=ctx.base_url, problems=saver.problems,
                          conversation_id=saver.conversation_id, turn=turn),
              progress_every_s=STORE_EVERY_S)
    last.clear()
    last.update(surface=ctx.surface, base_url=ctx.base_url, zdr=ctx.zdr, body=body,
                headers=None, events=[], request_id=None)
    # each answer keeps the request that made it: View code / raw from the turn itself
    # (issue 16); the SSE events stay with the latest request only (`last`)
    turn["request"] = {"surface": ctx.surface, "base_url": ctx.base_url, "zdr": ctx.zdr,
                       "body": body, "headers": None, "request_id": None}
    try:
        # the live speed/$ strip is for an audience: drawn only in presentation mode
        ticker_slot = st.empty() if presentation.is_presenting() else None
        with st.chat_message("assistant", avatar=":material/smart_toy:"):
            view = LiveTurn()
            ticked_at = time.perf_counter()
            first = True
            for event in run.events():
                if first:
                    _sent(run, turn, last)
                    first = False
                if isinstance(event, Done | ErrorEvent):
                    continue
                now = time.perf_counter()
                turn["content"], turn["reasoning"] = run.acc.content, run.acc.reasoning
                view.update(run.acc)
                if ticker_slot is not None and now - ticked_at >= TICK_EVERY_S:
                    _tick(ticker_slot, run, now, live=True)
                    ticked_at = now
            if run.status != "error":
                view.final(run.acc)
            if ticker_slot is not None:
                _tick(ticker_slot, run, time.perf_counter(), live=False)
    except StopException:
        # the Stop button: nothing may be drawn now, so the session reruns once this run
        # is down (a widget's rerun, RerunException, redraws the page by itself)
        stopped_by_user = True
        raise
    finally:
        # Plain Python only: after a Stop any st.* call would raise again.
        run.finish()  # a Stop unwound the loop: the run ends "stopped", its record too
        turn.update(turn_of(run))
        if (facts := run.facts()) is not None:
            spend.add(facts.cost)
        if stopped_by_user:
            rerun_after_stop()
    # Redraw the finished turn with its facts and actions. From the conversation fragment
    # only the fragment reruns: the older turns above it stay as drawn (a full rerun resent
    # all of them after every answer: 2.4 MB at 200 turns, benchmarks/long_chat.py).
    scope = rerun_scope(rerun, len(ts) - undrawn())
    # the final draw must leave before the rerun starts: a new run drops what is queued
    wait_until_sent()
    st.rerun(scope=scope)


def rerun_scope(asked: Literal["app", "fragment"], in_fragment: int) -> Literal["app", "fragment"]:
    """What reruns after an answer, given the turns the conversation fragment now draws.

    The fragment redraws every turn added since the page's last full run, before each
    send. Past the last exchange the page reruns instead and draws them above the fragment:
    each turn drawn in it cost the next first token browser commits (benchmarks/latency.py
    --quick: 76 ms with the fragment growing over 4 messages, 58 ms when it did not)."""
    return "app" if asked == "app" or in_fragment > FRAGMENT_TURNS else "fragment"


def preview_cost(ctx: ChatContext, body: dict[str, Any], prompt_tokens: int) -> str:
    """Input cost of the next request plus, with max_tokens, the worst case (estimates)."""
    inp = cost_of(Usage(prompt_tokens, 0), ctx.model.pricing, kind="estimate")
    text = f"input ≈ {inp.label()}"
    mt = body.get("max_tokens")
    if mt:
        worst = worst_case(prompt_tokens, int(mt), ctx.model.pricing)
        text += f" · worst case with max_tokens {int(mt):,}: {worst.label()}"
    return text


def on_submit_prompt(prompt: str, attachments: list[dict[str, Any]] | None = None) -> None:
    ts = turns()
    ts.append(new_turn("user", prompt, **({"media": attachments} if attachments else {})))
    chat_store.append(ts[-1])


__all__ = ["ChatContext", "clear_chat", "facts_line", "generate", "held_back", "init_state",
           "first_shown", "on_submit_prompt", "pop_action", "render_history", "rerun_scope",
           "show_all_turns", "request_action", "request_body", "spend_check",
           "tool_result_forms", "turns"]
