"""The pages the flows do not pass through, checked with axe-core too: room
settings, the reply page used without JavaScript, the newest-first view,
search, notifications and the not-found page."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import ADMIN_EMAIL, api, axe, sent_post

pytestmark = pytest.mark.browser


def test_other_pages(site, admin_token, pages):
    room = api(site, admin_token, "POST", "/rooms", {"name": "Winchester IAG: events", "description":
                                                      "Planning for the summer events.", "visibility": "private"})
    thread = api(site, admin_token, "POST", f"/rooms/{room['id']}/threads",
                 {"title": "Stewarding the summer fair", "body": "Who can help on the gate?"})
    opening_id = thread["posts"][0]["id"]
    api(site, admin_token, "POST", f"/threads/{thread['id']}/posts",
        {"body": "I can do the morning shift.", "parent_id": opening_id})
    page = pages.open(site, email=ADMIN_EMAIL)

    page.goto(f"/rooms/{room['id']}/settings")
    axe(page)
    expect(page.get_by_role("heading", level=1)).to_have_text("Room settings")
    expect(page.get_by_label("Room name")).to_have_value("Winchester IAG: events")

    # The reply page is what the Reply link opens when scripts do not run.
    page.goto(f"/posts/{opening_id}/reply")
    axe(page)
    expect(page.get_by_role("heading", level=1)).to_have_text("Reply in “Stewarding the summer fair”")
    page.get_by_role("textbox", name="Your reply").fill("I will bring the hi-vis vests.")
    page.get_by_role("button", name="Post reply").click()
    expect(page).to_have_url(re.compile(rf"/threads/{thread['id']}\?page=1#post-\d+$"))
    post, _ = sent_post(page, "I will bring the hi-vis vests.")
    axe(page)
    expect(post).to_be_focused()

    page.get_by_role("link", name="Newest first").click()
    expect(page).to_have_url(re.compile(r"view=flat"))
    axe(page)
    expect(page.locator("ol.replies.flat > li").first).to_contain_text("I will bring the hi-vis vests.")

    page.get_by_role("search", name="Site").get_by_role("searchbox").fill("stewarding")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/search\?q=stewarding"))
    axe(page)
    expect(page.get_by_role("heading", level=1)).to_be_visible()

    page.goto("/notifications")
    axe(page)
    expect(page.get_by_role("heading", level=1)).to_be_visible()

    resp = page.goto("/threads/999999")
    assert resp.status == 404
    axe(page)
    expect(page.get_by_role("heading", level=1)).to_have_text("Not found")
