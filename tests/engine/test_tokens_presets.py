"""Token workbench stack against the real local engine: every grammar preset constrains real
generation on SmolLM2 (output checked with grammar.match), text <-> ids round trips exactly,
Gemma's BOS is explicit, and a fork continues from exactly the ids it was given."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.engine.conftest import GEMMA, SMOL
from wafer_playground.client import WaferClient
from wafer_playground.grammar_presets import PRESETS, GrammarPreset
from wafer_playground.tokenizers import tokenizer_for
from wafer_playground.tokens import (
    CompletionRun,
    CompletionSettings,
    build_body,
    fork_prompt,
    validate,
    verify_output,
    without_constraint,
)

pytestmark = pytest.mark.engine


@pytest.fixture(scope="module")
def client(local_engine: str) -> Iterator[WaferClient]:
    with WaferClient(local_engine) as c:
        yield c


def _prompt_ids(client: WaferClient, preset: GrammarPreset) -> list[int]:
    messages = [{"role": "user", "content": f"{preset.description} Reply with exactly this and "
                                            f"nothing else: {preset.example}"}]
    rendered = client.apply_template(messages, model=SMOL)
    tok = tokenizer_for(SMOL, local=True, client=client)
    return [p.id for p in tok.encode(rendered)]


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.name)
def test_every_preset_constrains_real_generation(client: WaferClient,
                                                 preset: GrammarPreset) -> None:
    ids = _prompt_ids(client, preset)
    settings = CompletionSettings(max_tokens=160, temperature=0.0, stream=True, logprobs=2)
    assert validate(ids, settings, ebnf=preset.ebnf, vocab_size=49152, model=SMOL) == []
    body = build_body(SMOL, ids, settings, ebnf=preset.ebnf)
    run = CompletionRun("constrained", body)
    with client.completions_stream(body) as stream:
        for chunk in stream:
            run.feed(chunk)
    assert run.finish_reason == "stop", (preset.name, run.text, run.finish_reason)
    verdict = verify_output(preset.ebnf, run.text)
    assert verdict.ok, (preset.name, run.text, verdict.summary)
    assert run.generated_ids and run.usage is not None
    assert len(run.tokens()) == len(run.generated_ids)


def test_unconstrained_side_usually_breaks_the_grammar(client: WaferClient) -> None:
    """The comparison is meaningful: without the grammar SmolLM2 does not answer A|B."""
    tok = tokenizer_for(SMOL, local=True, client=client)
    ids = [p.id for p in tok.encode("The capital of France is")]
    body = build_body(SMOL, ids, CompletionSettings(max_tokens=8, temperature=0.0,
                                                    stream=False), ebnf='root ::= "A" | "B"')
    runs = {}
    for label, b in (("c", body), ("u", without_constraint(body))):
        run = CompletionRun(label, b)
        run.feed(client.completions(b).data)
        runs[label] = run
    assert runs["c"].text in ("A", "B")
    assert verify_output('root ::= "A" | "B"', runs["c"].text).ok
    assert not verify_output('root ::= "A" | "B"', runs["u"].text).ok


@pytest.mark.parametrize("model", [SMOL, GEMMA])
def test_text_ids_text_round_trip(client: WaferClient, model: str) -> None:
    tok = tokenizer_for(model, local=True, client=client)
    text = "Hello wörld 你好 🦄 <script>x</script>\n\ttabs"
    pieces = tok.encode(text)
    assert tok.decode([p.id for p in pieces]) == text
    joined = b"".join(p.piece if isinstance(p.piece, bytes) else p.piece.encode()
                      for p in pieces)
    assert joined == text.encode()


def test_gemma_bos_is_explicit(client: WaferClient) -> None:
    tok = tokenizer_for(GEMMA, local=True, client=client)
    assert tok.bos_ids() == [2]
    assert [p.id for p in tok.encode("Hi", add_special=True)][0] == 2
    assert [p.id for p in tok.encode("Hi")][0] != 2


def test_fork_continues_from_exact_ids(client: WaferClient) -> None:
    tok = tokenizer_for(SMOL, local=True, client=client)
    prompt = [p.id for p in tok.encode("The capital of France is")]
    body = build_body(SMOL, prompt, CompletionSettings(max_tokens=4, temperature=0.0,
                                                       stream=False, logprobs=3))
    run = CompletionRun("u", body)
    run.feed(client.completions(body).data)
    gen = run.tokens()
    alt = next(a for a in gen[0].alternatives if a.id is not None and a.id != gen[0].id)
    new_prompt = fork_prompt(prompt, run.generated_ids, 0, alt.id)  # type: ignore[arg-type]
    fork_body = {**body, "prompt": new_prompt}
    fork = CompletionRun("fork", fork_body)
    fork.feed(client.completions(fork_body).data)
    assert fork.prompt_token_ids == new_prompt  # the engine saw exactly these ids
    assert fork.generated_ids
