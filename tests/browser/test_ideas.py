"""Ideas (issue 13) on a phone (390 x 844): the room's owner switches ideas on with a budget, a
colleague's similar idea is offered while the title is typed, the idea is posted, voted for and the
vote withdrawn with the page's buttons (keyboard), the count and "votes left" follow, and every page
passes axe-core and reflows."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import ADMIN_EMAIL, api, axe
from tests.browser.test_small_screen import assert_reflows

pytestmark = pytest.mark.browser


def test_post_an_idea_and_vote_on_it_from_a_phone(site, admin_token, pages):
    room = api(site, admin_token, "POST", "/rooms", {"name": "Frontline ideas", "visibility": "private"})
    page = pages.open(site, email=ADMIN_EMAIL, width=390, height=844)

    page.goto(f"/rooms/{room['id']}/ideas/settings")
    axe(page)
    assert_reflows(page)
    page.get_by_label("This room takes ideas").check()
    page.get_by_label("Open votes each person may have").fill("10")
    page.get_by_role("button", name="Save idea settings").click()
    expect(page.get_by_text("Idea settings saved.")).to_be_visible()
    axe(page, "settings saved")

    earlier = api(site, admin_token, "POST", f"/rooms/{room['id']}/ideas",
                  {"title": "Cycle racks at the custody suite", "body": "Staff cycle in."})

    page.goto(f"/rooms/{room['id']}/ideas")
    axe(page)
    assert_reflows(page)
    page.get_by_role("link", name="Post an idea").click()
    expect(page).to_have_url(re.compile(r"/ideas/new$"))
    axe(page)
    page.get_by_label("Your idea in one line").press_sequentially("Covered cycle racks")
    similar = page.locator("[data-idea-similar-list] a", has_text="Cycle racks at the custody suite")
    expect(similar).to_be_visible()
    expect(page.get_by_text(re.compile(r"similar idea is already posted"))).to_be_visible()
    axe(page, "similar ideas offered")
    assert_reflows(page)
    page.get_by_label("What it would change, and why").fill("Bikes get soaked on nights.")
    page.get_by_role("button", name="Post the idea").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Covered cycle racks")
    axe(page)
    assert_reflows(page)

    panel = page.locator(".idea-panel")
    expect(panel.locator("[data-idea-status]")).to_have_text("New")
    vote = panel.get_by_role("button", name="Vote for this idea")
    vote.focus()
    page.keyboard.press("Enter")
    withdraw = panel.get_by_role("button", name="Withdraw my vote")
    expect(withdraw).to_be_visible()
    expect(withdraw).to_be_focused()
    expect(panel.locator("[data-idea-votes]")).to_have_text("1")
    expect(panel.locator("[data-idea-budget]")).to_contain_text("9 of 10 votes left")
    axe(page, "voted")

    # The list shows the tally and the budget; voting there for the earlier idea spends another vote.
    page.goto(f"/rooms/{room['id']}/ideas")
    axe(page, "list after voting")
    item = page.locator(f"[data-idea-id='{earlier['id']}']")
    item.get_by_role("button", name="Vote for this idea").click()
    expect(item.locator("[data-idea-votes]")).to_have_text("1")
    expect(page.locator("[data-idea-budget]")).to_contain_text("8 of 10 votes left")
    item.get_by_role("button", name="Withdraw my vote").click()
    expect(item.locator("[data-idea-votes]")).to_have_text("0")
    expect(page.locator("[data-idea-budget]")).to_contain_text("9 of 10 votes left")
    axe(page, "vote withdrawn")
    assert_reflows(page)
    got = api(site, admin_token, "GET", f"/rooms/{room['id']}/ideas")
    assert sorted((i["title"], i["votes"]) for i in got["ideas"]) == [
        ("Covered cycle racks", 1), ("Cycle racks at the custody suite", 0)]

    # Decided from the idea's page: "You said, we did" lists it, per room and site-wide.
    api(site, admin_token, "POST", f"/ideas/{earlier['id']}/status", {"status": "under_review"})
    page.goto(f"/ideas/{earlier['id']}")
    axe(page, "a decision-maker's idea page")
    page.get_by_label("New status").select_option("adopted")
    page.get_by_label("Response").fill("Approved: racks go in next month.")
    page.get_by_role("button", name="Publish the status").click()
    expect(page.locator(".idea-panel [data-idea-status]")).to_have_text("Adopted")
    axe(page, "adopted")
    for path in (f"/rooms/{room['id']}/you-said-we-did", "/you-said-we-did"):
        page.goto(path)
        axe(page)
        assert_reflows(page)
        expect(page.get_by_role("cell", name="Approved: racks go in next month.")).to_be_visible()
        expect(page.get_by_role("button", name="Print")).to_be_visible()
