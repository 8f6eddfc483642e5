"""Loopback ports: the one `free_port` every server the project starts uses (the engine,
its llama-server children, the smoke test, the tests' fake servers and the benchmarks)."""

from __future__ import annotations

import socket

HOST = "127.0.0.1"  # never anything else: the engine and every test server are local tools


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def port_free(port: int) -> bool:
    with socket.socket() as s:
        # as uvicorn does: sockets in TIME_WAIT from a previous run do not count as "in use"
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True
