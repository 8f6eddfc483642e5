"""Issue 16, seen and not assumed: every flow in Chromium at a laptop, a projector and a phone.

A fake Wafer server (tests/fake_wafer.py) serves the demo catalog of
tests/fixtures/demo_catalog.py: everyday prices, one $999.99/M outlier and one model without
a price; its chat streams slowly enough to be caught mid-stream. Each test saves its
screenshots under $WAFER_SHOTS (default .pytest_cache/shots16) and asserts what a person
would check on them: the price columns inside the window, the headline, the navigation while
presenting, no empty labels, no traceback.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect

from components import page_menu
from components.catalog.page import PRICE_W
from tests.conftest import ROOT, wait_for_app
from tests.fake_wafer import FakeWafer, Reply, answer_stream
from tests.fixtures.demo_catalog import CARDS

pytestmark = pytest.mark.e2e
SHOTS = Path(os.environ.get("WAFER_SHOTS", ROOT / ".pytest_cache" / "shots16"))
SLOW = 90_000
VIEWPORTS = {"1440": (1440, 900), "1920": (1920, 1080), "phone": (390, 844)}
# the selection marker, Model (150 px), Model id (170 px) and the four price columns
PRICE_COLUMNS_PX = 33 + 150 + 170 + 4 * PRICE_W
PAGES = {"catalog": "Model catalog", "chat": "Chat", "tokens": "Token & grammar",
         "compare": "Compare", "costs": "Costs", "history": "History"}
ANSWER = ("Paris is the capital of France. It sits on the Seine, and the Louvre and the "
          "Eiffel Tower are among its landmarks.")
WORDS = [w + " " for w in ANSWER.split()] * 3


@pytest.fixture
def fake() -> Iterator[FakeWafer]:
    server = FakeWafer(CARDS).start()
    # every chat streams at 12 words a second: slow enough to be seen mid-stream
    server.script("POST", "/chat/completions", Reply(sse=answer_stream(WORDS), tokens_per_s=12))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def app_url(fake: FakeWafer, streamlit_server_factory, tmp_path: Path) -> str:  # type: ignore[no-untyped-def]
    server = streamlit_server_factory(env={
        "WAFER_ENDPOINT": "wafer", "WAFER_BASE_URL": fake.url, "WAFER_API_KEY": "test-key",
        "WAFER_PLAYGROUND_DB": str(tmp_path / "demo.db")})
    return str(server.url)


def _open(page: Page, url: str, size: tuple[int, int]) -> None:
    page.set_viewport_size({"width": size[0], "height": size[1]})
    page.set_default_timeout(SLOW)
    page.goto(url)
    wait_for_app(page, SLOW)
    page.get_by_test_id("stMainBlockContainer").wait_for()
    wait_for_app(page, SLOW)


def _shot(page: Page, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.wait_for_timeout(600)  # let plotly and the grid finish drawing
    page.screenshot(path=str(path))
    return path


def _arrive(page: Page, url: str, vp: str, selector: str, shot: str) -> Locator:
    """Open `url` at viewport `vp`, wait for `selector` and the idle app, take the shot."""
    _open(page, url, VIEWPORTS[vp])
    target = page.locator(selector).first
    target.wait_for()
    wait_for_app(page, SLOW)
    _shot(page, shot)
    return target


def _healthy(page: Page) -> None:
    """No traceback, no key, no empty widget label on screen."""
    assert page.get_by_test_id("stException").count() == 0
    text = page.get_by_test_id("stMainBlockContainer").inner_text()
    assert "Traceback" not in text and "test-key" not in text
    labels = page.locator("[data-testid='stWidgetLabel']:visible")
    empty = [i for i in range(labels.count()) if not labels.nth(i).inner_text().strip()
             and labels.nth(i).get_attribute("aria-hidden") != "true"
             and labels.nth(i).bounding_box() and labels.nth(i).bounding_box()["height"] > 4]
    assert not empty, f"{len(empty)} empty label(s)"


def _in_view(page: Page, selector: str) -> dict[str, float]:
    box = page.locator(selector).first.bounding_box()
    assert box is not None, selector
    size = page.viewport_size
    assert size is not None
    assert box["x"] >= 0 and box["y"] >= 0, (selector, box)
    assert box["y"] < size["height"], (selector, box)  # it starts on the first screen
    return box


def _sidebar_closed_only(page: Page) -> None:
    box = page.get_by_test_id("stSidebar").bounding_box()
    assert box is None or box["x"] + box["width"] <= 1 or box["width"] <= 1, box


def _sidebar_closed(page: Page) -> None:
    """Nothing covers the page: the sidebar is closed (off-screen or not drawn)."""
    _sidebar_closed_only(page)
    _in_view(page, "h1, h2")


@pytest.mark.parametrize("vp", list(VIEWPORTS))
def test_catalog_first_screen_is_price_first(page: Page, app_url: str, vp: str) -> None:
    _open(page, f"{app_url}/catalog", VIEWPORTS[vp])  # a real URL, not "Page not found"
    page.get_by_text("6 of 6 models").wait_for()
    grid = page.get_by_test_id("stDataFrame").first
    grid.wait_for()
    wait_for_app(page, SLOW)
    _shot(page, f"catalog_first_screen_{vp}")
    assert page.get_by_text("Page not found").count() == 0
    _healthy(page)
    box = _in_view(page, "[data-testid='stDataFrame']")
    width = VIEWPORTS[vp][0]
    if vp != "phone":
        # name, id and the four prices fit inside the window without scrolling sideways
        assert box["x"] + PRICE_COLUMNS_PX <= width and box["width"] >= PRICE_COLUMNS_PX
        # the table starts on the first screen, above its middle
        assert box["y"] < VIEWPORTS[vp][1] / 2
    else:
        _sidebar_closed(page)  # a phone opens on the content
    # the log-scale chart: the $999.99 outlier and the cheap models are all labelled
    chart = page.get_by_test_id("stPlotlyChart").first
    chart.scroll_into_view_if_needed()
    page.wait_for_function("() => document.querySelector('.js-plotly-plot .textpoint')")
    page.wait_for_timeout(800)
    chart.screenshot(path=str(SHOTS / f"catalog_chart_{vp}.png"))
    labels = page.evaluate("() => [...document.querySelectorAll('.js-plotly-plot .textpoint')]"
                           ".map(t => t.textContent)")
    assert "Premium Outlier" in labels and "Fake Tiny" in labels
    assert "Mystery Unpriced" not in labels  # no price: left out, and the caption says so
    assert page.get_by_text("model(s) not plotted").count() == 1
    title = page.evaluate("() => document.querySelector('.js-plotly-plot .gtitle').textContent")
    assert "log scale" in title


def test_workload_change_keeps_the_selection(page: Page, app_url: str) -> None:
    _open(page, f"{app_url}/catalog", VIEWPORTS["1440"])
    grid = page.get_by_test_id("stDataFrame").first
    grid.wait_for()
    wait_for_app(page, SLOW)
    box = grid.bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + 18, box["y"] + 35 + 17 + 35 * 3)  # the fourth row: Fake Tiny
    dialog = page.locator(".st-key-cat_detail_dlg")
    dialog.wait_for()
    wait_for_app(page, SLOW)
    expect(dialog).to_contain_text("fake-tiny", timeout=30_000)  # the id, copyable
    _shot(page, "catalog_detail_dialog_1440")
    page.keyboard.press("Escape")
    dialog.wait_for(state="detached")
    workload = page.locator(".st-key-cat_controls summary").filter(has_text="Workload ·")
    workload.click()  # open its panel
    field = page.locator(".st-key-cat_wl_rpd input")
    field.fill("5000")
    field.press("Enter")
    wait_for_app(page, SLOW)
    page.wait_for_url(re.compile(r"wl_rpd=5000"))
    # same grid: the row stays selected and its detail stays open
    assert "model=fake-tiny" in page.url
    assert "Fake Tiny" in page.locator(".st-key-cat_detail").inner_text()
    # the other workload fields kept their values (2,000 in, 500 out) through the dialog
    assert "Workload · 2,000 in · 500 out · 5,000/day" in workload.inner_text()
    assert "wl_in=" not in page.url and "wl_out=" not in page.url
    _shot(page, "catalog_after_workload_change_1440")


@pytest.mark.parametrize("vp", list(VIEWPORTS))
def test_chat_opens_at_the_top_and_streams(page: Page, app_url: str, vp: str) -> None:
    box = _arrive(page, f"{app_url}/chat", vp, "[data-testid='stChatInputTextArea']",
                  f"chat_open_{vp}")
    if vp == "phone":  # opens on the conversation, not on the parameter panel
        _in_view(page, ".st-key-chat_welcome")
        _sidebar_closed_only(page)
    else:
        _in_view(page, "[data-testid=stMainBlockContainer] h2")  # not 460 px up
        _in_view(page, ".st-key-chat_model_pick")
    _healthy(page)
    box.fill("What is the capital of France?")
    box.press("Enter")
    page.get_by_text("streaming…").first.wait_for()
    page.wait_for_timeout(1500)
    _shot(page, f"chat_mid_stream_{vp}")
    assert "Paris" in page.get_by_test_id("stMainBlockContainer").inner_text()
    wait_for_app(page, SLOW)
    _shot(page, f"chat_done_{vp}")
    money = page.get_by_test_id("stMetricValue").first.inner_text()
    assert re.fullmatch(r"\$\d[\d,]*\.\d+", money.strip()), money  # whole, never "$0.000…"


@pytest.mark.parametrize("vp", ["1440", "phone"])
def test_the_page_menu_closes_the_sidebar_on_a_phone(page: Page, app_url: str, vp: str) -> None:
    """The menu is page links (components/page_menu.py); like Streamlit's own menu, a tap on
    one closes the sidebar on a phone, where it covers the page, and leaves it open on a
    laptop."""
    _open(page, f"{app_url}/chat", VIEWPORTS[vp])
    if vp == "phone":
        page.get_by_test_id("stExpandSidebarButton").click()
    menu = page.locator(f".st-key-{page_menu.KEY}")
    expect(menu.get_by_text("History", exact=True)).to_be_visible()
    menu.get_by_text("History", exact=True).click()
    expect(page.get_by_role("heading", name="History").first).to_be_visible(timeout=SLOW)
    wait_for_app(page, SLOW)
    if vp == "phone":
        expect(page.get_by_test_id("stExpandSidebarButton")).to_be_visible()
        _sidebar_closed(page)
    else:
        expect(menu).to_be_in_viewport()
    _shot(page, f"menu_after_a_tap_{vp}")
    _healthy(page)


@pytest.mark.parametrize("vp", ["1440", "1920"])
def test_blind_compare_before_and_after_the_vote(page: Page, app_url: str, vp: str) -> None:
    _open(page, f"{app_url}/compare", VIEWPORTS[vp])
    page.locator(".st-key-cmp_n").get_by_text("3", exact=True).click()
    wait_for_app(page, SLOW)
    page.locator(".st-key-cmp_blind").get_by_text("Blind").click()
    wait_for_app(page, SLOW)
    picker = page.locator(".st-key-cmp_model_0").get_by_role("combobox").input_value()
    assert "$" in picker and " in / " in picker  # display name and prices, not a raw id
    prompt = page.locator(".st-key-cmp_prompt textarea")
    prompt.fill("What is the capital of France?")
    prompt.press("Control+Enter")
    wait_for_app(page, SLOW)
    page.locator(".st-key-cmp_run button").click()
    page.get_by_text("Which answer is best?").wait_for()
    wait_for_app(page, SLOW)
    page.locator(".st-key-pane_0").scroll_into_view_if_needed()
    _shot(page, f"compare_blind_before_vote_{vp}")
    panes = [page.locator(f".st-key-pane_{i}").inner_text() for i in range(3)]
    for text in panes:
        assert "fake-" not in text.lower()  # no model id
        assert "tokens" not in text and "$" not in text  # no tokens, no cost before the vote
    # each answer reads from its first line
    for i in range(3):
        assert page.locator(f".st-key-pane_{i}_final").inner_text().startswith("Paris is")
    summary = page.locator("[data-testid='stTable']").first.inner_text()
    assert "Cost" not in summary and "Output tokens" not in summary
    first_line = page.locator(".st-key-pane_0_final").first.get_by_text("Paris is the capital")
    assert first_line.first.is_visible()
    page.get_by_role("button", name="Model B is best").click()
    page.get_by_text("You picked").wait_for()
    wait_for_app(page, SLOW)
    page.locator(".st-key-pane_0").scroll_into_view_if_needed()
    _shot(page, f"compare_blind_after_vote_{vp}")
    revealed = page.locator(".st-key-pane_1").inner_text()
    assert "fake-" in revealed and "$" in revealed and "tokens" in revealed


@pytest.mark.parametrize("vp", list(VIEWPORTS))
def test_costs_headline_names_a_served_model(page: Page, app_url: str, vp: str) -> None:
    head = _arrive(page, f"{app_url}/costs?budget=100", vp, ".st-key-costs_headline",
                   f"costs_headline_{vp}")
    _in_view(page, ".st-key-costs_headline")
    _healthy(page)
    text = head.inner_text()
    served = {c["id"] for c in CARDS}
    named = re.search(r"Cheapest served here: (\S+)", text)
    assert named and named.group(1) in served, text
    assert re.search(r"\$100\.00 / month buys [\d,]+ requests/day on fake-tiny", text), text
    # snapshot-only models only with the toggle, and never in the headline
    page.get_by_text(re.compile(r"Include \d+ snapshot-only models")).click()
    wait_for_app(page, SLOW)
    assert re.search(r"Cheapest served here: fake-tiny", head.inner_text())


@pytest.mark.parametrize("vp", ["1440", "1920"])
def test_presentation_mode_on_every_page(page: Page, app_url: str, vp: str) -> None:
    size = VIEWPORTS[vp]
    for path in PAGES:
        _open(page, f"{app_url}/{path}?present=1", size)
        page.locator(".st-key-presentation_bar").wait_for()
        wait_for_app(page, SLOW)
        _shot(page, f"present_{path}_{vp}")
        _healthy(page)
        # the pages are one click away at the top, with the sidebar gone
        nav = page.locator("header").get_by_role("link")
        names = [n.split("\n")[-1].strip() for n in nav.all_inner_texts()]  # after the icon
        assert all(t in names for t in PAGES.values()), names
        assert not page.get_by_test_id("stSidebar").is_visible()
        assert page.locator("input[type='password']:visible").count() == 0
        if path == "chat":
            # parameters are one line, not seven sliders
            assert page.get_by_text(re.compile(r"^Parameters · ")).first.is_visible()
            assert page.locator("[data-testid='stSlider']:visible").count() == 0
        if path == "costs":
            # content in a code block stays: the share link
            assert page.get_by_test_id("stCode").first.count() == 1
        if path == "history":
            assert "titles only" in page.get_by_test_id("stMainBlockContainer").inner_text()
        if path == "compare":
            # demo cards say whether they can run here; token-ID cards need a tokenizer
            assert page.get_by_text("Not ready here").count() >= 1
            assert page.get_by_text(re.compile(r"Ready · \d models")).count() == 1


@pytest.mark.parametrize("vp", ["1920", "1440"])
def test_one_click_scripted_demo(page: Page, app_url: str, vp: str) -> None:
    """From any page: catalog -> a chat that streams -> three models -> costs, at 1920 (the
    room) and 1440 (the presenter's laptop)."""
    _open(page, f"{app_url}/history", VIEWPORTS[vp])
    page.get_by_role("button", name="Start the demo").click()
    page.locator(".st-key-demo_bar").wait_for()
    page.get_by_role("heading", name="Model catalog").wait_for()
    wait_for_app(page, SLOW)
    _shot(page, f"demo_1_catalog_{vp}")
    assert "Demo 1 of 4" in page.locator(".st-key-demo_bar").inner_text()
    assert page.get_by_test_id("stTable").count() == 1  # a room-sized table
    page.get_by_role("button", name="Next: A chat that streams").click()
    page.wait_for_url(re.compile(r"/chat"))
    page.get_by_text("streaming…").first.wait_for()
    page.wait_for_timeout(1500)
    _shot(page, f"demo_2_chat_streaming_{vp}")
    wait_for_app(page, SLOW)
    assert "Paris" in page.get_by_test_id("stMainBlockContainer").inner_text()
    page.get_by_role("button", name="Next: Three models on price and speed").click()
    page.wait_for_url(re.compile(r"/compare"))
    page.locator(".st-key-pane_2").wait_for()  # three panes
    page.wait_for_timeout(1500)
    _shot(page, f"demo_3_compare_streaming_{vp}")
    page.get_by_text("Fastest first token:").wait_for()
    wait_for_app(page, SLOW)
    page.get_by_text("Fastest first token:").scroll_into_view_if_needed()
    _shot(page, f"demo_3_compare_done_{vp}")
    assert page.locator(".st-key-pane_3").count() == 0
    page.get_by_role("button", name="Next: What it costs a month").click()
    page.wait_for_url(re.compile(r"/costs"))
    page.locator(".st-key-costs_headline").wait_for()
    wait_for_app(page, SLOW)
    _shot(page, f"demo_4_costs_{vp}")
    _in_view(page, ".st-key-costs_headline")
    # the step presets a budget, so its answer is the headline, on the first screen
    head = page.locator(".st-key-costs_headline").inner_text()
    assert re.search(r"\$100\.00 / month buys [\d,]+ requests/day on fake-tiny", head), head
    _in_view(page, ".st-key-costs_headline h3:has-text('requests/day')")
    page.get_by_role("button", name="Finish").click()
    # waited for, not read once: the click's rerun may not have started when the app
    # still looks idle (a clean-clone run read the bar before it went)
    expect(page.locator(".st-key-demo_bar")).to_have_count(0, timeout=SLOW)


def test_scripted_demo_on_the_local_engine(page: Page, streamlit_server_factory,  # type: ignore[no-untyped-def]
                                           local_engine: str, tmp_path: Path) -> None:
    """The same flow offline: the local engine's free models, cards checked, a real stream."""
    server = streamlit_server_factory(env={"WAFER_ENDPOINT": "local",
                                           "WAFER_LOCAL_URL": local_engine,
                                           "WAFER_PLAYGROUND_DB": str(tmp_path / "l.db")})
    _open(page, f"{server.url}/compare?present=1", VIEWPORTS["1920"])
    page.get_by_text("Which model?").wait_for()
    wait_for_app(page, SLOW)
    _shot(page, "local_present_compare_cards_1920")
    _healthy(page)
    # every card is either ready with models that fit, or says why not: none fails on click
    for card in ("cheapest", "json", "xray"):
        text = page.locator(f".st-key-scn_{card}").inner_text()
        assert "Ready ·" in text or "Not ready here" in text, text
    page.get_by_role("button", name="Start the demo").click()
    page.locator(".st-key-demo_bar").wait_for()
    page.get_by_role("heading", name="Model catalog").wait_for()
    wait_for_app(page, SLOW)
    _shot(page, "local_demo_1_catalog_1920")
    page.get_by_role("button", name="Next: A chat that streams").click()
    page.wait_for_url(re.compile(r"/chat"))
    page.get_by_test_id("stChatMessage").nth(1).wait_for()
    wait_for_app(page, SLOW)
    _shot(page, "local_demo_2_chat_1920")
    answer = page.get_by_test_id("stChatMessage").nth(1).inner_text()
    assert len(answer.strip()) > 20 and "Request failed" not in answer
    page.get_by_role("button", name="Next: Three models on price and speed").click()
    page.wait_for_url(re.compile(r"/compare"))
    page.locator(".st-key-pane_1").wait_for()
    page.get_by_text("Fastest first token:").wait_for()
    wait_for_app(page, SLOW)
    page.get_by_text("Fastest first token:").scroll_into_view_if_needed()
    _shot(page, "local_demo_3_compare_1920")
    page.get_by_role("button", name="Next: What it costs a month").click()
    page.locator(".st-key-costs_headline").wait_for()
    wait_for_app(page, SLOW)
    _shot(page, "local_demo_4_costs_1920")
    _healthy(page)
    # the local models are free: the preset budget says it is not the limit
    head = page.locator(".st-key-costs_headline").inner_text()
    assert "$100.00 / month" in head and "no per-token charge" in head, head


def test_history_titles_votes_and_presenting(page: Page, app_url: str) -> None:
    """History: a title that is the gist, a blind Compare vote listed, no 'None'; while
    presenting only titles."""
    _open(page, f"{app_url}/chat", VIEWPORTS["1440"])
    box = page.get_by_test_id("stChatInputTextArea")
    box.fill("Can you please explain server-sent events in two sentences?")
    box.press("Enter")
    page.get_by_text("streaming…").first.wait_for()
    wait_for_app(page, SLOW)
    page.goto(f"{app_url}/compare")
    wait_for_app(page, SLOW)
    page.locator(".st-key-cmp_blind").get_by_text("Blind").click()
    wait_for_app(page, SLOW)
    prompt = page.locator(".st-key-cmp_prompt textarea")
    prompt.fill("Which city is the capital of France?")
    prompt.press("Control+Enter")
    wait_for_app(page, SLOW)
    page.locator(".st-key-cmp_run button").click()
    page.get_by_role("button", name="Model A is best").click()
    page.get_by_text("You picked").wait_for()
    page.goto(f"{app_url}/history")
    wait_for_app(page, SLOW)
    main = page.get_by_test_id("stMainBlockContainer")
    main.get_by_text("Explain server-sent events in two sentences").first.wait_for()
    _shot(page, "history_titles_1440")
    assert "None" not in main.inner_text()
    page.get_by_role("tab", name="Compare", exact=True).click()
    main.get_by_text("Which city is the capital of France").first.wait_for()
    _shot(page, "history_votes_1440")
    assert "picked" in main.inner_text() and "None" not in main.inner_text()
    page.goto(f"{app_url}/history?present=1")
    page.locator(".st-key-presentation_bar").wait_for()
    wait_for_app(page, SLOW)
    _shot(page, "present_history_titles_1440")
    text = main.inner_text()
    assert "Explain server-sent events in two sentences" in text
    assert "Can you please" not in text  # the message itself stays private
