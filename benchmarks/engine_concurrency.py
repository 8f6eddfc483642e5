"""Concurrent streams on the local engine: llama-server's parallel slots (continuous batching)
against the one-slot engine, in the same run.

Two engines on the same binary and model (SmolLM2-135M): `--parallel 1` (the old engine:
one request decodes, the others wait in the adapter's queue) and `--parallel 4`. Each round
sends N concurrent streamed completions (greedy, `min_tokens` = `max_tokens`, so every
request generates the same number of tokens) to one engine, then to the other, alternating
which goes first. Prints the median TTFT over all requests, total tokens/s (all tokens / the
round's wall time) and the ratios. Targets (issue: performance round 2): median TTFT with 4
streams <= 0.3x the one-slot engine's, total tokens/s >= 1x.

Then both local models at once, one stream each, as Compare's two panes: on an engine giving
each llama-server 2 threads (the old default) and on the default one, which divides the
cores among them. Prints each model's tok/s alone and together; the verdict is the slower
pane's tok/s together (>= 1x the old engine's).

    uv run python benchmarks/engine_concurrency.py [--streams 4] [--rounds 3] [--tokens 64]
                                                   [--side-by-side-only]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._apps.harness import load_line  # noqa: E402
from benchmarks._verdict import verdict  # noqa: E402
from wafer_playground.local.engine import EngineHandle, start_engine  # noqa: E402

MODEL = "smollm2-135m-instruct"
PROMPTS = ["Write a short paragraph about the sea.",
           "List five colours and describe each one in a sentence.",
           "Explain what a compiler does, for a child.",
           "Describe a busy railway station at noon."]


def _tokenize(url: str, text: str, model: str = MODEL) -> list[int]:
    with httpx.Client(timeout=60) as c:
        tokens = c.post(url + "/tokenize", json={"model": model, "content": text,
                                                 "add_special": True}).json()["tokens"]
    return [int(t["id"]) if isinstance(t, dict) else int(t) for t in tokens]


def _ids(url: str, prompt: str) -> list[int]:
    """Completions take token ids: the chat-templated prompt, tokenized by the engine."""
    with httpx.Client(timeout=60) as c:
        text = c.post(url + "/apply-template", json={
            "model": MODEL, "messages": [{"role": "user", "content": prompt}]}).json()["prompt"]
    return _tokenize(url, text)


def _stream(url: str, prompt: list[int], tokens: int, t_start: float,
            out: list[tuple[float, int, float]], model: str = MODEL) -> None:
    """Appends (TTFT ms, tokens, tok/s after the first token)."""
    body = {"model": model, "stream": True, "max_tokens": tokens, "min_tokens": tokens,
            "temperature": 0, "prompt": prompt}
    first: float | None = None
    n = 0
    with httpx.Client(timeout=600) as client, \
            client.stream("POST", url + "/completions", json=body) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            ch = json.loads(line[6:]).get("choices") or []
            if ch and ch[0].get("text"):
                first = first or time.perf_counter()
                n += 1
    assert first is not None
    out.append(((first - t_start) * 1000, n, (n - 1) / (time.perf_counter() - first)))


def _round(handle: EngineHandle, streams: int, tokens: int) -> tuple[list[float], float]:
    results: list[tuple[float, int, float]] = []
    prompts = [_ids(handle.base_url, p) for p in PROMPTS]
    t0 = time.perf_counter()
    threads = [threading.Thread(target=_stream, args=(handle.base_url, prompts[i % 4], tokens,
                                                      t0, results)) for i in range(streams)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    assert len(results) == streams
    return [ttft for ttft, _, _ in results], sum(n for _, n, _ in results) / wall


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--streams", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--side-by-side-only", action="store_true")
    args = ap.parse_args()
    print(load_line("before"))
    if args.side_by_side_only:
        side_by_side(args.rounds, args.tokens)
        return 0
    engines = {"one slot": start_engine(models=[MODEL], extra_args=["--parallel", "1"]),
               f"{args.streams} slots": start_engine(models=[MODEL],
                                                    extra_args=["--parallel", str(args.streams)])}
    ttfts: dict[str, list[float]] = {k: [] for k in engines}
    tps: dict[str, list[float]] = {k: [] for k in engines}
    try:
        for h in engines.values():
            _round(h, 1, 8)  # warm-up
        for i in range(args.rounds):
            order = list(engines.items())
            for name, h in (order if i % 2 == 0 else order[::-1]):
                t, rate = _round(h, args.streams, args.tokens)
                ttfts[name] += t
                tps[name].append(rate)
    finally:
        for h in engines.values():
            h.stop()
    print(f"{args.streams} concurrent streams x {args.tokens} tokens, {args.rounds} rounds, "
          "alternating")
    for name in engines:
        print(f"  {name:9s} median TTFT {statistics.median(ttfts[name]):7.0f} ms · "
              f"max {max(ttfts[name]):7.0f} ms · total {statistics.median(tps[name]):6.1f} tok/s")
    base, multi = list(engines)
    r_ttft = statistics.median(ttfts[multi]) / statistics.median(ttfts[base])
    r_tps = statistics.median(tps[multi]) / statistics.median(tps[base])
    print(f"  ratio {multi} / {base}: TTFT {r_ttft:.2f}x (target <= 0.3), "
          f"total tok/s {r_tps:.2f}x (target >= 1.0)")
    verdict(f"local engine: median TTFT, {args.streams} concurrent streams",
            f"{r_ttft:.2f}x ({statistics.median(ttfts[multi]):.0f} ms)",
            f"one-slot engine {statistics.median(ttfts[base]):.0f} ms", "<= 0.3x", r_ttft <= 0.3)
    verdict(f"local engine: total tok/s, {args.streams} concurrent streams",
            f"{r_tps:.2f}x ({statistics.median(tps[multi]):.1f} tok/s)",
            f"one-slot engine {statistics.median(tps[base]):.1f} tok/s", ">= 1.0x", r_tps >= 1.0)
    side_by_side(args.rounds, args.tokens)
    print(load_line("after"))
    return 0


def side_by_side(rounds: int, tokens: int) -> None:
    """Both local models streaming at once, as Compare's panes do: each model's tok/s alone
    and together, on an engine that gives each llama-server 2 threads (the old default) and
    on one that divides the cores among them (wafer_playground/local/cli.py
    threads_per_model)."""
    models = ["smollm2-135m-instruct", "gemma-3-270m"]
    engines = {"2 threads each": start_engine(models=models, extra_args=["--threads", "2"]),
               "cores divided": start_engine(models=models)}
    got: dict[str, dict[str, list[float]]] = {k: {} for k in engines}
    try:
        for i in range(rounds + 1):  # round 0 warms up
            order = list(engines.items())
            for name, h in (order if i % 2 == 0 else order[::-1]):
                ids = {m: _tokenize(h.base_url, PROMPTS[0], m) for m in models}
                for together in (False, True):
                    out: dict[str, list[tuple[float, int, float]]] = {m: [] for m in models}
                    threads = [threading.Thread(target=_stream, args=(
                        h.base_url, ids[m], tokens, time.perf_counter(), out[m], m))
                        for m in models]
                    for t in threads:
                        t.start()
                        if not together:
                            t.join()
                    for t in threads:
                        t.join()
                    if i:
                        for m in models:
                            key = f"{m} {'together' if together else 'alone'}"
                            got[name].setdefault(key, []).extend(r for _, _, r in out[m])
    finally:
        for h in engines.values():
            h.stop()
    print(f"\nboth local models at once (Compare's two panes), {tokens} tokens, {rounds} rounds:")
    for name, rows in got.items():
        print(f"  {name:15s} " + " · ".join(f"{k} {statistics.median(v):5.1f} tok/s"
                                              for k, v in sorted(rows.items())))
    slow = {name: min(statistics.median(v) for k, v in rows.items() if k.endswith("together"))
            for name, rows in got.items()}
    base, new = list(engines)
    ratio = slow[new] / slow[base]
    print(f"  slower pane together: {slow[new]:.1f} vs {slow[base]:.1f} tok/s ({ratio:.2f}x)")
    verdict("local engine: two models at once, slower pane's tok/s", f"{ratio:.2f}x "
            f"({slow[new]:.1f} tok/s)", f"2 threads each {slow[base]:.1f} tok/s", ">= 1.0x",
            ratio >= 1.0)


if __name__ == "__main__":
    raise SystemExit(main())
