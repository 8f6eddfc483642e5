"""Token-ID completions: id parsing, request building and validation, runs, logprobs and forks.

Everything the token workbench page decides lives here, so it is testable without Streamlit:
what a pasted id list means, whether a request may be sent (and the precise reason when not),
the exact `/v1/completions` body, how a (streamed) response accumulates into a run, how each
generated token's probability and alternatives are read, and how a fork prompt is built from
ids only (never by re-tokenizing text, which drifts).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from . import grammar as grammar_mod
from .catalog import Pricing
from .costs import Cost, Usage, UsageError, cost_of, worst_case

# ---- ids ---------------------------------------------------------------------------------------


class IdParseError(ValueError):
    """A pasted id list that is not a list of non-negative integers; ``str()`` is precise."""

    def __init__(self, message: str, *, index: int, token: str) -> None:
        super().__init__(message)
        self.index = index  # 0-based position in the list
        self.token = token


_SEP = re.compile(r"[\s,;]+")
MAX_ID_DIGITS = 19  # beyond int64: no tokenizer has such an id


def parse_ids(text: str, *, what: str = "prompt") -> list[int]:
    """``"1, 2 3"``, ``"[1,2,3]"`` or one id per line -> ``[1, 2, 3]``.

    Rejects (with the 1-based position and the offending text) anything that is not a
    non-negative integer: ``"12a"``, ``"1.5"``, ``"-3"``, ``"0x10"``, nested brackets.
    """
    body = text.strip()
    if body.startswith("[") and body.endswith("]"):
        body = body[1:-1]
    ids: list[int] = []
    for n, raw in enumerate(t for t in _SEP.split(body) if t):
        pos = n + 1
        if raw.isdigit() and raw.isascii():
            if len(raw) > MAX_ID_DIGITS:  # int() refuses >4300 digits; no vocab is that big
                raise IdParseError(f"{what} id #{pos} is far too large ({len(raw)} digits)",
                                   index=n, token=raw[:40])
            ids.append(int(raw))
            continue
        if re.fullmatch(r"-\d+", raw):
            msg = f"{what} id #{pos} is negative ({raw}): token ids are 0 or more"
        elif re.fullmatch(r"[+-]?\d*\.\d+(e[+-]?\d+)?|[+-]?\d+e[+-]?\d+", raw, re.I):
            msg = f"{what} id #{pos} is not a whole number ({raw!r})"
        else:
            msg = f"{what} id #{pos} is not an integer: {raw[:40]!r}"
        raise IdParseError(msg, index=n, token=raw)
    return ids


def format_ids(ids: Iterable[int]) -> str:
    return ", ".join(str(i) for i in ids)


def vocab_problem(ids: Sequence[int], vocab_size: int | None, *, what: str = "prompt",
                  model: str | None = None) -> str | None:
    """The first id outside ``0..vocab_size-1``, as a sentence; None when all fit or unknown."""
    if not vocab_size:
        return None
    for n, t in enumerate(ids):
        if t >= vocab_size:
            who = f"{model}'s" if model else "the model's"
            return (f"{what} id #{n + 1} ({t}) is outside {who} vocabulary "
                    f"(0..{vocab_size - 1})")
    return None


def fork_prompt(prompt_ids: Sequence[int], generated_ids: Sequence[int], position: int,
                chosen_id: int) -> list[int]:
    """prompt + generated[:position] + [chosen]: the exact prefix for "fork here".

    ``position`` is the 0-based index of the generated token being replaced.
    """
    if not 0 <= position < len(generated_ids) + 1:
        raise ValueError(f"fork position {position} is outside 0..{len(generated_ids)}")
    if chosen_id < 0:
        raise ValueError("a token id is 0 or more")
    return [*prompt_ids, *generated_ids[:position], chosen_id]


def decode_escapes(text: str) -> str:
    r"""Stop strings typed in a text box: ``\n``, ``\t``, ``\\`` become the characters."""
    return re.sub(r"\\(n|t|r|\\)",
                  lambda m: {"n": "\n", "t": "\t", "r": "\r", "\\": "\\"}[m.group(1)], text)


def parse_stops(text: str) -> list[str]:
    """One stop string per line (escapes decoded); blank lines ignored."""
    return [decode_escapes(line) for line in text.splitlines() if line.strip() != ""]


# ---- request settings, validation, body ---------------------------------------------------------


@dataclass
class CompletionSettings:
    """Every documented `/v1/completions` field plus the extras the endpoint accepts.

    None means "not sent" (the server default applies).
    """

    max_tokens: int | None = 64
    min_tokens: int | None = None
    temperature: float | None = 0.7
    top_p: float | None = None
    top_k: int | None = None
    min_p: float | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    repetition_penalty: float | None = None
    stop: list[str] = field(default_factory=list)
    stop_token_ids: list[int] = field(default_factory=list)
    seed: int | None = None
    stream: bool = True
    logprobs: int | None = 5  # top-N alternatives per generated token (legacy completions)
    return_token_ids: bool = True
    regex: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CompletionSettings:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass(frozen=True)
class Problem:
    field: str  # the request field (or "prompt" / "ebnf") the problem is about
    message: str


def _range(problems: list[Problem], name: str, value: float | None, lo: float | None,
           hi: float | None, *, lo_open: bool = False) -> None:
    if value is None:
        return
    if isinstance(value, float) and not math.isfinite(value):
        problems.append(Problem(name, f"{name} must be a finite number (got {value})"))
        return
    low_bad = lo is not None and (value <= lo if lo_open else value < lo)
    high_bad = hi is not None and value > hi
    if low_bad or high_bad:
        left = "(" if lo_open else "["
        span = f"{left}{lo if lo is not None else '-inf'}, {hi if hi is not None else 'inf'}]"
        problems.append(Problem(name, f"{name} must be in {span} (got {value})"))


def validate(
    prompt_ids: Sequence[int] | None,
    settings: CompletionSettings,
    *,
    ebnf: str | None = None,
    vocab_size: int | None = None,
    model: str | None = None,
    prompt_error: str | None = None,
) -> list[Problem]:
    """Everything that would make the request fail, found before sending it.

    ``prompt_error`` carries a parse error from the id box (the ids themselves are then None).
    """
    p: list[Problem] = []
    if not model:
        p.append(Problem("model", "pick a model first"))
    if prompt_error:
        p.append(Problem("prompt", prompt_error))
    elif not prompt_ids:
        p.append(Problem("prompt", "the prompt is empty: tokenize some text, paste token ids or "
                                   "render a chat template first"))
    else:
        bad = vocab_problem(prompt_ids, vocab_size, model=model)
        if bad:
            p.append(Problem("prompt", bad))
    s = settings
    if s.max_tokens is not None and s.max_tokens <= 0:
        p.append(Problem("max_tokens", f"max_tokens must be a positive integer "
                                       f"(got {s.max_tokens})"))
    if s.min_tokens is not None:
        if s.min_tokens < 0:
            p.append(Problem("min_tokens", f"min_tokens must be 0 or more (got {s.min_tokens})"))
        elif s.max_tokens is not None and s.max_tokens > 0 and s.min_tokens > s.max_tokens:
            p.append(Problem("min_tokens", f"min_tokens ({s.min_tokens}) is more than "
                                           f"max_tokens ({s.max_tokens})"))
    _range(p, "temperature", s.temperature, 0, 2)
    _range(p, "top_p", s.top_p, 0, 1, lo_open=True)
    if s.top_k is not None and s.top_k < -1:
        p.append(Problem("top_k", f"top_k must be -1 (off) or a positive integer (got {s.top_k})"))
    _range(p, "min_p", s.min_p, 0, 1)
    _range(p, "frequency_penalty", s.frequency_penalty, -2, 2)
    _range(p, "presence_penalty", s.presence_penalty, -2, 2)
    _range(p, "repetition_penalty", s.repetition_penalty, 0, 2, lo_open=True)
    if s.logprobs is not None and not 0 <= s.logprobs <= 20:
        p.append(Problem("logprobs", f"logprobs (top alternatives) must be 0..20 "
                                     f"(got {s.logprobs})"))
    if any(x == "" for x in s.stop):
        p.append(Problem("stop", "a stop string cannot be empty"))
    bad_stop = vocab_problem(s.stop_token_ids, vocab_size, what="stop_token_ids", model=model)
    if bad_stop:
        p.append(Problem("stop_token_ids", bad_stop))
    grammar = (ebnf or "").strip()
    regex = (s.regex or "").strip()
    if grammar and regex:
        p.append(Problem("ebnf", "send either a grammar (ebnf) or a regex, not both: only one "
                                 "constraint is allowed per request"))
    if grammar:
        report = grammar_mod.check(ebnf or "")
        if not report.ok:
            first = report.issues[0]
            p.append(Problem("ebnf", f"the grammar does not parse: line {first.line}, column "
                                     f"{first.column}: {_detail(first.message)}"))
    if regex:
        try:
            re.compile(regex)
        except re.error as exc:
            p.append(Problem("regex", f"the regex does not compile: {exc}"))
    return p


def _detail(message: str) -> str:
    return re.sub(r"^EBNF (?:lexer|parser) error at line \d+, column \d+: ", "", message)


def build_body(model: str, prompt_ids: Sequence[int], settings: CompletionSettings, *,
               ebnf: str | None = None) -> dict[str, Any]:
    """The exact JSON body; unset fields are left out so the server's defaults apply."""
    s = settings
    body: dict[str, Any] = {"model": model, "prompt": list(prompt_ids)}
    for name in ("max_tokens", "min_tokens", "temperature", "top_p", "top_k", "min_p",
                 "frequency_penalty", "presence_penalty", "repetition_penalty", "seed"):
        value = getattr(s, name)
        if value is not None:
            body[name] = value
    if s.stop:
        body["stop"] = s.stop[0] if len(s.stop) == 1 else list(s.stop)
    if s.stop_token_ids:
        body["stop_token_ids"] = list(s.stop_token_ids)
    if s.logprobs is not None:
        body["logprobs"] = s.logprobs
    if s.return_token_ids:
        body["return_token_ids"] = True
    if ebnf and ebnf.strip():
        body["ebnf"] = ebnf
    elif s.regex and s.regex.strip():
        body["regex"] = s.regex
    if s.stream:
        # The client adds these too; the body shown in "View code" must be the one sent.
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


