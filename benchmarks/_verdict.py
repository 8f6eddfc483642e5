"""One line per target, the same shape in every benchmark, so `run_all.py` can gather them
into one table: ``VERDICT | what | figure | same-run baseline | target | PASS/MISS``."""

from __future__ import annotations


def verdict(what: str, figure: str, baseline: str, target: str, ok: bool | None) -> bool | None:
    """Print one verdict line; `ok` None means the figure could not be measured."""
    mark = "n/a" if ok is None else ("PASS" if ok else "MISS")
    print(f"VERDICT | {what} | {figure} | {baseline} | {target} | {mark}", flush=True)
    return ok


__all__ = ["verdict"]
