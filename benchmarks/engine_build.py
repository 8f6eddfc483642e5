"""What portability costs: tokens/s of the portable llama-server build against a native one.

Both binaries must exist (and have passed their smoke tests):

    uv run wafer-local --build-only                               # the portable profile
    WAFER_LLAMA_PROFILE=native uv run wafer-local --build-only    # -march=native, for this
    uv run python benchmarks/engine_build.py [--repeats 5] [--tokens 128]

Each binary serves SmolLM2-135M raw (no adapter) with the same flags the engine uses; the
two are measured alternately, request by request, so load on the machine hits both alike.
Prints the medians of llama-server's own timings (decode and prompt tokens/s) and the
portable/native ratios.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from wafer_playground.local import provision  # noqa: E402
from wafer_playground.local.net import free_port  # noqa: E402

PROMPT = ("Write a short paragraph about the history of the printing press, the people who "
          "built it and how it changed the way books were made and read across Europe.")


def _start(binary: Path, model: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [str(binary), "-m", str(model), "--host", "127.0.0.1", "--port", str(port), "-c", "2048",
         "-np", "1", "-t", str(min(2, os.cpu_count() or 1)), "--no-webui"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{binary} did not start")


def _one(url: str, tokens: int) -> tuple[float, float]:
    r = httpx.post(url + "/completion", timeout=120, json={
        "prompt": PROMPT, "n_predict": tokens, "temperature": 0, "top_k": 1,
        "cache_prompt": False, "ignore_eos": True})
    t = r.json()["timings"]
    return float(t["predicted_per_second"]), float(t["prompt_per_second"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--tokens", type=int, default=128)
    args = ap.parse_args()
    chain = provision.profile_chain()
    portable = next((p for p in chain if provision.read_verdict(p) and
                     provision.read_verdict(p).ok), None)  # type: ignore[union-attr]
    native = provision.PROFILES["native"]
    if portable is None or not (provision.build_dir(native) / "llama-server").is_file():
        print("build both first (see the docstring)")
        return 2
    model = provision.smollm2_path().path
    servers = {name: _start(provision.build_dir(p) / "llama-server", model)
               for name, p in (("portable", portable), ("native", native))}
    results: dict[str, list[tuple[float, float]]] = {k: [] for k in servers}
    try:
        for _, url in servers.values():
            _one(url, 16)  # warm-up
        for _ in range(args.repeats):
            for name, (_, url) in servers.items():
                results[name].append(_one(url, args.tokens))
    finally:
        for proc, _ in servers.values():
            os.killpg(proc.pid, signal.SIGKILL)
    med = {k: (statistics.median(d for d, _ in v), statistics.median(p for _, p in v))
           for k, v in results.items()}
    print(f"cpu: {provision.cpu_model()} · portable profile: {portable.name} · "
          f"{args.repeats} × {args.tokens} tokens, alternating")
    for name, (decode, prompt) in med.items():
        print(f"  {name:9s} decode {decode:7.1f} tok/s   prompt {prompt:8.1f} tok/s")
    print(f"  portable/native: decode {med['portable'][0] / med['native'][0]:.3f}×, "
          f"prompt {med['portable'][1] / med['native'][1]:.3f}×")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
