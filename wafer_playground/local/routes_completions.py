"""POST /v1/completions: token-ID prompts on llama-server's native /completion, with the
emulated parts (min_tokens, stop_token_ids, legacy logprobs, ebnf -> GBNF, json_schema)."""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from wafer_playground.local.asgi import DONE, EventStream, request_id, run_cancellable, sse
from wafer_playground.local.reqlog import RequestRecord
from wafer_playground.local.upstream import (
    NEUTRAL,
    SAMPLING_FORWARDED,
    Adapter,
    Backend,
    Ticket,
    record_usage,
    usage_of,
)
from wafer_playground.local.validation import (
    COMPLETION_FIELDS,
    ApiError,
    check_fields,
    check_prompt,
    check_token_ids,
    schema_error,
)

COMPLETION_DEFAULT_MAX_TOKENS = 16  # SGLang's default for /v1/completions


@dataclass
class Final:
    finish_reason: str
    matched_stop: int | str | None
    completion_tokens: int
    cached_tokens: int


@dataclass
class Piece:
    text: str
    ids: list[int]
    probs: list[dict[str, Any]]


async def completions(eng: Adapter, request: Request, rec: RequestRecord | None) -> Any:
    assert rec is not None
    body = await eng.read_json(request)
    check_fields(body, COMPLETION_FIELDS, "/v1/completions")
    b = eng.resolve(body.get("model"))
    rec.model = b.spec.id
    eng.check_zdr(request, b)
    if "prompt" not in body:
        raise schema_error("prompt", "prompt is required")
    prompts = check_prompt(body["prompt"], b.n_vocab)
    native = _completion_upstream(body, b)
    stop_ids = set(
        check_token_ids(body["stop_token_ids"], b.n_vocab, "stop_token_ids")
        if body.get("stop_token_ids")
        else []
    )
    min_tokens = int(body.get("min_tokens") or 0)
    if min_tokens and ("grammar" in native or "json_schema" in native):
        raise ApiError(
            400,
            "unsupported_parameter_combination",
            "min_tokens cannot be combined with ebnf/json_schema on the local engine",
            param="min_tokens",
        )
    echo = body.get("echo") is True
    n_logprobs = body.get("logprobs")
    if echo and n_logprobs is not None:
        raise ApiError(
            400,
            "unsupported_parameter_combination",
            "echo with logprobs (prompt logprobs) is not supported on the local engine",
            param="echo",
        )
    longest = max(len(p) for p in prompts)
    max_tokens = eng.resolve_max_tokens(
        b, body.get("max_tokens"), longest, COMPLETION_DEFAULT_MAX_TOKENS
    )
    if min_tokens > max_tokens:
        raise schema_error(
            "min_tokens", f"min_tokens ({min_tokens}) must not exceed max_tokens ({max_tokens})"
        )
    plan = _Plan(
        native=native,
        stop_ids=stop_ids,
        min_tokens=min_tokens,
        max_tokens=max_tokens,
        n_logprobs=n_logprobs,
        return_ids=body.get("return_token_ids") is True,
    )
    echoes = [await _detok(eng, b, p) for p in prompts] if echo else [""] * len(prompts)
    stream = body.get("stream") is True
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    rec.streaming = stream
    ticket = eng.admit(b)
    cid = "cmpl-" + secrets.token_hex(12)
    if stream:
        return EventStream(
            _completions_stream(eng, b, prompts, plan, rec, ticket, cid, include_usage, echoes),
            request_id(request),
        )
    try:
        return await run_cancellable(
            request, _completions_once(eng, b, prompts, plan, rec, cid, echoes)
        )
    finally:
        ticket.release()


def _completion_upstream(body: dict[str, Any], b: Backend) -> dict[str, Any]:
    native: dict[str, Any] = {**NEUTRAL, "cache_prompt": True}
    for k in (*SAMPLING_FORWARDED, "ignore_eos"):
        if body.get(k) is not None:
            native[k] = body[k]
    if body.get("top_k") is not None:
        native["top_k"] = max(0, body["top_k"])
    if body.get("repetition_penalty") is not None:
        native["repeat_penalty"] = body["repetition_penalty"]
    constraints = [k for k in ("ebnf", "regex", "json_schema") if body.get(k) is not None]
    if len(constraints) > 1:
        raise ApiError(
            400,
            "conflicting_constraints",
            f"Only one of ebnf, regex and json_schema may be set per request "
            f"(got {', '.join(constraints)})",
            param=constraints[1],
        )
    if body.get("regex") is not None:
        raise ApiError(
            400,
            "unsupported_parameter",
            "regex constraints are not supported by the local engine "
            "(llama.cpp has no regex sampler); express it as ebnf",
            param="regex",
        )
    if body.get("ebnf") is not None:
        native["grammar"] = _ebnf_to_gbnf(body["ebnf"])
    if body.get("json_schema") is not None:
        native["json_schema"] = _parse_json_schema(body["json_schema"])
    if body.get("logprobs") is not None:
        native["n_probs"] = max(1, int(body["logprobs"]))
    return native


