"""Compare core: best-of logic, ties, missing values, exports, figures, the concurrent runner."""

from __future__ import annotations

import csv
import io
import json
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from wafer_playground.catalog import Pricing
from wafer_playground.client import WaferClient
from wafer_playground.compare import (
    CompareRun,
    PaneResult,
    PaneSpec,
    Params,
    assign_labels,
    best_indices,
    chat_body,
    completion_body,
    pane_result,
    summarize,
    summary_figure,
    summary_frame,
    timeline_figure,
    to_csv,
    to_markdown,
    windows_overlap,
)
from wafer_playground.errors import WaferError

PRICED = Pricing(input_cpm=Decimal(120), output_cpm=Decimal(350))


def r(label: str, **kw: object) -> PaneResult:
    kw.setdefault("status", "done")
    return PaneResult(label=label, model=label, **kw)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- best-of


def test_best_min_and_max() -> None:
    assert best_indices([3.0, 1.0, 2.0], "min") == {1}
    assert best_indices([3.0, 1.0, 2.0], "max") == {0}


def test_ties_all_win_at_display_precision() -> None:
    assert best_indices([1.0, 1.0, 2.0], "min") == {0, 1}
    # 0.123 and 0.124 both show as 0.12: a tie as the reader sees it
    assert best_indices([0.123, 0.124, 0.2], "min", digits=2) == {0, 1}
    assert best_indices([0.123, 0.124, 0.2], "min") == {0}


def test_missing_values_never_win() -> None:
    assert best_indices([None, 2.0, float("nan")], "min") == {1}
    assert best_indices([None, None], "max") == set()
    assert best_indices([], "min") == set()
    assert best_indices([Decimal("0.001"), None, Decimal("0.0005")], "min") == {2}


def test_summary_only_completed_panes_compete() -> None:
    results = [
        r("A", ttft_s=0.5, tokens_per_s=40.0, cost_usd=Decimal("0.002"), total_s=2.0),
        r("B", status="stopped", ttft_s=0.1, tokens_per_s=90.0, cost_usd=Decimal("0.0001"),
          total_s=0.5),
        r("C", ttft_s=0.3, tokens_per_s=40.0, cost_usd=None, total_s=3.0),
        r("D", status="error", error="boom"),
    ]
    s = summarize(results)
    assert s.best["cost_usd"] == {0}  # B stopped early; C's price is not published
    assert s.best["ttft_s"] == {2}
    assert s.best["tokens_per_s"] == {0, 2}  # a tie
    assert s.best["total_s"] == {0}
    assert s.wins(0) == ["cheapest", "highest tokens/s", "quickest overall"]
    assert s.wins(3) == []
    assert s.winner_labels("tokens_per_s") == ["A", "C"]


def test_zero_cost_is_a_real_value_and_ties() -> None:
    s = summarize([r("A", cost_usd=Decimal(0)), r("B", cost_usd=Decimal(0))])
    assert s.best["cost_usd"] == {0, 1}


# --------------------------------------------------------------------------- exports


def sample_summary() -> object:
    return summarize([
        r("smollm2 | t=0", ttft_s=0.21, tokens_per_s=55.5, total_s=1.2, prompt_tokens=30,
          completion_tokens=64, cost_usd=Decimal("0.000123"), cost_kind="actual",
          finish_reason="length", grammar_ok=True),
        r("gemma", ttft_s=0.35, tokens_per_s=80.25, total_s=1.0, prompt_tokens=12,
          completion_tokens=64, cost_usd=None, finish_reason="stop", grammar_ok=False),
    ])


def test_csv_has_raw_numbers_and_best_column() -> None:
    text = to_csv(sample_summary())  # type: ignore[arg-type]
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [x["pane"] for x in rows] == ["smollm2 | t=0", "gemma"]
    assert rows[0]["cost_usd"] == "0.000123" and rows[0]["cost_kind"] == "actual"
    assert rows[1]["cost_usd"] == ""  # not published: empty, never 0
    assert rows[0]["tokens_per_s"] == "55.5" and rows[1]["tokens_per_s"] == "80.25"
    assert rows[0]["grammar_match"] == "true" and rows[1]["grammar_match"] == "false"
    assert rows[0]["best_at"] == "cheapest; fastest first token"
    assert rows[1]["best_at"] == "highest tokens/s; quickest overall"


