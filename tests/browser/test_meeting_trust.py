"""The meeting page's trust rules in the browser (issue 10), kept working by the shared
front-end modules (issue 11): in a room labelled OFFICIAL-SENSITIVE a guest sees which papers
exist but meeting_room.js asks for no slide image and offers no download, while a member sees
the slides; and when a member loses the room, `access.revoked` on the page's one socket ends
their meeting view at once, with the reason; and when the chair ends the meeting, the media
worker's `bye` tells the people in the call why it ended (meeting.js), with no "Rejoin"."""
from __future__ import annotations

import os

import pytest
from playwright.sync_api import expect, sync_playwright

from rooms import revocation
from rooms.meetings.services import ENDED_MESSAGE
from tests.browser.conftest import CHROMIUM, LAUNCH_ARGS, PASSWORD, api, axe, new_token
from tests.browser.test_hybrid import pdf_bytes
from tests.browser.test_meeting import MEDIA_ARGS, wait_for_media_worker
from tests.browser.test_meeting_layout import open_tab

pytestmark = pytest.mark.slow

PEOPLE = [("Carol Chair", "carol.trust@example.police.uk", "staff"), ("Mo Member", "mo.trust@example.police.uk", "staff"),
          ("Gus Guest", "gus.trust@example.org", "guest")]
NO_SLIDES = "Slides are not shown to guests in OFFICIAL-SENSITIVE rooms."


