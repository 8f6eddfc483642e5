"""Benchmark: the grammar checker and output matcher against same-run baselines.

* check()  vs  XGrammar 0.2.8's own parser (`Grammar.from_ebnf`, C++) on every preset and the
  dialect corpus -- the ratio says what validating in Python costs per keystroke in the UI.
* match()  on JSON outputs of 1, 4 and 16 KB for a JSON-array grammar, vs a same-run baseline
  of `json.loads` + a Python loop over every character (the floor for any pure-Python
  char-level pass). Target: a few KB well under a second.
* to_gbnf() per preset.

Medians of --repeat runs (fresh caches for check/to_gbnf/match so nothing is memoised).
Run: `uv run python benchmarks/grammar.py [--repeat 5]`
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.unit import xgr_oracle  # noqa: E402
from tests.unit.grammar_corpus import ALL_CASES  # noqa: E402
from wafer_playground import grammar  # noqa: E402
from wafer_playground.grammar_presets import PRESETS  # noqa: E402

JSON_GRAMMAR = (
    'root ::= "[" ws (obj ("," ws obj)*)? ws "]"\n'
    'obj ::= "{" ws "\\"name\\"" ws ":" ws str ws "," ws "\\"age\\"" ws ":" ws int ws "}"\n'
    'str ::= "\\"" ([^"\\\\\\x00-\\x1f] | "\\\\" ["\\\\/bfnrt])* "\\""\n'
    'int ::= "-"? ("0" | [1-9] [0-9]*)\n'
    "ws ::= [ \\n]*"
)


def median_time(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def clear_caches() -> None:
    grammar._analyse.cache_clear()
    grammar._matcher.cache_clear()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()

    grammars = [p.ebnf for p in PRESETS] + [c.ebnf for c in ALL_CASES]

    def run_check() -> None:
        clear_caches()
        for g in grammars:
            grammar.check(g)

    t_check = median_time(run_check, args.repeat)
    print(f"check(): {len(grammars)} grammars in {t_check * 1000:.1f} ms "
          f"({t_check / len(grammars) * 1e6:.0f} us each)")  # fmt: skip
    try:
        xgr = xgr_oracle.load()

        def run_xgr() -> None:
            for g in grammars:
                with contextlib.suppress(RuntimeError):
                    xgr.Grammar.from_ebnf(g)

        t_xgr = median_time(run_xgr, args.repeat)
        print(
            f"  baseline XGrammar from_ebnf: {t_xgr * 1000:.1f} ms -> ratio {t_check / t_xgr:.1f}x"
        )
    except Exception as e:  # pragma: no cover - oracle missing
        print(f"  baseline XGrammar unavailable: {e}")

    def run_gbnf() -> None:
        clear_caches()
        for p in PRESETS:
            grammar.to_gbnf(p.ebnf)

    t_gbnf = median_time(run_gbnf, args.repeat)
    print(f"to_gbnf(): {len(PRESETS)} presets in {t_gbnf * 1000:.1f} ms")

    for n_objects in (12, 50, 200):
        data = json.dumps(
            [{"name": f"person number {i}", "age": i} for i in range(n_objects)], indent=1
        )

        def run_match(text: str = data) -> None:
            grammar.match.cache_clear()  # results are memoised: time the parse itself
            assert grammar.match(JSON_GRAMMAR, text).ok

        def baseline(text: str = data) -> None:
            json.loads(text)
            n = 0
            for ch in text:
                n += ch == '"'

        grammar.match(JSON_GRAMMAR, "[]")  # compile outside the timing (cached per grammar)
        t_match = median_time(run_match, args.repeat)
        t_base = median_time(baseline, args.repeat)
        print(f"match(): {len(data) / 1024:.1f} KB in {t_match * 1000:.0f} ms "
              f"(baseline {t_base * 1000:.2f} ms, ratio {t_match / t_base:.0f}x)")  # fmt: skip

    clear_caches()
    t = time.perf_counter()
    grammar.match(JSON_GRAMMAR, "[]")
    print(f"match() grammar compile (first call): {(time.perf_counter() - t) * 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
