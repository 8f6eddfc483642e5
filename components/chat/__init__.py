"""The Chat page's widgets: the transcript and its streaming send (`transcript`), the
parameter panel (`params`), the conversation's persistence (`store`) and the protocol
side-by-side (`protocols`). Pages import this package; the modules import each other only
downward (transcript → store), never back."""

from components.chat import params, protocols, store
from components.chat.transcript import (
    ACTION,
    DRAWN,
    LAST,
    SPEND,
    TURNS,
    ChatContext,
    clear_chat,
    context_for,
    facts_line,
    first_shown,
    generate,
    held_back,
    init_state,
    mark_drawn,
    on_submit_prompt,
    pop_action,
    preview_body,
    preview_cost,
    render_history,
    request_action,
    request_body,
    show_all_turns,
    spend_check,
    tool_result_forms,
    turns,
    undrawn,
)

__all__ = [
    "ACTION", "DRAWN", "LAST", "SPEND", "TURNS", "ChatContext", "clear_chat",
    "context_for", "facts_line", "first_shown", "generate", "held_back", "init_state", "mark_drawn",
    "on_submit_prompt", "params", "pop_action", "preview_body", "preview_cost", "protocols",
    "render_history", "request_action", "request_body", "show_all_turns", "spend_check",
    "store", "tool_result_forms", "turns", "undrawn",
]
