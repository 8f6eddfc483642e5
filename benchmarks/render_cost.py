"""Benchmark: React work between Enter and the first token, chat page vs the write_stream page.

Why the first token shows later on the chat page than on the naive page (latency.py): the
browser is still rendering when it arrives. This counts that rendering. A React DevTools
global hook, installed before the page loads, sees every React commit. It counts the
function and class components that rendered in it (fiber flag PerformedWork) and groups
them by the nearest element's `data-testid` or `st-key-…` class. Counted from Enter to
the first token in the DOM, on the same fake upstream (instant first token), both pages
in the same run.

Streamlit's frontend renders much more than the changed element on each commit: the
wrappers of every element in a block on the changed path, and its own sidebar menu (which
is why components/page_menu.py draws the menu as page links). At the start of every run,
fragment runs too, it renders every element on the page twice (the new-session and the
running messages), so that cost grows with everything on the page. The ratio per commit is
the figure to watch. (Until 2026-12-05 this walk also counted subtrees React had skipped,
whose fibers keep an earlier commit's flags: it reported ~3,480 renders per commit instead
of ~280.)

Run: ``uv run python benchmarks/render_cost.py [--samples 4]``
"""

from __future__ import annotations

import argparse
import collections
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._apps import harness as h  # noqa: E402

HOOK_JS = """
(() => {
  window.__fib = {on: false, commits: 0, by: {}, total: 0};
  const skip = new Set(['stElementContainer', 'stVerticalBlock', 'stHorizontalBlock',
                        'stLayoutWrapper', 'stVerticalBlockBorderWrapper']);
  const label = f => {
    for (let p = f; p; p = p.return) {
      if (typeof p.type !== 'string' || !p.memoizedProps) continue;
      const c = p.memoizedProps.className;
      const key = typeof c === 'string' && c.split(' ').find(x => x.startsWith('st-key-'));
      if (key) return key;
      const t = p.memoizedProps['data-testid'];
      if (t && !skip.has(t)) return t;
    }
    return '?';
  };
  // function, class, forwardRef, memo, simple memo components (React's WorkTag numbers)
  const COMPONENT = new Set([0, 1, 11, 14, 15]);
  window.__REACT_DEVTOOLS_GLOBAL_HOOK__ = {
    supportsFiber: true, renderers: new Map(), inject() { return 1; }, checkDCE() {},
    onScheduleFiberRoot() {}, onPostCommitFiberRoot() {}, onCommitFiberUnmount() {},
    onCommitFiberRoot(id, root) {
      const F = window.__fib;
      if (!F.on) return;
      F.commits++;
      // A subtree React bailed out of keeps the fibers (and the flags) of an earlier
      // commit: its parent's child pointer is unchanged. Skip it, as React DevTools does
      // (`nextFiber.child !== prevFiber.child`), or every commit counts the whole page.
      const stack = [root.current];
      while (stack.length) {
        const f = stack.pop();
        if (COMPONENT.has(f.tag) && (f.flags & 1)) {  // 1 = PerformedWork: it rendered
          const k = label(f.return); F.by[k] = (F.by[k] || 0) + 1; F.total++;
        }
        if (f.sibling) stack.push(f.sibling);
        if (f.child && (!f.alternate || f.child !== f.alternate.child)) stack.push(f.child);
      }
    }
  };
})();
"""


def samples(browser: Any, upstream: h.FakeUpstream, app: h.App, n: int) -> dict[str, Any]:
    page = h.BenchPage(browser, app)
    page.page.add_init_script(HOOK_JS)
    rows: list[dict[str, Any]] = []
    by: collections.Counter[str] = collections.Counter()
    try:
        page.open()
        for i in range(n + 1):  # the first turn is a warm-up
            tag = f"R{app.name}{i}R"
            upstream.config(20, 50.0, tag)
            page.watch(tag)
            page.page.evaluate("Object.assign(window.__fib, "
                               "{on: true, by: {}, commits: 0, total: 0})")
            page.send(f"Say something short ({i}).")
            page.wait_mark("firstFrame", timeout_s=120)
            got = page.page.evaluate("(() => { window.__fib.on = false; "
                                     "return window.__fib; })()")
            page.wait_mark("last", timeout_s=120)
            page.wait_idle()
            page.calibrate()
            marks, rec = page.marks(), upstream.record(tag)
            if i > 0 and got["commits"] and rec is not None:
                rows.append({"commits": got["commits"], "renders": got["total"],
                             "ttft_s": (marks["firstFrame"] or 0) - rec["first_at"]})
                by.update(got["by"])
    finally:
        page.close()
    return {"rows": rows, "by": by}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=4)
    args = ap.parse_args()
    info = h.machine()
    print(f"machine: {info['nproc']} cores, {info['cpu']}; {h.load_line('at start')}")
    apps = [h.product("chat"), h.naive("write_stream", "write_stream")]
    started = time.monotonic()
    out: dict[str, dict[str, Any]] = {}
    with h.running(apps) as (upstream, browser):
        for app in apps:
            out[app.name] = samples(browser, upstream, app, args.samples)
    print("\nEnter -> first token, medians per turn:")
    per_commit: dict[str, float] = {}
    for name, got in out.items():
        rows = got["rows"]
        commits = statistics.median(r["commits"] for r in rows)
        renders = statistics.median(r["renders"] for r in rows)
        per_commit[name] = statistics.median(r["renders"] / r["commits"] for r in rows)
        ttft = statistics.median(r["ttft_s"] for r in rows)
        print(f"  {name:13s} {commits:4.0f} commits, {renders:7.0f} component renders "
              f"({per_commit[name]:6.0f} per commit); first token {ttft * 1000:.0f} ms "
              f"after the upstream's (n={len(rows)})")
        top = ", ".join(f"{k} {v / len(rows):.0f}" for k, v in got["by"].most_common(8))
        print(f"    most renders (per turn): {top}")
    if len(per_commit) == 2:
        print(f"ratio chat / write_stream, component renders per commit: "
              f"{per_commit['chat'] / per_commit['write_stream']:.1f}x")
    print(f"{h.load_line('at end')}; wall {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
