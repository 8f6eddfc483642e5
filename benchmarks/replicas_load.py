"""Load run for a team server (issue 19): N browser sessions (default 8) split across two app
replicas on one PostgreSQL, all streaming at once from a fake Wafer server. Records, per
session, the rerun time (Enter until the page has drawn the sent message: one script rerun
under load) and the time to the complete answer; then reads PostgreSQL for lost turns (an
assistant turn that is not `done` with every word).

    uv run python benchmarks/replicas_load.py [--sessions 8] [--tokens 400] [--rate 200]

Needs the PostgreSQL binaries tests/pg.py uses and Debian's Chromium.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from playwright.sync_api import sync_playwright  # noqa: E402

from tests.conftest import CHROMIUM, CHROMIUM_ARGS, StreamlitServer  # noqa: E402
from tests.fake_wafer import FakeWafer, Reply, answer_stream  # noqa: E402
from tests.pg import PostgresServer, find_pg_bin  # noqa: E402
from tests.reliability.load_driver import _complete, _open_all, _send  # noqa: E402
from wafer_playground.client import key_fingerprint  # noqa: E402
from wafer_playground.store.postgres import PostgresStore  # noqa: E402

KEY = "wfr_load_" + "0123456789abcdef" * 2


def p95(xs: list[float]) -> float:
    return sorted(xs)[max(0, round(0.95 * len(xs)) - 1)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sessions", type=int, default=8)
    ap.add_argument("--tokens", type=int, default=400)
    ap.add_argument("--rate", type=float, default=200.0)
    ap.add_argument("--timeout", type=float, default=120.0)
    args = ap.parse_args()
    bindir = find_pg_bin()
    if bindir is None:
        print("PostgreSQL binaries not found", file=sys.stderr)
        return 2
    pg, fake = PostgresServer(bindir), FakeWafer().start()
    servers: list[StreamlitServer] = []
    try:
        pg.start()
        url = pg.create_database()
        env = {"WAFER_PLAYGROUND_DB": url, "WAFER_ENDPOINT": "wafer", "WAFER_BASE_URL": fake.url,
               "WAFER_API_KEY": KEY, "WAFER_ALLOWED_ENDPOINTS": "wafer"}
        servers = [StreamlitServer(env=env), StreamlitServer(env=env)]
        words = [f" w{i}" for i in range(args.tokens)]
        fake.script("POST", "/chat/completions",
                    Reply(sse=answer_stream(words), tokens_per_s=args.rate))
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            half = args.sessions // 2
            pages = (_open_all(browser, servers[0].url, args.sessions - half)
                     + _open_all(browser, servers[1].url, half))
            started, rerun = [], [float("inf")] * len(pages)
            for i, page in enumerate(pages):
                started.append(time.monotonic())
                _send(page, f"session {i}")
            done: list[float | None] = [None] * len(pages)
            deadline = time.monotonic() + args.timeout
            while any(d is None for d in done) and time.monotonic() < deadline:
                for i, page in enumerate(pages):
                    now = time.monotonic()
                    if rerun[i] == float("inf") and page.get_by_text(f"session {i}",
                                                                      exact=True).count():
                        rerun[i] = now - started[i]
                    if done[i] is None and _complete(page, args.tokens):
                        done[i] = now - started[i]
                time.sleep(0.02)
            browser.close()
        store = PostgresStore(url, recover=False).for_owner(key_fingerprint(KEY))
        expected = "".join(words).strip()
        lost = 0
        for conv in store.list_conversations(limit=1000):
            answers = [t for t in store.list_turns(conv.id) if t.role == "assistant"]
            lost += sum(1 for t in answers
                        if t.status != "done" or t.content.strip() != expected)
        n_conv = len(store.list_conversations(limit=1000))
        store.close()
    finally:
        for s in servers:
            s.stop()
        fake.stop()
        pg.stop()
    finished = [d for d in done if d is not None]
    reruns = [r for r in rerun if r != float("inf")]
    print(f"{args.sessions} sessions over 2 replicas, {args.tokens} tokens at {args.rate:g} tok/s "
          f"(ideal {args.tokens / args.rate:.1f} s)")
    print(f"complete: {len(finished)}/{args.sessions}; conversations in PostgreSQL: {n_conv}; "
          f"lost turns: {lost}")
    if reruns:
        print(f"rerun (Enter to message drawn): median {statistics.median(reruns):.2f} s, "
              f"p95 {p95(reruns):.2f} s")
    if finished:
        print(f"answer complete: median {statistics.median(finished):.2f} s, "
              f"p95 {p95(finished):.2f} s, slowest {max(finished):.2f} s")
    return 0 if len(finished) == args.sessions and lost == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
