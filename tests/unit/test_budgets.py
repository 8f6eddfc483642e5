"""Per-person budgets (wafer_playground/budgets.py): settings, the worst-case estimate, the
refusal sentence, and BudgetedClient refusing before anything is sent, counting what the
request log (SQLite or PostgreSQL, tests/pg.py) says the person spent."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tests.fake_wafer import FakeWafer, Reply
from tests.pg import Backend
from wafer_playground.budgets import (
    Budget,
    BudgetedClient,
    BudgetExceeded,
    Limit,
    estimate,
    period_starts,
    refusal,
    team_budget,
    team_of,
    teams_from_env,
)
from wafer_playground.catalog import Pricing
from wafer_playground.store import format_ts, spend_frame

PRICING = Pricing(input_cpm=Decimal(100), output_cpm=Decimal(200))  # $1 / $2 per 1M tokens
NOW = datetime(2026, 12, 4, 15, 30, tzinfo=UTC)


def test_settings() -> None:
    assert Budget.from_env({}) is None
    b = Budget.from_env({"WAFER_BUDGET_DAILY_USD": "2.50"})
    assert b == Budget(daily_usd=Decimal("2.50"), monthly_usd=None)
    assert Budget.from_env({"WAFER_BUDGET_MONTHLY_USD": "40"}) == Budget(None, Decimal(40))
    for bad in ("ten", "-1", "NaN", "inf"):
        with pytest.raises(ValueError, match="WAFER_BUDGET_DAILY_USD"):
            Budget.from_env({"WAFER_BUDGET_DAILY_USD": bad})


def test_periods_are_utc_day_and_month() -> None:
    day, month = period_starts(datetime(2026, 12, 4, 1, 0, tzinfo=UTC))
    assert (format_ts(day), format_ts(month)) == ("2026-12-04T00:00:00.000000Z",
                                                  "2026-12-01T00:00:00.000000Z")


def test_estimate_is_the_worst_case() -> None:
    body = {"model": "m", "max_tokens": 1000, "messages": [{"role": "user", "content": "x" * 300}]}
    # prompt: the one estimate (300/4 + 4 per message + 3) = 82, erring high by 4/3 -> 110
    # tokens at $1/M; output: 1000 at $2/M
    assert estimate(body, PRICING) == Decimal("0.000110") + Decimal("0.002")
    # no max_tokens: the model's limit, else 4096
    no_max = {"model": "m", "prompt": [1, 2, 3]}  # token ids count exactly
    assert estimate(no_max, PRICING, 10) == Decimal("0.000003") + Decimal("0.00002")
    assert estimate(no_max, PRICING) == Decimal("0.000003") + Decimal("0.008192")
    assert estimate(body, None) == 0  # prices not published: nothing to add up front


def test_refusal_says_which_budget_and_how_much() -> None:
    b = Budget(daily_usd=Decimal("1"), monthly_usd=Decimal("10"))
    assert refusal(b, Decimal("0.5"), Decimal("5"), Decimal("0.5")) is None  # exactly fits
    day = refusal(b, Decimal("0.9"), Decimal("5"), Decimal("0.2"))
    assert day is not None and day.startswith("Not sent: your daily budget is $1.00")
    assert "spent $0.90" in day and "up to $0.20" in day and "00:00 UTC" in day
    month = refusal(b, Decimal("0"), Decimal("9.99"), Decimal("0.02"))
    assert month is not None and "monthly budget is $10.00" in month


def _client(spent: dict[str, Decimal], fake: FakeWafer) -> BudgetedClient:
    fake.script("POST", "/chat/completions", Reply(json={
        "id": "x", "object": "chat.completion", "model": "m",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": "hi"}}]}))
    return BudgetedClient(
        "https://pass.example/v1", "wfr_test", transport=fake.transport(),
        limits=[Limit("your", Budget(daily_usd=Decimal("0.01")),
                      lambda since: spent[format_ts(since)[:10]])],
        model_info=lambda model: (PRICING, 4096) if model == "m" else (None, None),
        now=lambda: NOW)


def test_the_client_refuses_before_sending_anything() -> None:
    fake = FakeWafer()  # tests/fake_wafer.py; its request log is what reached the server
    spent = {"2026-12-04": Decimal("0.001"), "2026-12-01": Decimal("0.001")}
    client = _client(spent, fake)
    body = {"model": "m", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}
    assert client.chat(body).data["choices"][0]["message"]["content"] == "hi"
    assert len(fake.requests) == 1
    spent["2026-12-04"] = Decimal("0.0099")  # another replica recorded a spend meanwhile
    with pytest.raises(BudgetExceeded) as exc:
        client.chat(body)
    assert exc.value.code == "budget_exceeded" and "daily budget is $0.01" in exc.value.human()
    for send in (client.chat_stream, client.completions, client.completions_stream,
                 client.messages, client.messages_stream):
        with pytest.raises(BudgetExceeded):
            send(body)
    assert len(fake.requests) == 1  # nothing refused reached the server
    # a model with unpublished prices adds nothing up front, but a used-up budget stops it
    spent["2026-12-04"] = Decimal("0.01")
    with pytest.raises(BudgetExceeded):
        client.chat({**body, "model": "unpriced"})
    spent["2026-12-04"] = Decimal("0.001")
    client.chat({**body, "model": "unpriced"})
    assert len(fake.requests) == 2


def test_spend_comes_from_the_owners_request_log(backend: Backend) -> None:
    store = backend.open()
    alice, bob = store.for_owner("user:alice@x.example"), store.for_owner("user:bob@x.example")
    for ts, cost in (("2026-11-30T23:59:59.000000Z", "5"),
                     ("2026-12-01T00:00:00.000000Z", "0.25"),
                     ("2026-12-04T09:00:00.000000Z", "0.125"),
                     ("2026-12-04T10:00:00.000000Z", None)):
        alice.log_request(model="m", base_url="https://x/v1", surface="chat", params={},
                          status="done", ts=ts, cost=None if cost is None else Decimal(cost))
    bob.log_request(model="m", base_url="https://x/v1", surface="chat", params={},
                    status="done", ts="2026-12-04T09:00:00.000000Z", cost=Decimal("7"))
    day, month = period_starts(NOW)
    assert alice.spend_since(format_ts(day)) == Decimal("0.125")
    assert alice.spend_since(format_ts(month)) == Decimal("0.375")
    assert bob.spend_since(format_ts(month)) == Decimal("7")
    assert store.for_owner("user:carol@x.example").spend_since(format_ts(month)) == 0
    # a team's spend: its members together, whichever owner's view asks
    team = ["user:alice@x.example", "user:bob@x.example", "user:nobody@x.example"]
    assert store.for_owner("user:carol@x.example").spend_of_owners(
        team, format_ts(month)) == Decimal("7.375")
    assert store.spend_of_owners([], format_ts(month)) == 0


def test_everyones_spend_for_the_admin_page(backend: Backend) -> None:
    store = backend.open()
    rows = [("user:alice@x.example", "m1", "2026-12-03T10:00:00.000000Z", "done", "1.5"),
            ("user:alice@x.example", "m1", "2026-12-04T10:00:00.000000Z", "done", "0.25"),
            ("user:alice@x.example", "m2", "2026-12-04T11:00:00.000000Z", "error", None),
            ("user:bob@x.example", "m1", "2026-12-04T12:00:00.000000Z", "done", "2"),
            ("user:bob@x.example", "m1", "2026-11-01T12:00:00.000000Z", "done", "99")]
    for owner, model, ts, status, cost in rows:
        store.for_owner(owner).log_request(model=model, base_url="https://x/v1", surface="chat",
                                           params={}, status=status, ts=ts,
                                           cost=None if cost is None else Decimal(cost))
    spend = store.spend_of_everyone("2026-12-01T00:00:00.000000Z")
    assert [(r.owner[5:10], r.model, r.day, r.requests, r.errors, r.cost_usd) for r in spend] == [
        ("alice", "m1", "2026-12-03", 1, 0, Decimal("1.5")),
        ("alice", "m1", "2026-12-04", 1, 0, Decimal("0.25")),
        ("alice", "m2", "2026-12-04", 1, 1, Decimal(0)),
        ("bob@x", "m1", "2026-12-04", 1, 0, Decimal("2"))]
    by_person = spend_frame(spend, ("person",))
    assert list(by_person.columns) == ["person", "requests", "errors", "cost_usd"]
    assert by_person.values.tolist() == [["user:bob@x.example", 1, 0, Decimal("2")],
                                         ["user:alice@x.example", 3, 1, Decimal("1.75")]]
    by_model_day = spend_frame(spend, ("model", "day"))
    assert by_model_day.values.tolist()[0] == ["m1", "2026-12-04", 2, 0, Decimal("2.25")]


def test_teams_and_their_budget() -> None:
    env = {"WAFER_TEAMS": "eng = Ann@x.example, bo@x.example ; sales=cy@x.example;",
           "WAFER_TEAM_BUDGET_MONTHLY_USD": "100"}
    teams = teams_from_env(env)
    assert teams == {"eng": frozenset({"user:ann@x.example", "user:bo@x.example"}),
                     "sales": frozenset({"user:cy@x.example"})}
    assert team_of("user:bo@x.example", teams) == "eng" and team_of("user:z@x", teams) is None
    assert team_budget(env) == Budget(None, Decimal(100)) and team_budget({}) is None
    with pytest.raises(ValueError, match="WAFER_TEAMS"):
        teams_from_env({"WAFER_TEAMS": "just-a-name"})


def test_a_team_budget_refuses_for_the_whole_team() -> None:
    fake = FakeWafer()  # tests/fake_wafer.py; its request log is what reached the server
    client = _client({"2026-12-04": Decimal(0), "2026-12-01": Decimal(0)}, fake)
    client._limits = [Limit("your team eng's", Budget(monthly_usd=Decimal(100)),
                            lambda since: Decimal("99.95"))]
    small = {"model": "m", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}
    client.chat(small)  # $0.0002 at most: fits both
    big = {**small, "max_tokens": 100_000}  # up to $0.20: the team's budget says no
    with pytest.raises(BudgetExceeded) as exc:
        client.chat(big)
    assert ("your team eng's monthly budget is $100.00 and it has spent $99.95; this request"
            " could cost up to $0.20") in str(exc.value)
    assert len(fake.requests) == 1