def without_constraint(body: Mapping[str, Any]) -> dict[str, Any]:
    """The same request with no grammar/regex: the unconstrained side of a comparison."""
    return {k: v for k, v in body.items() if k not in ("ebnf", "regex", "json_schema")}


# ---- logprobs -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Alternative:
    id: int | None  # None when the server gave only the token text (not forkable exactly)
    text: str
    logprob: float

    @property
    def prob(self) -> float:
        return math.exp(self.logprob)


@dataclass(frozen=True)
class GenToken:
    index: int
    id: int | None
    text: str
    logprob: float | None
    alternatives: tuple[Alternative, ...] = ()

    @property
    def prob(self) -> float | None:
        return None if self.logprob is None else math.exp(self.logprob)


def chat_logprob_tokens(items: Sequence[Mapping[str, Any]]) -> list[GenToken]:
    """Chat `logprobs.content` items -> GenTokens, so Chat draws them as the Token page does
    (components/tokens/view.py generated_html). Chat logprobs carry no token ids."""
    out: list[GenToken] = []
    for i, item in enumerate(items):
        if not isinstance(item, Mapping):
            continue
        lp = item.get("logprob")
        alts = tuple(Alternative(None, str(a.get("token") or ""), float(a["logprob"]))
                     for a in item.get("top_logprobs") or []
                     if isinstance(a, Mapping) and isinstance(a.get("logprob"), int | float))
        out.append(GenToken(i, None, str(item.get("token") or ""),
                            float(lp) if isinstance(lp, int | float) else None, alts))
    return out


