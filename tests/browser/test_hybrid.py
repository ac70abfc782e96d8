"""The quarterly plenary (issue 6) in three browser contexts on the real server: the
chair attaches a PDF (made here) and waits for its slides; two participants open the
meeting; the chair advances the slides and both follow; a participant raises a hand
and the chair sees it first in the queue; a key message is voted on and closed, and
the outcome lands in the minutes thread posted in the room. The server itself sends
the reminder before the start. Then, with fake camera and microphone: "Mute everyone"
mutes the participants' microphones (the others see them muted), and "give the floor"
asks one person, who unmutes; the chair's "Mute <name>" in People mutes one person, who may
unmute themself."""
from __future__ import annotations

import json
import os
import re
import time
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.browser.conftest import CHROMIUM, LAUNCH_ARGS, PASSWORD, api, axe, new_token
from tests.browser.test_meeting import wait_for_media_worker
from tests.browser.test_meeting_layout import open_tab

pytestmark = pytest.mark.slow

PEOPLE = [("Chris Chair", "chris.chair@example.police.uk"), ("Ann Able", "ann.hybrid@example.org"),
          ("Bea Bright", "bea.hybrid@example.org")]


@pytest.fixture(scope="module")
def browser():
    """This module's browser has a fake camera and microphone (for the mute test)."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing: `make test` installs Debian's chromium")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS + [
            "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"])
        yield b
        b.close()


def pdf_bytes(pages: int) -> bytes:
    from fpdf import FPDF

    doc = FPDF(orientation="L")
    doc.set_font("helvetica", size=60)
    for i in range(pages):
        doc.add_page()
        doc.cell(text=f"Slide {i + 1}")
    return bytes(doc.output())


@pytest.fixture(scope="module")
def plenary(site):
    for name, email in PEOPLE:
        site.flask("users", "create", "--email", email, "--name", name, "--kind", "staff", input=PASSWORD + "\n")
    tok = new_token(site, PEOPLE[0][1])
    room = api(site, tok, "POST", "/rooms", {"name": "IAG plenary room", "visibility": "private"})
    for _, email in PEOPLE[1:]:
        uid = api(site, new_token(site, email), "GET", "/me")["id"]
        api(site, tok, "POST", f"/rooms/{room['id']}/members", {"user_id": uid})
    start = (datetime.now(UTC) + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    meeting = api(site, tok, "POST", f"/rooms/{room['id']}/meetings",
                  {"title": "Quarterly IAG plenary", "agenda": "1. Welcome\n2. Stop and search", "starts_at": start})
    soon = (datetime.now(UTC) + timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    follow_up = api(site, tok, "POST", f"/rooms/{room['id']}/meetings", {"title": "Plenary follow-up", "starts_at": soon})
    return {"room": room, "meeting": meeting, "next": follow_up}


def test_plenary_slides_hands_votes_minutes(site, pages, plenary, tmp_path):
    mid = plenary["meeting"]["id"]
    chair = pages.open(site, email=PEOPLE[0][1])
    chair.on("dialog", lambda d: d.accept())
    chair.goto(f"/meetings/{mid}")
    axe(chair)
    deck = tmp_path / "plenary-deck.pdf"
    deck.write_bytes(pdf_bytes(3))
    open_tab(chair, "agenda")
    chair.locator("#deck-file").set_input_files(str(deck))
    chair.get_by_role("button", name="Attach", exact=True).click()
    axe(chair)
    expect(chair.locator("#deck-list")).to_contain_text("Ready · 3 pages", timeout=30_000)
    expect(chair.locator("#slide-img")).to_have_attribute("data-page", "1")

    ann = pages.open(site, email=PEOPLE[1][1])
    bea = pages.open(site, email=PEOPLE[2][1])
    for p in (ann, bea):
        p.goto(f"/meetings/{mid}")
        expect(p.locator("#slide-img")).to_have_attribute("data-page", "1")
        axe(p)

    # the chair drives: both followers see slide 2, then 3
    chair.get_by_role("button", name="Next slide").click()
    t0 = time.monotonic()
    for p in (ann, bea):
        expect(p.locator("#slide-img")).to_have_attribute("data-page", "2")
        expect(p.locator("#slide-img")).to_have_attribute("src", re.compile(r"/pages/2\.png$"))
    print(f"followers on slide 2 after {time.monotonic() - t0:.3f} s")
    # Ann browses ahead on her own, then follows the presenter again in one click
    ann.get_by_role("button", name="Next slide").click()
    expect(ann.locator("#slide-img")).to_have_attribute("data-page", "3")
    chair.get_by_role("button", name="Previous slide").click()
    expect(bea.locator("#slide-img")).to_have_attribute("data-page", "1")
    expect(ann.locator("#slide-img")).to_have_attribute("data-page", "3")
    ann.get_by_role("button", name="Follow presenter").click()
    expect(ann.locator("#slide-img")).to_have_attribute("data-page", "1")

    # hands: Bea first, then Ann; the chair sees them in that order
    for p in (chair, ann, bea):
        open_tab(p, "hands")
    bea.get_by_role("button", name=re.compile("Raise hand")).click()
    expect(chair.locator("#hand-list li").first).to_contain_text("Bea Bright")
    ann.get_by_role("button", name=re.compile("Raise hand")).click()
    expect(chair.locator("#hand-list li")).to_have_count(2)
    expect(chair.locator("#hand-list li").first).to_contain_text("Bea Bright")
    expect(ann.locator("#hand-list li").nth(1)).to_contain_text("Ann Able")
    chair.get_by_role("button", name="Give the floor to Bea Bright").click()
    expect(bea.locator("#floor-prompt")).to_be_visible()
    axe(chair, "hands and slides shown")

    # a key message, voted and closed
    for p in (chair, ann, bea):
        open_tab(p, "votes")
    chair.locator("#km-draft-text").fill("Stop and search data should be published every month")
    chair.get_by_role("button", name="Add key message").click()
    # the running tally stays hidden from each person until they have voted; the chair always has it
    chair.locator("#km-list").get_by_label("Hide the running tally until each person has voted").check()
    chair.get_by_role("button", name=re.compile("^Put to the vote")).click()
    expect(chair.locator("#km-list .km-tally")).to_contain_text("Agree 0")
    for p in (ann, bea):
        expect(p.locator("#km-list")).to_contain_text("Vote open")
        expect(p.locator("#km-list .km-tally")).to_have_text("The tally is hidden until you vote.")
    for p, other, count in ((ann, bea, 1), (bea, ann, 2)):
        p.locator("#km-list").get_by_label("Agree", exact=True).check()
        p.locator("#km-list").get_by_role("button", name="Vote").click()
        expect(p.locator("#km-announcer")).to_contain_text("recorded")
        expect(p.locator("#km-list .km-tally")).to_contain_text(f"Agree {count}")
        expect(chair.locator("#km-list .km-tally")).to_contain_text(f"Agree {count}")
        if count == 1:   # Ann's vote does not show Bea the tally
            expect(other.locator("#km-list .km-tally")).to_have_text("The tally is hidden until you vote.")
    expect(ann.locator("#km-list .km-tally")).to_contain_text("Agree 2")   # voted: kept up to date
    axe(ann, "vote open")
    chair.locator("#km-list .outcome").get_by_label("Agreed", exact=True).check()
    chair.get_by_role("button", name=re.compile("^Close vote")).click()
    expect(bea.locator("#km-list")).to_contain_text("Closed: Agreed")

    # the chair ends the meeting: the minutes are a thread in the room
    open_tab(chair, "chair")
    chair.get_by_role("button", name="End meeting and post minutes").click()
    expect(chair).to_have_url(re.compile(r"/threads/\d+"))
    axe(chair)
    expect(chair.locator("h1")).to_contain_text("Minutes: Quarterly IAG plenary")
    body = chair.locator("main")
    expect(body).to_contain_text("Stop and search data should be published every month")
    expect(body).to_contain_text("Agreed")
    expect(body).to_contain_text("2 agree")
    expect(body).to_contain_text("plenary-deck.pdf")


def test_mute_everyone_and_give_the_floor(site, pages, plenary):

    tok = new_token(site, PEOPLE[0][1])
    meeting = api(site, tok, "POST", f"/rooms/{plenary['room']['id']}/meetings",
                  {"title": "Panel follow-up", "starts_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")})
    mid = meeting["id"]
    ann_id = api(site, new_token(site, PEOPLE[1][1]), "GET", "/me")["id"]
    wait_for_media_worker(site)
    chair, ann, bea = (pages.open(site, email=e) for _, e in PEOPLE)
    for p in (chair, ann):
        p.goto(f"/meetings/{mid}")
        expect(p.locator("#preview-status")).to_have_text("This is how you will look.")
        axe(p, "pre-join")
        p.get_by_role("button", name="Join meeting").click()
        expect(p.locator("#call")).to_be_visible()
    bea.goto(f"/meetings/{mid}")                   # Bea is still at the camera check
    axe(bea, "pre-join")
    expect(bea.locator("#join-muted")).not_to_be_checked()
    tile = chair.locator(f'#grid .tile[data-participant-id="{ann_id}"]')
    expect(tile).to_have_count(1, timeout=30_000)
    expect(tile.locator(".tile-mic")).to_be_hidden()
    expect(ann.locator("#mute-button")).to_have_attribute("aria-pressed", "false")

    def mic_on(page) -> bool:
        return page.evaluate("() => window.collabMeeting.state.local.getAudioTracks().every((t) => t.enabled)")

    assert mic_on(ann)
    open_tab(chair, "chair")
    chair.get_by_role("button", name="Mute everyone").click()
    expect(ann.locator("#mute-button")).to_have_attribute("aria-pressed", "true")
    expect(ann.locator("#mute-notice")).to_contain_text("Chris Chair muted everyone's microphone")
    assert not mic_on(ann)                         # the microphone itself is off, not just the button
    expect(tile.locator(".tile-mic")).to_be_visible()   # and everyone else sees Ann muted
    expect(chair.locator("#mute-button")).to_have_attribute("aria-pressed", "false")
    expect(chair.locator("#mute-notice")).to_contain_text("Everyone else's microphone is muted")
    expect(bea.locator("#join-muted")).to_be_checked()
    expect(bea.locator("#mute-notice")).to_contain_text("you will join muted")
    axe(ann, "muted by the chair")

    # Ann asks to speak; the chair gives her the floor; she chooses to unmute
    ann.get_by_role("button", name=re.compile("Raise hand")).click()   # the toolbar's, in the call
    open_tab(chair, "people")
    chair.get_by_role("button", name="Give the floor to Ann Able").click()
    expect(ann.locator("#floor-prompt")).to_be_visible()
    expect(ann.locator("#floor-text")).to_contain_text("Chris Chair gives you the floor")
    expect(ann.locator("#mute-button")).to_have_attribute("aria-pressed", "true")   # asked, not unmuted for her
    axe(ann, "given the floor")
    ann.get_by_role("button", name="Unmute now").click()
    expect(ann.locator("#mute-button")).to_have_attribute("aria-pressed", "false")
    assert mic_on(ann)
    expect(tile.locator(".tile-mic")).to_be_hidden()
    expect(ann.locator("#floor-prompt")).to_be_hidden()
    expect(chair.locator("#hand-list li").first).to_contain_text("has the floor")

    # meanwhile the server itself sent the reminder of the meeting starting in 10 minutes, once
    tok = new_token(site, PEOPLE[1][1])
    thread_id = plenary["next"]["announcement_thread_id"]
    deadline = time.monotonic() + 90
    while True:
        text = json.dumps(api(site, tok, "GET", f"/threads/{thread_id}"))
        if "Reminder" in text or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert text.count("**Reminder**") == 1, text[:2000]
    assert "@Ann Able" in text.split("**Reminder**")[1]


def test_the_chair_mutes_one_person_from_people(site, pages, plenary):

    tok = new_token(site, PEOPLE[0][1])
    meeting = api(site, tok, "POST", f"/rooms/{plenary['room']['id']}/meetings",
                  {"title": "One muted", "starts_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")})
    mid = meeting["id"]
    ann_id = api(site, new_token(site, PEOPLE[1][1]), "GET", "/me")["id"]
    wait_for_media_worker(site)
    chair, ann = pages.open(site, email=PEOPLE[0][1]), pages.open(site, email=PEOPLE[1][1])
    for p in (chair, ann):
        p.goto(f"/meetings/{mid}")
        expect(p.locator("#preview-status")).to_have_text("This is how you will look.")
        p.get_by_role("button", name="Join meeting").click()
        expect(p.locator("#call")).to_be_visible()
    tile = chair.locator(f'#grid .tile[data-participant-id="{ann_id}"]')
    expect(tile).to_have_count(1, timeout=30_000)

    def mic_on(page) -> bool:
        return page.evaluate("() => window.collabMeeting.state.local.getAudioTracks().every((t) => t.enabled)")

    assert mic_on(ann)
    open_tab(chair, "people")
    open_tab(ann, "people")
    row = chair.locator("#people-list li", has_text="Ann Able")
    expect(row).to_contain_text("microphone on")
    expect(ann.get_by_role("button", name="Mute Chris Chair")).to_have_count(0)   # only the chair has the tool
    expect(chair.get_by_role("button", name="Mute Chris Chair")).to_have_count(0)   # and not for themself
    axe(chair, "people with the chair's per-person tools")
    ann.locator("#panel-people").focus()
    focused_before = ann.evaluate("() => document.activeElement.id")
    mute = chair.get_by_role("button", name="Mute Ann Able")
    mute.focus()
    chair.keyboard.press("Enter")
    # Ann's page mutes itself: her button is pressed and says Unmute, the microphone track is off, she is told
    expect(ann.locator("#mute-button")).to_have_attribute("aria-pressed", "true")
    expect(ann.locator("#mute-button")).to_contain_text("Unmute")
    expect(ann.locator("#mute-notice")).to_have_text("The chair muted your microphone. Unmute when you want to speak.")
    expect(ann.locator("#mute-notice")).to_have_attribute("role", "status")
    assert not mic_on(ann)
    assert ann.evaluate("() => document.activeElement.id") == focused_before   # her focus was left where it was
    expect(chair.locator("#mute-notice")).to_contain_text("Ann Able's microphone is muted")
    # the chair sees her muted, and no Mute button for her any more; the focus stays in her row
    expect(tile.locator(".tile-mic")).to_be_visible()
    expect(row).to_contain_text("muted")
    expect(mute).to_have_count(0)
    assert chair.evaluate("() => !!document.activeElement.closest('#panel-people')")
    axe(ann, "muted by the chair, one person")
    axe(chair, "after muting one person")
    # only Ann can unmute herself; then the chair's Mute button comes back
    ann.locator("#mute-button").click()
    expect(ann.locator("#mute-button")).to_have_attribute("aria-pressed", "false")
    assert mic_on(ann)
    expect(ann.locator("#mute-notice")).to_be_hidden()
    expect(row).to_contain_text("microphone on")
    expect(chair.get_by_role("button", name="Mute Ann Able")).to_have_count(1)
