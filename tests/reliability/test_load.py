"""Load, lightly (the full 8-session figure is benchmarks/load.py): 4 browser sessions stream
400 tokens each at 200 tok/s through the shared Streamlit server; every answer is complete
(all words in order, actual cost from the usage chunk)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser

from tests.conftest import StreamlitServer
from tests.fake_wafer import FakeWafer
from tests.reliability.load_driver import run_load

pytestmark = pytest.mark.e2e


def test_four_concurrent_streaming_sessions(app_server: StreamlitServer,
                                            fake_server: FakeWafer, browser: Browser) -> None:
    fake_server.reset()
    result = run_load(app_server, fake_server, browser, sessions=4, tokens=400, rate=200)
    print(result.summary())
    assert result.complete == 4, result.summary()
    # 400 tokens at 200 tok/s is 2 s of streaming; generous for 2 shared CI cores
    assert result.slowest_s < 60, result.summary()
    assert len(fake_server.requests_to("POST", "/chat/completions")) == 5