def prob_shade(prob: float | None) -> str:
    """Background colour for a token: confident = pale green, doubtful = red (CSS rgba)."""
    if prob is None:
        return "rgba(148, 163, 184, 0.18)"  # no logprob: neutral grey
    p = min(max(prob, 0.0), 1.0)
    # hue 0 (red) at p=0 to 130 (green) at p=1; low probability also gets a stronger tint
    hue = round(130 * p)
    alpha = round(0.18 + 0.42 * (1 - p), 2)
    return f"hsla({hue}, 80%, 50%, {alpha})"


def format_prob(prob: float | None) -> str:
    if prob is None:
        return "n/a"
    if prob >= 0.995:
        return "≈100%"
    if prob >= 0.1:
        return f"{prob * 100:.0f}%"
    if prob >= 0.001:
        return f"{prob * 100:.1f}%"
    return f"{prob * 100:.2g}%"


def _bytes_text(entry: Mapping[str, Any]) -> str:
    raw = entry.get("bytes")
    if isinstance(raw, list) and all(isinstance(b, int) for b in raw):
        try:
            return bytes(raw).decode("utf-8")
        except (UnicodeDecodeError, ValueError):
            return "".join(f"\\x{b:02x}" for b in raw)
    return str(entry.get("token", ""))


# ---- runs ---------------------------------------------------------------------------------------


