"""The smoke test on the real llama-server this machine built (CI runs it on every push)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from wafer_playground.local import provision

pytestmark = pytest.mark.engine


def test_the_real_binary_passes_its_smoke_test_and_is_portable() -> None:
    built = provision.ensure_llama_server()  # waits for .ci/run's background build if needed
    assert built.verdict.ok and built.profile.name != "native"
    assert "-DGGML_NATIVE=OFF" in (*provision.COMMON_FLAGS, *built.profile.flags)
    fresh = provision.smoke_test(built.path)
    assert fresh.ok, fresh.reason
    assert provision.SMOKE_EXPECT in fresh.text and fresh.tokens_per_s > 0


def test_doctor_prints_what_a_bug_report_needs() -> None:
    out = subprocess.run([sys.executable, "-m", "wafer_playground.local.cli", "--doctor"],
                         capture_output=True, text=True, timeout=180, check=True).stdout
    for label in ("os:", "cpu:", "cpu flags:", "compiler:", "build key:", "flags:",
                  "binary:", "smoke test: passed", "smoke now:"):
        assert label in out, label
    assert "smoke now: " in out and "passed" in out.split("smoke now:")[1]
