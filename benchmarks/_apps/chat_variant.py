"""The real app and chat page with the streaming renderer patched in this process only.

``BENCH_RENDER=once``: draw nothing until the final render (the render-once control).
Everything else is the product's: router, sidebar, WaferClient, SSE decoder, accumulator,
store saves, the status line, the rerun after the turn. So the server-CPU ratio
"chat page / this" isolates what live rendering costs.

``BENCH_RENDER=noblocks``: the throttled renderer without freezing finished paragraphs
(every redraw re-sends the whole answer): the ablation for `freeze_point`.

``BENCH_RENDER=fullrerun``: the whole page reruns after every answer (as before issue 20's
fragment-scoped rerun), so every older turn is drawn again: the control for long_chat.py.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from components import connection, streaming  # noqa: E402


def _hold(self: streaming.ThrottledText, text: str, now: float | None = None) -> bool:
    self.text = text  # remembered for final(); nothing is drawn while streaming
    return False


def _never(text: str, start: int = 0, **_: object) -> int:
    return start


MODE = os.environ.get("BENCH_RENDER", "once")
if MODE == "once":
    streaming.ThrottledText.update = _hold  # type: ignore[method-assign]
elif MODE == "noblocks":
    streaming.freeze_point = _never
elif MODE == "fullrerun":
    import components.chat as chat_pkg  # noqa: E402
    from components.chat import transcript  # noqa: E402

    _generate = transcript.generate

    def _full_rerun(ctx: transcript.ChatContext, *, rerun: str = "app") -> None:
        _generate(ctx, rerun="app")

    chat_pkg.generate = _full_rerun
else:
    raise SystemExit(f"BENCH_RENDER={MODE!r}: expected 'once', 'noblocks' or 'fullrerun'")

st.set_page_config(page_title="Wafer Playground", page_icon=":material/bolt:", layout="wide",
                   initial_sidebar_state="expanded")
# Same pages and URLs as app.py (absolute paths: this script is not in the project root).
PAGES = [
    st.Page(ROOT / "pages/catalog.py", title="Model catalog", icon=":material/view_list:",
            url_path="catalog", default=True),
    st.Page(ROOT / "pages/chat.py", title="Chat", icon=":material/chat:", url_path="chat"),
    st.Page(ROOT / "pages/tokens.py", title="Token & grammar", icon=":material/data_array:",
            url_path="tokens"),
    st.Page(ROOT / "pages/compare.py", title="Compare", icon=":material/compare:",
            url_path="compare"),
    st.Page(ROOT / "pages/costs.py", title="Costs", icon=":material/payments:",
            url_path="costs"),
    st.Page(ROOT / "pages/history.py", title="History", icon=":material/history:",
            url_path="history"),
]
nav = st.navigation(PAGES)
connection.sidebar()
nav.run()