def test_markdown_bolds_best_and_escapes_pipes() -> None:
    md = to_markdown(sample_summary(), title="Run 1")  # type: ignore[arg-type]
    lines = md.splitlines()
    assert lines[0] == "### Run 1"
    header = [c.strip() for c in lines[2].strip("|").split("|")]
    assert header[:4] == ["Pane", "Status", "TTFT (s)", "Tokens/s"]
    row0 = lines[4]
    assert row0.startswith("| smollm2 \\| t=0 |")
    assert "**0.21**" in row0 and "**$0.000123**" in row0
    assert "55.5" in row0 and "**55.5**" not in row0
    row1 = lines[5]
    assert "**80.2**" in row1 or "**80.3**" in row1  # Python rounds half to even
    assert "not published" in row1 and "✗ no match" in row1
    assert to_markdown(summarize([])) == ""  # type: ignore[arg-type]


def test_summary_frame_types() -> None:
    frame = summary_frame(sample_summary())  # type: ignore[arg-type]
    assert list(frame["Pane"]) == ["smollm2 | t=0", "gemma"]
    assert frame["Cost ($)"].isna().tolist() == [False, True]
    assert str(frame["Output tokens"].dtype) == "Int64"


def test_summary_figure_highlights_the_best_bar() -> None:
    fig = summary_figure(sample_summary())  # type: ignore[arg-type]
    cost, ttft, tps = fig.data
    assert list(cost.marker.color) == ["#f97316", "#94a3b8"]
    assert list(ttft.marker.color) == ["#f97316", "#94a3b8"]
    assert list(tps.marker.color) == ["#94a3b8", "#f97316"]
    assert cost.text[1] == "–"  # unpublished price drawn as a dash, bar at 0


# --------------------------------------------------------------------------- requests


def test_bodies() -> None:
    body = chat_body("m", "hi", Params(temperature=0.0, max_tokens=32, seed=7), system="be brief")
    assert body == {"model": "m", "messages": [{"role": "system", "content": "be brief"},
                                               {"role": "user", "content": "hi"}],
                    "temperature": 0.0, "top_p": 1.0, "max_tokens": 32, "seed": 7}
    body = completion_body("g", [2, 5, 9], Params(), ebnf='root ::= "A"')
    assert body["prompt"] == [2, 5, 9] and body["ebnf"] == 'root ::= "A"'
    assert "ebnf" not in completion_body("g", [1], Params(), ebnf="  ")


def test_labels_blind_and_duplicates() -> None:
    assert assign_labels(["a", "b"], blind=False) == [(0, "a"), (1, "b")]
    assert assign_labels(["a", "a"], blind=False) == [(0, "a #1"), (1, "a #2")]
    assert assign_labels(["a", "b", "c"], blind=True, order=[2, 0, 1]) == [
        (2, "Model A"), (0, "Model B"), (1, "Model C")]
    with pytest.raises(ValueError):
        assign_labels(["a", "b"], blind=True, order=[0, 0])


# --------------------------------------------------------------------------- the runner


def _sse(events: list[dict]) -> list[bytes]:
    return [f"data: {json.dumps(e)}\n\n".encode() for e in events] + [b"data: [DONE]\n\n"]


