"""Spend guard: the worst-case bound against a cap, presentation caps, and the advice given."""

from __future__ import annotations

from decimal import Decimal

import pytest

from wafer_playground.catalog import Pricing
from wafer_playground.costs import worst_case
from wafer_playground.guard import (
    PRESENTATION_CAPS,
    Caps,
    check,
    check_caps,
    check_request,
    effective_cap,
    high_estimate,
    max_tokens_within,
)
from wafer_playground.params import estimate_prompt_tokens

# GLM-5.1-like: $1.20/M in, $3.50/M out (cents per million in the API's unit)
GLM = Pricing(input_cpm=Decimal(120), output_cpm=Decimal(350), cache_read_cpm=Decimal(30))
FREE = Pricing(input_cpm=Decimal(0), output_cpm=Decimal(0), cache_read_cpm=Decimal(0))
UNPUBLISHED = Pricing()


def test_no_cap_never_blocks_even_unpriced() -> None:
    assert check(10_000, 100_000, UNPUBLISHED, None) is None
    assert check(10_000, 100_000, GLM, None) is None


def test_under_and_exactly_at_cap_pass() -> None:
    # 1000 in * 1.2e-6 + 1000 out * 3.5e-6 = 0.0012 + 0.0035 = 0.0047
    assert worst_case(1000, 1000, GLM).total == Decimal("0.0047")
    assert check(1000, 1000, GLM, Decimal("0.0047")) is None
    assert check(1000, 1000, GLM, Decimal("0.01")) is None


def test_over_cap_blocks_with_numbers_and_a_fitting_max_tokens() -> None:
    msg = check(1000, 1000, GLM, Decimal("0.004"), model="GLM-5.1")
    assert msg is not None
    assert "Blocked before sending" in msg
    assert "GLM-5.1" in msg
    assert "$0.0047" in msg and "$0.004" in msg
    assert "1,000 prompt tokens at $1.20/M" in msg and "$3.50/M" in msg
    # (0.004 - 0.0012) / 3.5e-6 = 800 exactly
    assert "Lower max_tokens to 800" in msg
    assert check(1000, 800, GLM, Decimal("0.004")) is None
    assert check(1000, 801, GLM, Decimal("0.004")) is not None


def test_max_tokens_within_is_the_exact_boundary() -> None:
    cap = Decimal("0.0123457")
    n = max_tokens_within(321, GLM, cap)
    assert n is not None and n > 0
    assert worst_case(321, n, GLM).total <= cap  # type: ignore[operator]
    assert worst_case(321, n + 1, GLM).total > cap  # type: ignore[operator]


def test_prompt_alone_over_cap() -> None:
    msg = check(100_000, 10, GLM, Decimal("0.01"))
    assert msg is not None and "prompt alone exceeds the cap" in msg
    assert max_tokens_within(100_000, GLM, Decimal("0.01")) is None


def test_unpublished_price_with_a_cap_blocks_and_says_why() -> None:
    msg = check(10, 10, UNPUBLISHED, Decimal("1"))
    assert msg is not None and "not published" in msg and "Remove the cap" in msg
    half = Pricing(input_cpm=Decimal(100), output_cpm=None)
    msg = check(10, 10, half, Decimal("1"))
    assert msg is not None and "output price" in msg


def test_free_models_fit_a_zero_cap() -> None:
    assert check(5000, 4096, FREE, Decimal(0)) is None
    assert max_tokens_within(5000, FREE, Decimal(0)) == -1


def test_bad_inputs_are_messages_not_crashes() -> None:
    assert "zero or more" in (check(1, 1, GLM, Decimal("-1")) or "")
    assert check(1, 0, GLM, Decimal("1")) is not None


def test_presentation_caps() -> None:
    assert check_caps(256, PRESENTATION_CAPS) is None
    msg = check_caps(257, PRESENTATION_CAPS)
    assert msg is not None and "257" in msg and "256" in msg
    assert check_caps(10_000, None) is None
    assert check_caps(10_000, Caps()) is None


@pytest.mark.parametrize(("user", "caps", "want"), [
    (None, None, None),
    (Decimal("0.5"), None, Decimal("0.5")),
    (None, Caps(max_cost_usd=Decimal("0.02")), Decimal("0.02")),
    (Decimal("0.01"), Caps(max_cost_usd=Decimal("0.02")), Decimal("0.01")),
    (Decimal("0.5"), Caps(max_cost_usd=Decimal("0.02")), Decimal("0.02")),
])
def test_effective_cap_is_the_tighter(user: Decimal | None, caps: Caps | None,
                                      want: Decimal | None) -> None:
    assert effective_cap(user, caps) == want


def test_check_request_applies_the_hard_cost_cap_even_without_a_user_cap() -> None:
    # worst case 0.0012 + 256 * 3.5e-6 = 0.002096 < 0.02: fine; a huge prompt is not
    assert check_request(1000, 256, GLM, caps=PRESENTATION_CAPS) is None
    msg = check_request(20_000, 256, GLM, caps=PRESENTATION_CAPS)
    assert msg is not None and "$0.02" in msg
    assert "presentation limit" in (check_request(10, 1000, FREE, caps=PRESENTATION_CAPS) or "")


def test_the_guard_errs_high_on_the_one_estimate() -> None:
    text = "The quick brown fox jumps over the lazy dog. " * 20  # ~200 real tokens
    body = {"messages": [{"role": "user", "content": text}]}
    assert high_estimate(body) > estimate_prompt_tokens(body) >= len(text) // 4
    two = {"messages": [{"role": "system", "content": "sys"},
                        {"role": "user", "content": "user"}]}
    one = {"messages": [{"role": "user", "content": "sysuser"}]}
    assert high_estimate(two) > high_estimate(one)
    assert high_estimate({"prompt": [1, 2, 3]}) == 3  # token ids: exact, no margin