async def _detok(eng: Adapter, b: Backend, ids: list[int]) -> str:
    return str((await eng.up_json(b, "/detokenize", {"tokens": ids}))["content"])


async def _generate(
    eng: Adapter, b: Backend, ids: list[int], plan: _Plan
) -> AsyncIterator[Piece | Final]:
    """Generate for one prompt: native /completion stream with token ids, plus the
    emulated parts (min_tokens as a first EOS-free phase; stop_token_ids by watching ids
    and closing the upstream stream)."""
    generated: list[int] = []
    completion_n = 0
    cached = 0
    cached_set = False
    phases: list[tuple[str, int]] = []
    if plan.min_tokens:
        phases.append(("min", plan.min_tokens))
    phases.append(("main", 0))
    native = plan.native
    for phase, n in phases:
        n_predict = n if phase == "min" else plan.max_tokens - len(generated)
        if n_predict <= 0:
            yield Final("length", None, completion_n, cached)
            return
        req = {
            **native,
            "prompt": ids + generated,
            "n_predict": n_predict,
            "stream": True,
            "return_tokens": True,
        }
        if phase == "min":
            req["ignore_eos"] = True
            req.pop("stop", None)
        final: dict[str, Any] | None = None
        stop_hit: int | None = None
        phase_n = 0
        async for ev in eng.up_stream(b, "/completion", req):
            if ev.get("stop"):
                final = ev
                break
            toks: list[int] = ev.get("tokens") or []
            text = ev.get("content", "")
            probs = ev.get("completion_probabilities") or []
            if phase == "main" and plan.stop_ids:
                for k, t in enumerate(toks):
                    if t in plan.stop_ids:
                        stop_hit, toks, probs, text = t, toks[: k + 1], probs[: k + 1], ""
                        break
            generated.extend(toks)
            phase_n += len(toks)
            yield Piece(text, toks, probs)
            if stop_hit is not None:
                break  # closes the upstream stream: llama-server stops this task
        if final is not None:
            completion_n += int(final.get("tokens_predicted", phase_n))
            if not cached_set:
                cached = int((final.get("timings") or {}).get("cache_n", 0))
        else:
            completion_n += phase_n
        cached_set = True
        if stop_hit is not None:
            yield Final("stop", stop_hit, completion_n, cached)
            return
        if phase == "min":
            continue
        stop_type = (final or {}).get("stop_type")
        if stop_type == "limit":
            yield Final("length", None, completion_n, cached)
        elif stop_type == "word":
            yield Final("stop", (final or {}).get("stopping_word"), completion_n, cached)
        else:
            yield Final("stop", generated[-1] if generated else None, completion_n, cached)
        return


def _legacy_logprobs(probs: list[dict[str, Any]], k: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "tokens": [],
        "token_logprobs": [],
        "top_logprobs": [],
        "text_offset": [],
        "token_ids": [],
        "top_logprobs_by_id": [],
    }
    for e in probs:
        alts = (e.get("top_logprobs") or [])[:k]
        out["tokens"].append(e.get("token", ""))
        out["token_logprobs"].append(e.get("logprob"))
        out["top_logprobs"].append({a.get("token", ""): a.get("logprob") for a in alts})
        out["text_offset"].append(-1)  # as SGLang: offsets are not computed
        out["token_ids"].append(e.get("id"))
        out["top_logprobs_by_id"].append(
            [
                {
                    "id": a.get("id"),
                    "token": a.get("token", ""),
                    "bytes": a.get("bytes"),
                    "logprob": a.get("logprob"),
                }
                for a in alts
            ]
        )
    return out


async def _completions_once(
    eng: Adapter,
    b: Backend,
    prompts: list[list[int]],
    plan: _Plan,
    rec: RequestRecord,
    cid: str,
    echoes: list[str],
) -> dict[str, Any]:
    choices = []
    prompt_n = completion_n = cached = 0
    assert b.slot is not None
    async with b.slot:
        for i, ids in enumerate(prompts):
            texts: list[str] = [echoes[i]]
            out_ids: list[int] = []
            probs: list[dict[str, Any]] = []
            fin: Final | None = None
            async for item in _generate(eng, b, ids, plan):
                if isinstance(item, Final):
                    fin = item
                else:
                    if rec.ttft_ms is None:
                        rec.first_token()
                    texts.append(item.text)
                    out_ids.extend(item.ids)
                    probs.extend(item.probs)
            assert fin is not None
            choice: dict[str, Any] = {
                "index": i,
                "text": "".join(texts),
                "logprobs": (
                    _legacy_logprobs(probs, int(plan.n_logprobs))
                    if plan.n_logprobs is not None
                    else None
                ),
                "finish_reason": fin.finish_reason,
                "matched_stop": fin.matched_stop,
            }
            if plan.return_ids:
                choice["token_ids"] = out_ids
                choice["prompt_token_ids"] = ids
            choices.append(choice)
            prompt_n += len(ids)
            completion_n += fin.completion_tokens
            cached += fin.cached_tokens
    usage = usage_of(prompt_n, completion_n, cached)
    record_usage(rec, usage)
    return {
        "id": cid,
        "object": "text_completion",
        "created": int(time.time()),
        "model": b.spec.id,
        "choices": choices,
        "usage": usage,
    }


