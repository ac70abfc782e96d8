"""A phone-sized screen (320 CSS pixels, which is also 1280 px at 400% zoom):
nothing makes the page scroll sideways (WCAG 1.4.10 Reflow), deep threads
included, and the deeper replies open with the keyboard."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import ADMIN_EMAIL, api, axe

pytestmark = pytest.mark.browser


def assert_reflows(page: Page) -> None:
    wide = page.evaluate("""() => {
        const root = document.documentElement, width = root.clientWidth;
        if (root.scrollWidth <= width) return null;
        // Boxes that stick out, or whose text (a long address, say) spills out of them.
        const culprits = [...document.querySelectorAll('body *')]
            .filter(e => !e.parentElement.closest('.table-scroll') && (e.getBoundingClientRect().right > width
                || (e.scrollWidth > e.clientWidth && getComputedStyle(e).overflowX === 'visible')))
            .slice(-6).map(e => `${Math.round(e.getBoundingClientRect().right)}px: ${e.outerHTML.slice(0, 120)}`);
        return {scrollWidth: root.scrollWidth, width, culprits};
    }""")
    assert wide is None, f"{page.url} scrolls sideways at {page.viewport_size['width']}px: {wide}"


def test_pages_reflow_on_a_small_screen(site, admin_token, pages):
    room = api(site, admin_token, "POST", "/rooms", {"name": "Portsmouth IAG: youth engagement and schools outreach",
                                                      "description": "Schools, youth clubs and the cadets.",
                                                      "visibility": "private"})
    thread = api(site, admin_token, "POST", f"/rooms/{room['id']}/threads",
                 {"title": "Schools liaison officers: what young people told us in the 2025 survey",
                  "body": "A long link: https://www.example.org/reports/2025/schools-liaison-survey-results-full"})
    parent = thread["posts"][0]["id"]
    chain = []
    for depth in range(1, 7):
        parent = api(site, admin_token, "POST", f"/threads/{thread['id']}/posts",
                     {"body": f"Reply at depth {depth}.", "parent_id": parent})["id"]
        chain.append(parent)

    page = pages.open(site, email=ADMIN_EMAIL, width=320, height=640)
    for path in ["/rooms", f"/rooms/{room['id']}", f"/rooms/{room['id']}/members", "/rooms/new", "/admin/people",
                 "/account"]:
        page.goto(path)
        axe(page)
        assert_reflows(page)

    page.goto(f"/threads/{thread['id']}")
    axe(page)
    assert_reflows(page)
    # The first levels show; deeper replies wait behind "Show more replies", which opens with Enter.
    expect(page.locator(f"#post-{chain[3]}")).to_be_visible()
    deep = page.locator(f"#post-{chain[5]}")
    expect(deep).not_to_be_visible()
    more = page.get_by_text(re.compile(r"^Show more replies"))
    more.focus()
    page.keyboard.press("Enter")
    expect(deep).to_be_visible()
    axe(page, "deeper replies shown")
    assert_reflows(page)
    deep.get_by_role("link", name="Reply to").click()
    expect(deep.get_by_role("textbox", name="Your reply to")).to_be_focused()
    axe(page, "inline reply composer open at depth 6")
    assert_reflows(page)
