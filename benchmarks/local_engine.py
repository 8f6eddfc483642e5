"""Local engine overhead: tokens/s and TTFT through the adapter vs raw llama-server.

Same model, same prompts, same sampling (greedy, explicit sampler settings so both paths
run the identical llama.cpp chain), streamed, alternating which path goes first, several
repeats; prints medians and the ratios. Targets: adapter keeps >= 95% of raw tokens/s and
adds <= 15 ms to TTFT.

    uv run python benchmarks/local_engine.py [--repeats 5] [--max-tokens 64]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._verdict import verdict  # noqa: E402
from wafer_playground.local.engine import start_engine  # noqa: E402

MODEL = "smollm2-135m-instruct"
PROMPTS = [
    "Write a short paragraph about the sea.",
    "List five colours and describe each one in a sentence.",
    "Explain what a compiler does, for a child.",
]
SAMPLING = {"temperature": 0, "top_k": 40, "top_p": 1.0, "min_p": 0.0}


@dataclass
class Run:
    ttft_ms: float
    tokens: int
    tps: float  # tokens after the first / time after the first token


def stream_once(client: httpx.Client, url: str, body: dict[str, object]) -> Run:
    t0 = time.perf_counter()
    first = last = None
    n = 0
    with client.stream("POST", url, json=body) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            ev = json.loads(line[6:])
            ch = ev.get("choices") or []
            if ch and (ch[0].get("delta") or {}).get("content"):
                now = time.perf_counter()
                first = first or now
                last = now
                n += 1
    assert first is not None and last is not None and n > 1
    return Run((first - t0) * 1000, n, (n - 1) / (last - first))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--max-tokens", type=int, default=64)
    args = ap.parse_args()
    handle = start_engine(models=[MODEL])
    adapter_proc = psutil.Process(handle.pid)
    adapter_cpu_s = adapter_wall_s = 0.0
    load_before = os.getloadavg()[0]
    # the idle adapter still ticks (uvicorn's 0.1 s loop): measure it to subtract it
    c0, t0 = sum(adapter_proc.cpu_times()[:2]), time.perf_counter()
    time.sleep(3)
    idle_rate = (sum(adapter_proc.cpu_times()[:2]) - c0) / (time.perf_counter() - t0)
    try:
        root = handle.base_url.removesuffix("/v1")
        raw = httpx.get(root + "/health").json()["models"][MODEL]["url"]
        targets = {"adapter": handle.base_url + "/chat/completions",
                   "raw": raw + "/v1/chat/completions"}
        runs: dict[str, list[Run]] = {"adapter": [], "raw": []}
        failures: dict[str, list[str]] = {"adapter": [], "raw": []}
        # both servers close idle connections after 5 s (llama-server) / 30 s (adapter)
        limits = httpx.Limits(keepalive_expiry=1.0)
        with httpx.Client(timeout=120, limits=limits) as client:
            def body(p: str) -> dict[str, object]:
                return {"model": MODEL, "messages": [{"role": "user", "content": p}],
                        "max_tokens": args.max_tokens, "stream": True, **SAMPLING}

            for p in PROMPTS:  # warm-up: page cache, prompt cache, connection pools
                for url in targets.values():
                    stream_once(client, url, body(p))
            for rep in range(args.repeats):
                order = ["adapter", "raw"] if rep % 2 == 0 else ["raw", "adapter"]
                for p in PROMPTS:
                    for name in order:
                        c0, w0 = sum(adapter_proc.cpu_times()[:2]), time.perf_counter()
                        try:
                            runs[name].append(stream_once(client, targets[name], body(p)))
                        except httpx.TransportError as exc:  # counted and reported
                            failures[name].append(f"{type(exc).__name__}: {exc}")
                            runs[name].append(stream_once(client, targets[name], body(p)))
                        if name == "adapter":
                            adapter_cpu_s += sum(adapter_proc.cpu_times()[:2]) - c0
                            adapter_wall_s += time.perf_counter() - w0
        med = {k: {"ttft_ms": statistics.median(r.ttft_ms for r in v),
                   "tps": statistics.median(r.tps for r in v),
                   "tokens": statistics.median(r.tokens for r in v)} for k, v in runs.items()}
        # per-pair deltas are less sensitive to the shared machine's load drifting
        pair_ttft = [a.ttft_ms - b.ttft_ms for a, b in zip(runs["adapter"], runs["raw"],
                                                          strict=True)]
        pair_tps = [a.tps / b.tps for a, b in zip(runs["adapter"], runs["raw"], strict=True)]
        n = len(runs["raw"])
        print(f"model {MODEL}, {n} streamed requests per path, max_tokens {args.max_tokens}")
        for k in ("raw", "adapter"):
            m = med[k]
            print(f"  {k:8s} median TTFT {m['ttft_ms']:7.1f} ms   median {m['tps']:6.1f} tok/s"
                  f"   ({m['tokens']:.0f} tokens)")
        ratio = med["adapter"]["tps"] / med["raw"]["tps"]
        print(f"  tokens/s ratio adapter/raw (medians): {ratio:.3f}  "
              f"(median of paired ratios {statistics.median(pair_tps):.3f}; target >= 0.95)")
        print(f"  TTFT added by adapter (medians): "
              f"{med['adapter']['ttft_ms'] - med['raw']['ttft_ms']:+.1f} ms  (median of paired "
              f"deltas {statistics.median(pair_ttft):+.1f} ms; target <= 15 ms)")
        added = med["adapter"]["ttft_ms"] - med["raw"]["ttft_ms"]
        verdict("local engine adapter: tokens/s", f"{ratio:.3f}x", f"raw llama-server "
                f"{med['raw']['tps']:.1f} tok/s", ">= 0.95x", ratio >= 0.95)
        verdict("local engine adapter: TTFT added", f"{added:+.1f} ms",
                f"raw llama-server {med['raw']['ttft_ms']:.1f} ms", "<= 15 ms", added <= 15)
        for k, errs in failures.items():
            if errs:
                print(f"  {k}: {len(errs)} transport failure(s), retried: {errs[0]}")
        # CPU the adapter burns is independent of how busy the shared machine is
        toks = sum(r.tokens for r in runs["adapter"])
        net = max(0.0, adapter_cpu_s - idle_rate * adapter_wall_s)
        print(f"  adapter process CPU (minus its idle rate {idle_rate * 1000:.1f} ms/s): "
              f"{net / n * 1000:.1f} ms per request, {net / toks * 1000:.2f} ms per token")
        print(f"  load average: {load_before:.1f} at start, {os.getloadavg()[0]:.1f} at end "
              f"(this machine has {os.cpu_count()} cores; wall-clock ratios are only "
              f"meaningful when it is quiet)")
    finally:
        handle.stop()
    isolated_cost()
    return 0


def isolated_cost(n_chunks: int = 2000) -> None:
    """The adapter's own work per request and per streamed chunk, in process against an
    instant fake upstream: a figure that does not depend on how loaded the machine is."""
    import asyncio

    from wafer_playground.local import cards
    from wafer_playground.local.server import Backend, EngineConfig, create_app

    chunk = {"choices": [{"finish_reason": None, "index": 0, "delta": {"content": " Red"}}],
             "created": 1795698072, "id": "chatcmpl-x", "model": MODEL,
             "system_fingerprint": "b11434-unknown", "object": "chat.completion.chunk"}

    def payload(n: int) -> bytes:
        tail = {"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": n,
                                         "total_tokens": n + 5}}
        return ((f"data: {json.dumps(chunk)}\n\n" * n) + f"data: {json.dumps(tail)}\n\n"
                "data: [DONE]\n\n").encode()

    class Upstream(httpx.AsyncByteStream):
        def __init__(self, n: int) -> None:
            self.n = n

        async def __aiter__(self):  # type: ignore[no-untyped-def]
            data = payload(self.n)
            step = max(1, len(data) // max(self.n, 1))
            for i in range(0, len(data), step):  # one network read per event
                yield data[i:i + step]

    want = {"n": 1}

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=Upstream(want["n"]))

    backend = Backend(spec=cards.SMOLLM2, url="http://upstream", n_ctx=4096, n_vocab=49152)
    app = create_app([backend], EngineConfig(upstream_transport=httpx.MockTransport(handler)))
    body = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "hi"}],
                       "max_tokens": 100, "stream": True}).encode()

    async def one() -> None:
        done = asyncio.Event()
        first = [True]

        async def receive() -> dict[str, object]:
            if first[0]:
                first[0] = False
                return {"type": "http.request", "body": body, "more_body": False}
            await done.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, object]) -> None:
            if message["type"] == "http.response.body" and not message.get("more_body"):
                done.set()

        scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.4"},
                 "http_version": "1.1", "method": "POST", "scheme": "http",
                 "path": "/v1/chat/completions", "raw_path": b"/v1/chat/completions",
                 "query_string": b"", "root_path": "", "client": ("127.0.0.1", 1),
                 "server": ("127.0.0.1", 2), "state": {},
                 "headers": [(b"content-type", b"application/json")]}
        await app(scope, receive, send)  # type: ignore[arg-type]

    async def run() -> tuple[float, float]:
        started = asyncio.Event()

        async def lifespan_receive() -> dict[str, object]:
            if not started.is_set():
                started.set()
                return {"type": "lifespan.startup"}
            await asyncio.Event().wait()
            return {}

        async def lifespan_send(message: dict[str, object]) -> None:
            return None

        life = asyncio.ensure_future(app({"type": "lifespan", "asgi": {"version": "3.0"},
                                          "state": {}}, lifespan_receive, lifespan_send))
        await asyncio.sleep(0.05)
        want["n"] = 1
        for _ in range(20):
            await one()  # warm-up
        t = time.process_time()
        for _ in range(200):
            await one()
        per_request = (time.process_time() - t) / 200
        want["n"] = n_chunks
        t = time.process_time()
        await one()
        per_chunk = (time.process_time() - t - per_request) / n_chunks
        life.cancel()
        return per_request, per_chunk

    per_request, per_chunk = asyncio.run(run())
    print(f"  isolated adapter cost (instant fake upstream): {per_request * 1000:.2f} ms CPU "
          f"per request, {per_chunk * 1e6:.1f} us CPU per streamed chunk")


if __name__ == "__main__":
    raise SystemExit(main())
