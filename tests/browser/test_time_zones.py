"""A person whose account is set to another time zone sees times in that zone, even on a computer set
to a third (issue 12, "Time"): the browser here runs in Asia/Tokyo, the site in Europe/London, the
account in America/New_York. The account's zone wins: in pages the server renders, in a post that
arrives live (static/js/dates.js formats it), in the schedule form (typed in local time) and on the
meeting page."""
from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PASSWORD, api, axe, new_token

pytestmark = pytest.mark.slow

NIA, TOM = "nia.north@example.org", "tom.town@example.police.uk"


def new_york(iso: str) -> str:
    """What the page should show for a UTC time: New York time, named (EST or EDT)."""
    t = datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(ZoneInfo("America/New_York"))
    return f"{t:%d %b %Y, %H:%M} {t.tzname()}"


@pytest.fixture(scope="module")
def people(site):
    for email, name in ((NIA, "Nia North"), (TOM, "Tom Town")):
        site.flask("users", "create", "--email", email, "--name", name, "--kind", "staff", input=PASSWORD + "\n")
    nia_tok, tom_tok = new_token(site, NIA), new_token(site, TOM)
    nia = api(site, nia_tok, "GET", "/me")
    room = api(site, tom_tok, "POST", "/rooms", {"name": "Time zone check", "visibility": "private"})
    api(site, tom_tok, "POST", f"/rooms/{room['id']}/members", {"user_id": nia["id"]})
    thread = api(site, tom_tok, "POST", f"/rooms/{room['id']}/threads",
                 {"title": "Which time is it?", "body": "The opening post."})
    return {"room": room, "thread": thread, "tom_tok": tom_tok}


def test_the_accounts_zone_wins_over_the_browsers(site, pages, people):
    page = pages.open(site, email=NIA, timezone_id="Asia/Tokyo")
    assert page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone") == "Asia/Tokyo"

    # choose New York on the account page, by keyboard
    page.goto("/account")
    axe(page)
    zone = page.get_by_label("Show times in")
    expect(zone).to_have_value("")
    expect(zone.locator("option").first).to_have_text("Use the site's time zone (Europe/London)")
    zone.focus()
    zone.select_option("America/New_York")
    page.get_by_role("button", name="Save time zone").press("Enter")
    expect(page.locator(".flash")).to_contain_text("times are now shown in America/New_York")
    axe(page, "time zone saved")
    expect(page.locator("body")).to_have_attribute("data-time-zone", "America/New_York")

    # the thread page: the server's rendering, and dates.js for a post that arrives live
    thread = people["thread"]
    page.goto(f"/threads/{thread['id']}")
    expect(page.locator("html[data-live=on]")).to_have_count(1)
    axe(page)
    first_time = page.locator("article.post").first.locator(".permalink time")
    expect(first_time).to_have_text(new_york(first_time.get_attribute("datetime")))
    reply = api(site, people["tom_tok"], "POST", f"/threads/{thread['id']}/posts", {"body": "Arrived live."})
    live = page.locator(f"#post-{reply['id']} .permalink time")
    expect(live).to_have_attribute("datetime", reply["created_at"])
    expect(live).to_have_text(new_york(reply["created_at"]))          # not Tokyo's time, nor London's
    axe(page, "after a live post")
    # dates.js names the zone as the server does, in summer and in winter
    shown = page.evaluate("""async () => {
        const d = await import('/static/js/dates.js');
        return [d.dateTime('2026-06-10T09:00:00Z'), d.dateTime('2026-01-10T10:00:00Z'), d.clockTime('2026-06-10T09:00:00Z'), d.clockTime('2026-06-10T09:00:00Z', true)];
    }""")
    assert shown == ["10 Jun 2026, 05:00 EDT", "10 Jan 2026, 05:00 EST", "05:00", "05:00 EDT"]

    # the schedule form takes New York time; the meeting page shows it back in New York time
    page.goto(f"/rooms/{people['room']['id']}/meetings/schedule")
    axe(page)
    expect(page.get_by_text("(date and time, America/New_York)")).to_be_visible()
    page.get_by_label("Title").fill("Summer check-in")
    page.locator("#starts_at").fill("2030-07-10T10:00")
    page.locator("#ends_at").fill("2030-07-10T11:30")
    page.get_by_role("button", name="Schedule and invite").click()
    expect(page).to_have_url(re.compile(r"/meetings/\d+$"))
    axe(page)
    when = page.locator(".meeting-when time")
    expect(when).to_have_text("Wednesday 10 July 2030, 10:00–11:30 EDT")
    expect(when).to_have_attribute("datetime", "2030-07-10T14:00:00Z")   # stored and given to machines in UTC
