"""History page widgets, and `get_store()`: the one place pages get the durable store from.

Draws only: listing, searching and totals come from the store; exports from
`wafer_playground.transcript`. Reopening hands an id to the target page through session
state (`chat_conversation_id`, `tokens_run_id`); those pages load from the store by id.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal

import pandas as pd
import streamlit as st

from components.connection import history_owner
from components.presentation import is_presenting
from components.untrusted import model_output
from wafer_playground import share
from wafer_playground.compare import KEEP_OUTPUT, past_runs
from wafer_playground.costs import format_usd
from wafer_playground.store import (
    ANONYMOUS,
    ConversationSummary,
    RequestRecord,
    SQLStore,
    Store,
    StoreError,
    default_db_target,
    open_store,
    parse_ts,
    request_log_totals,
)
from wafer_playground.titles import conversation_title
from wafer_playground.transcript import (
    TranscriptError,
    export_json,
    export_markdown,
    import_json,
)
from wafer_playground.untrusted import TEXT_LIMIT, clean, frame_csv, md_code, md_text, truncated

CHAT_CONVERSATION_ID = "chat_conversation_id"
TOKENS_RUN_ID = "tokens_run_id"
CHAT_PAGE = "pages/chat.py"
TOKENS_PAGE = "pages/tokens.py"

PAGE_SIZE = 25
_MANAGE = "history_manage_id"
_CONFIRM = "history_confirm_delete_id"
_FLASH = "history_flash"
_LIMIT = "history_limit"


# --------------------------------------------------------------------------- store access


@st.cache_resource(show_spinner=False, max_entries=8)
def _open_store(target: str) -> SQLStore:
    # One store per database per server process, shared by all sessions: both backends are
    # thread-safe (SQLite: a lock-guarded connection, other processes coordinate through WAL;
    # PostgreSQL: a connection pool, other replicas coordinate through the server).
    return open_store(target)


def get_store() -> SQLStore:
    """The app's store ($WAFER_PLAYGROUND_DB: an SQLite file or a postgresql:// URL; else a
    file in the user data dir), cached by target and seen by this session's history owner
    (its key's fingerprint): other keys' history is not listed, opened, changed or priced."""
    return _open_store(default_db_target()).for_owner(history_owner())


def open_conversation(conversation_id: str) -> None:
    """Reopen a conversation on the chat page."""
    st.session_state[CHAT_CONVERSATION_ID] = conversation_id
    st.switch_page(CHAT_PAGE)


def open_run(request_row_id: str) -> None:
    """Reopen a completions run (a request-log row) on the token page."""
    st.session_state[TOKENS_RUN_ID] = request_row_id
    st.switch_page(TOKENS_PAGE)


def import_upload(store: Store, data: bytes) -> tuple[str | None, str]:
    """Import an uploaded JSON export; (new conversation id or None, message for the user)."""
    try:
        cid = import_json(store, data)
    except TranscriptError as exc:
        return None, f"Nothing was imported. {exc}"
    conv = store.get_conversation(cid)
    title = conv.title if conv and conv.title else "Untitled conversation"
    return cid, f"Imported “{title}”."


# --------------------------------------------------------------------------- share links

_SHARE_APPLIED = "share_applied"
_SHARE_PENDING = "share_pending"  # page -> a link's state waiting for the user's yes
_SHARE_CONFIRMED = "share_confirmed"  # page -> the state the user said yes to


def share_panel(state: share.ShareState, *, key: str) -> share.EncodeResult:
    """A "Share" popover: a link holding this page's setup, or a file when it is too big.

    Keys and personal fields never reach the link (share.encode strips them and says so).
    """
    base = st.context.url or ""
    res = share.encode(state, base_url=base)
    with st.popover("Share", icon=":material/share:", key=f"{key}_popover"):
        if res.ok:
            st.code(res.url(base), language=None, wrap_lines=True)
            st.caption("Anyone with this link opens the same page, model and settings. "
                       "It never contains your API key.")
        else:
            st.download_button("Download settings file", data=share.state_to_file(state),
                               file_name=f"wafer-{state.page}-settings.json",
                               mime="application/json", key=f"{key}_file")
        if res.notice:
            st.caption(res.notice)
    return res


def shared_state(page: str) -> share.ShareState | None:
    """The state a share link carries for `page`, once per session (then the user's edits win).

    Pages apply the returned fields to their own widgets; notices about dropped fields are
    shown here. A link that sets a system prompt, tools or a grammar is held back: its
    content is shown as plain text and applied only when the user confirms (once).
    """
    pending: dict[str, share.ShareState] = st.session_state.setdefault(_SHARE_PENDING, {})
    confirmed: dict[str, share.ShareState] = st.session_state.setdefault(_SHARE_CONFIRMED, {})
    if page in confirmed:
        return confirmed.pop(page)
    if page in pending:
        _confirm_box(page, pending[page])
        return None
    applied: set[str] = st.session_state.setdefault(_SHARE_APPLIED, set())
    if page in applied:
        return None
    applied.add(page)
    result = share.decode(st.query_params.to_dict())
    if result.notice:
        st.warning(md_text(result.notice, TEXT_LIMIT))
    if result.state is None or result.state.page != page:
        return None
    if result.ignored:
        st.caption("Some shared settings were not applied: "
                   + md_text(", ".join(result.ignored), TEXT_LIMIT))
    if share.instructions(result.state):
        pending[page] = result.state
        _confirm_box(page, result.state)
        return None
    return result.state


def _decide(page: str, apply: bool) -> None:
    state = st.session_state[_SHARE_PENDING].pop(page, None)
    if apply and state is not None:
        st.session_state[_SHARE_CONFIRMED][page] = state


def _confirm_box(page: str, state: share.ShareState) -> None:
    with st.container(border=True, key=f"share_confirm_{page}"):
        st.warning("**This link sets instructions for the model.** Read them before applying: "
                   "a link can carry text you did not write, for example telling the model to "
                   "send your conversation to another site. Nothing is applied until you "
                   "choose.", icon=":material/link:")
        for label, text in share.instructions(state):
            shown, hidden = truncated(text, 20_000)
            st.markdown(f"**{label}**" + (f" (first 20,000 of {len(text):,} characters)"
                                          if hidden else ""))
            st.code(clean(shown, None), language=None, wrap_lines=True)
        with st.container(horizontal=True):
            st.button("Apply the shared settings", key=f"share_apply_{page}", type="primary",
                      icon=":material/check:", on_click=_decide, args=(page, True))
            st.button("Ignore them", key=f"share_ignore_{page}", icon=":material/close:",
                      on_click=_decide, args=(page, False))




# --------------------------------------------------------------------------- formatting


def _when(ts: str) -> str:
    return parse_ts(ts).strftime("%Y-%m-%d %H:%M UTC")


def _cost(d: Decimal | None) -> str:
    return "—" if d is None else format_usd(d)


def _file_stem(title: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", title).strip("-.")[:60]
    return stem or "conversation"


# --------------------------------------------------------------------------- page


def render_history_page(store: Store) -> None:
    # Another server process sharing the file may have died since we opened it.
    store.recover_interrupted()
    flash = st.session_state.pop(_FLASH, None)
    if flash:
        st.success(md_text(flash, TEXT_LIMIT))  # flashes quote titles: imported text
    if store.owner == ANONYMOUS:
        st.caption("History made without an API key. Each key has its own history on this "
                   "install, and this page never shows another key's.")
    else:
        st.caption(f"History made with this session's API key (fingerprint "
                   f"`{store.owner[:8]}`). This page never shows another key's history.")
    if is_presenting():
        _titles_only(store)  # the audience sees titles, never past prompts or answers
        return
    chats, votes, runs, log, library, imp = st.tabs(["Conversations", "Compare",
                                                     "Completion runs", "Request log",
                                                     "Library", "Import"])
    with chats:
        _conversations(store)
    with votes:
        _compare_runs(store)
        _votes(store)
    with runs:
        _completion_runs(store)
    with log:
        _request_log(store)
    with library:
        _library(store)
    with imp:
        _import(store)


def _titles_only(store: Store) -> None:
    rows = store.list_conversations(limit=12)
    st.caption("Presentation mode: titles only (prompts and answers stay private).")
    if not rows:
        st.info("No saved conversations yet.")
        return
    st.markdown("\n".join(f"- **{md_text(r.title or 'Untitled conversation')}** · "
                           f"{md_text(r.model or 'no model', 80)} · {r.turn_count} turn(s)"
                           for r in rows))


def _compare_runs(store: Store) -> None:
    """Every comparison, voted or not: its panes as the request log kept them."""
    past = past_runs(store.list_requests(limit=2000))
    st.markdown("##### Comparisons")
    if not past:
        st.info("No comparisons yet. Runs from the Compare page appear here, with each "
                "pane's answer, speed and cost.")
        return
    st.caption(f"{len(past)} comparison(s), most recent first")
    for run in past[:50]:
        with st.container(border=True, key=f"hist_cmp_{run.id}"):
            title = conversation_title(run.prompt, fallback="Comparison")
            st.markdown(f"**{md_text(title)}**" + (" · :gray-badge[blind]" if run.blind
                                                     else ""))
            st.caption(f"{_when(run.ts)} · {len(run.panes)} pane(s) · "
                       f"{_cost(run.cost_usd)} in all")
            for pane in run.panes:
                meta = pane.response or {}
                label = str(meta.get("label") or pane.model)
                speed = (f" · TTFT {pane.ttft_s:.2f} s" if pane.ttft_s is not None else "") + (
                    f" · {pane.tokens_per_s:.1f} tok/s" if pane.tokens_per_s else "")
                head = (f"{md_text(label, 80)} ({md_code(pane.model, 80)}) · "
                        f"{md_text(pane.status, 20)}{speed} · {_cost(pane.cost_usd)}")
                with st.expander(head, icon=":material/view_column:"):
                    output = str(meta.get("output") or "")
                    if output:  # formatting kept, nothing loads (components/untrusted.py)
                        model_output(output[:KEEP_OUTPUT], key=f"hist_cmp_{pane.id}")
                    else:
                        st.caption("No answer text was kept for this pane.")


def _votes(store: Store) -> None:
    """Blind Compare runs and what was picked (saved when you vote on the Compare page)."""
    votes = store.list_votes(limit=200)
    st.markdown("##### Blind votes")
    if not votes:
        st.info("No Compare votes yet. Run a blind comparison on the Compare page and pick "
                "the best answer: it shows up here.")
        return
    st.caption(f"{len(votes)} blind comparison(s), most recent first")
    for v in votes:
        with st.container(border=True, key=f"hist_vote_{v.id}"):
            st.markdown(f"**{md_text(conversation_title(v.prompt, fallback='Comparison'))}**")
            picked = (f"picked **{md_text(v.winner, 80)}**" if v.winner else
                      "no preference")
            st.caption(f"{_when(v.ts)} · {picked} · from "
                       + ", ".join(md_text(c, 80) for c in v.candidates))


def _conversations(store: Store) -> None:
    query = st.text_input("Search", key="history_search", placeholder="Search titles and messages",
                          label_visibility="collapsed")
    limit = int(st.session_state.get(_LIMIT, PAGE_SIZE))
    rows = store.list_conversations(query or None, limit=limit + 1)
    if not rows:
        st.info("No conversation matches." if query else
                "No saved conversations yet. Chats are saved here as you type.")
        return
    more = len(rows) > limit
    rows = rows[:limit]
    st.caption(f"{len(rows)}{'+' if more else ''} conversation(s)"
               + (f" matching “{query}”" if query else "") + ", most recent first")
    for row in rows:
        _conversation_row(store, row)
    if more and st.button("Show more", key="history_more"):
        st.session_state[_LIMIT] = limit + PAGE_SIZE
        st.rerun()


def _conversation_row(store: Store, row: ConversationSummary) -> None:
    with st.container(border=True, key=f"hist_row_{row.id}"):
        left, mid, right = st.columns([6, 3, 2], vertical_alignment="center")
        with left:
            st.markdown(f"**{md_text(row.title or 'Untitled conversation')}**")
            # the snippet only when it adds something to the title (no repeat)
            if row.preview and not _same_words(row.preview, row.title):
                st.caption(md_text(row.preview, 120))
        with mid:
            st.caption(f"{md_text(row.model or 'no model', 80)} · {md_text(row.surface, 20)}  \n"
                       f"updated {_when(row.updated_at)}  \n"
                       f"{row.turn_count} turn(s) · cost {_cost(row.cost_usd)}")
        with right:
            if st.button("Open", key=f"hist_open_{row.id}", type="primary",
                         help="Continue this conversation on the Chat page"):
                open_conversation(row.id)
            managing = st.session_state.get(_MANAGE) == row.id
            if st.button("Close" if managing else "Manage", key=f"hist_manage_{row.id}"):
                st.session_state[_MANAGE] = None if managing else row.id
                st.session_state.pop(_CONFIRM, None)
                st.rerun()
        if st.session_state.get(_MANAGE) == row.id:
            _manage_panel(store, row)


def _manage_panel(store: Store, row: ConversationSummary) -> None:
    name, save = st.columns([5, 1], vertical_alignment="bottom")
    title = name.text_input("Title", value=row.title, key=f"hist_title_{row.id}", max_chars=200)
    if save.button("Rename", key=f"hist_rename_{row.id}"):
        try:
            store.rename_conversation(row.id, title)
        except StoreError as exc:
            st.error(str(exc))
        else:
            st.session_state[_FLASH] = f"Renamed to “{title.strip()}”."
            st.rerun()
    stem = _file_stem(row.title)
    dl1, dl2, dl3 = st.columns(3)
    dl1.download_button("Export JSON", data=export_json(store, row.id),
                        file_name=f"{stem}.json", mime="application/json",
                        key=f"hist_json_{row.id}", help="Re-importable, lossless")
    dl2.download_button("Export Markdown", data=export_markdown(store, row.id),
                        file_name=f"{stem}.md", mime="text/markdown", key=f"hist_md_{row.id}")
    if st.session_state.get(_CONFIRM) != row.id:
        if dl3.button("Delete…", key=f"hist_delete_{row.id}"):
            st.session_state[_CONFIRM] = row.id
            st.rerun()
        return
    st.warning(f"Delete “{md_text(row.title or 'Untitled conversation')}” and its "
               f"{row.turn_count} turn(s)? This cannot be undone. Its requests stay in the "
               "request log.")
    yes, no = st.columns(2)
    if yes.button("Delete for good", key=f"hist_confirm_{row.id}", type="primary"):
        store.delete_conversation(row.id)
        st.session_state.pop(_CONFIRM, None)
        st.session_state[_MANAGE] = None
        if st.session_state.get(CHAT_CONVERSATION_ID) == row.id:
            st.session_state[CHAT_CONVERSATION_ID] = None  # chat must not reopen a ghost
        st.session_state[_FLASH] = f"Deleted “{row.title or 'Untitled conversation'}”."
        st.rerun()
    if no.button("Cancel", key=f"hist_cancel_{row.id}"):
        st.session_state.pop(_CONFIRM, None)
        st.rerun()


def _same_words(preview: str, title: str) -> bool:
    def norm(t: str) -> str:
        return " ".join(re.sub(r"[^\w\s]", " ", t.lower()).split())
    a, b = norm(preview), norm(title.rstrip("…"))
    return not a or a.startswith(b) or b.startswith(a)


def _run_label(r: RequestRecord) -> str:
    tokens = f"{r.prompt_tokens or 0}→{r.completion_tokens or 0} tok"
    return (f"{_when(r.ts)} · {r.model or 'no model'} · {r.status or 'unknown'} · {tokens} · "
            f"{_cost(r.cost_usd)}")


def _completion_runs(store: Store) -> None:
    runs = store.list_requests(surface="completions", limit=200)
    if not runs:
        st.info("No completion runs yet. Runs from the Token & grammar page appear here.")
        return
    st.caption(f"{len(runs)} most recent run(s) on /v1/completions")
    for r in runs:
        with st.container(border=True, key=f"hist_run_{r.id}"):
            text, button = st.columns([8, 2], vertical_alignment="center")
            text.markdown(md_text(_run_label(r), 400))
            if r.error_code:
                text.caption(f"error: {md_code(r.error_code, 80)}")
            if button.button("Open", key=f"hist_open_run_{r.id}",
                             help="Reopen this run on the Token & grammar page"):
                open_run(r.id)


def _request_log(store: Store) -> None:
    df = store.request_log_frame(limit=5000)
    if df.empty:
        st.info("No requests logged yet.")
        return
    surface = st.segmented_control("Surface", ["all", "chat", "completions", "messages"],
                                   default="all", key="history_log_surface")
    if surface and surface != "all":
        df = df[df["surface"] == surface]
    totals = request_log_totals(df)
    c1, c2, c3 = st.columns(3)
    c1.metric("Requests", f"{totals.requests:,}")
    c2.metric("Recorded cost", _cost(totals.cost_usd),
              help=f"Sum of the cost recorded at request time ({totals.priced} priced "
                   "request(s)); reprice on the Costs page.")
    c3.metric("Errors", totals.errors)
    view = df.drop(columns=["id", "conversation_id"]).copy()
    # Decimal cells do not render in the grid; show text, keep the Decimals for export.
    view["cost_usd"] = [_cost(c) if isinstance(c, Decimal) else "—" for c in view["cost_usd"]]
    st.dataframe(
        view, hide_index=True, key="history_log_table",
        column_order=["ts", "model", "surface", "status", "prompt_tokens", "cached_tokens",
                      "completion_tokens", "reasoning_tokens", "cost_usd", "ttft_s",
                      "tokens_per_s", "error_code", "request_id", "base_url"],
        column_config={
            "ts": st.column_config.DatetimeColumn("Time (UTC)", format="YYYY-MM-DD HH:mm:ss"),
            "model": st.column_config.TextColumn("Model"),
            "surface": st.column_config.TextColumn("Surface"),
            "status": st.column_config.TextColumn("Status"),
            "prompt_tokens": st.column_config.NumberColumn("Prompt tok"),
            "cached_tokens": st.column_config.NumberColumn("Cached tok"),
            "completion_tokens": st.column_config.NumberColumn("Output tok"),
            "reasoning_tokens": st.column_config.NumberColumn("Reasoning tok"),
            "cost_usd": st.column_config.TextColumn("Cost"),
            "ttft_s": st.column_config.NumberColumn("TTFT (s)", format="%.2f"),
            "tokens_per_s": st.column_config.NumberColumn("tok/s", format="%.1f"),
            "error_code": st.column_config.TextColumn("Error"),
            "request_id": st.column_config.TextColumn("Request id"),
            "base_url": st.column_config.TextColumn("Endpoint"),
        },
    )
    st.download_button("Download CSV", data=_csv(df), file_name="wafer-request-log.csv",
                       mime="text/csv", key="history_log_csv")


def _csv(df: pd.DataFrame) -> str:
    out = df.copy()
    out["cost_usd"] = [None if c is None else format(c, "f") for c in out["cost_usd"]]
    return frame_csv(out)


def _library(store: Store) -> None:
    """Saved presets, prompts and grammars (saved from the Chat and Token pages)."""
    presets, prompts, grammars = store.list_presets(), store.list_prompts(), store.list_grammars()
    if not (presets or prompts or grammars):
        st.info("Nothing saved yet. Presets, prompts and grammars saved on the Chat and "
                "Token & grammar pages show up here.")
        return
    kinds = {
        "preset": ({p.name: p for p in presets}, store.delete_preset),
        "prompt": ({p.name: p for p in prompts}, store.delete_prompt),
        "grammar": ({g.name: g for g in grammars}, store.delete_grammar),
    }
    if presets:
        st.markdown("**Parameter presets**")
        st.dataframe(pd.DataFrame([{"name": p.name, "surface": p.surface,
                                    "parameters": json.dumps(p.params, sort_keys=True),
                                    "updated": _when(p.updated_at)} for p in presets]),
                     hide_index=True, key="history_presets")
    if prompts:
        st.markdown("**Saved prompts**")
        st.dataframe(pd.DataFrame([{"name": p.name, "variables": ", ".join(p.variables),
                                    "text": p.text[:200], "updated": _when(p.updated_at)}
                                   for p in prompts]), hide_index=True, key="history_prompts")
    if grammars:
        st.markdown("**Saved grammars**")
        st.dataframe(pd.DataFrame([{"name": g.name, "lines": g.ebnf.count("\n") + 1,
                                    "ebnf": g.ebnf[:200], "updated": _when(g.updated_at)}
                                   for g in grammars]), hide_index=True, key="history_grammars")
    kind_col, name_col, button_col = st.columns([2, 4, 2], vertical_alignment="bottom")
    kind = kind_col.selectbox("Remove a saved", [k for k, (items, _) in kinds.items() if items],
                              key="history_lib_kind")
    items, delete = kinds[kind]
    name = name_col.selectbox("Name", sorted(items), key="history_lib_name")
    if button_col.button("Remove", key="history_lib_remove") and name:
        delete(name)
        st.session_state[_FLASH] = f"Removed the {kind} “{name}”."
        st.rerun()


def _import(store: Store) -> None:
    st.caption("Import a conversation exported as JSON from this app. The file is checked "
               "first; a bad file changes nothing.")
    up = st.file_uploader("Conversation JSON", type=["json"], key="history_import_file")
    if up is not None and st.button("Import", key="history_import_go"):
        cid, message = import_upload(store, up.getvalue())
        if cid is None:
            st.error(md_text(message, TEXT_LIMIT))
        else:
            st.session_state[_FLASH] = message
            st.rerun()
