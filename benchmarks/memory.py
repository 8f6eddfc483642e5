"""Benchmark: RSS of the app server with 20 browser sessions, each on a 50-turn chat.

Issue 20, item 5: memory of the Streamlit server process after 20 sessions x a 50-turn
chat, the growth per session, and a ceiling set from the figure.

Same machinery as long_chat.py (fake SSE upstream, real ``streamlit run app.py``, headless
Chromium). For each session: a conversation of 48 turns of realistic length (~60-word
questions, ~150-word markdown answers with facts; long_chat.conversation_doc) is imported
into the app's database, opened in a new tab with the History page's **Open** button (a
fresh session), and one message is sent; the fast fake upstream answers it with a **short**
answer (``--answer-tokens``, default 40 tokens at 2,000 tok/s), so each session ends with 50
turns and one live request behind it (its request body, headers and SSE events kept for
"View code"). Sessions are opened one after another and their tabs **stay open** (a closed
tab's session is dropped); RSS is read after 1, 5, 10 and 20 sessions (and at 0: the server
after one warm-up tab was opened and closed, so the app's modules are imported). Then every
tab is closed and RSS is read again after ``--settle`` seconds.

Printed: RSS (and USS) per step, growth per session, and a suggested ceiling: the RSS at 20
sessions plus 25 % headroom, and the per-session growth plus 50 %, rounded up. Figures are
printed, never asserted.

Run: ``uv run python benchmarks/memory.py [--sessions 20] [--turns 50] [--json out.json]``
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import long_chat as lc  # noqa: E402
from benchmarks._apps import harness as h  # noqa: E402
from benchmarks._verdict import verdict  # noqa: E402

MB = 1024 * 1024
CHECKPOINTS = (1, 5, 10, 20)


# The ceiling stated in benchmarks/README.md (2026-12-05), from a 20-session run of this
# script: 212 MB measured + 25 %, and 1.4 MB per session + 50 % (rounded up).
CEILING_MB = 270
PER_SESSION_CEILING_MB = 2.5

def memory(app: h.App) -> dict[str, float]:
    info = app.ps.memory_full_info()
    return {"rss_mb": info.rss / MB, "uss_mb": info.uss / MB}


def settle(app: h.App, seconds: float = 2.0) -> dict[str, float]:
    """Memory after the server has been left alone a moment (idle tabs run nothing)."""
    time.sleep(seconds)
    return memory(app)


def up_to(value: float, step: float) -> float:
    return math.ceil(value / step) * step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--turns", type=int, default=50, help="turns per chat at the end (even)")
    ap.add_argument("--answer-tokens", type=int, default=40)
    ap.add_argument("--settle", type=float, default=15.0,
                    help="seconds after closing every tab before the last reading")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    info = h.machine()
    print(f"machine: {info['nproc']} cores, {info['cpu']}; {h.load_line('at start')}")
    checkpoints = sorted({c for c in CHECKPOINTS if c <= args.sessions} | {args.sessions})
    app = h.product("chat")
    readings: list[dict[str, Any]] = []
    started = time.monotonic()
    with h.running([app]) as (upstream, browser):
        db = lc.app_db(app)
        titles = [f"Memory chat s{i + 1:03d}" for i in range(args.sessions + 1)]
        convs = [lc.import_conversation(db, args.turns - 2, t, seed=i)
                 for i, t in enumerate(titles)]
        warm = lc.ChatTab(browser, app)  # imports the pages' modules, fills the caches
        warm.open_conversation(convs[-1], search=titles[-1].split()[-1])
        warm.close()
        base = settle(app)
        readings.append({"sessions": 0, **base})
        print(f"  0 sessions (after a warm-up tab, closed): RSS {base['rss_mb']:.0f} MB, "
              f"USS {base['uss_mb']:.0f} MB", flush=True)
        tabs: list[lc.ChatTab] = []
        try:
            for i in range(args.sessions):
                tab = lc.ChatTab(browser, app)
                tabs.append(tab)
                tab.open_conversation(convs[i], search=titles[i].split()[-1])
                tag = f"M{i}M"
                upstream.config(args.answer_tokens, 2000.0, tag)
                tab.watch(tag)
                tab.send(f"Session {i + 1}: one more question, answered briefly.")
                tab.wait_mark("last", timeout_s=180)
                tab.wait_idle()
                drawn = tab.page.get_by_test_id("stChatMessage").count()
                if i + 1 in checkpoints:
                    m = settle(app)
                    readings.append({"sessions": i + 1, "messages_drawn": drawn, **m})
                    print(f"  {i + 1:2d} sessions ({drawn} messages in the last tab): "
                          f"RSS {m['rss_mb']:.0f} MB, USS {m['uss_mb']:.0f} MB; "
                          f"{h.load_line('now')}", flush=True)
        finally:
            for tab in tabs:
                tab.close()
        closed = settle(app, args.settle)
        readings.append({"sessions": "closed", **closed})
        print(f"  all {len(tabs)} tabs closed, {args.settle:.0f} s later: "
              f"RSS {closed['rss_mb']:.0f} MB, USS {closed['uss_mb']:.0f} MB")
    by_n = {r["sessions"]: r for r in readings}
    last, first = by_n[args.sessions], by_n[1]
    per = (last["rss_mb"] - first["rss_mb"]) / max(1, args.sessions - 1)
    per_from0 = (last["rss_mb"] - base["rss_mb"]) / args.sessions
    print(f"\nRSS after {args.sessions} sessions x {args.turns}-turn chat: "
          f"{last['rss_mb']:.0f} MB (server after warm-up: {base['rss_mb']:.0f} MB)")
    print(f"growth per session: {per:.1f} MB (sessions 1 -> {args.sessions}); "
          f"{per_from0:.1f} MB (0 -> {args.sessions})")
    for a, b in zip(checkpoints, checkpoints[1:], strict=False):
        step = (by_n[b]["rss_mb"] - by_n[a]["rss_mb"]) / (b - a)
        print(f"  {a:2d} -> {b:2d} sessions: {step:.1f} MB per session")
    print(f"after closing every tab: {closed['rss_mb']:.0f} MB "
          f"({closed['rss_mb'] - last['rss_mb']:+.0f} MB)")
    ceiling = up_to(last["rss_mb"] * 1.25, 10)
    per_ceiling = up_to(max(per, per_from0) * 1.5, 0.5)
    print(f"suggested ceiling: {ceiling:.0f} MB RSS for {args.sessions} open sessions of "
          f"{args.turns} turns (measured + 25 %), and {per_ceiling:.1f} MB per further "
          "session (growth + 50 %)")
    verdict(f"memory: RSS at {args.sessions} sessions x {args.turns} turns",
            f"{last['rss_mb']:.0f} MB", f"{base['rss_mb']:.0f} MB after a warm-up tab",
            f"<= {CEILING_MB} MB (the stated ceiling)", last["rss_mb"] <= CEILING_MB)
    verdict("memory: growth per open session", f"{max(per, per_from0):.1f} MB",
            f"the server at 1 session ({first['rss_mb']:.0f} MB)",
            f"<= {PER_SESSION_CEILING_MB} MB", max(per, per_from0) <= PER_SESSION_CEILING_MB)
    print(f"answers: imported {args.turns - 2} turns of realistic length per chat; the live "
          f"answer is short ({args.answer_tokens} tokens at 2,000 tok/s)")
    print(f"{h.load_line('at end')}; wall {time.monotonic() - started:.0f} s")
    h.dump(args.json, {"machine": info, "readings": readings, "per_session_mb": per,
                       "ceiling_mb": ceiling, "per_session_ceiling_mb": per_ceiling,
                       "load_end": h.machine()["load"]})


if __name__ == "__main__":
    main()
