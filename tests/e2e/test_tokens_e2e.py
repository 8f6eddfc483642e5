"""Token & grammar page in headless Chromium against the real local engine.

tokenize -> send with the A|B grammar (constrained vs unconstrained) -> output is A or B ->
fork from an alternative -> an invalid grammar shows line and column; chips stay inert HTML.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import ROOT, select_option, wait_for_app

pytestmark = [pytest.mark.e2e, pytest.mark.engine]

SCREENS = ROOT / ".pytest_cache" / "screens"
SMOL_IDS = "504, 3575, 282, 4649, 314"  # "The capital of France is" (SmolLM2 ids)


def _shot(page: Page, name: str, focus: object | None = None) -> None:
    """Streamlit scrolls an inner container, so full_page alone misses what is below."""
    if focus is not None:
        focus.first.evaluate(  # type: ignore[attr-defined]
            "e => e.scrollIntoView({block: 'start'})")
        page.wait_for_timeout(300)
    SCREENS.mkdir(parents=True, exist_ok=True)
    path = SCREENS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    main = Path("/work/main/.pytest_cache/screens")
    if main.resolve() != SCREENS.resolve() and main.parent.exists():
        main.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, main / path.name)


def _wait(page: Page) -> None:
    # generous: the 2-core CI box is shared with engine builds and other suites
    wait_for_app(page, timeout=180_000)


def _key(page: Page, key: str, what: str = "") -> object:
    return page.locator(f".st-key-{key} {what}".strip())


def _open_tokens_page(page: Page, factory, local_engine: str,  # type: ignore[no-untyped-def]
                      db: Path, height: int) -> None:
    """A fresh app on the local engine, opened at the root, then the Token page."""
    expect.set_options(timeout=60_000)
    server = factory(env={"WAFER_ENDPOINT": "local", "WAFER_LOCAL_URL": local_engine,
                          "WAFER_PLAYGROUND_DB": str(db)})
    page.set_viewport_size({"width": 1500, "height": height})
    page.goto(server.url + "/")
    _wait(page)
    # the first script run can start after the page reports idle: wait for the link itself
    page.get_by_test_id("stPageLink-NavLink").filter(has_text="Token & grammar").click(
        timeout=180_000)
    _wait(page)


def test_tokens_flow(page: Page, streamlit_server_factory, local_engine: str,
                     tmp_path: Path) -> None:
    _open_tokens_page(page, streamlit_server_factory, local_engine, tmp_path / "e2e.db", 2600)
    expect(page.get_by_role("heading", name="Token & grammar workbench")).to_be_visible(
        timeout=180_000)
    _wait(page)

    # text -> ids with the engine's own tokenizer, and back again exactly
    page.get_by_role("button", name="Use these ids as the prompt ↓").first.click()
    _wait(page)
    expect(_key(page, "tok_ids", "textarea")).to_have_value(SMOL_IDS)
    expect(page.get_by_text("Round trip exact")).to_be_visible()
    expect(page.get_by_text("produced by local engine /v1/tokenize")).to_be_visible()

    # the A|B preset, a short run, both sides
    select_option(page, "tok_preset", "Choice A | B")
    expect(_key(page, "tok_grammar", "textarea")).to_have_value('root ::= "A" | "B"')
    expect(page.get_by_text("Grammar OK")).to_be_visible()
    page.get_by_text("Request fields (sampling, stops, extras)").click()
    max_tokens = _key(page, "tok_max_tokens", "input")
    max_tokens.fill("10")
    max_tokens.press("Enter")
    _wait(page)
    page.get_by_role("button", name="Send").click()
    _wait(page)
    expect(page.get_by_text("✓ Output matches the grammar")).to_be_visible(timeout=180_000)
    codes = page.get_by_test_id("stCode").all_inner_texts()
    assert any(c.strip() in ("A", "B") for c in codes), codes
    expect(page.get_by_text("✗ Output does not match the grammar")).to_be_visible()
    # hovering a generated token names its probability and top alternatives (with ids)
    hover = page.locator(".wtk .c[title*='top alternatives']").first
    assert re.search(r"\(id \d+\) ", hover.get_attribute("title") or "")
    _shot(page, "tokens_compare", page.get_by_role("heading", name="④ Results"))

    # fork the unconstrained run at its least likely token, onto an alternative
    _key(page, "tok_fork_go_unconstrained", "button").click()
    _wait(page)
    expect(page.get_by_text(re.compile(r"Fork of the unconstrained run at token #\d+"))) \
        .to_be_visible(timeout=180_000)
    forked = _key(page, "tok_ids", "textarea").input_value()
    assert forked.startswith(SMOL_IDS + ", ") and len(forked) > len(SMOL_IDS)
    _shot(page, "tokens_fork", page.get_by_text(re.compile(r"Fork of the unconstrained run")))

    # an invalid grammar: line and column, and nothing is sent
    grammar = _key(page, "tok_grammar", "textarea")
    grammar.fill('root ::= "A" |\n  "B" | ')
    grammar.press("Control+Enter")
    _wait(page)
    expect(page.get_by_text(re.compile(r"Line \d+, column \d+:")).first).to_be_visible()
    page.get_by_role("button", name="Send").click()
    _wait(page)
    expect(page.get_by_text("Not sent — fix these first")).to_be_visible()
    expect(page.get_by_text(re.compile(r"the grammar does not parse: line \d+, column \d+"))) \
        .to_be_visible()
    _shot(page, "tokens_grammar_error", page.get_by_role("heading", name="② Grammar"))

    # hostile text renders as inert chips
    text = _key(page, "tok_text", "textarea")
    text.fill('<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>')
    text.press("Control+Enter")
    _wait(page)
    expect(page.locator(".wtk .p").filter(has_text="script").first).to_be_visible()
    assert page.evaluate("window.__pwned") is None
    assert page.locator(".wtk img").count() == 0
    _shot(page, "tokens_chips", page.get_by_role("heading", name="① Prompt"))


def test_stop_keeps_the_partial_run(page: Page, streamlit_server_factory, local_engine: str,
                                    tmp_path: Path) -> None:
    _open_tokens_page(page, streamlit_server_factory, local_engine, tmp_path / "e2e.db", 2200)
    page.get_by_role("button", name="Use these ids as the prompt ↓").first.click()
    _wait(page)
    expect(_key(page, "tok_ids", "textarea")).to_have_value(SMOL_IDS)
    page.get_by_text("Request fields (sampling, stops, extras)").click()
    max_tokens = _key(page, "tok_max_tokens", "input")
    max_tokens.fill("1000")
    max_tokens.press("Enter")
    _wait(page)
    # min_tokens keeps the model from ending early (EOS), so on a fast machine the run is
    # still going when Stop is clicked.
    min_tokens = _key(page, "tok_min_tokens", "input")
    min_tokens.fill("1000")
    min_tokens.press("Enter")
    _wait(page)
    page.get_by_role("button", name="Send").click()
    stop = page.get_by_role("button", name="Stop")
    expect(stop).to_be_visible(timeout=120_000)
    page.wait_for_timeout(500)
    stop.click()
    _wait(page)
    expect(page.get_by_text("Stopped before the end")).to_be_visible()
    _shot(page, "tokens_stopped", page.get_by_role("heading", name="④ Results"))
