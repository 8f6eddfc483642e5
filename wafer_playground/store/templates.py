"""Saved-prompt templates: `{{variables}}`, filled in one pass by `render`."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_VAR = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_.\-]*)\s*\}\}")


@dataclass(frozen=True)
class RenderResult:
    text: str
    missing: tuple[str, ...]  # variables the prompt uses but `values` lacks (left as {{name}})
    unused: tuple[str, ...]  # values given that the prompt never uses

    @property
    def ok(self) -> bool:
        return not self.missing


def prompt_variables(prompt: str) -> list[str]:
    """Variable names in first-use order, each once."""
    seen: dict[str, None] = {}
    for m in _VAR.finditer(prompt):
        seen.setdefault(m.group(1), None)
    return list(seen)


def render(prompt: str, values: Mapping[str, Any]) -> RenderResult:
    """Fill `{{name}}` placeholders in one pass (values are not re-expanded)."""
    missing: dict[str, None] = {}

    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        if name in values and values[name] is not None:
            return str(values[name])
        missing.setdefault(name, None)
        return m.group(0)

    text = _VAR.sub(sub, prompt)
    used = set(prompt_variables(prompt))
    unused = tuple(k for k in values if k not in used)
    return RenderResult(text=text, missing=tuple(missing), unused=unused)
