"""Chat playground: pick a model, tune parameters, stream, stop, inspect and export code."""

from __future__ import annotations

import streamlit as st

from components import (
    chat,
    connection,
    engine_panel,
    media_attach,
    presentation,
    state,
    templates,
)
from components.chat import params as chat_params
from components.chat import store as chat_store
from components.chat.protocols import protocol_compare
from components.code_view import code_view
from components.errors import error_markdown
from components.history import shared_state
from components.model_picker import badges_markdown, chat_block_reason, model_picker
from components.router import ensure_router
from components.untrusted import clean, md_text
from wafer_playground.costs import format_usd

ensure_router()  # a share link opened first on a fresh server still goes through app.py

SURFACE = "chat_surface"
WHOLE_PAGE = "chat_whole_page_run"  # set just before the page calls the conversation fragment
PARAMS_HEIGHT = 460  # px: with the header, fits a 1440×900 screen
# The chat input lives in the conversation fragment, where Streamlit does not pin it: it
# sticks to the bottom of the window instead, over the conversation's end.
# While an answer streams, the fragment's elements below it (session cost, context meter,
# code views) are stale, and Streamlit fades stale elements with a CSS transition that
# starts 0.5 s in. A running transition makes the browser draw a frame every display
# refresh, so each token waited for the next one: the first token of a 0.5 s-prefill
# answer showed 16 ms after it arrived instead of 8 (benchmarks/latency.py, issue 20).
# Here they stay as drawn until the answer ends and the fragment redraws them.
PIN_CSS = """<style>.st-key-chat_prompt { position: sticky; bottom: 0.75rem; z-index: 3; }
.st-key-chat_conversation [data-stale="true"] { opacity: 1 !important;
  transition: none !important; }
.st-key-chat_conversation details { transition: none !important; }
.st-key-chat_conversation summary { opacity: 1 !important; transition: none !important; }
</style>"""
SURFACES = {"chat": "OpenAI · /v1/chat/completions", "messages": "Anthropic · /v1/messages"}
EXAMPLES = [
    "Explain server-sent events in two sentences.",
    "Write a haiku about GPUs.",
    "List three uses of constrained decoding.",
]

chat.init_state()
chat_store.load_if_requested()
conn = connection.current()
engine_panel.gate(conn)  # the local engine still provisioning or failed: its panel instead
models = connection.load_models(conn)

# A share link is applied once per session, before the widgets draw; afterwards the
# user's edits win. It carries model, changed parameters and system prompt only.
shared = shared_state("chat")
if shared is not None:
    if shared.model and models.catalog.get(shared.model) is not None:
        state.select_model(shared.model)
    skipped = chat_params.apply_shared(
        shared, models.catalog.get(shared.model) if shared.model else None)
    if skipped:
        st.caption("Some shared settings were not applied: " + ", ".join(skipped))

# The chat input is read first so a new message shows in the history on this very run;
# at the top level it stays pinned to the bottom of the page.
st.session_state.setdefault(SURFACE, "chat")

head = st.columns([6, 5.6], vertical_alignment="bottom")
with head[0]:
    st.markdown("## :material/chat: Chat playground")
    model = model_picker(models.catalog)
with head[1]:
    st.session_state.setdefault("chat_surface_pick", st.session_state[SURFACE])
    picked = st.segmented_control("Protocol", list(SURFACES), key="chat_surface_pick",
                                  format_func=lambda s: SURFACES[s].split(" · ")[0],
                                  help="Send the conversation as OpenAI chat completions or "
                                       "as Anthropic Messages.")
    st.session_state[SURFACE] = picked or st.session_state[SURFACE]

if model is None:
    st.stop()

block = chat_block_reason(model)
price_note = model.pricing.source.describe() if model.pricing.source else "no published price"
st.markdown(badges_markdown(model) + f"  \n:small[:gray[Prices: {price_note}]]")
if models.error is not None:
    st.caption(f":material/warning: Model list unavailable ({error_markdown(models.error)}); "
               "showing the bundled snapshot.")
if block:
    st.warning(f"Chat is not available for this model: {block}.", icon=":material/block:")
elif not presentation.is_presenting():
    templates.template_panel("chat", on_fill=templates.send_to_chat)  # a saved {{template}}

if presentation.is_presenting():
    # one line for the room: what is sent; every control one click away
    with st.expander(chat_params.summary_line(model), icon=":material/tune:"):
        chat_params.params_panel(model)
    left = st.container()