@dataclass
class RunError:
    title: str
    message: str
    code: str | None = None
    status: int | None = None
    request_id: str | None = None


@dataclass
class CompletionRun:
    """One `/v1/completions` request and what came back (streamed or not)."""

    label: str
    body: dict[str, Any]
    text: str = ""
    token_ids: list[int] = field(default_factory=list)
    prompt_token_ids: list[int] | None = None
    lp_tokens: list[str] = field(default_factory=list)
    lp_logprobs: list[float | None] = field(default_factory=list)
    lp_top: list[dict[str, float]] = field(default_factory=list)
    lp_top_by_id: list[list[dict[str, Any]]] = field(default_factory=list)
    lp_token_ids: list[int] = field(default_factory=list)
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None
    request_id: str | None = None
    error: RunError | None = None
    elapsed_s: float | None = None
    ttft_s: float | None = None
    stopped: bool = False  # the user interrupted the stream: partial output
    store_id: str | None = None
    logged: bool = False  # outcome written to the store
    in_flight: bool = False  # sent, not yet finished: still true after an interrupted run

    # -- accumulation --
    def feed(self, chunk: Mapping[str, Any]) -> str:
        """Add one stream chunk (or a whole response); returns the new text."""
        usage = chunk.get("usage")
        if isinstance(usage, dict) and usage:
            self.usage = dict(usage)
        new = ""
        for choice in chunk.get("choices") or []:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            piece = choice.get("text")
            if isinstance(piece, str):
                new += piece
            ids = choice.get("token_ids")
            if isinstance(ids, list):
                self.token_ids.extend(int(i) for i in ids)
            pids = choice.get("prompt_token_ids")
            if isinstance(pids, list) and self.prompt_token_ids is None:
                self.prompt_token_ids = [int(i) for i in pids]
            lp = choice.get("logprobs")
            if isinstance(lp, dict):
                self._feed_logprobs(lp)
            if choice.get("finish_reason"):
                self.finish_reason = str(choice["finish_reason"])
        self.text += new
        return new

    def _feed_logprobs(self, lp: Mapping[str, Any]) -> None:
        tokens = lp.get("tokens")
        if isinstance(tokens, list):
            self.lp_tokens.extend(str(t) for t in tokens)
            lps = lp.get("token_logprobs") or []
            self.lp_logprobs.extend(_float_or_none(x) for x in lps)
            top = lp.get("top_logprobs") or []
            self.lp_top.extend(dict(t) if isinstance(t, dict) else {} for t in top)
            by_id = lp.get("top_logprobs_by_id") or []
            self.lp_top_by_id.extend(list(t) if isinstance(t, list) else [] for t in by_id)
            ids = lp.get("token_ids") or []
            self.lp_token_ids.extend(int(i) for i in ids if isinstance(i, int))
            return
        content = lp.get("content")  # chat-style shape (llama.cpp native): convert
        if isinstance(content, list):
            for e in content:
                if not isinstance(e, dict):
                    continue
                self.lp_tokens.append(_bytes_text(e))
                self.lp_logprobs.append(_float_or_none(e.get("logprob")))
                alts = [a for a in e.get("top_logprobs") or [] if isinstance(a, dict)]
                self.lp_top.append({str(a.get("token", "")): float(a.get("logprob", 0.0))
                                    for a in alts})
                self.lp_top_by_id.append(alts if all("id" in a for a in alts) else [])
                if isinstance(e.get("id"), int):
                    self.lp_token_ids.append(int(e["id"]))

    # -- reading --
    @property
    def generated_ids(self) -> list[int]:
        """Ids of the generated tokens: `token_ids` (return_token_ids) or the logprob ids."""
        return list(self.token_ids or self.lp_token_ids)

    @property
    def exact_ids(self) -> bool:
        return bool(self.generated_ids)

    def tokens(self) -> list[GenToken]:
        """One entry per generated token, with probability and alternatives when known."""
        ids = self.generated_ids
        n = max(len(ids), len(self.lp_tokens))
        out: list[GenToken] = []
        for i in range(n):
            tid = ids[i] if i < len(ids) else None
            alts: list[Alternative] = []
            by_id = self.lp_top_by_id[i] if i < len(self.lp_top_by_id) else []
            if by_id:
                for a in by_id:
                    if isinstance(a, dict) and isinstance(a.get("id"), int):
                        alts.append(Alternative(int(a["id"]), _bytes_text(a),
                                                float(a.get("logprob", 0.0))))
            elif i < len(self.lp_top):
                alts = [Alternative(None, t, float(lp)) for t, lp in self.lp_top[i].items()]
            alts.sort(key=lambda a: -a.logprob)
            text = self.lp_tokens[i] if i < len(self.lp_tokens) else ""
            if not text and tid is not None:
                text = next((a.text for a in alts if a.id == tid), "")
            lp = self.lp_logprobs[i] if i < len(self.lp_logprobs) else None
            out.append(GenToken(i, tid, text, lp, tuple(alts)))
        return out

    def usage_obj(self) -> Usage | None:
        if not self.usage:
            return None
        try:
            return Usage.from_openai(self.usage)
        except UsageError:
            return None

    def completion_tokens(self) -> int:
        u = self.usage_obj()
        return u.completion_tokens if u else len(self.generated_ids)

    def cost(self, pricing: Pricing) -> Cost | None:
        u = self.usage_obj()
        if u is not None:
            return cost_of(u, pricing)
        prompt = self.body.get("prompt")
        if isinstance(prompt, list) and self.generated_ids:
            # no usage chunk (stopped early): price what we saw, labelled an estimate
            return cost_of(Usage(len(prompt), len(self.generated_ids)), pricing, kind="estimate")
        return None

    # -- persistence (session state / store) --
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CompletionRun:
        data = dict(d)
        err = data.pop("error", None)
        known = set(cls.__dataclass_fields__)
        run = cls(**{k: v for k, v in data.items() if k in known})
        run.error = RunError(**err) if isinstance(err, dict) else None
        return run


def _float_or_none(x: Any) -> float | None:
    if isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x):
        return float(x)
    return None


# ---- grammar verdicts and costs -----------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    ok: bool
    summary: str  # "matches the grammar" / the checker's "breaks at character N (...)..."
    position: int | None = None
    before: str = ""  # a little context around the break, for display
    after: str = ""
    checkable: bool = True  # False when the grammar itself is invalid


def verify_output(ebnf: str, text: str) -> Verdict:
    """Check a generated text against the grammar (from `root`, whole text)."""
    result = grammar_mod.match(ebnf, text)
    if result.ok:
        return Verdict(True, "matches the grammar")
    if result.position is None:
        return Verdict(False, result.message or "invalid grammar", checkable=False)
    pos = result.position
    summary = result.message or f"breaks at character {pos}"
    return Verdict(False, summary, pos, text[max(0, pos - 24):pos], text[pos:pos + 24])


def estimate(prompt_len: int, max_tokens: int | None, pricing: Pricing) -> Cost:
    """Worst case before sending: all prompt ids uncached, all max_tokens generated."""
    return worst_case(prompt_len, max(0, max_tokens or 0), pricing)
