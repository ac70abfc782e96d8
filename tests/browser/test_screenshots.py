"""The README's screenshots, taken from the demo data (`flask demo`) as the IAG
chair sees it: docs/img/room.png and docs/img/thread.png, 1200 px wide."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import axe

pytestmark = pytest.mark.browser

IMG = Path(__file__).resolve().parents[2] / "docs" / "img"
ROOM = "Hampshire IAG: stop and search"
THREAD = "Draft stop and search policy: your comments"


def shoot(page, name: str) -> None:
    """The whole page, 1200 px wide and exactly as tall as its content."""
    IMG.mkdir(parents=True, exist_ok=True)
    # Let the live page settle (reactions, and who is online, arrive just after load) so the
    # pictures show what a person sees a moment after opening the page.
    page.wait_for_load_state("networkidle")
    if page.locator("script[src*='/js/live.js']").count():
        expect(page.locator("#presence")).not_to_be_empty()
        expect(page.locator("#presence")).not_to_have_text(re.compile(r"\.\.$"))   # a sentence ends once
    page.set_viewport_size({"width": 1200, "height": 400})
    page.screenshot(path=IMG / name, full_page=True)
    page.set_viewport_size({"width": 1200, "height": 800})


def test_readme_screenshots_of_the_demo(demo_site, pages):
    page = pages.open(demo_site, email="margaret.ellis@demo.collab", width=1200, height=800)
    page.get_by_role("link", name=ROOM).click()
    expect(page).to_have_url(re.compile(r"/rooms/\d+$"))
    axe(page)
    expect(page.get_by_role("heading", level=1)).to_have_text(ROOM)
    expect(page.get_by_role("link", name=THREAD)).to_be_visible()
    shoot(page, "room.png")

    page.get_by_role("link", name=THREAD).click()
    expect(page).to_have_url(re.compile(r"/threads/\d+"))
    axe(page)
    expect(page.get_by_role("heading", level=1)).to_have_text(THREAD)
    # A discussion, not a single post: replies, and replies to replies.
    expect(page.locator("ol.replies ol.replies article.post").first).to_be_visible()
    shoot(page, "thread.png")

    from PIL import Image

    for name in ("room.png", "thread.png"):
        with Image.open(IMG / name) as img:
            assert img.width == 1200, (name, img.size)