def chat_chunks(words: list[str], usage: dict | None = None) -> list[dict]:
    out = [{"id": "c", "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}]
    out += [{"id": "c", "choices": [{"index": 0, "delta": {"content": w}}]} for w in words]
    out.append({"id": "c", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    if usage:
        out.append({"id": "c", "choices": [], "usage": usage})
    return out


class SlowStream(httpx.SyncByteStream):
    """Yields SSE events with a delay before each one (a model 'thinking')."""

    def __init__(self, parts: list[bytes], delay: float, gate: threading.Event | None = None):
        self.parts, self.delay, self.gate = parts, delay, gate

    def __iter__(self) -> Iterator[bytes]:
        for p in self.parts:
            if self.gate is not None:
                self.gate.wait(5)
            time.sleep(self.delay)
            yield p


def make_client(handler) -> WaferClient:  # type: ignore[no-untyped-def]
    return WaferClient("http://wafer.test/v1", transport=httpx.MockTransport(handler))


def spec(model: str, surface: str = "chat", **kw: object) -> PaneSpec:
    body = {"model": model, "max_tokens": 16}
    if surface == "chat":
        body["messages"] = [{"role": "user", "content": "hi"}]
    else:
        body["prompt"] = [1, 2, 3]
    return PaneSpec(model=model, surface=surface, body=body, label=model, **kw)  # type: ignore


def test_panes_stream_concurrently_and_finish() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        if request.url.path.endswith("/completions") and "messages" not in body:
            chunks = [{"choices": [{"index": 0, "text": t, "finish_reason": None}]}
                      for t in ["x", "y", "z"]]
            chunks.append({"choices": [{"index": 0, "text": "", "finish_reason": "length"}]})
            chunks.append({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 3}})
        else:
            chunks = chat_chunks(["a", "b", "c", "d"],
                                 {"prompt_tokens": 10, "completion_tokens": 4})
        return httpx.Response(200, headers={"content-type": "text/event-stream",
                                            "x-request-id": body["model"]},
                              stream=SlowStream(_sse(chunks), 0.05))

    client = make_client(handler)
    run = CompareRun(client, [spec("m1"), spec("m2"), spec("g", "completions")])
    run.start()
    assert run.wait(10)
    snaps = run.snapshot()
    # Concurrency is proven by overlapping streaming windows, not by wall time (noisy CI).
    assert windows_overlap(snaps)
    assert [s.status for s in snaps] == ["done", "done", "done"]
    assert snaps[0].content == "abcd" and snaps[2].content == "xyz"
    assert snaps[2].finish_reason == "length" and snaps[0].finish_reason == "stop"
    assert snaps[0].request_id == "m1"
    assert snaps[0].completion_tokens == 4 and snaps[0].completion_source == "usage"
    res = pane_result(snaps[0], PRICED)
    # 10 * 1.2e-6 + 4 * 3.5e-6
    assert res.cost_usd == Decimal("0.000026") and res.cost_kind == "actual"
    assert res.prompt_tokens == 10 and res.ttft_s is not None and res.tokens_per_s
    assert res.params == {"max_tokens": 16}
    fig = timeline_figure(snaps)
    assert len(fig.data) == 2


def test_one_pane_failing_does_not_stop_the_others() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        if body["model"] == "bad":
            return httpx.Response(404, json={"error": {"message": "no such model",
                                                       "type": "not_found",
                                                       "code": "model_not_found"}})
        if body["model"] == "midway":
            parts = _sse(chat_chunks(["a"]))[:2] + [
                b'data: {"error": {"message": "overloaded", "code": "overloaded"}}\n\n']
            return httpx.Response(200, headers={"content-type": "text/event-stream"},
                                  stream=SlowStream(parts, 0.01))
        return httpx.Response(200, headers={"content-type": "text/event-stream"},
                              stream=SlowStream(_sse(chat_chunks(["ok"])), 0.01))

    run = CompareRun(make_client(handler), [spec("good"), spec("bad"), spec("midway")]).start()
    assert run.wait(10)
    good, bad, midway = run.snapshot()
    assert good.status == "done" and good.content == "ok"
    assert bad.status == "error" and isinstance(bad.error, WaferError)
    assert "no such model" in bad.error.human()
    assert midway.status == "error" and midway.content == "a"
    res = pane_result(bad, PRICED)
    assert res.error and res.cost_usd is None
    s = summarize([pane_result(x, PRICED) for x in (good, bad, midway)])
    assert s.best["cost_usd"] == {0}


def test_cancel_wakes_blocked_workers_and_keeps_partial_text() -> None:
    gate = threading.Event()

    def handler(request: httpx.Request) -> httpx.Response:
        parts = _sse(chat_chunks(["first", "second"]))

        # the first two events flow; then the server goes silent until the gate opens
        class Stall(httpx.SyncByteStream):
            def __iter__(self) -> Iterator[bytes]:
                yield from parts[:2]
                gate.wait(20)
                yield from parts[2:]

        return httpx.Response(200, headers={"content-type": "text/event-stream"},
                              stream=Stall())

    run = CompareRun(make_client(handler), [spec("a"), spec("b")]).start()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not all(s.content for s in run.snapshot()):
        time.sleep(0.01)
    assert all(s.content == "first" for s in run.snapshot())
    t = time.perf_counter()
    run.cancel()
    finished = run.wait(5)
    assert finished, "cancel() must not wait for the next token"
    assert time.perf_counter() - t < 10  # a hang guard: the upstream stalls for 20 s
    assert run.workers_alive == 2  # still blocked upstream...
    gate.set()  # ...until the next token: they must exit without touching the frozen panes
    deadline = time.monotonic() + 5
    while run.workers_alive and time.monotonic() < deadline:
        time.sleep(0.01)
    assert run.workers_alive == 0
    snaps = run.snapshot()
    assert [s.status for s in snaps] == ["stopped", "stopped"]
    assert snaps[0].content == "first" and snaps[0].usage is None
    res = pane_result(snaps[0], PRICED, prompt_estimate=10)
    assert res.cost_kind == "estimate" and res.cost_usd is not None and res.cost_usd > 0


# --------------------------------------------------------------------------- setup + guard


def test_build_specs_tokenizes_per_model_and_blind_order() -> None:
    from wafer_playground.compare import PaneConfig, build_specs

    vocab = {"a": ([2, 10, 11], ("<bos>", "Hel", "lo")), "b": ([5, 6], ("Hello", "!"))}
    calls: list[str] = []

    def encode(model: str):  # type: ignore[no-untyped-def]
        def enc(text: str) -> tuple[list[int], tuple[str, ...]]:
            calls.append(model)
            assert text == "Hello"
            return vocab[model]
        return enc

    cfgs = [PaneConfig("a", Params(max_tokens=8)), PaneConfig("b", Params(max_tokens=9))]
    specs = build_specs(cfgs, "completions", prompt="Hello", ebnf='root ::= "x"',
                        encode=encode, blind=True, order=[1, 0])
    assert [s.label for s in specs] == ["Model A", "Model B"]
    assert [s.model for s in specs] == ["b", "a"]  # display order follows the shuffle
    assert specs[0].body["prompt"] == [5, 6] and specs[1].body["prompt"] == [2, 10, 11]
    assert specs[1].prompt_tokens == 3 and specs[1].prompt_pieces == ("<bos>", "Hel", "lo")
    assert specs[0].body["max_tokens"] == 9 and specs[0].grammar == 'root ::= "x"'
    assert sorted(calls) == ["a", "b"]
    same = build_specs(cfgs, "completions", prompt="ignored", ids=[7, 8])
    assert [s.body["prompt"] for s in same] == [[7, 8], [7, 8]]
    chat = build_specs(cfgs, "chat", prompt="hi", system="sys")
    assert chat[0].body["messages"][0] == {"role": "system", "content": "sys"}
    assert chat[0].prompt_tokens is None and "ebnf" not in chat[0].body


def test_preflight_blocks_by_label_and_passes_when_cheap() -> None:
    from wafer_playground.compare import PaneConfig, build_specs, preflight
    from wafer_playground.guard import PRESENTATION_CAPS

    cfgs = [PaneConfig("a", Params(max_tokens=100)), PaneConfig("b", Params(max_tokens=4000))]
    specs = build_specs(cfgs, "completions", prompt="", ids=[1] * 50, blind=True, order=[0, 1])
    prices = {"a": PRICED, "b": PRICED}
    assert preflight(specs, prices.__getitem__) == []
    # 50 * 1.2e-6 + 4000 * 3.5e-6 = 0.01406 > 0.01; pane a: 0.00041 fits
    msgs = preflight(specs, prices.__getitem__, cap=Decimal("0.01"))
    assert len(msgs) == 1 and "Model B" in msgs[0] and "b" not in msgs[0].split()[:6]
    msgs = preflight(specs, prices.__getitem__, caps=PRESENTATION_CAPS)
    assert len(msgs) == 1 and "presentation limit of 256" in msgs[0]


def test_scenarios_pick_priced_cheapest_and_judge_answers() -> None:
    from wafer_playground.catalog import Model
    from wafer_playground.scenarios import (
        SCENARIOS,
        cheapest_passing,
        get,
        passes,
        pick_models,
    )

    def model(mid: str, out: int | None, **kw: object) -> Model:
        pricing = Pricing(Decimal(10), Decimal(out)) if out is not None else Pricing()
        return Model(id=mid, display_name=mid, pricing=pricing, **kw)  # type: ignore[arg-type]

    cat = [model("dear", 900), model("cheap", 100), model("unpriced", None),
           model("mid", 300), model("off", 1, disabled_reason="retired"),
           model("base", 50, local={"chat_template": False,
                                    "endpoints": ["/v1/completions"]})]
    cheapest = get("cheapest")
    assert cheapest is not None
    assert [p.model for p in pick_models(cheapest, cat)] == ["cheap", "mid", "dear"]
    json_sc = get("json")
    assert json_sc is not None and json_sc.grammar
    # only `base` is known to take token ids here: the same model at two temperatures
    picks = pick_models(json_sc, cat)
    assert [(p.model, p.temperature) for p in picks] == [("base", 0.0), ("base", 1.0)]
    assert pick_models(cheapest, [model("base", 5, local={"chat_template": False})]) == []
    assert passes(cheapest, "It is PARIS.", None) is True
    assert passes(cheapest, "Lyon", None) is False
    assert passes(json_sc, "{}", False) is False
    xray = get("xray")
    assert xray is not None and passes(xray, "x", None) is None
    assert all(s.max_tokens <= 256 for s in SCENARIOS)
    results = [r("A", cost_usd=Decimal("0.002"), ttft_s=0.5),
               r("B", cost_usd=Decimal("0.001"), ttft_s=0.9),
               r("C", cost_usd=Decimal("0.001"), ttft_s=0.2),
               r("D", cost_usd=Decimal("0.0001"), status="stopped")]
    assert cheapest_passing(results, [True, True, True, True]) == 2  # tie -> faster
    assert cheapest_passing(results, [True, False, False, True]) == 0
    assert cheapest_passing(results, [False] * 4) is None


def test_json_scenario_grammar_accepts_a_record_and_rejects_prose() -> None:
    from wafer_playground import grammar
    from wafer_playground.scenarios import JSON_GRAMMAR

    assert grammar.check(JSON_GRAMMAR).ok
    good = '{"name": "Ada Lovelace", "born": 1815, "field": "mathematics"}'
    assert grammar.match(JSON_GRAMMAR, good).ok
    assert not grammar.match(JSON_GRAMMAR, "Ada was born in 1815.").ok


def test_cards_are_checked_before_they_are_offered() -> None:
    """Issue 16: a model over the cap or without an offline tokenizer is swapped out; with
    none left the card says why instead of failing on click."""
    from wafer_playground.catalog import Model
    from wafer_playground.guard import PRESENTATION_CAPS
    from wafer_playground.scenarios import PRICE_SPEED, get, readiness

    def model(mid: str, cents_out: int, **kw: object) -> Model:
        return Model(id=mid, display_name=mid,  # type: ignore[arg-type]
                     pricing=Pricing(Decimal(10), Decimal(cents_out)), **kw)

    # 24 tokens at $999.99/M output is over the $0.02 cap; the three others fit
    cat = [model("lux", 99_999_000), model("a", 100), model("b", 200), model("c", 300),
           model("d", 400)]
    cheapest = get("cheapest")
    assert cheapest is not None
    rd = readiness(cheapest, cat, caps=PRESENTATION_CAPS)
    assert rd.ready and [p.model for p in rd.picks] == ["a", "b", "c", "d"]
    assert any(w.startswith("lux: over the $0.02 cap") for w in rd.left_out)
    speed = readiness(PRICE_SPEED, cat, caps=PRESENTATION_CAPS)
    assert [p.model for p in speed.picks] == ["a", "b", "c"]  # three models
    # only the expensive one: not ready, and the card says why
    alone = readiness(cheapest, cat[:1], caps=PRESENTATION_CAPS)
    assert not alone.ready and "over the $0.02 cap" in (alone.reason or "")
    # token-ID cards: a model whose tokenizer needs a download is left out
    base = [model("m1", 100, local={"endpoints": ["/v1/completions"]}),
            model("m2", 200, local={"endpoints": ["/v1/completions"]})]
    xray = get("xray")
    assert xray is not None
    rd = readiness(xray, base, caps=PRESENTATION_CAPS,
                   tokenizer_ready=lambda m: m.id == "m2")
    assert [p.model for p in rd.picks] == ["m2", "m2"]  # one model, two temperatures
    none = readiness(xray, base, caps=PRESENTATION_CAPS, tokenizer_ready=lambda m: False)
    assert not none.ready and "tokenizer needs a download" in (none.reason or "")


def test_conversation_titles_are_the_gist() -> None:
    from wafer_playground.titles import conversation_title

    assert conversation_title("Can you please explain server-sent events in two sentences?"
                              ) == "Explain server-sent events in two sentences"
    assert conversation_title("hi! write a haiku about GPUs. Then another.") == \
        "Write a haiku about GPUs"
    assert conversation_title("   ") == "Chat"
    long = conversation_title("List three uses of constrained decoding and explain each one")
    assert long.endswith("…") and len(long.split()) == 8


# --------------------------------------------------------------------------- the request log

# A Compare run in its own process, against an upstream that stalls after the first token.
PANE_WRITER = r"""
import json, sys, threading, time
import httpx
from wafer_playground.client import WaferClient
from wafer_playground.compare import CompareRun, PaneSpec
from wafer_playground.runs import RequestLog
from wafer_playground.store import open_store

store = open_store(sys.argv[1])
chunk = {"choices": [{"index": 0, "delta": {"content": "part"}}]}
first = b"data: " + json.dumps(chunk).encode() + b"\n\n"

class Stall(httpx.SyncByteStream):
    def __iter__(self):
        yield first
        threading.Event().wait()

def handler(request):
    return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=Stall())

client = WaferClient("http://wafer.test/v1", transport=httpx.MockTransport(handler))
specs = [PaneSpec(model=m, surface="chat", label=m, body={"model": m, "messages": [
    {"role": "user", "content": "hi"}]}) for m in ("a", "b")]
run = CompareRun(client, specs, log_for=lambda s: RequestLog(store, base_url="http://wafer.test/v1")).start()
while not all(p.content == "part" for p in run.snapshot()):
    time.sleep(0.01)
print([r.status for r in store.list_requests()], flush=True)
time.sleep(600)
"""


def test_panes_are_logged_when_sent_and_found_interrupted_after_a_crash(
        tmp_path: Path) -> None:
    """Issue 15: a pane is "streaming" in the request log once sent (not only when it ends),
    and a run abandoned by a dead process is "interrupted" on the next start, like Chat's."""
    import os
    import signal
    import subprocess
    import sys

    from wafer_playground.store import open_store

    db = str(tmp_path / "cmp.db")
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen([sys.executable, "-c", PANE_WRITER, db], cwd=root,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "['streaming', 'streaming']"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    store = open_store(db)
    assert sorted(r.status for r in store.list_requests()) == ["interrupted", "interrupted"]
    assert sorted(r.model for r in store.list_requests()) == ["a", "b"]
    store.close()


def test_a_finished_pane_is_finalised_with_its_cost(tmp_path: Path) -> None:
    from wafer_playground.runs import RequestLog
    from wafer_playground.store import SQLiteStore

    store = SQLiteStore(tmp_path / "c.db")

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream",
                                            "x-request-id": "rq"},
                              content=b"".join(_sse(chat_chunks(
                                  ["ok"], {"prompt_tokens": 10, "completion_tokens": 1}))))

    run = CompareRun(make_client(handler), [spec("m1")], pricing_for=lambda m: PRICED,
                     log_for=lambda s: RequestLog(store, base_url="http://wafer.test/v1"))
    assert run.start().wait(10)
    deadline = time.monotonic() + 5
    while run.workers_alive and time.monotonic() < deadline:
        time.sleep(0.01)
    snap = run.snapshot()[0]
    rec = store.get_request(snap.record_id or "")
    assert rec is not None and rec.status == "done" and rec.request_id == "rq"
    assert rec.cost_usd == Decimal("0.0000155") and rec.cost_kind == "actual"
    store.close()


def test_panes_are_built_and_checked_by_the_pages_own_builders() -> None:
    """Issue 15: one body builder per surface (params for chat, tokens for completions),
    and Compare refuses what the Chat and Token pages would refuse, by pane label."""
    from wafer_playground.compare import PaneConfig, build_specs, problems_of
    from wafer_playground.params import build_chat_body
    from wafer_playground.tokens import CompletionSettings, build_body

    p = Params(temperature=0.2, top_p=1.0, max_tokens=8)
    chat = build_specs([PaneConfig("m", p)], "chat", prompt="hi", system="sys")[0]
    assert chat.body == build_chat_body("m", [{"role": "user", "content": "hi"}], {
        "system": "sys", "temperature": 0.2, "top_p": 1.0, "max_tokens": 8},
        always=("temperature", "top_p", "max_tokens"))
    assert chat.body["top_p"] == 1.0  # a default, sent because every pane shows it
    comp = build_specs([PaneConfig("m", p)], "completions", prompt="", ids=[1, 2],
                       ebnf='root ::= "x"')[0]
    assert comp.body == build_body("m", [1, 2], CompletionSettings(
        max_tokens=8, temperature=0.2, top_p=1.0, stream=False, logprobs=None,
        return_token_ids=False), ebnf='root ::= "x"')
    assert problems_of(chat, None) == [] and problems_of(comp, None) == []
    hot = build_specs([PaneConfig("m", Params(temperature=2.5))], "chat", prompt="hi",
                      blind=True, order=[0])[0]
    assert [m.split(":")[0] for m in problems_of(hot, None)] == ["Model A"]
    bad = build_specs([PaneConfig("m", p)], "completions", prompt="", ids=[1],
                      ebnf="root ::= ")[0]
    assert any("grammar does not parse" in m for m in problems_of(bad, None))
