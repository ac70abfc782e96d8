"""The search page in a real browser (issue 14): word forms found, the filter controls used by
keyboard, results labelled with the post they are, at 1366x768 and 390x844, axe-core clean."""
from __future__ import annotations

import os
import re
from pathlib import Path

from playwright.sync_api import expect

from tests.browser.conftest import axe

SHOTS = Path(os.environ.get("COLLAB_SEARCH_SHOTS", "/tmp/search14"))


def test_search_filters_and_labelled_results(demo_site, pages):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = pages.open(demo_site, email="margaret.ellis@demo.collab", width=1366, height=768)

    # One form finds the others ("switched", "Switching"), each result labelled by post
    page.goto("/search?q=switch")
    axe(page, "word forms")
    expect(page.get_by_role("link", name=re.compile(r"^Reply #5 by Rosemary Clarke in"))).to_be_visible()
    expect(page.get_by_role("link", name=re.compile(r"^Reply #6 by PC Daniel Okafor in"))).to_be_visible()

    # The filters by keyboard only: open them, author, has an attachment, then Enter
    page.goto("/search?q=policy")
    axe(page, "before filtering")
    expect(page.get_by_label("Author")).to_be_hidden()  # (folded away while no filter is on)
    page.locator(".search-filters summary").focus()
    page.keyboard.press("Enter")
    page.get_by_label("Author").focus()
    page.keyboard.type("Claire")
    page.keyboard.press("Tab")  # (the hint is text, the next control is From)
    expect(page.get_by_label("From")).to_be_focused()
    page.get_by_label("Has an attachment").focus()
    page.keyboard.press("Space")
    expect(page.get_by_label("Has an attachment")).to_be_checked()
    page.get_by_label("Author").focus()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"author=Claire.*attachment=1"))
    expect(page.get_by_role("heading", name="1 result")).to_be_visible()
    expect(page.get_by_role("link", name=re.compile(r"^Opening post by Supt\. Claire Morgan in “Draft stop"))) \
        .to_be_visible()
    expect(page.get_by_label("Has an attachment")).to_be_checked()
    expect(page.get_by_label("Author")).to_have_value("Claire")
    expect(page.locator(".search-filters summary")).to_have_text("Filters 2 on")
    axe(page, "filtered")
    page.screenshot(path=str(SHOTS / "search-filters-1366.png"), full_page=True)

    # A room chosen in the Room control, a reply's number in its label
    page.goto("/search?q=quarterly")
    axe(page, "every room")
    page.locator(".search-filters summary").click()
    page.get_by_label("Room", exact=True).select_option(label="Hampshire IAG: stop and search")
    page.get_by_role("button", name="Apply filters").click()
    expect(page.get_by_role("heading", name=re.compile(r"^Search in Hampshire IAG"))).to_be_visible()
    expect(page.get_by_role("link", name=re.compile(r"^Reply #3 by Tunde Bakare in"))).to_be_visible()
    axe(page, "one room")

    # A phone: the same filtered page, nothing wider than the screen
    phone = pages.open(demo_site, email="margaret.ellis@demo.collab", width=390, height=844)
    phone.goto("/search?q=policy&author=Claire&attachment=1")
    expect(phone.get_by_role("heading", name="1 result")).to_be_visible()
    axe(phone, "phone")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    box = phone.get_by_label("Author").bounding_box()
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= 390
    phone.screenshot(path=str(SHOTS / "search-filters-390.png"), full_page=True)