@pytest.fixture(scope="module")
def browser():
    """This module's browser has a fake camera and microphone (for the call that ends)."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing: `make test` installs Debian's chromium")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS + MEDIA_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def sensitive(site):
    for name, email, kind in PEOPLE:
        site.flask("users", "create", "--email", email, "--name", name, "--kind", kind, input=PASSWORD + "\n")
    tok = new_token(site, PEOPLE[0][1])
    room = api(site, tok, "POST", "/rooms", {"name": "Sensitive briefing room", "visibility": "private"})
    ids = {}
    for _, email, _kind in PEOPLE[1:]:
        ids[email] = api(site, new_token(site, email), "GET", "/me")["id"]
        api(site, tok, "POST", f"/rooms/{room['id']}/members", {"user_id": ids[email]})
    meeting = api(site, tok, "POST", f"/rooms/{room['id']}/meetings",
                  {"title": "Sensitive briefing", "starts_at": "2030-01-10T10:00:00Z"})
    return {"room": room, "meeting": meeting, "token": tok, "ids": ids}


def test_guest_sees_no_slides_and_a_member_who_loses_the_room_is_cut_off(site, pages, sensitive, tmp_path):
    rid, mid = sensitive["room"]["id"], sensitive["meeting"]["id"]
    chair = pages.open(site, email=PEOPLE[0][1])
    chair.goto(f"/rooms/{rid}/trust")
    axe(chair)
    chair.locator("#label").select_option("OFFICIAL-SENSITIVE")
    chair.get_by_role("button", name="Save label").click()
    axe(chair)
    expect(chair.get_by_text("The room is now labelled OFFICIAL-SENSITIVE")).to_be_visible()
    chair.goto(f"/meetings/{mid}")
    axe(chair)
    deck = tmp_path / "briefing.pdf"
    deck.write_bytes(pdf_bytes(2))
    open_tab(chair, "agenda")
    chair.locator("#deck-file").set_input_files(str(deck))
    chair.get_by_role("button", name="Attach", exact=True).click()
    axe(chair)
    expect(chair.locator("#deck-list")).to_contain_text("Ready · 2 pages", timeout=30_000)

    member = pages.open(site, email=PEOPLE[1][1])
    member.goto(f"/meetings/{mid}")
    axe(member)
    expect(member.locator("#slide-img")).to_be_visible()
    expect(member.locator("#slide-img")).to_have_attribute("src", f"/meetings/{mid}/decks/{_deck_id(member)}/pages/1.png")
    open_tab(member, "agenda")
    expect(member.get_by_role("link", name="Download briefing.pdf")).to_be_visible()

    guest = pages.open(site, email=PEOPLE[2][1])
    slide_requests: list[str] = []
    guest.on("request", lambda r: "/decks/" in r.url and slide_requests.append(r.url))
    guest.goto(f"/meetings/{mid}")
    axe(guest)
    expect(guest.locator("#hybrid")).to_have_attribute("data-no-files", "1")
    open_tab(guest, "agenda")   # the papers are listed there: what is (not) offered is looked for where it would be
    expect(guest.locator("#deck-list")).to_be_visible()
    expect(guest.locator("#deck-list")).to_contain_text("briefing.pdf")
    expect(guest.locator("#deck-list")).to_contain_text("Ready · 2 pages")
    expect(guest.locator("#slide-status")).to_have_text(NO_SLIDES)
    expect(guest.locator("#slide-number")).to_have_text("Slide 1 of 2")
    expect(guest.locator("#slide-img")).to_be_hidden()
    assert guest.locator("#slide-img").get_attribute("src") is None
    expect(guest.get_by_role("link", name="Download briefing.pdf")).to_have_count(0)
    expect(guest.get_by_role("button", name="Page through briefing.pdf")).to_have_count(0)
    # the chair moves the slides: the guest follows the number, still with no image asked for
    chair.locator("#slide-next").click()
    expect(member.locator("#slide-img")).to_have_attribute("data-page", "2")
    expect(guest.locator("#slide-number")).to_have_text("Slide 2 of 2")
    expect(guest.locator("#slide-status")).to_have_text(NO_SLIDES)
    assert slide_requests == []

    # the member loses the room: the meeting view ends with the reason, its controls disabled
    api(site, sensitive["token"], "DELETE", f"/rooms/{rid}/members/{sensitive['ids'][PEOPLE[1][1]]}")
    expect(member.locator("#hybrid-error")).to_have_text(revocation.ROOM_MESSAGES["removed"])
    expect(member.locator("#chat-text")).to_be_disabled()
    expect(member.locator("#slide-next")).to_be_disabled()
    # the others carry on
    open_tab(chair, "chat")
    chair.locator("#chat-text").fill("Still here")
    chair.locator("#chat-text").press("Enter")
    expect(guest.locator("#chat-log")).to_contain_text("Still here")
    expect(member.locator("#chat-log")).not_to_contain_text("Still here")



def test_the_call_says_why_it_ended_when_the_chair_ends_the_meeting(site, pages, sensitive):
    rid = sensitive["room"]["id"]
    meeting = api(site, sensitive["token"], "POST", f"/rooms/{rid}/meetings", {"title": "Short call"})
    wait_for_media_worker(site)
    chair = pages.open(site, email=PEOPLE[0][1])
    chair.on("dialog", lambda d: d.accept())
    guest = pages.open(site, email=PEOPLE[2][1])
    ids = {}
    for page, email in ((chair, PEOPLE[0][1]), (guest, PEOPLE[2][1])):
        page.goto(f"/meetings/{meeting['id']}")
        axe(page, "pre-join")
        expect(page.locator("#preview-status")).to_have_text("This is how you will look.")
        page.get_by_role("button", name="Join meeting").click()
        expect(page.locator("#call")).to_be_visible()
        ids[email] = int(page.locator("#meeting").get_attribute("data-me-id"))
    expect(guest.locator(f'#grid .tile[data-participant-id="{ids[PEOPLE[0][1]]}"]')).to_have_count(1, timeout=30_000)
    chair.get_by_role("button", name="End meeting", exact=True).click()
    axe(chair, "after ending")
    expect(guest.locator("#left")).to_be_visible(timeout=20_000)
    expect(guest.locator("#left-reason")).to_have_text(ENDED_MESSAGE)
    # The script hides "Join again" and the stylesheet keeps [hidden] hidden (buttons included).
    expect(guest.locator("#rejoin-button")).to_have_attribute("hidden", "")
    expect(guest.locator("#rejoin-button")).to_be_hidden()
    expect(guest.locator("#call")).to_be_hidden()
    axe(guest, "the call ended")


def _deck_id(page) -> str:
    return page.locator("#deck-list li.deck").first.get_attribute("data-deck-id")
