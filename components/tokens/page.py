"""The Token & grammar workbench: text <-> ids, chat templates, grammar, send, compare, fork.

Over 600 lines: the page's sections (prompt, settings, send, results, forks, share) share
its session-state keys; splitting them is left for later (the decisions already live in
wafer_playground/tokens.py and tokenizers.py).

Drawing and wiring only: id parsing, validation, request bodies, accumulation, logprobs and
forks live in `wafer_playground.tokens`; tokenizers in `wafer_playground.tokenizers`; prices
in `wafer_playground.costs`. Buttons that change the prompt run as callbacks (before the
widgets are drawn), so the prompt box can be rewritten without Streamlit's widget errors.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from typing import Any

import pandas as pd
import streamlit as st

from components import connection, engine_panel
from components.connection import Connection
from components.errors import error_markdown
from components.history import TOKENS_RUN_ID, get_store, share_panel, shared_state
from components.state import select_model, selected_model_id
from components.tokens import grammar_editor
from components.tokens.view import chips_html, generated_html
from wafer_playground import codegen, tokens
from wafer_playground.catalog import Model, Pricing
from wafer_playground.client import TokenPiece, WaferClient
from wafer_playground.costs import format_per_million, format_usd
from wafer_playground.errors import WaferError
from wafer_playground.runs import RequestLog, Run
from wafer_playground.share import ShareState
from wafer_playground.store import Store, StoreError
from wafer_playground.throttle import Throttle
from wafer_playground.tokenizers import (
    Tokenizer,
    TokenizerPlan,
    TokenizerUnavailable,
    known_template,
    plan_for,
    tokenizer_for,
)
from wafer_playground.untrusted import TEXT_LIMIT, clean, md_code, md_text

# session keys (widget keys are prefixed tok_; plain state tokens_)
MODEL = "tok_model"
TEXT = "tok_text"
ADD_SPECIAL = "tok_add_special"
IDS = "tok_ids"
ORIGIN = "tokens_ids_origin"  # {"text": ids text, "key": tokenizer key, "label": str}
RUNS = "tokens_runs"  # label -> CompletionRun.to_dict()
FORK_INFO = "tokens_fork_info"
PENDING = "tokens_pending"
HF_ALLOWED = "tokens_hf_allowed"  # repo key -> download requested on this run
HF_FAILED = "tokens_hf_failed"  # repo key -> last download error
MESSAGES = "tok_messages"
RENDERED = "tokens_rendered"
FLASH = "tokens_flash"
MODE = "tok_mode"
LOADED_RUN = "tokens_loaded_run"

MODES = {"both": "Constrained vs unconstrained", "constrained": "Constrained only",
         "plain": "Unconstrained only"}
RUN_TITLES = {"constrained": "Constrained (with grammar)", "unconstrained": "Unconstrained",
              "fork": "Fork"}
PIECE_LIMIT = 512  # pasted ids decoded one by one: keep the engine round trips bounded
KEEP = "tokens_keep"  # durable copy of the page's inputs (widget keys vanish off-page)
_KEPT_PREFIX = "tok_"
_NOT_KEPT = ("tok_send", "tok_use_", "tok_render", "tok_bos_", "tok_fork_go", "tok_peek",
             "tok_hf_", "tok_saved_load", "tok_saved_save", "tok_schema_convert", "tok_halt_",
             "tok_messages", "tok_share")  # buttons and the data editor cannot be set through state


# ---------------------------------------------------------------------------- entry point


def _restore_inputs() -> None:
    """Streamlit drops widget values when their page is not shown; put them back once."""
    for key, value in (st.session_state.get(KEEP) or {}).items():
        if key not in st.session_state:
            st.session_state[key] = value


def _keep_inputs() -> None:
    st.session_state[KEEP] = {
        k: st.session_state[k] for k in list(st.session_state.keys())
        if isinstance(k, str) and k.startswith(_KEPT_PREFIX) and not k.startswith(_NOT_KEPT)
    }


def render_page() -> None:
    _restore_inputs()
    _keep_inputs()  # values set by callbacks survive even if this run is interrupted
    _render()
    _keep_inputs()


def _render() -> None:
    conn = connection.current()
    engine_panel.gate(conn)  # the local engine still provisioning or failed: its panel instead
    client = connection.get_client(conn)
    listing = connection.load_models(conn)
    catalog = listing.catalog
    _reopen_from_history()

    st.title("Token & grammar workbench")
    st.caption("Build a token-ID prompt, constrain the output with an EBNF grammar, compare "
               "constrained and unconstrained runs, and fork from any alternative token "
               "— all on `/v1/completions`, with ids sent exactly as shown.")
    if not catalog.models:
        st.warning("No models on this endpoint: check the connection in the sidebar.")
        return
    _apply_shared(catalog.ids)
    model = _model_picker(catalog.models, catalog_ids=catalog.ids, catalog=catalog)
    local = model.local is not None or conn.kind == "local"
    plan = plan_for(model.id, local=local)
    tok, tok_error = _tokenizer(model, plan, client, local)
    vocab = _vocab_size(model, tok)
    _tokenizer_banner(model, plan, tok, tok_error)

    flash = st.session_state.pop(FLASH, None)
    if flash:
        (st.error if flash[0] == "error" else st.success)(flash[1])

    left, right = st.columns([3, 2], gap="large")
    with left, st.container(border=True):
        st.subheader("① Prompt", anchor=False)
        ids, ids_error = _prompt_section(conn, model, tok, local, client, vocab)
    with right, st.container(border=True):
        st.subheader("② Grammar", anchor=False)
        ebnf, _report = grammar_editor.grammar_editor()

    with st.container(border=True):
        st.subheader("③ Send", anchor=False)
        settings = _settings_form()
        send = _send_bar(conn, model, ids, ids_error, ebnf, settings, vocab)
        share_panel(_share_state(model, ebnf), key="tok_share")

    _results(conn, client, model, ebnf, send, tok)


# ---------------------------------------------------------------------------- model/tokenizer


def _model_picker(models: Sequence[Model], *, catalog_ids: list[str], catalog: Any) -> Model:
    current = selected_model_id(catalog)
    if st.session_state.get(MODEL) not in catalog_ids:
        st.session_state[MODEL] = current
    cols = st.columns([2, 3])
    cols[0].selectbox(
        "Model", catalog_ids, key=MODEL,
        format_func=lambda mid: _model_label(catalog.get(mid)),
        on_change=lambda: select_model(st.session_state[MODEL]),
    )
    model = catalog.get(st.session_state[MODEL])
    with cols[1]:
        price = model.pricing
        source = f" · {price.source.describe()}" if price.source else ""
        st.caption(f"**Prices** · input {format_per_million(price, 'input')} · output "
                   f"{format_per_million(price, 'output')} per 1M tokens{source}")
        if model.local is not None and model.local.get("chat_template") is False:
            st.caption("Base model without a chat template: build the prompt from text, and "
                       "keep the BOS id first.")
    return model


def _model_label(model: Model | None) -> str:
    if model is None:
        return "?"
    name, mid = clean(model.display_name), clean(model.id)
    return f"{name} ({mid})" if name != mid else mid


def _tokenizer(model: Model, plan: TokenizerPlan, client: WaferClient,
               local: bool) -> tuple[Tokenizer | None, str | None]:
    allowed: dict[str, bool] = st.session_state.setdefault(HF_ALLOWED, {})
    failed: dict[str, str] = st.session_state.setdefault(HF_FAILED, {})
    key = plan.key or ""
    want_download = plan.kind == "hf" and allowed.pop(key, False)
    try:
        # Hub files load from the local cache on every run; the network is tried only
        # when the user asks (a hanging proxy must not stall each rerun).
        return tokenizer_for(model.id, local=local, client=client,
                             vocab_size=model.vocab_size,
                             allow_download=want_download or plan.kind != "hf"), None
    except TokenizerUnavailable as exc:
        if plan.kind == "hf" and not want_download:
            return None, failed.get(key)  # not downloaded yet: offer the button
        if plan.kind == "hf":
            failed[key] = str(exc)
        return None, str(exc)


def _vocab_size(model: Model, tok: Tokenizer | None) -> int | None:
    return model.vocab_size or (tok.vocab_size if tok is not None else None)


def _allow_hf(key: str) -> None:
    st.session_state.setdefault(HF_ALLOWED, {})[key] = True


def _tokenizer_banner(model: Model, plan: TokenizerPlan, tok: Tokenizer | None,
                      error: str | None) -> None:
    if tok is not None:
        exact = "exact" if tok.source.exact else "client-side replica"
        st.info(f"**Tokenizer:** {tok.source.label} · {exact}"
                + (f" — {tok.source.note}" if tok.source.note else ""), icon=":material/abc:")
        return
    if plan.kind == "hf":
        cols = st.columns([4, 1], vertical_alignment="center")
        if error is None:
            cols[0].info(f"**Tokenizer:** {plan.description}. Downloading needs network "
                         "access once; until then paste token ids directly.",
                         icon=":material/abc:")
        else:
            cols[0].warning(f"**No tokenizer for {md_text(model.id)}:** "
                            f"{md_text(error, TEXT_LIMIT)}. You can still paste "
                            "token ids and send them; text ↔ id conversion is unavailable.",
                            icon=":material/warning:")
        cols[1].button("Download tokenizer" if error is None else "Retry download",
                       key="tok_hf_download", on_click=_allow_hf, args=(plan.key or "",),
                       width="stretch")
        return
    reason = error or plan.description
    st.warning(f"**No tokenizer for {md_text(model.id)}:** {md_text(reason, TEXT_LIMIT)}. "
               "You can still paste token ids "
               "and send them; text ↔ id conversion is unavailable.", icon=":material/warning:")


# ---------------------------------------------------------------------------- prompt section


def _set_prompt(ids: Sequence[int], key: str, label: str) -> None:
    text = tokens.format_ids(ids)
    st.session_state[IDS] = text
    st.session_state[ORIGIN] = {"text": text, "key": key, "label": label}


def _tokenize_into_prompt(tok: Tokenizer) -> None:
    text = st.session_state.get(TEXT) or ""
    try:
        pieces = tok.encode(text, add_special=bool(st.session_state.get(ADD_SPECIAL)))
    except WaferError as err:
        st.session_state[FLASH] = ("error", f"Tokenizing failed: {err.human()}")
        return
    _set_prompt([p.id for p in pieces], tok.source.key, tok.source.label)


def _bos_action(bos: list[int], add: bool, key: str, label: str) -> None:
    try:
        ids = tokens.parse_ids(st.session_state.get(IDS) or "")
    except tokens.IdParseError as exc:
        st.session_state[FLASH] = ("error", str(exc))
        return
    n = len(bos)
    if add and ids[:n] != bos:
        ids = [*bos, *ids]
    elif not add and ids[:n] == bos:
        ids = ids[n:]
    origin = st.session_state.get(ORIGIN) or {}
    _set_prompt(ids, origin.get("key", key), origin.get("label", label))


def _prompt_section(conn: Connection, model: Model, tok: Tokenizer | None, local: bool,
                    client: WaferClient, vocab: int | None
                    ) -> tuple[list[int] | None, str | None]:
    text_tab, chat_tab = st.tabs(["Text → ids", "Chat template → ids"])
    with text_tab:
        _text_tab(tok)
    with chat_tab:
        _chat_tab(model, tok, local, client)

    st.session_state.setdefault(IDS, "")
    st.text_area(
        "Prompt token ids (sent exactly as written)", key=IDS, height=90,
        placeholder="e.g. 504, 3575, 282, 4649, 314 — or tokenize text above",
        help="Comma, space or newline separated; [brackets] allowed. Paste ids from anywhere.",
    )
    try:
        ids = tokens.parse_ids(st.session_state[IDS])
    except tokens.IdParseError as exc:
        st.error(f"**Not a token id list:** {md_text(exc, TEXT_LIMIT)}", icon=":material/block:")
        return None, str(exc)
    if not ids:
        st.caption("The prompt is empty.")
        return ids, None
    _origin_notice(tok, ids)
    bad = tokens.vocab_problem(ids, vocab, model=model.id)
    if bad:
        st.error(f"**Out of vocabulary:** {bad}", icon=":material/block:")
    if tok is not None:
        _bos_controls(tok, ids, model)
        if not bad:
            _decode_view(tok, ids)
    if not bad:
        _peek(conn, client, model, ids)
    return ids, None


def _append_id(ids: list[int], token_id: int) -> None:
    origin = st.session_state.get(ORIGIN) or {}
    label = str(origin.get("label", "the prompt"))
    suffix = " (+ ids appended from next-token probabilities)"
    _set_prompt([*ids, token_id], origin.get("key", "fork"),
                label if label.endswith(suffix) else label + suffix)


def _peek(conn: Connection, client: WaferClient, model: Model, ids: list[int]) -> None:
    """Top-20 next tokens at the end of the prompt (one 1-token request); append one."""
    with st.expander("Next-token probabilities at the end of the prompt"):
        ids_text = st.session_state.get(IDS) or ""
        cols = st.columns([2, 3], vertical_alignment="center")
        go = cols[0].button("Peek at the next token", key="tok_peek", width="stretch")
        cols[1].caption("Sends one request: max_tokens 1, temperature 0, logprobs 20 "
                        f"(≈ {len(ids)} prompt tokens + 1 output token; priced like any run).")
        if go:
            body = {"model": model.id, "prompt": ids, "max_tokens": 1, "temperature": 0.0,
                    "logprobs": 20, "return_token_ids": True}
            run = tokens.CompletionRun("peek", body)
            wire, log = _wire(conn, client, model, run)
            started = time.perf_counter()
            try:
                for event in wire.events():
                    if (chunk := getattr(event, "chunk", None)) is not None:
                        run.feed(chunk)
            finally:
                _settle_wire(run, wire, log, started)
            st.session_state["tokens_peek"] = {"ids": ids_text, "run": run.to_dict()}
        peek = st.session_state.get("tokens_peek")
        if not peek or peek.get("ids") != ids_text:
            return
        run = tokens.CompletionRun.from_dict(peek["run"])
        if run.error:
            st.error(f"**{run.error.title}** — {md_text(run.error.message, TEXT_LIMIT)}",
                     icon=":material/warning:")
            return
        gen = run.tokens()
        if not gen or not gen[0].alternatives:
            st.caption("The server returned no alternatives for the next token.")
            return
        alts = [a for a in gen[0].alternatives if a.id is not None]
        st.dataframe(pd.DataFrame([{"token": _tok_label(a.text), "id": a.id, "p": a.prob}
                                   for a in gen[0].alternatives]),
                     hide_index=True, width="stretch", height=min(300, 36 + 35 * len(alts)),
                     column_config={"p": st.column_config.ProgressColumn(
                         "p", min_value=0.0, max_value=1.0, format="percent")})
        if not alts:
            return
        by_id = {a.id: a for a in alts}
        if st.session_state.get("tok_peek_pick") not in by_id:
            st.session_state["tok_peek_pick"] = alts[0].id
        pick = st.selectbox("Append to the prompt", list(by_id), key="tok_peek_pick",
                            format_func=lambda i: f"{_tok_label(by_id[i].text)} · id {i} · "
                                                  f"{tokens.format_prob(by_id[i].prob)}")
        st.button("Append this id ↵", key="tok_peek_append", on_click=_append_id,
                  args=(ids, int(pick or alts[0].id or 0)))


def _text_tab(tok: Tokenizer | None) -> None:
    st.session_state.setdefault(TEXT, "The capital of France is")
    # one step: editing the text sets the prompt ids below (the button re-applies it)
    st.text_area("Text", key=TEXT, height=90,
                 on_change=None if tok is None else _tokenize_into_prompt,
                 args=None if tok is None else (tok,))
    if tok is not None and IDS not in st.session_state:
        _tokenize_into_prompt(tok)  # the example text is the prompt from the first view
    cols = st.columns([2, 2], vertical_alignment="center")
    cols[0].checkbox("Add special tokens (BOS)", key=ADD_SPECIAL,
                     help="Prepend the model's BOS id where it has one (Gemma: <bos> = 2). "
                          "Id prompts are used exactly as given: nothing is added later.")
    cols[1].button("Use these ids as the prompt ↓", key="tok_use_text", type="secondary",
                   disabled=tok is None, on_click=_tokenize_into_prompt, args=(tok,),
                   width="stretch")
    if tok is None:
        return
    text = st.session_state.get(TEXT) or ""
    try:
        pieces = tok.encode(text, add_special=bool(st.session_state.get(ADD_SPECIAL)))
    except WaferError as err:
        st.error(f"Tokenizing failed: {error_markdown(err)}")
        return
    st.html(chips_html(pieces, specials=list(tok.special_ids()) + tok.bos_ids()))
    st.caption(f"{len(pieces)} tokens · {len(text)} characters · {tok.source.label}")


def _chat_tab(model: Model, tok: Tokenizer | None, local: bool, client: WaferClient) -> None:
    template = known_template(model.id)
    if local and model.local is not None and model.local.get("chat_template") is False:
        st.info(f"{md_text(model.id)} has no chat template (a base model): use plain text.")
        return
    if not local and template is None:
        st.info(f"No chat template is known for {md_text(model.id)} here; Qwen3.5/3.6 (ChatML) and "
                "the local engine's models are supported.")
        return
    default = pd.DataFrame([{"role": "system", "content": "You are a concise assistant."},
                            {"role": "user", "content": "Name a primary colour."}])
    st.caption("Messages (add or edit rows):")
    edited = st.data_editor(
        default, key=MESSAGES, num_rows="dynamic", width="stretch", hide_index=True,
        column_config={"role": st.column_config.SelectboxColumn(
            "role", options=["system", "user", "assistant"], required=True, width="small"),
            "content": st.column_config.TextColumn("content", width="large")})
    thinking = None
    if template is not None:
        st.session_state.setdefault("tok_think_off", True)
        thinking = False if st.checkbox("Thinking off (empty <think> block)",
                                        key="tok_think_off") else None
    if st.button("Render template", key="tok_render"):
        messages = [{"role": str(r["role"]), "content": str(r["content"] or "")}
                    for _, r in edited.iterrows() if r.get("role")]
        try:
            if local:
                rendered = client.apply_template(messages, model=model.id)
                how = "local engine /v1/apply-template"
            else:
                rendered = template(messages, thinking=thinking)  # type: ignore[misc]
                how = "Qwen ChatML (client-side)"
        except WaferError as err:
            st.error(f"Rendering failed: {error_markdown(err)}")
            return
        st.session_state[RENDERED] = {"model": model.id, "text": rendered, "how": how}
    rendered_state = st.session_state.get(RENDERED)
    if not rendered_state or rendered_state.get("model") != model.id:
        return
    st.caption(f"Rendered by {rendered_state['how']}:")
    st.code(rendered_state["text"], language=None, wrap_lines=True)
    if tok is None:
        return
    try:
        pieces = tok.encode(rendered_state["text"])
    except WaferError as err:
        st.error(f"Tokenizing failed: {error_markdown(err)}")
        return
    st.html(chips_html(pieces, specials=list(tok.special_ids())))
    st.button("Use these ids as the prompt ↓", key="tok_use_chat",
              on_click=_set_prompt,
              args=([p.id for p in pieces], tok.source.key,
                    f"{tok.source.label} (chat template)"))


def _origin_notice(tok: Tokenizer | None, ids: list[int]) -> None:
    origin = st.session_state.get(ORIGIN) or {}
    text = st.session_state.get(IDS) or ""
    current_key = tok.source.key if tok is not None else None
    if origin and origin.get("text") == text:
        label = origin.get("label", "?")
        if current_key and origin.get("key") not in (current_key, "fork", "history"):
            st.warning(f"**Tokenizer mismatch:** these ids came from {label}, but the selected "
                       f"model uses {tok.source.label if tok else '?'}. The same ids mean "
                       "different text there: tokenize again.", icon=":material/warning:")
        else:
            st.caption(f"{len(ids)} ids · produced by {label}")
    else:
        st.caption(f"{len(ids)} ids · typed or pasted"
                   + (f" · decoded with {tok.source.label}" if tok else ""))


def _bos_controls(tok: Tokenizer, ids: list[int], model: Model) -> None:
    try:
        bos = tok.bos_ids()
    except WaferError:
        bos = []
    cols = st.columns([1.3, 1.1, 3], vertical_alignment="center")
    has = bool(bos) and ids[:len(bos)] == bos
    cols[0].button("Prepend BOS", key="tok_bos_add", disabled=not bos or has,
                   on_click=_bos_action, args=(bos, True, tok.source.key, tok.source.label),
                   width="stretch")
    cols[1].button("Strip BOS", key="tok_bos_strip", disabled=not has,
                   on_click=_bos_action, args=(bos, False, tok.source.key, tok.source.label),
                   width="stretch")
    if not bos:
        cols[2].caption("This model has no BOS token: nothing to add.")
    elif has:
        cols[2].caption(f"Starts with BOS {bos}.")
    else:
        cols[2].warning(f"No BOS {bos} at the start: {md_text(model.id)} usually expects it (id "
                        "prompts "
                        "are sent as given).", icon=":material/warning:")


def _decode_view(tok: Tokenizer, ids: list[int]) -> None:
    try:
        text = tok.decode(ids)
        pieces = tok.pieces(ids[:PIECE_LIMIT])
    except (WaferError, ValueError) as err:
        message = error_markdown(err) if isinstance(err, WaferError) else md_text(err, TEXT_LIMIT)
        st.error(f"Decoding failed: {message}")
        return
    origin = st.session_state.get(ORIGIN) or {}
    same_as_text = (origin.get("text") == st.session_state.get(IDS)
                    and origin.get("key") == tok.source.key
                    and origin.get("label") == tok.source.label)
    if not same_as_text:  # chips identical to the text tab's above would only repeat them
        st.html(chips_html(pieces, specials=list(tok.special_ids()) + tok.bos_ids()))
    if len(ids) > PIECE_LIMIT:
        st.caption(f"Chips for the first {PIECE_LIMIT} ids; the text below is all of them.")
    st.caption("Decoded text:")
    st.code(text or " ", language=None, wrap_lines=True)
    source = st.session_state.get(TEXT) or ""
    if origin.get("text") == st.session_state.get(IDS) and origin.get("key") == tok.source.key \
            and "chat template" not in origin.get("label", ""):
        specials = set(tok.bos_ids())
        body = tok.decode([i for i in ids if i not in specials]) if specials else text
        if body == source:
            st.caption("✓ Round trip exact: these ids decode back to the text above.")


# ---------------------------------------------------------------------------- settings


def _num(col: Any, label: str, key: str, default: float | int | None, *, step: float | int,
         help: str, fmt: str | None = None) -> Any:
    st.session_state.setdefault(key, default)
    return col.number_input(label, key=key, step=step, help=help, format=fmt,
                            placeholder="server default")


def _settings_form() -> tokens.CompletionSettings:
    with st.expander("Request fields (sampling, stops, extras)", expanded=False):
        c: list[Any] = list(st.columns(4))
        max_tokens = _num(c[0], "max_tokens", "tok_max_tokens", 48, step=1,
                          help="Upper bound on generated tokens; also the cost worst case.")
        min_tokens = _num(c[1], "min_tokens", "tok_min_tokens", None, step=1,
                          help="Generate at least this many before stop conditions apply.")
        temperature = _num(c[2], "temperature", "tok_temperature", 0.7, step=0.05,
                           help="0 = greedy.", fmt="%.2f")
        top_p = _num(c[3], "top_p", "tok_top_p", None, step=0.05, help="(0, 1]", fmt="%.2f")
        c = list(st.columns(4))
        top_k = _num(c[0], "top_k", "tok_top_k", None, step=1, help="-1 = off")
        min_p = _num(c[1], "min_p", "tok_min_p", None, step=0.01, help="[0, 1]", fmt="%.2f")
        freq = _num(c[2], "frequency_penalty", "tok_freq", None, step=0.1, help="[-2, 2]",
                    fmt="%.2f")
        pres = _num(c[3], "presence_penalty", "tok_pres", None, step=0.1, help="[-2, 2]",
                    fmt="%.2f")
        c = list(st.columns(4))
        rep = _num(c[0], "repetition_penalty", "tok_rep", None, step=0.05, help="(0, 2]",
                   fmt="%.2f")
        seed = _num(c[1], "seed", "tok_seed", None, step=1, help="Same seed, same sample.")
        logprobs = _num(c[2], "logprobs (top-N)", "tok_logprobs", 5, step=1,
                        help="Alternatives per generated token (0..20); powers the "
                             "probability view and forking.")
        with c[3]:
            st.session_state.setdefault("tok_stream", True)
            stream = st.toggle("stream", key="tok_stream")
            st.session_state.setdefault("tok_return_ids", True)
            return_ids = st.toggle("return_token_ids", key="tok_return_ids",
                                   help="Generated ids in the response: needed for exact forks.")
        c = list(st.columns([2, 2, 2]))
        stop_text = c[0].text_area("stop (one per line; \\n escapes)", key="tok_stop", height=68)
        stop_ids_text = c[1].text_input("stop_token_ids", key="tok_stop_ids",
                                        placeholder="e.g. 2, 106")
        regex = c[2].text_input("regex (instead of a grammar)", key="tok_regex",
                                help="Wafer allows one constraint per request: ebnf or regex.")
    try:
        stop_ids = tokens.parse_ids(stop_ids_text or "", what="stop_token_ids")
        stop_ids_error = None
    except tokens.IdParseError as exc:
        stop_ids, stop_ids_error = [], str(exc)
    settings = tokens.CompletionSettings(
        max_tokens=_int(max_tokens), min_tokens=_int(min_tokens),
        temperature=_float(temperature), top_p=_float(top_p), top_k=_int(top_k),
        min_p=_float(min_p), frequency_penalty=_float(freq), presence_penalty=_float(pres),
        repetition_penalty=_float(rep), stop=tokens.parse_stops(stop_text or ""),
        stop_token_ids=stop_ids, seed=_int(seed), stream=bool(stream),
        logprobs=_int(logprobs), return_token_ids=bool(return_ids), regex=regex or None)
    st.session_state["tokens_stop_ids_error"] = stop_ids_error
    return settings


def _int(v: Any) -> int | None:
    return None if v is None else int(v)


def _float(v: Any) -> float | None:
    return None if v is None else float(v)


# ---------------------------------------------------------------------------- send bar


def _send_bar(conn: Connection, model: Model, ids: list[int] | None, ids_error: str | None,
              ebnf: str, settings: tokens.CompletionSettings, vocab: int | None) -> bool:
    has_grammar = bool(ebnf.strip())
    st.session_state.setdefault(MODE, "both")
    cols = st.columns([3, 3, 1.4], vertical_alignment="bottom")
    mode = cols[0].radio("Runs", list(MODES), key=MODE, format_func=MODES.__getitem__,
                         horizontal=True,
                         help="Without a grammar every run is unconstrained.")
    n_runs = 2 if mode == "both" and has_grammar else 1
    prompt_len = len(ids or [])
    est = tokens.estimate(prompt_len, settings.max_tokens, model.pricing)
    with cols[1]:
        per = f" × {n_runs} runs" if n_runs > 1 else ""
        total = None if est.total is None else est.total * n_runs
        st.metric("Worst-case cost (estimate)", format_usd(total),
                  help="No cache hits and every max_tokens token generated.")
        pin, pout = (format_per_million(model.pricing, "input"),
                     format_per_million(model.pricing, "output"))
        st.caption(f"{prompt_len} prompt ids × {pin}/M + "
                   f"{settings.max_tokens or 0} max_tokens × {pout}/M"
                   f"{per}")
    send = cols[2].button("Send", type="primary", key="tok_send", width="stretch",
                          icon=":material/send:")

    problems = tokens.validate(ids, settings, ebnf=ebnf if has_grammar else None,
                               vocab_size=vocab, model=model.id, prompt_error=ids_error)
    stop_err = st.session_state.get("tokens_stop_ids_error")
    if stop_err:
        problems.append(tokens.Problem("stop_token_ids", stop_err))
    if mode == "constrained" and not has_grammar and not settings.regex:
        problems.append(tokens.Problem("ebnf", "“Constrained only” needs a grammar: pick a "
                                               "preset or write one (or choose unconstrained)"))
    body = tokens.build_body(model.id, ids or [], settings, ebnf=ebnf if has_grammar else None)
    # keyed "raw…": a request payload, hidden while presenting (components/presentation.py)
    with st.container(key="raw_tok_code"), \
            st.expander("View code (exact request, key read from $WAFER_API_KEY)"):
        _code_tabs(conn, body)
    if send and problems:
        lines = "\n".join(f"- **{p.field}**: {p.message}" for p in problems)
        st.error(f"Not sent — fix these first:\n{lines}", icon=":material/block:")
        return False
    if problems:
        st.caption(":material/warning: " + " · ".join(f"{p.field}: {p.message}" for p in problems))
    if send:
        runs: dict[str, Any] = {}
        if has_grammar and mode in ("both", "constrained"):
            runs["constrained"] = tokens.CompletionRun("constrained", body).to_dict()
        if mode == "plain" or (mode == "both") or not has_grammar:
            plain = tokens.without_constraint(body) if has_grammar else body
            runs["unconstrained"] = tokens.CompletionRun("unconstrained", plain).to_dict()
        st.session_state[PENDING] = {"runs": list(runs), "ebnf": ebnf}
        st.session_state[RUNS] = runs
        st.session_state.pop(FORK_INFO, None)
    return bool(send)


def _code_tabs(conn: Connection, body: dict[str, Any]) -> None:
    snippets = codegen.snippets("completions", conn.base_url, body, zdr=conn.zdr)
    tabs = st.tabs([codegen.LABELS.get(k, k) for k in snippets] + ["JSON body"])
    for tab, (lang, code) in zip(tabs, snippets.items(), strict=False):
        tab.code(code, language={"curl": "bash", "javascript": "javascript"}.get(lang, "python"))
    tabs[-1].code(json.dumps(body, indent=2, ensure_ascii=False), language="json")


# ---------------------------------------------------------------------------- results


def _results(conn: Connection, client: WaferClient, model: Model, ebnf: str, send: bool,
             tok: Tokenizer | None) -> None:
    runs: dict[str, Any] = st.session_state.get(RUNS) or {}
    pending = st.session_state.pop(PENDING, None)
    if not runs:
        return
    st.subheader("④ Results", anchor=False)
    labels = [k for k in ("constrained", "unconstrained") if k in runs]
    grammar_text = (pending or {}).get("ebnf", ebnf)
    run_grammar = {k: runs[k]["body"].get("ebnf") or grammar_text for k in labels}
    if labels:
        cols = st.columns(len(labels), gap="medium")
        for col, label in zip(cols, labels, strict=True):
            with col, st.container(border=True):
                run = tokens.CompletionRun.from_dict(runs[label])
                if pending and label in pending.get("runs", []):
                    _execute(conn, client, model, run, runs)
                elif run.in_flight or (run.stopped and not run.logged):
                    _settle(run, runs, model.pricing)  # the run after a Stop
                _run_panel(run, run_grammar[label], model.pricing, tok)
    if "fork" in runs:
        with st.container(border=True):
            run = tokens.CompletionRun.from_dict(runs["fork"])
            if pending and "fork" in pending.get("runs", []):
                _execute(conn, client, model, run, runs)
            elif run.in_flight or (run.stopped and not run.logged):
                _settle(run, runs, model.pricing)
            _fork_panel(run, model.pricing, run_grammar.get("constrained") or grammar_text)


def _wire(conn: Connection, client: WaferClient, model: Model,
          run: tokens.CompletionRun) -> tuple[Run, RequestLog]:
    """The request on the one run path (wafer_playground/runs.py), logged when sent."""
    try:
        store: Store | None = get_store()
    except (StoreError, OSError) as exc:
        st.caption(f"(not saved to history: {exc})")
        store = None
    log = RequestLog(store, base_url=conn.base_url)
    return Run(client, "completions", run.body, pricing=model.pricing, log=log,
               stream=bool(run.body.get("stream"))), log


def _settle_wire(run: tokens.CompletionRun, wire: Run, log: RequestLog,
                 started: float) -> None:
    """The run is over however it ended: copy its outcome, keep the decoded output with its
    log row. Plain Python and the store only: after a Stop, st.* calls raise again."""
    wire.finish()  # unwound by a Stop or rerun: ends "stopped", the record too
    run.request_id = wire.request_id or run.request_id
    run.store_id = wire.record_id
    if wire.error is not None:
        err = wire.error
        run.error = tokens.RunError(err.title, err.human(), err.code, err.status,
                                    err.request_id or run.request_id)
    elif wire.status == "stopped":
        run.stopped = True
    facts = wire.facts()
    if run.ttft_s is None and facts is not None:
        run.ttft_s = facts.ttft_s
    run.elapsed_s = time.perf_counter() - started
    run.in_flight = False
    if not run.logged:
        log.annotate(wire.record_id,
                     response={k: v for k, v in run.to_dict().items() if k != "body"})
        run.logged = True


def _execute(conn: Connection, client: WaferClient, model: Model, run: tokens.CompletionRun,
             runs: dict[str, Any]) -> None:
    """Send one request, streaming into a throttled placeholder; always keeps the result."""
    slot = st.empty()
    slot.caption("Sending…")
    stop_slot = st.empty()
    # Any click reruns the script, which unwinds the stream below; the partial run is kept.
    stop_slot.button("Stop", key=f"tok_halt_{run.label}", icon=":material/stop_circle:")
    wire, log = _wire(conn, client, model, run)
    # Progress goes into the session's own dict as it arrives (the run shares its lists):
    # a Stop/rerun may unwind this frame without the `finally` below being the last word,
    # and the next run then finds the partial output marked in flight (see _settle).
    live = runs.setdefault(run.label, run.to_dict())
    run.in_flight = True
    live.update(in_flight=True)
    started = time.perf_counter()
    throttle = Throttle()
    try:
        for event in wire.events():
            chunk = getattr(event, "chunk", None)
            if chunk is None:
                continue
            run.feed(chunk)
            live.update(text=run.text, store_id=wire.record_id, request_id=wire.request_id)
            now = time.perf_counter()
            if run.ttft_s is None and (run.text or run.generated_ids):
                run.ttft_s = now - started
            if wire.streamed and throttle.due(now, len(run.text)):
                slot.code(run.text + "▌", language=None, wrap_lines=True)
                throttle.mark(now)
    finally:
        _settle_wire(run, wire, log, started)
        runs[run.label] = run.to_dict()
    slot.empty()
    stop_slot.empty()


def _settle(run: tokens.CompletionRun, runs: dict[str, Any], pricing: Pricing) -> None:
    """On the run after a Stop: an interrupted request is kept as partial. Its log row was
    finalised by the run path when the stream unwound; if the frame died before even that
    (`logged` still false), the row is closed here as stopped, priced as an estimate."""
    if run.in_flight:
        run.in_flight = False
        run.stopped = True
    if run.stopped and not run.logged:
        try:
            store: Store | None = get_store()
        except (StoreError, OSError):
            store = None
        fields: dict[str, Any] = {"status": "stopped", "cost": run.cost(pricing),
                                  "response": {k: v for k, v in run.to_dict().items()
                                               if k != "body"}}
        if run.usage:
            fields["usage"] = run.usage
        RequestLog(store, base_url="").annotate(run.store_id, **{
            k: v for k, v in fields.items() if v is not None})
        run.logged = True
    runs[run.label] = run.to_dict()


def _run_panel(run: tokens.CompletionRun, ebnf: str | None, pricing: Pricing,
               tok: Tokenizer | None) -> None:
    title = RUN_TITLES.get(run.label, run.label)
    st.markdown(f"**{title}**")
    if run.error:
        st.error(f"**{run.error.title}** — {md_text(run.error.message, TEXT_LIMIT)}"
                 + (f"\n\nrequest id {md_code(run.error.request_id, 80)}"
                    if run.error.request_id and run.error.request_id not in run.error.message
                    else ""), icon=":material/warning:")
        return
    if (run.elapsed_s is None and run.error is None and not run.stopped and not run.text
            and not run.generated_ids):
        st.caption("Not run: the page was stopped or rerun before this request started.")
        return
    if run.stopped:
        st.warning("Stopped before the end: the output below is partial, and its cost is "
                   "estimated from the ids received.", icon=":material/stop_circle:")
    constrained = bool(run.body.get("ebnf"))
    if ebnf and ebnf.strip():
        try:
            verdict = tokens.verify_output(ebnf, run.text)
        except (AttributeError, ValueError) as exc:  # checker unavailable or grammar broken
            st.caption(f"Grammar check unavailable: {exc}")
        else:
            if verdict.ok:
                st.success(f"✓ Output {md_text(verdict.summary, TEXT_LIMIT)}")
            elif not verdict.checkable:
                st.caption("Output not checked against the grammar — "
                           + md_text(verdict.summary, TEXT_LIMIT))
            else:
                st.error("✗ Output does not match the grammar: "
                         + md_text(verdict.summary, TEXT_LIMIT))
                if verdict.before or verdict.after:
                    st.caption(f"where it breaks: …{_shown(verdict.before)}⟂"
                               f"{_shown(verdict.after)}…")
        if constrained:
            st.caption("Probabilities and alternatives are as the server reports them (the "
                       "local engine reports the model's distribution before the grammar "
                       "mask, so allowed tokens can look unlikely).")
    st.caption("Output text:")
    st.code(run.text if run.text else "(empty)", language=None, wrap_lines=True)
    gen = run.tokens()
    if gen:
        st.html(generated_html(gen))
    ids = run.generated_ids
    if ids:
        st.caption(f"Generated ids ({len(ids)}):")
        st.code(tokens.format_ids(ids), language=None, wrap_lines=True)
    elif run.text:
        st.caption("The server returned no token ids (enable return_token_ids): forking "
                   "needs exact ids.")
    _run_metrics(run, pricing, constrained)
    if gen and ids:
        _fork_controls(run, gen)


def _shown(text: str) -> str:
    """Context text for a caption: whitespace visible, markdown inert."""
    out = text.replace("\n", "↵").replace("\t", "⇥")
    return md_code(out, 200) or "∅"


def _tok_label(text: str) -> str:
    return repr(text) if text else "∅ (end of text)"


def _run_metrics(run: tokens.CompletionRun, pricing: Pricing, constrained: bool) -> None:
    cost = run.cost(pricing)
    prompt_n = len(run.body.get("prompt") or [])
    usage = run.usage_obj()
    cols = st.columns([1, 1.5, 0.8])  # the cost gets the room for "$0.000974" (no "$0.000…")
    cols[0].metric("Tokens in → out",
                   f"{usage.prompt_tokens if usage else prompt_n} → {run.completion_tokens()}")
    cols[1].metric("Cost" + (f" ({cost.kind})" if cost else ""),
                   format_usd(cost.total) if cost else "n/a")
    cols[2].metric("Time", f"{run.elapsed_s:.2f} s" if run.elapsed_s else "n/a",
                   help=f"time to first token {run.ttft_s:.2f} s" if run.ttft_s else None)
    bits = [f"finish_reason `{run.finish_reason or '?'}`",
            "grammar sent" if constrained else "no grammar sent"]
    if run.request_id:
        bits.append(f"request id `{run.request_id}`")
    if usage is None:
        bits.append("no usage returned: cost estimated from counted ids")
    st.caption(" · ".join(bits))


# ---------------------------------------------------------------------------- logprobs & fork


def _fork_controls(run: tokens.CompletionRun, gen: list[tokens.GenToken]) -> None:
    with st.expander("Token probabilities and fork", expanded=run.label != "fork"):
        table = pd.DataFrame([{
            "#": t.index, "id": t.id, "token": t.text, "p": t.prob,
            "top alternatives": ", ".join(f"{a.text!r} {tokens.format_prob(a.prob)}"
                                          for a in t.alternatives[:4]),
        } for t in gen])
        st.dataframe(table, hide_index=True, width="stretch", height=min(260, 36 +
                     35 * len(gen)), column_config={"p": st.column_config.ProgressColumn(
                         "p", min_value=0.0, max_value=1.0, format="percent")})
        forkable = [t for t in gen if any(a.id is not None for a in t.alternatives)]
        if not forkable:
            asked = int(run.body.get("logprobs") or 0)
            if asked > 0 and any(t.alternatives for t in gen):
                why = (f"logprobs was {asked}, but the server's alternatives came without "
                       "token ids")
            elif asked > 0:
                why = f"logprobs was {asked}, but the server returned no alternatives"
            else:
                why = "set logprobs > 0 to get alternatives"
            st.caption(f"Nothing to fork to: {why}.")
            return
        default = min(forkable, key=lambda t: t.prob if t.prob is not None else 1.0)
        key = f"tok_fork_pos_{run.label}"
        options = [t.index for t in forkable]
        if st.session_state.get(key) not in options:
            st.session_state[key] = default.index
        pos = st.selectbox(
            "Fork at token", options, key=key,
            format_func=lambda i: f"#{i} {_tok_label(gen[i].text)} "
                                  f"(p={tokens.format_prob(gen[i].prob)})",
            help="Defaults to the least certain token.")
        token = gen[pos]
        alts = [a for a in token.alternatives if a.id is not None and a.id != token.id]
        if not alts:
            st.caption("Only the sampled token was returned at this position.")
            return
        akey = f"tok_fork_alt_{run.label}"
        alt_ids = [a.id for a in alts]
        if st.session_state.get(akey) not in alt_ids:
            st.session_state[akey] = alt_ids[0]
        by_id = {a.id: a for a in alts}
        chosen = st.radio("Replace it with", alt_ids, key=akey, horizontal=True,
                          format_func=lambda i: f"{_tok_label(by_id[i].text)} · id {i} · "
                                                f"{tokens.format_prob(by_id[i].prob)}")
        st.button("Fork here ↳ continue from this token", key=f"tok_fork_go_{run.label}",
                  on_click=_fork, args=(run.label, pos, int(chosen or alt_ids[0] or 0)))


def _fork(label: str, position: int, chosen_id: int) -> None:
    runs: dict[str, Any] = st.session_state.get(RUNS) or {}
    if label not in runs:
        return
    src = tokens.CompletionRun.from_dict(runs[label])
    prompt = list(src.body.get("prompt") or [])
    gen = src.tokens()
    new_prompt = tokens.fork_prompt(prompt, src.generated_ids, position, chosen_id)
    chosen = next((a for a in gen[position].alternatives if a.id == chosen_id), None)
    # The grammar is not sent on the fork: its root would restart mid-output.
    body = {**tokens.without_constraint(src.body), "prompt": new_prompt}
    prev = (st.session_state.get(FORK_INFO) or {}) if label == "fork" else {}
    chosen_text = chosen.text if chosen else ""
    kept: list[list[Any]] = [[t.id, t.text] for t in gen[:position] if t.id is not None]
    st.session_state[FORK_INFO] = {
        "from": prev.get("from", label), "position": position, "chosen_id": chosen_id,
        "chosen_text": chosen_text, "kept": kept,
        # text from the start of the first completion up to the new continuation, so a fork
        # of a fork still shows (and checks) the whole output
        "lead": str(prev.get("lead", "")) + "".join(t for _, t in kept) + chosen_text,
        "constrained": bool(prev.get("constrained")) or bool(src.body.get("ebnf")),
        "depth": int(prev.get("depth", 0)) + 1,
    }
    runs["fork"] = tokens.CompletionRun("fork", body).to_dict()
    st.session_state[RUNS] = runs
    st.session_state[PENDING] = {"runs": ["fork"]}
    _set_prompt(new_prompt, "fork", f"a fork of the {label} run at token #{position}")


def _fork_panel(run: tokens.CompletionRun, pricing: Pricing, ebnf: str | None) -> None:
    info = st.session_state.get(FORK_INFO) or {}
    depth = int(info.get("depth", 1))
    what = f"the {info.get('from', '?')} run" + (f" (fork #{depth})" if depth > 1 else "")
    st.markdown(f"**Fork** of {what} at token #{info.get('position')}"
                f" → {md_code(repr(info.get('chosen_text', '')), 80)}"
                f" (id {md_text(info.get('chosen_id'), 20)})")
    st.caption("New prompt = original prompt ids + generated ids before the fork point + the "
               "chosen id; sent as ids, so nothing is re-tokenized. The grammar is not sent "
               "on a fork (it would restart from `root` mid-output).")
    if run.error:
        _run_panel(run, None, pricing, None)
        return
    kept = [TokenPiece(int(i), str(t)) for i, t in info.get("kept", [])]
    chosen = TokenPiece(int(info.get("chosen_id", 0)), str(info.get("chosen_text", "")))
    gen = run.tokens()
    st.html(generated_html(gen, prefix=kept, chosen=chosen))
    full = str(info.get("lead", "")) + run.text
    st.caption("Output from the start of the original completion:")
    st.code(full or "(empty)", language=None, wrap_lines=True)
    if ebnf and info.get("constrained"):
        verdict = tokens.verify_output(ebnf, full)
        if verdict.checkable:
            st.caption(("✓ the forked output matches the grammar" if verdict.ok
                        else f"✗ the forked output does not match the grammar: "
                             f"{verdict.summary}")
                       + " (for information: the fork itself ran unconstrained)")
    _run_metrics(run, pricing, False)
    if gen and run.generated_ids:
        _fork_controls(run, gen)


# ---------------------------------------------------------------------------- share links

# Shared request fields: link name -> (widget key, kind, the widget's default). Only fields
# that differ from the default go into a link, so a link stays short and readable.
_SHARED_FIELDS: dict[str, tuple[str, str, Any]] = {
    "max_tokens": ("tok_max_tokens", "int", 48),
    "min_tokens": ("tok_min_tokens", "int", None),
    "temperature": ("tok_temperature", "float", 0.7),
    "top_p": ("tok_top_p", "float", None),
    "top_k": ("tok_top_k", "int", None),
    "min_p": ("tok_min_p", "float", None),
    "frequency_penalty": ("tok_freq", "float", None),
    "presence_penalty": ("tok_pres", "float", None),
    "repetition_penalty": ("tok_rep", "float", None),
    "seed": ("tok_seed", "int", None),
    # the completions field is `logprobs` (an int), but links reserve that name for chat's
    # on/off flag: the top-N count travels as top_logprobs
    "top_logprobs": ("tok_logprobs", "int", 5),
    "stream": ("tok_stream", "bool", True),
    "return_token_ids": ("tok_return_ids", "bool", True),
    "stop": ("tok_stop", "text", ""),  # the box's raw text: one stop per line
    "stop_token_ids": ("tok_stop_ids", "text", ""),
    "regex": ("tok_regex", "text", ""),
    "mode": (MODE, "mode", "both"),
}


def _widget_value(kind: str, value: Any) -> tuple[bool, Any]:
    """(usable, value) coerced to what the widget accepts: a link must never crash it."""
    if value is None:
        return kind in ("int", "float"), None  # an empty number box = server default
    if kind in ("int", "float"):
        if isinstance(value, bool) or not isinstance(value, int | float) \
                or not math.isfinite(value):
            return False, None
        if kind == "int":
            # number_input refuses a float in an int box; 48.0 is fine, 48.5 is not
            return (True, int(value)) if float(value).is_integer() else (False, None)
        return True, float(value)
    if kind == "bool":
        return isinstance(value, bool), value
    if kind == "mode":
        return value in MODES, value
    return isinstance(value, str), value


def _apply_shared(catalog_ids: Sequence[str]) -> None:
    """A share link's setup goes into the widgets' state once per session, before they draw
    (then the user's edits win). Values that do not fit a widget are dropped and named."""
    shared = shared_state("tokens")
    if shared is None:
        return
    skipped: list[str] = []
    if shared.model:
        if shared.model in catalog_ids:
            st.session_state[MODEL] = shared.model
            select_model(shared.model)
        else:
            skipped.append(f"model {shared.model} (not on this endpoint)")
    if shared.prompt is not None:
        st.session_state[IDS] = shared.prompt
        st.session_state.pop(ORIGIN, None)  # typed ids: no tokenizer vouches for them
    if shared.grammar is not None:
        grammar_editor.set_grammar(shared.grammar)
    for name, value in shared.params.items():
        spec = _SHARED_FIELDS.get(name)
        ok, v = _widget_value(spec[1], value) if spec else (False, None)
        if spec is None or not ok:
            skipped.append(name)
            continue
        st.session_state[spec[0]] = v
    if skipped:
        st.caption("Some shared settings were not applied: " + ", ".join(skipped))


def _share_state(model: Model, ebnf: str) -> ShareState:
    """Model, id prompt, grammar and the request fields changed from their defaults. Never
    the connection (the key lives only in the sidebar's state) and never any output."""
    params: dict[str, Any] = {}
    for name, (key, _kind, default) in _SHARED_FIELDS.items():
        value = st.session_state.get(key, default)
        if value != default and not (value == "" and default in ("", None)):
            params[name] = value
    ids = st.session_state.get(IDS) or ""
    return ShareState(page="tokens", model=model.id, params=params,
                      prompt=ids if ids.strip() else None,
                      grammar=ebnf if ebnf.strip() else None)


# ---------------------------------------------------------------------------- history


def _reopen_from_history() -> None:
    run_id = st.session_state.get(TOKENS_RUN_ID)
    if not run_id or st.session_state.get(LOADED_RUN) == run_id:
        return
    st.session_state[LOADED_RUN] = run_id
    try:
        rec = get_store().get_request(str(run_id))
    except (StoreError, OSError) as exc:
        st.session_state[FLASH] = ("error", f"Could not open the run from history: {exc}")
        return
    finally:
        st.session_state.pop(TOKENS_RUN_ID, None)
    if rec is None:
        st.session_state[FLASH] = ("error", "That run is no longer in the history.")
        return
    body = dict(rec.params)
    saved = dict(rec.response or {})
    label = saved.get("label") or ("constrained" if body.get("ebnf") else "unconstrained")
    if label not in ("constrained", "unconstrained"):
        label = "unconstrained"  # a saved fork reopens as a plain run of its prompt
    run = tokens.CompletionRun.from_dict({**saved, "label": label, "body": body})
    raw_prompt = body.get("prompt")
    prompt: list[Any] = raw_prompt if isinstance(raw_prompt, list) else []
    _set_prompt([int(i) for i in prompt], "history", f"the saved run of {rec.ts[:19]}")
    if body.get("ebnf"):
        grammar_editor.set_grammar(str(body["ebnf"]))
    if rec.model:
        st.session_state[MODEL] = rec.model
        select_model(rec.model)
    st.session_state[RUNS] = {label: run.to_dict()}
    st.session_state.pop(FORK_INFO, None)
    st.session_state[FLASH] = ("success", f"Reopened a {rec.model} run from History "
                                          f"({rec.ts[:19]}).")