async def _completions_stream(
    eng: Adapter,
    b: Backend,
    prompts: list[list[int]],
    plan: _Plan,
    rec: RequestRecord,
    ticket: Ticket,
    cid: str,
    include_usage: bool,
    echoes: list[str],
) -> AsyncGenerator[bytes, None]:
    created = int(time.time())
    head = {"id": cid, "object": "text_completion", "created": created, "model": b.spec.id}
    prompt_n = completion_n = cached = 0
    k = int(plan.n_logprobs) if plan.n_logprobs is not None else None
    async with eng.outcome(rec, ticket, "completions"):
        assert b.slot is not None
        async with b.slot:
            for i, ids in enumerate(prompts):
                first = True
                if echoes[i]:
                    yield sse(
                        {
                            **head,
                            "choices": [
                                {
                                    "index": i,
                                    "text": echoes[i],
                                    "logprobs": None,
                                    "finish_reason": None,
                                    "matched_stop": None,
                                }
                            ],
                        }
                    )
                async for item in _generate(eng, b, ids, plan):
                    choice: dict[str, Any] = {"index": i}
                    if isinstance(item, Final):
                        choice.update(
                            text="",
                            logprobs=None,
                            finish_reason=item.finish_reason,
                            matched_stop=item.matched_stop,
                        )
                        if plan.return_ids:
                            choice["token_ids"] = []
                        completion_n += item.completion_tokens
                        cached += item.cached_tokens
                    else:
                        if not item.text and not item.ids:
                            continue
                        if rec.ttft_ms is None:
                            rec.first_token()
                        choice.update(
                            text=item.text,
                            logprobs=(_legacy_logprobs(item.probs, k) if k is not None else None),
                            finish_reason=None,
                            matched_stop=None,
                        )
                        if plan.return_ids:
                            choice["token_ids"] = item.ids
                    if plan.return_ids and first:
                        choice["prompt_token_ids"] = ids
                    first = False
                    yield sse({**head, "choices": [choice]})
                prompt_n += len(ids)
        usage = usage_of(prompt_n, completion_n, cached)
        record_usage(rec, usage)
        if include_usage:
            yield sse({**head, "choices": [], "usage": usage})
        yield DONE


@dataclass
class _Plan:
    native: dict[str, Any]
    stop_ids: set[int]
    min_tokens: int
    max_tokens: int
    n_logprobs: int | None
    return_ids: bool


def _parse_json_schema(value: Any) -> dict[str, Any]:
    """SGLang takes json_schema as a string; an object is accepted too."""
    import jsonschema

    schema = value
    if isinstance(value, str):
        try:
            schema = json.loads(value)
        except ValueError as exc:
            raise ApiError(
                400,
                "invalid_json_schema",
                f"json_schema is not valid JSON: {exc}",
                param="json_schema",
            ) from None
    if not isinstance(schema, dict):
        raise ApiError(
            400, "invalid_json_schema", "json_schema must be a JSON object", param="json_schema"
        )
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise ApiError(
            400, "invalid_json_schema", f"Invalid JSON Schema: {exc.message}", param="json_schema"
        ) from None
    return schema


def _ebnf_to_gbnf(ebnf: str) -> str:
    """Check with OUR XGrammar-dialect checker; an invalid grammar never reaches llama-server
    (its error text is generic, and it accepts grammars Wafer rejects)."""
    from wafer_playground import grammar

    report = grammar.check(ebnf)
    if not report.ok:
        first = report.issues[0] if report.issues else None
        if first is None:
            detail = "EBNF parser error"
        elif "line" in first.message and "column" in first.message:
            detail = first.message
        else:
            detail = (
                f"EBNF parser error at line {first.line}, column {first.column}: {first.message}"
            )
        raise ApiError(400, "invalid_grammar", f"Invalid grammar request: {detail}", param="ebnf")
    try:
        gbnf = grammar.to_gbnf(ebnf)
    except ValueError as exc:
        raise ApiError(
            400,
            "unsupported_grammar",
            f"The grammar is valid Wafer EBNF, but the local engine (llama.cpp "
            f"GBNF) cannot express it: {exc}",
            param="ebnf",
        ) from None
    # llama.cpp expands {m,n} into copies of the rule; a huge bound would stall the model
    for m in _REPEAT.finditer(gbnf):
        bound = max(int(m[1]), int(m[2] or 0))
        if bound > MAX_REPEAT:
            raise ApiError(
                400,
                "grammar_too_large",
                f"Repetition bound {bound} exceeds the local engine's limit of {MAX_REPEAT}",
                param="ebnf",
            )
    return gbnf


_REPEAT = re.compile(r"\{\s*(\d+)\s*(?:,\s*(\d*)\s*)?\}")
MAX_REPEAT = 1000
