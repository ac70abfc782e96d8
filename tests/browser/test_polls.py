"""A ranked-choice poll completed by keyboard only (issue 13, WCAG 2.5.7: no dragging): the member reaches
the poll in its thread with Tab, moves options with the "Move up"/"Move down" buttons (each move announced),
votes with Enter, and sees the results as a chart with a table, axe-core checked at every step."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PASSWORD, api, axe
from tests.browser.test_keyboard import check_focus_shows, focused, tab_to

pytestmark = pytest.mark.browser


@pytest.fixture
def ranked_poll(site, admin_token):
    out = site.flask("users", "create", "--email", "priya.patel@example.org", "--name", "Priya Patel",
                     "--kind", "staff", "--org", "Hampshire Constabulary", input=PASSWORD + "\n").stdout
    user_id = int(re.search(r"Created account (\d+)", out).group(1))
    room = api(site, admin_token, "POST", "/rooms", {"name": "Response team rota", "description": "Shift patterns.",
                                                      "visibility": "private"})
    api(site, admin_token, "POST", f"/rooms/{room['id']}/members", {"user_id": user_id, "role": "member"})
    poll = api(site, admin_token, "POST", f"/rooms/{room['id']}/polls", {
        "question": "Which shift pattern should we trial?", "kind": "ranked",
        "options": ["Earlies", "Lates", "Nights"], "anonymous": True, "results": "after_vote"})
    return {"room": room, "poll": poll}


def test_rank_and_vote_in_a_ranked_poll_by_keyboard_only(site, pages, ranked_poll, admin_token):
    poll = ranked_poll["poll"]
    page = pages.open(site, email="priya.patel@example.org", width=390, height=844)   # a phone
    page.goto(f"/threads/{poll['thread_id']}")
    axe(page)
    section = page.locator(f"#poll-{poll['id']}")
    expect(section.get_by_role("heading", name=re.compile("Which shift pattern"))).to_be_visible()
    expect(section.get_by_text("Results are shown once you have voted.").first).to_be_visible()

    def ranks() -> dict[str, str]:
        return {name: section.get_by_role("combobox", name=f"{name}, rank").input_value()
                for name in ("Earlies", "Lates", "Nights")}

    assert ranks() == {"Earlies": "1", "Lates": "2", "Nights": "3"}
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")   # skip link
    tab_to(page, "Move up Nights", limit=80)
    page.keyboard.press("Enter")
    expect(page.locator("#live-announcer")).to_have_text("Nights moved to rank 2 of 3.")
    page.keyboard.press("Enter")   # focus stayed on the moved option's button
    expect(page.locator("#live-announcer")).to_have_text("Nights moved to rank 1 of 3.")
    # at the top, "Move up" is disabled: focus went to the option's rank select
    expect(section.get_by_role("combobox", name="Nights, rank")).to_be_focused()
    check_focus_shows(page, focused(page))
    assert ranks() == {"Nights": "1", "Earlies": "2", "Lates": "3"}
    # the list reads in rank order, as a screen reader walks it
    expect(section.locator(".poll-option-text")).to_have_text(["Nights", "Earlies", "Lates"])
    axe(page, "ranking changed")
    tab_to(page, "Move down Earlies", limit=10)
    page.keyboard.press("Enter")
    expect(page.locator("#live-announcer")).to_have_text("Earlies moved to rank 3 of 3.")
    assert ranks() == {"Nights": "1", "Lates": "2", "Earlies": "3"}

    tab_to(page, "Vote", limit=15)
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(rf"/threads/{poll['thread_id']}#poll-{poll['id']}$"))
    axe(page, "after voting")
    section = page.locator(f"#poll-{poll['id']}")
    table = section.get_by_role("table", name=re.compile("Results of"))
    expect(table.get_by_role("row", name=re.compile("Nights"))).to_contain_text("1 first preferences")
    expect(section.locator("svg.poll-chart")).to_be_visible()
    expect(section.get_by_role("button", name="Change my vote")).to_be_visible()
    got = api(site, admin_token, "GET", f"/polls/{poll['id']}")
    assert got["results"] is None and "voters" not in got   # the creator has not voted; anonymous anyway

    # Another vote arrives: the tally reaches Priya (a voter) live, and the page shows it without a reload.
    api(site, admin_token, "POST", f"/polls/{poll['id']}/votes", {"choices": [0, 1, 2]})
    expect(table.get_by_role("row", name=re.compile("Earlies"))).to_contain_text("1 first preferences")
    expect(section.get_by_role("heading", name=re.compile("2 people voted"))).to_be_visible()
    expect(page.locator("#live-announcer")).to_have_text("Poll results updated.")
    axe(page, "live tally")
    assert pages.script_errors() == []
