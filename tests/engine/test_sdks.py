"""Today's client libraries (openai 3.x, anthropic 2.x; dev dependencies) against the real
local engine: model retrieval, request ids, typed errors for the limits it enforces."""

from __future__ import annotations

import anthropic
import openai
import pytest

from tests.engine.conftest import SERVER_ID, SMOL
from wafer_playground.client import root_url

pytestmark = pytest.mark.engine


@pytest.fixture(scope="module")
def oai(local_engine: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=local_engine, api_key="unused", max_retries=0)


@pytest.fixture(scope="module")
def anth(local_engine: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=root_url(local_engine), auth_token="unused",
                               max_retries=0)


def test_openai_models_retrieve(oai: openai.OpenAI) -> None:
    m = oai.models.retrieve(SMOL)
    assert m.id == SMOL and m.object == "model" and m.owned_by == "wafer"
    assert m.model_extra and m.model_extra["wafer"]["max_output_tokens"] > 0
    with pytest.raises(openai.NotFoundError) as exc:
        oai.models.retrieve("no-such-model")
    assert exc.value.body["code"] == "model_not_found"  # type: ignore[index]


def test_anthropic_request_id(anth: anthropic.Anthropic) -> None:
    msg = anth.messages.create(model=SMOL, max_tokens=4,
                               messages=[{"role": "user", "content": "Say hi"}],
                               extra_body={"temperature": 0})
    assert msg._request_id and SERVER_ID.match(msg._request_id)
    with anth.messages.stream(model=SMOL, max_tokens=4,
                              messages=[{"role": "user", "content": "Say hi"}]) as stream:
        text = stream.get_final_text()
        assert stream.request_id and SERVER_ID.match(stream.request_id)
    assert isinstance(text, str)
    with pytest.raises(anthropic.BadRequestError) as exc:
        anth.messages.create(model=SMOL, max_tokens=5000,
                             messages=[{"role": "user", "content": "hi"}])
    assert exc.value.request_id and SERVER_ID.match(exc.value.request_id)


def test_limits_are_refused_not_cut(oai: openai.OpenAI) -> None:
    card = oai.models.retrieve(SMOL).model_extra or {}
    cap, ctx = card["wafer"]["max_output_tokens"], card["max_model_len"]
    hi = [{"role": "user", "content": "hi"}]
    with pytest.raises(openai.BadRequestError) as exc:
        oai.chat.completions.create(model=SMOL, messages=hi, max_tokens=cap + 1)  # type: ignore[arg-type]
    assert exc.value.code == "max_tokens_exceeded" and exc.value.param == "max_tokens"
    # prompt + max_tokens past the context: SGLang's refusal, with the sum in the message
    long = [{"role": "user", "content": "hello " * (ctx - cap // 2)}]
    with pytest.raises(openai.BadRequestError) as exc:
        oai.chat.completions.create(model=SMOL, messages=long, max_tokens=cap)  # type: ignore[arg-type]
    assert exc.value.code == "context_length_exceeded"
    assert str(ctx) in exc.value.message
