"""Benchmark: the Model catalog page's AppTest run time with 2,000 and 10,000 synthetic models.

For each size the fake Wafer server (tests/fake_wafer.py) serves a synthetic `/v1/models`
on loopback; the benchmark runs the real
app (router, sidebar, catalog page) under AppTest and times:

* first load   (fetch + parse + derived frames + draw),
* rerun        (nothing changed: cached frames),
* filter / search / workload / sort interactions,

and, as a same-run baseline, a bare `st.dataframe` of the very frame the page shows (same
rows and columns, no config). Ratios = page time / baseline time. The target is a page run
under 1.5 s at 2,000 models (ideally 10,000). Medians of `--repeat` runs.

Run: `uv run python benchmarks/catalog_page.py [--sizes 2000 10000] [--repeat 3]`
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from streamlit.testing.v1 import AppTest  # noqa: E402

from tests.conftest import _steady_state_navigation  # noqa: E402,F401 - patches AppTest
from tests.fake_wafer import FakeWafer, Reply  # noqa: E402
from tests.fixtures.synth import synth_payload  # noqa: E402

TARGET_S = 1.5
BASELINE = """
import streamlit as st
import wafer_bench_frames
st.dataframe(wafer_bench_frames.FRAME, hide_index=True)
"""


def timed(at: AppTest, change: Callable[[AppTest], object] | None = None) -> float:
    if change is not None:
        change(at)
    started = time.perf_counter()
    at.run()
    elapsed = time.perf_counter() - started
    if at.exception:
        raise RuntimeError(at.exception[0].value)
    return elapsed


def page_app(base_url: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state["conn_kind"] = "custom"
    at.session_state["conn_custom_url"] = base_url
    return at


def bench_size(n: int, repeat: int) -> dict[str, tuple[float, float]]:
    body = json.dumps(synth_payload(n)).encode()
    fake = FakeWafer().start()
    fake.script("GET", "/models", Reply(body=body, content_type="application/json"))
    base = fake.url
    try:
        results: dict[str, list[float]] = {}
        base_first: list[float] = []
        base_rerun: list[float] = []
        for _ in range(repeat):
            at = page_app(base)
            steps: list[tuple[str, Callable[[AppTest], object] | None]] = [
                ("first load", None),
                ("rerun (no change)", None),
                ("search 'deepseek'", lambda a: a.text_input(key="cat_q").set_value("deepseek")),
                ("capability filter", lambda a: a.multiselect(key="cat_caps")
                 .set_value(["vision"])),
                ("clear filters", lambda a: (a.text_input(key="cat_q").set_value(""),
                                             a.multiselect(key="cat_caps").set_value([]))),
                ("workload change", lambda a: a.number_input(key="cat_wl_in").set_value(12_345)),
                ("sort by $/month", lambda a: a.selectbox(key="cat_sort").set_value("month")),
            ]
            for name, change in steps:
                results.setdefault(name, []).append(timed(at, change))
            shown = at.dataframe[0].value
            assert len(shown) == n, f"page showed {len(shown)} of {n} rows"
            # Baseline: the same frame the page just drew, as a bare st.dataframe.
            mod = types.ModuleType("wafer_bench_frames")
            mod.FRAME = shown  # type: ignore[attr-defined]
            sys.modules["wafer_bench_frames"] = mod
            b = AppTest.from_string(BASELINE, default_timeout=120)
            base_first.append(timed(b))
            base_rerun.append(timed(b))
        b_first, b_rerun = statistics.median(base_first), statistics.median(base_rerun)
        out = {}
        for name, times in results.items():
            ref = b_first if name == "first load" else b_rerun
            out[name] = (statistics.median(times), ref)
        out["baseline: bare st.dataframe"] = (b_rerun, b_rerun)
        return out
    finally:
        fake.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 10000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("WAFER_PLAYGROUND_DB", str(ROOT / ".pytest_cache" / "bench.db"))
    os.environ["WAFER_ENDPOINT"] = "custom"
    os.environ.pop("WAFER_API_KEY", None)
    print(f"Catalog page benchmark (AppTest, median of {args.repeat}; target < {TARGET_S} s)")
    # Cold start (imports, AppTest's component scan) is paid once per process: keep it out.
    started = time.perf_counter()
    bench_size(20, 1)
    print(f"warm-up with 20 models (imports included): {time.perf_counter() - started:.2f} s")
    for n in args.sizes:
        print(f"\n{n:,} synthetic models")
        print(f"  {'step':<30}{'page s':>9}{'baseline s':>12}{'ratio':>8}  target")
        for name, (t, ref) in bench_size(n, args.repeat).items():
            ok = "ok" if t < TARGET_S else "SLOW"
            print(f"  {name:<30}{t:>9.3f}{ref:>12.3f}{t / ref:>8.2f}  {ok}")


if __name__ == "__main__":
    main()