else:
    # On a phone the columns stack in this order: the conversation and its input first, the
    # parameter panel after them, so a phone opens on the conversation.
    left, right = st.columns([0.64, 0.36], gap="large")
    # a side panel that scrolls on its own: the page stays as tall as the conversation, so
    # Chat opens at the top (issue 16: the panel's height pushed it 460 px down)
    with right, st.container(border=True, height=PARAMS_HEIGHT, key="chat_params_panel"):
        chat_params.params_panel(model)
surface = st.session_state[SURFACE]


def context() -> chat.ChatContext:
    """The next request's settings, read on every run of the conversation: the parameter
    panel is a fragment of its own, so its changes do not rerun the page."""
    values = chat_params.values()
    caps = presentation.caps()
    if caps is not None and caps.max_tokens and not values.get("max_tokens"):
        # presentation mode bounds every request, so an unset max_tokens becomes the cap
        values["max_tokens"] = caps.max_tokens
    return chat.ChatContext(client=connection.get_client(conn), base_url=conn.base_url,
                            zdr=conn.zdr, model=model, surface=surface, values=values)


@st.fragment
def conversation() -> None:
    """The conversation and its input, as a fragment: Enter reruns only this, so the first
    token is not queued behind a redraw of the header and the parameter panel (issue 20).
    The input is drawn after the history but read first, so a new message shows at once;
    in a fragment it is not pinned by Streamlit, so PIN_CSS keeps it at the bottom."""
    # a fragment rerun of its own (Enter, a button in it): the answer's end reruns only
    # this; as part of the whole page's run Streamlit allows only a full rerun
    alone = not st.session_state.pop(WHOLE_PAGE, False)
    ctx = context()
    history = st.container()
    raw_input = st.chat_input(f"Message {clean(model.display_name, 80)}", submit_mode="stop",
                              disabled=bool(block), key="chat_prompt",
                              accept_file="multiple")
    prompt, attached = media_attach.split_input(raw_input)
    action = chat.pop_action()
    if prompt is None and not block:
        prompt = presentation.demo_chat_prompt()  # the scripted demo's chat step, sent once
    media_problem = None
    if (prompt or attached) and not block:
        # attachments are checked (type, 50 MB, the model's vision, the protocol) and
        # uploaded or inlined before the message joins the conversation; a refusal sends
        # nothing
        attached += media_attach.picked_urls("chat")
        media_problem = media_attach.check(attached, vision=model.vision,
                                           model_name=model.display_name, surface=surface)
        entries: list = []
        if media_problem is None and attached:
            entries, media_problem = media_attach.prepare(attached, ctx.client, "chat")
        if media_problem is None:
            media_attach.clear_pending("chat")
            chat.on_submit_prompt(str(prompt or ""), entries)
            action = {"kind": "generate"}

    with history:
        # The answer streams into `live` and the meter and code views sit in `after`, each at
        # a fixed place: below a growing list, a send moved them down one place, so the
        # answer's block landed where `after` had been and took over its elements, which
        # the browser then redrew with every token (Streamlit keeps a block's children when
        # a block of the same type arrives at its position; benchmarks/render_cost.py).
        # `live` is an empty slot, not a block, so that the run after an answer (which draws
        # it in `shown`) clears the streamed copy at once instead of showing it twice.
        shown, live, after = st.container(), st.empty(), st.container()
    with shown:
        if not chat.turns() and not action:
            with st.container(border=True, key="chat_welcome"):
                st.markdown(f"#### Talk to **{md_text(model.display_name)}**")
                st.caption("Streams token by token. **Stop** keeps the partial answer with "
                           "its estimated cost. Every answer lists TTFT, tokens/s, tokens, "
                           "finish reason, request id and cost.")
                with st.container(horizontal=True):
                    for i, example in enumerate(EXAMPLES):
                        if st.button(example, key=f"chat_example_{i}",
                                     disabled=bool(block)):
                            chat.on_submit_prompt(example)
                            action = {"kind": "generate"}
        # turns added since the page last drew the history (a new message, a tool result,
        # a stopped answer): older turns stay as drawn, above this fragment
        chat.render_history(busy=bool(action), start=chat.undrawn())
        if media_problem:
            st.error(f"Not sent: {media_problem}", icon=":material/hide_image:")
            if prompt:  # the box has been cleared: keep what was typed in view
                st.caption(f"Your message, not sent: {md_text(str(prompt), 2000)}")
        if not action:
            chat.tool_result_forms()
            if chat.turns() and chat.turns()[-1]["role"] == "user":
                # a message the spend guard or the parameter check held back: still here
                with st.container(horizontal=True, vertical_alignment="center"):
                    st.caption(":material/schedule_send: This message has not been sent yet.")
                    st.button("Send", key="chat_send_again", icon=":material/send:",
                              on_click=chat.request_action, disabled=bool(block))

    if action and not block and chat.turns() and chat.turns()[-1]["role"] in ("user", "tool"):
        slot = live.container()
        if not chat.held_back(ctx, chat_params.cost_cap(), slot):
            # Send before drawing the preview and code views: an instant first token would
            # otherwise wait behind the browser rendering them, and they describe the
            # request this answer replaces anyway. `generate` reruns this fragment, which
            # draws them afresh.
            with slot:
                chat.generate(ctx, rerun="fragment" if alone else "app")
    with after:
        next_request(ctx)


