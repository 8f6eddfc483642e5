"""Evaluate's runner: a test set × 3 models, concurrent (cap 8 per endpoint) against
sequential, in the same run, on a fake upstream with a fixed latency (issue 18).

Both runs go through the real path: `eval_runner.EvalJob` → `runs.Run` → `WaferClient` over
loopback HTTP to the fake Wafer server (tests/fake_wafer.py), each cell logged
in and saved to an SQLite store as it completes. Prints wall times and the ratio (goal ≥ 5×).

With `--page`, it also times the Evaluate page's reruns (the real app.py under AppTest) while
a run is in progress: the median and p90 of a full rerun, and of the progress fragment's
query alone (goal: the page reruns in under 150 ms).

    uv run python benchmarks/evaluate.py [--rows 200] [--latency 0.05] [--page]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fake_wafer import CARDS, FakeWafer, Reply, answer_stream  # noqa: E402
from wafer_playground.catalog import Pricing  # noqa: E402
from wafer_playground.client import WaferClient  # noqa: E402
from wafer_playground.eval_runner import EvalJob, Gate, plan, progress  # noqa: E402
from wafer_playground.evals import EvalSetup, from_records  # noqa: E402
from wafer_playground.store import SQLiteStore  # noqa: E402
from wafer_playground.store.evals import EvalStore  # noqa: E402

MODELS = ("fake-glm", "fake-tiny", "fake-mini")
PRICE = Pricing(input_cpm=Decimal(100), output_cpm=Decimal(200))


def setup_for(rows: int, models: tuple[str, ...] = MODELS) -> EvalSetup:
    tests = from_records([{"q": f"question {i}", "expect_contains": "fake"}
                          for i in range(rows)])
    return EvalSetup("Answer: {{q}}", tests, models)


def timed_run(es: EvalStore, url: str, setup: EvalSetup, concurrency: int) -> float:
    rid = es.create_run(setup.to_json(), setup.cells(), base_url=url)
    client = WaferClient(url, max_retries=0)
    job = EvalJob(es, rid, plan(setup), client=client, base_url=url,
                  pricing_for=lambda _m: PRICE, concurrency=concurrency, gate=Gate(8))
    t0 = time.perf_counter()
    job.start()
    job.wait()
    took = time.perf_counter() - t0
    client.close()
    cells = es.cells(rid)
    done = sum(c.status == "done" for c in cells)
    assert done == len(cells), f"{len(cells) - done} cells did not finish"
    assert all(c.passed for c in cells)
    return took


def page_reruns(fake: FakeWafer, db: Path, n: int) -> tuple[list[float], list[float]]:
    """Full-page reruns and progress queries while a slow run goes on."""
    os.environ["WAFER_ENDPOINT"] = "custom"
    os.environ["WAFER_PLAYGROUND_DB"] = str(db)
    os.environ.pop("WAFER_API_KEY", None)
    from streamlit.testing.v1 import AppTest

    from tests.app.conftest import make_app
    from wafer_playground.store import ANONYMOUS

    store = SQLiteStore(db)
    es = EvalStore(store.for_owner(ANONYMOUS))
    setup = setup_for(400, MODELS[:2])
    rid = es.create_run(setup.to_json(), setup.cells(), base_url=fake.url)
    client = WaferClient(fake.url, max_retries=0)
    job = EvalJob(es, rid, plan(setup), client=client, base_url=fake.url,
                  pricing_for=lambda _m: PRICE, concurrency=8, gate=Gate(8))
    at: AppTest = make_app("pages/evaluate.py", base_url=fake.url)
    at.session_state["ev_run"] = rid
    at.run()  # imports and the first draw are not what a rerun costs
    from wafer_playground.eval_runner import start_job

    start_job(job)
    full, frag = [], []
    for _ in range(n):
        t0 = time.perf_counter()
        at.run()
        full.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        progress(es, rid)
        frag.append(time.perf_counter() - t0)
    assert not at.exception, [e.value for e in at.exception]
    assert job.alive, "the run ended before the page was timed: raise --latency"
    job.stop()
    job.wait(30)
    client.close()
    store.close()
    return full, frag


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q / 100 * (len(xs) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=200)
    ap.add_argument("--latency", type=float, default=0.05, help="seconds per request")
    ap.add_argument("--page", action="store_true", help="also time the page's reruns")
    ap.add_argument("--reruns", type=int, default=15)
    args = ap.parse_args()
    cards = [*CARDS, {**CARDS[1], "id": "fake-mini"}]
    fake = FakeWafer(cards).start()
    fake.script("POST", "/chat/completions",
                Reply(sse=list(answer_stream(["a", " fake", " answer"])),
                      delay_s=args.latency))
    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteStore(Path(tmp) / "bench.db")
        es = EvalStore(store)
        setup = setup_for(args.rows)
        n = len(setup.cells())
        # warm-up: imports, the first connection, the first store writes
        timed_run(es, fake.url, setup_for(4), 8)
        concurrent = timed_run(es, fake.url, setup, 8)
        sequential = timed_run(es, fake.url, setup, 1)
        store.close()
        print(f"{args.rows} rows × {len(MODELS)} models = {n} requests, "
              f"{args.latency * 1000:.0f} ms fixed latency")
        print(f"  sequential:          {sequential:6.2f} s  ({n / sequential:5.1f} req/s)")
        print(f"  concurrent (cap 8):  {concurrent:6.2f} s  ({n / concurrent:5.1f} req/s)")
        print(f"  ratio: {sequential / concurrent:.2f}×  (goal ≥ 5×; ideal 8×)")
        if args.page:
            fake.script("POST", "/chat/completions",
                        Reply(sse=list(answer_stream(["a", " fake", " answer"])),
                              delay_s=max(args.latency, 0.3)))
            full, frag = page_reruns(fake, Path(tmp) / "page.db", args.reruns)
            print(f"page rerun during a run (AppTest, {len(full)} reruns): "
                  f"median {statistics.median(full) * 1000:.0f} ms, "
                  f"p90 {pct(full, 90) * 1000:.0f} ms (goal < 150 ms)")
            print(f"progress fragment's query: median {statistics.median(frag) * 1000:.1f} ms, "
                  f"p90 {pct(frag, 90) * 1000:.1f} ms")
    fake.stop()


if __name__ == "__main__":
    main()
