"""Fake OpenAI-compatible upstream for the browser benchmarks (loopback only).

* ``GET  /v1/models``            one model card (``bench-model``) with prices, so cost works.
* ``POST /v1/chat/completions``  SSE: ``tokens`` chunks at ``rate`` tok/s on a fixed schedule
  (``t0 + i/rate``: a late sender catches up in a burst, like a real server's buffer), then a
  usage chunk and ``[DONE]``.
* ``POST /_bench/config``        sets ``tokens``, ``rate``, ``tag`` and ``prefill_s`` (delay
  between the response headers and the first token) for the next streams.
* ``GET  /_bench/log``           every stream so far: wall-clock (``time.time()``) of the first
  token write, the last token write, the end, the client's disconnect (mid-stream) or close
  (after the end), tokens sent, seconds blocked in ``write`` (back-pressure: the client reads
  slower than we send), the final text's size.

The first token is ``<tag>first`` and the last ``<tag>end`` so a page can watch for both.
Between tokens the sender waits in ``select()`` on the socket, so a client that closes the
connection (Stop) is noticed when it happens, not at the next write.

Why not the shared fake Wafer server (tests/fake_wafer.py, which every test and the other
benchmarks use): these figures are taken at the socket. The close time needs a half-closed
socket (``SHUT_WR``) and a wait for the reader's EOF, and the back-pressure figure times each
blocking ``write``; an ASGI app on uvicorn sees neither, so moving would change the figures.

Run: ``python benchmarks/_fake_sse.py --port P`` (prints ``ready`` when listening).
"""

from __future__ import annotations

import argparse
import json
import select
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODEL_ID = "bench-model"
MODELS = {"object": "list", "data": [{
    "id": MODEL_ID, "object": "model", "owned_by": "bench", "max_model_len": 131072,
    "wafer": {"display_name": "Bench model", "capabilities": {"tools": False},
              "pricing": {"input_cents_per_million": 100, "output_cents_per_million": 200}}}]}


def token(i: int, n: int, tag: str) -> str:
    """Token i of n: markdown-ish prose (a paragraph every 40 tokens, some bold)."""
    if i == 0:
        return f"{tag}first "
    if i == n - 1:
        return f"{tag}end"
    if i % 40 == 39:
        return f"w{i}.\n\n"
    if i % 25 == 0:
        return f"**b{i}** "
    return f"w{i} "


def final_text(n: int, tag: str) -> str:
    return "".join(token(i, n, tag) for i in range(n))


class State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.config: dict[str, Any] = {"tokens": 5000, "rate": 500.0, "tag": "ZQ",
                                        "prefill_s": 0.0}
        self.log: list[dict[str, Any]] = []


STATE = State()


def _closed(sock: socket.socket, timeout: float) -> bool:
    """Wait up to `timeout` s; True when the peer has closed (EOF or reset)."""
    readable, _, _ = select.select([sock], [], [], max(timeout, 0.0))
    if not readable:
        return False
    try:
        return sock.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def _json(self, payload: Any, status: int = 200) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _body(self) -> dict[str, Any]:
        n = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(n) or b"{}")  # type: ignore[no-any-return]

    def do_GET(self) -> None:  # noqa: N802
        if self.path.startswith("/v1/models"):
            self._json(MODELS)
        elif self.path.startswith("/_bench/log"):
            with STATE.lock:
                self._json(list(STATE.log))
        else:
            self._json({"error": {"message": "not found", "type": "not_found"}}, 404)

    def do_POST(self) -> None:  # noqa: N802
        if self.path.startswith("/_bench/config"):
            with STATE.lock:
                STATE.config.update(self._body())
                self._json(STATE.config)
            return
        if not self.path.startswith("/v1/chat/completions"):
            self._json({"error": {"message": "not found", "type": "not_found"}}, 404)
            return
        self._body()
        with STATE.lock:
            cfg = dict(STATE.config)
            rec: dict[str, Any] = {
                "tag": cfg["tag"], "tokens": int(cfg["tokens"]), "rate": float(cfg["rate"]),
                "prefill_s": float(cfg["prefill_s"]),
                "started": time.time(), "first_at": None, "last_at": None, "end_at": None,
                "disconnect_at": None, "closed_at": None, "sent": 0, "blocked_s": 0.0,
                "text_bytes": len(final_text(int(cfg["tokens"]), cfg["tag"]).encode())}
            STATE.log.append(rec)
        self._stream(rec)
        self.close_connection = True

    def _stream(self, rec: dict[str, Any]) -> None:
        n, rate, tag = rec["tokens"], rec["rate"], rec["tag"]
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.send_header("x-request-id", f"req_bench{len(STATE.log)}")
        self.end_headers()
        sock = self.connection
        base = {"id": "chatcmpl-bench", "object": "chat.completion.chunk",
                "created": int(time.time()), "model": MODEL_ID}
        try:
            # a real server's prompt processing: headers first, the first token later
            if rec["prefill_s"] > 0 and _closed(sock, rec["prefill_s"]):
                rec["disconnect_at"] = time.time()
                return
            t0 = time.perf_counter()
            for i in range(n):
                delay = t0 + i / rate - time.perf_counter()
                if delay > 0 and _closed(sock, delay):
                    rec["disconnect_at"] = time.time()
                    return
                chunk = {**base, "choices": [{"index": 0, "delta": {"content": token(i, n, tag)},
                                               "finish_reason": None}]}
                data = f"data: {json.dumps(chunk)}\n\n".encode()
                w0 = time.perf_counter()
                self.wfile.write(data)
                spent = time.perf_counter() - w0
                if spent > 0.001:
                    rec["blocked_s"] += spent
                now = time.time()
                if i == 0:
                    rec["first_at"] = now
                rec["last_at"], rec["sent"] = now, i + 1
            tail = [{**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
                    {**base, "choices": [], "usage": {"prompt_tokens": 12,
                                                      "completion_tokens": n,
                                                      "total_tokens": n + 12}}]
            self.wfile.write(b"".join(f"data: {json.dumps(c)}\n\n".encode() for c in tail)
                             + b"data: [DONE]\n\n")
            rec["end_at"] = time.time()
            # Linger until the client hangs up: when it does is when its reader finished
            # (how far a slow consumer ran behind), and a late close is not a Stop.
            sock.shutdown(socket.SHUT_WR)  # EOF for readers that read to the end
            if _closed(sock, 30.0):
                rec["closed_at"] = time.time()
        except (BrokenPipeError, ConnectionResetError):
            rec["disconnect_at"] = time.time()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    args = ap.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print("ready", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        sys.stdout.flush()


if __name__ == "__main__":
    main()
