"""Load benchmark: N browser sessions (default 8) streaming at once through one Streamlit
server from a fast fake Wafer server (200 tok/s each), against one session alone in the same
run. Prints the slowest session's time vs the single one and the server's CPU.

    uv run python benchmarks/load.py [--sessions 8] [--tokens 400] [--rate 200]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from playwright.sync_api import sync_playwright  # noqa: E402

from tests.conftest import CHROMIUM, CHROMIUM_ARGS, StreamlitServer  # noqa: E402
from tests.fake_wafer import FakeWafer  # noqa: E402
from tests.reliability.load_driver import run_load  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sessions", type=int, default=8)
    ap.add_argument("--tokens", type=int, default=400)
    ap.add_argument("--rate", type=float, default=200.0)
    ap.add_argument("--timeout", type=float, default=90.0)
    args = ap.parse_args()
    fake = FakeWafer().start()
    with tempfile.TemporaryDirectory() as tmp:
        server = StreamlitServer(env={"WAFER_ENDPOINT": "wafer", "WAFER_BASE_URL": fake.url,
                                      "WAFER_API_KEY": "",
                                      "WAFER_PLAYGROUND_DB": str(Path(tmp) / "load.db")})
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                result = run_load(server, fake, browser, sessions=args.sessions,
                                  tokens=args.tokens, rate=args.rate, timeout=args.timeout)
                browser.close()
        finally:
            server.stop()
            fake.stop()
    print(result.summary())
    print("per-session seconds:", ", ".join(f"{t:.2f}" for t in result.times_s))
    return 0 if result.complete == result.sessions else 1


if __name__ == "__main__":
    raise SystemExit(main())