def next_request(ctx: chat.ChatContext) -> None:
    """Before sending: session cost, context meter, cost preview, clear, and the code views.
    The session cost is drawn here, in the fragment that reruns after an answer, so it is
    never stale (in the page's header it kept the previous total until a full rerun)."""
    spend = st.session_state[chat.SPEND]
    st.metric("Session cost", format_usd(spend.total), help=spend.describe(), border=True,
              width="content")
    next_body = chat.preview_body(ctx)
    check = chat.context_for(ctx)
    colour = {"ok": "green", "warn": "orange", "over": "red", "unknown": "gray"}[check.level]
    st.progress(check.fraction,
                text=f":{colour}[:material/data_usage:] **Context** {check.message}")
    st.caption(":material/payments: Next request: "
               + chat.preview_cost(ctx, next_body, check.prompt_tokens))
    if check.level == "over":
        st.warning(check.message, icon=":material/warning:")
    with st.container(horizontal=True):
        if st.button("Clear chat", key="chat_clear", icon=":material/delete_sweep:",
                     disabled=not chat.turns()):
            chat.clear_chat()
            st.rerun(scope="app")  # the history is drawn outside this fragment
        media_attach.settings("chat")
    # Raw request/response views are not drawn for an audience; the `raw_` keys also let
    # the presentation CSS hide them should one ever be drawn.
    if presentation.is_presenting():
        return
    # Drawn only while open: a closed expander's content is still sent, and the snippets
    # hold the whole conversation several times over (2 MB at 200 turns after every
    # answer, benchmarks/long_chat.py). Opening one reruns just this fragment.
    with st.container(key="raw_chat_code"), st.expander(
            "View code", icon=":material/code:", key="chat_code_open",
            on_change="rerun") as code_box:
        if code_box.open:
            last = st.session_state.get(chat.LAST) or {}
            which = "Next request"
            if last.get("body"):
                which = st.segmented_control("Request", ["Last request", "Next request"],
                                             default="Last request", key="chat_code_which") \
                    or "Last request"
            if which == "Last request" and last.get("body"):
                code_view(last["surface"], last["base_url"], last["body"], zdr=last["zdr"],
                          response_headers=last.get("headers"), events=last.get("events"),
                          note=f"Exactly what was sent (request id `{last.get('request_id')}`).")
            else:
                code_view(ctx.surface, ctx.base_url, next_body, zdr=ctx.zdr,
                          note="What will be sent with the current settings (your next message "
                               "is appended to `messages`).")
    with st.container(key="raw_chat_compare"), st.expander(
            "Protocol switch: usage side by side", icon=":material/compare_arrows:"):
        protocol_compare(ctx)


st.html(PIN_CSS)
with left:
    for problem in chat_store.problems():
        st.caption(f":material/warning: {problem}")
    busy = bool(st.session_state.get(chat.ACTION))
    if first := chat.first_shown():
        st.button(f"Show {first} earlier turn{'s' if first > 1 else ''}",
                  key="chat_show_earlier", icon=":material/expand_less:", type="tertiary",
                  on_click=chat.show_all_turns,
                  help="Long conversations open on their latest turns, which keeps every "
                       "rerun quick; all of them are sent with the next message.")
    chat.render_history(busy=busy, start=first)  # older turns: drawn on full runs only
    chat.mark_drawn()
    st.session_state[WHOLE_PAGE] = True  # read (and dropped) by the fragment just below
    with st.container(key="chat_conversation"):  # scopes PIN_CSS's stale rule
        conversation()
