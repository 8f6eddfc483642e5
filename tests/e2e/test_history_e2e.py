"""History page in headless Chromium against a real `streamlit run app.py`: list, search,
rename, reload (it is all still there), delete with confirmation, reopen in chat."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import wait_for_app
from wafer_playground.store import SQLiteStore

pytestmark = pytest.mark.e2e


def _seed(path: Path) -> dict[str, str]:
    s = SQLiteStore(path)
    paris = s.create_conversation("Paris trip", model="glm-5.2")
    s.start_turn(paris, "user", "Which museums open on Monday?")
    t = s.start_turn(paris, "assistant")
    s.update_turn(t, content="Most of them.", status="done")
    s.log_request(model="glm-5.2", base_url="https://pass.wafer.ai/v1", surface="chat",
                  params={}, status="done", conversation_id=paris, turn_id=t,
                  cost=Decimal("0.0123"))
    cooking = s.create_conversation("Cooking", model="qwen")
    s.start_turn(cooking, "user", "How long to boil an egg?")
    s.close()
    return {"paris": paris, "cooking": cooking}


def _row(page: Page, cid: str):  # type: ignore[no-untyped-def]
    # Streamlit gives keyed containers the CSS class st-key-<key>.
    return page.locator(f".st-key-hist_row_{cid}")


def test_history_flow(page: Page, streamlit_server_factory, tmp_path: Path) -> None:
    db = tmp_path / "e2e.db"
    ids = _seed(db)
    server = streamlit_server_factory(env={"WAFER_PLAYGROUND_DB": str(db),
                                           "WAFER_ENDPOINT": "custom"})
    page.goto(server.url + "/")
    wait_for_app(page)
    page.get_by_test_id("stSidebarNavLink").filter(has_text="History").click()
    wait_for_app(page)
    expect(page.get_by_role("heading", name="History")).to_be_visible()
    expect(_row(page, ids["paris"])).to_contain_text("Paris trip")
    expect(_row(page, ids["paris"])).to_contain_text("$0.0123")
    expect(_row(page, ids["cooking"])).to_contain_text("How long to boil an egg?")

    # search matches message content
    search = page.get_by_placeholder("Search titles and messages")
    search.fill("egg")
    search.press("Enter")
    wait_for_app(page)
    expect(_row(page, ids["paris"])).to_have_count(0)
    expect(_row(page, ids["cooking"])).to_be_visible()
    search.fill("")
    search.press("Enter")
    wait_for_app(page)

    # rename
    _row(page, ids["paris"]).get_by_role("button", name="Manage").click()
    wait_for_app(page)
    title = _row(page, ids["paris"]).get_by_label("Title")
    title.fill("Rome trip")
    title.press("Enter")
    wait_for_app(page)
    _row(page, ids["paris"]).get_by_role("button", name="Rename").click()
    wait_for_app(page)
    expect(page.get_by_text("Renamed to “Rome trip”.")).to_be_visible()

    # a reload is a new session: everything comes back from the file
    page.reload()
    wait_for_app(page)
    expect(_row(page, ids["paris"])).to_contain_text("Rome trip")

    # delete needs a second, explicit click
    _row(page, ids["cooking"]).get_by_role("button", name="Manage").click()
    wait_for_app(page)
    _row(page, ids["cooking"]).get_by_role("button", name="Delete…").click()
    wait_for_app(page)
    expect(page.get_by_text("This cannot be undone.", exact=False)).to_be_visible()
    _row(page, ids["cooking"]).get_by_role("button", name="Delete for good").click()
    wait_for_app(page)
    expect(_row(page, ids["cooking"])).to_have_count(0)
    page.screenshot(path=str(tmp_path / "history.png"), full_page=True)

    check = SQLiteStore(db)
    assert check.get_conversation(ids["cooking"]) is None
    assert check.get_conversation(ids["paris"]).title == "Rome trip"  # type: ignore[union-attr]
    check.close()

    # reopen goes to the chat page
    _row(page, ids["paris"]).get_by_role("button", name="Open").click()
    wait_for_app(page)
    expect(page).to_have_url(re.compile(r"/chat$"))
    assert "Traceback" not in server.log()
