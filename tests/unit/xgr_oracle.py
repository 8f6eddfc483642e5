"""Load xgrammar 0.2.8 (a dev dependency) as a test oracle without torch/transformers.

xgrammar imports torch and transformers at module level but never needs them to parse or
compile a grammar; tests/unit/_xgr_stub holds tiny stand-ins. tvm_ffi must be imported
before the stub is on sys.path, or it finds the fake torch and fails.
"""

from __future__ import annotations

import functools
import re
import sys
from pathlib import Path
from typing import Any

STUB = Path(__file__).resolve().parent / "_xgr_stub"


@functools.cache
def load() -> Any:
    """The xgrammar module, or raise ImportError with the reason."""
    import tvm_ffi  # noqa: F401  (must come before the stub; see module docstring)

    added = str(STUB) not in sys.path
    if added:
        sys.path.insert(0, str(STUB))
    try:
        import xgrammar
    finally:
        if added:
            sys.path.remove(str(STUB))
    # Do not leave the fake torch/transformers visible to other tests.
    for name in ("torch", "transformers"):
        mod = sys.modules.get(name)
        if mod is not None and str(STUB) in (getattr(mod, "__file__", "") or ""):
            sys.modules[f"_xgr_stub_{name}"] = mod
            del sys.modules[name]
    return xgrammar


@functools.cache
def _compiler() -> Any:
    xgr = load()
    vocab = [chr(i) for i in range(32, 127)] + ["\n", "é", "<eos>"]
    info = xgr.TokenizerInfo(vocab, vocab_type=xgr.VocabType.RAW, stop_token_ids=[len(vocab) - 1])
    return xgr.GrammarCompiler(info, max_threads=1, cache_enabled=False)


_LOG_PREFIX = re.compile(r"^\[[0-9:]+\] \S+:\d+: ")


def verdict(ebnf: str) -> str | None:
    """None if XGrammar compiles the grammar (what SGLang does with `ebnf`), else its message."""
    try:
        _compiler().compile_grammar(ebnf)
    except UnicodeDecodeError as e:
        # XGrammar put a lone UTF-8 lead byte into its message ("Unexpected character: \xc3")
        # and the binding failed to decode it; recover the text it meant to raise.
        return _message(bytes(e.object).decode("utf-8", "replace"))
    except Exception as e:  # xgrammar raises RuntimeError
        return _message(str(e))
    return None


def _message(text: str) -> str:
    # Split on \n only: str.splitlines() would also split inside a message that quotes \x0b,
    # \x0c or \x1e (e.g. "Unexpected character: \x0c").
    lines = [ln for ln in text.split("\n") if ln.strip()]
    picked = [ln for ln in lines if _LOG_PREFIX.match(ln)] or lines or [text]
    return _LOG_PREFIX.sub("", picked[-1])


_NON_ASCII_CHAR = re.compile(r"(Unexpected character: |Invalid escape sequence\\)[^\x00-\x7f]")


def comparable(message: str) -> str:
    """XGrammar quotes a non-ASCII character in an error by its first UTF-8 byte (which is not
    text); check() quotes the whole character. Compare the two as the same message."""
    return _NON_ASCII_CHAR.sub(r"\1<non-ASCII>", message)


@functools.cache
def _compiled(ebnf: str) -> Any:
    return _compiler().compile_grammar(ebnf)


def break_position(ebnf: str, text: str) -> int | None:
    """Where XGrammar's GrammarMatcher stops accepting `text`, fed one character at a time:
    the index of the first rejected character, len(text) if the text is an incomplete prefix,
    or None if the whole text is a complete match."""
    matcher = load().GrammarMatcher(_compiled(ebnf), terminate_without_stop_token=True)
    for i, ch in enumerate(text):
        if not matcher.accept_string(ch):
            return i
    return None if matcher.is_completed() else len(text)
