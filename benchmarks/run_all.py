"""Run every benchmark one after another (never in parallel: they measure CPU and wall time)
and keep each one's output in a directory, with the machine and load average around each.

Run: ``uv run python benchmarks/run_all.py [--quick] [--out DIR] [--only NAME ...]``

``--quick`` passes each script its short form (fewer repeats / sizes). A script that fails
is reported and the rest still run; the exit code says whether all passed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
# name -> (full arguments, quick arguments)
SCRIPTS: dict[str, tuple[list[str], list[str]]] = {
    "stream_render": ([], ["--quick"]),
    "latency": ([], ["--quick"]),
    "render_cost": ([], ["--samples", "2"]),
    "catalog_page": ([], ["--repeat", "1"]),
    "cost_engine": ([], ["--rows", "200000"]),
    "grammar": ([], ["--repeat", "2"]),
    "local_engine": ([], ["--repeats", "2"]),
    "load": ([], ["--sessions", "4"]),
    "long_chat": ([], ["--samples", "1", "--variants", "chat"]),
    "memory": ([], ["--sessions", "10"]),
    "engine_concurrency": ([], ["--rounds", "1"]),
}


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", type=Path, default=Path("benchmark-results"))
    ap.add_argument("--only", nargs="+", choices=sorted(SCRIPTS))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    failed: list[str] = []
    verdicts: list[tuple[str, str]] = []  # every script's "VERDICT | ..." lines (_verdict.py)
    for name, (full, quick) in SCRIPTS.items():
        if args.only and name not in args.only:
            continue
        if not (HERE / f"{name}.py").exists():
            print(f"-- {name}: script not present, skipped")
            continue
        cmd = [sys.executable, str(HERE / f"{name}.py"), *(quick if args.quick else full)]
        print(f"-- {name}: {' '.join(cmd[1:])} (load {load()})", flush=True)
        started = time.monotonic()
        proc = subprocess.run(cmd, cwd=HERE.parent, capture_output=True, text=True, check=False)
        took = time.monotonic() - started
        text = (f"$ {' '.join(cmd[1:])}\n# nproc {os.cpu_count()}; load before/after in the "
                f"script's own output; wall {took:.0f} s; exit {proc.returncode}\n"
                + proc.stdout + (f"\n[stderr]\n{proc.stderr[-4000:]}" if proc.returncode else ""))
        (args.out / f"{name}.txt").write_text(text)
        tail = "\n".join(proc.stdout.strip().splitlines()[-25:])
        print(tail)
        print(f"-- {name}: exit {proc.returncode} in {took:.0f} s (load {load()}); "
              f"full output in {args.out / f'{name}.txt'}\n", flush=True)
        if proc.returncode:
            failed.append(name)
        verdicts += [(name, line) for line in proc.stdout.splitlines()
                     if line.startswith("VERDICT |")]
    table = ["| script | what | figure | same-run baseline | target | verdict |",
             "|---|---|---|---|---|---|"]
    table += [f"| {name} | " + " | ".join(line.split(" | ")[1:]) + " |"
              for name, line in verdicts]
    (args.out / "verdicts.md").write_text("\n".join(table) + "\n")
    print("\n".join(table))
    misses = sum(line.endswith("MISS") for _, line in verdicts)
    print(f"{len(verdicts)} verdicts, {misses} missed; table in {args.out / 'verdicts.md'}")
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
