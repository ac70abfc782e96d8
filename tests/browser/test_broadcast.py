"""The web broadcast in real Chromium (issue 16), against the real server and its media worker: the chair
joins with a fake camera, starts the broadcast from the Chair tab and presents a deck; two readers of the
room who are not in the meeting open the viewer page, press Play and decode the chair's video; the slide
the chair moves to reaches them; one viewer's question reaches the chair's queue; the other asks to speak,
the chair brings them in and they join the meeting from the link their page shows; stopping the broadcast
tells the viewers. Screenshots of the viewer page at 1366×768 and 390×844 go to $COLLAB_BROADCAST_SHOTS."""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import api, axe, new_token
from tests.browser.test_hybrid import pdf_bytes
from tests.browser.test_meeting import wait_for_media_worker
from tests.browser.test_meeting_layout import open_tab
from tests.browser.test_meeting_lifecycle import connected, join_call, make_people, media_pages  # noqa: F401
from tests.browser.test_meeting_lifecycle import browsers  # noqa: F401  (fixture)

pytestmark = pytest.mark.browser

SHOTS = Path(os.environ.get("COLLAB_BROADCAST_SHOTS", "/tmp/broadcast16"))
PEOPLE = [("Cara Chair", "cara.broadcast@example.police.uk"), ("Vic Viewer", "vic.broadcast@example.org"),
          ("Wyn Watcher", "wyn.broadcast@example.org")]

# Frames the viewer page's <video> has decoded (the stage's camera, received through the worker).
DECODED_JS = "() => document.getElementById('watch-video').getVideoPlaybackQuality().totalVideoFrames"


def test_viewers_watch_ask_and_one_is_brought_in(site, media_pages, tmp_path):  # noqa: F811
    SHOTS.mkdir(parents=True, exist_ok=True)
    make_people(site, PEOPLE)
    tok = new_token(site, PEOPLE[0][1])
    room = api(site, tok, "POST", "/rooms", {"name": "Broadcast panel", "visibility": "national"})
    mid = api(site, tok, "POST", f"/rooms/{room['id']}/meetings", {"title": "Public meeting on stop and search"})["id"]
    wait_for_media_worker(site)
    chair = media_pages.open(site, email=PEOPLE[0][1], width=1366, height=768)
    chair.on("dialog", lambda d: d.accept())
    join_call(chair, mid)
    connected(chair)
    deck = tmp_path / "public-meeting.pdf"
    deck.write_bytes(pdf_bytes(3))
    open_tab(chair, "agenda")
    chair.locator("#deck-file").set_input_files(str(deck))
    chair.get_by_role("button", name="Attach", exact=True).click()
    expect(chair.locator("#deck-list")).to_contain_text("Ready · 3 pages", timeout=30_000)

    # a viewer who comes early waits for the broadcast, then is told it started
    vic = media_pages.open(site, email=PEOPLE[1][1], width=1366, height=768)
    vic.goto(f"/meetings/{mid}/watch")
    expect(vic.locator("#watch-status")).to_contain_text("not being broadcast yet")
    expect(vic.get_by_role("button", name="Play")).to_be_disabled()
    axe(vic, "waiting for the broadcast")

    open_tab(chair, "chair")
    chair.get_by_role("button", name="Start broadcast").click()
    expect(chair.get_by_role("button", name="Stop broadcast")).to_have_attribute("aria-pressed", "true")
    expect(chair.locator("#on-air")).to_have_text("Live · 0 watching")
    axe(chair, "broadcasting")
    expect(vic.locator("#watch-status")).to_contain_text("The broadcast has started")
    vic.get_by_role("button", name="Play").click()

    wyn = media_pages.open(site, email=PEOPLE[2][1], width=390, height=844)
    wyn.goto(f"/meetings/{mid}/watch")
    wyn.get_by_role("button", name="Play").click()
    for p in (vic, wyn):
        expect(p.locator("#watch-status")).to_contain_text("Live", timeout=30_000)
        p.wait_for_function(f"() => ({DECODED_JS})() > 15", timeout=30_000)
        expect(p.locator("#watch-slide")).to_be_hidden()   # nothing presented yet: the speaker fills the stage
    expect(chair.locator("#on-air")).to_contain_text("2 watching", timeout=10_000)
    # viewers are counted, never shown as people in the meeting
    expect(chair.locator("#grid .tile")).to_have_count(1)

    # the chair presents the slides: the viewers see the slide, the camera moves to a corner
    open_tab(chair, "agenda")
    chair.get_by_role("button", name="Present public-meeting.pdf").click()
    for p in (vic, wyn):
        expect(p.locator("#watch-slide")).to_have_attribute("src", re.compile(r"/pages/1\.png$"))
    chair.get_by_role("button", name="Next slide").click()
    for p in (vic, wyn):
        expect(p.locator("#watch-slide")).to_have_attribute("src", re.compile(r"/pages/2\.png$"))
        expect(p.locator("#watch-slide")).to_have_attribute("alt", re.compile(r"^Slide 2 of 3"))

    # bigger text and captions, from the keyboard
    vic.get_by_role("button", name="Larger text").focus()
    vic.keyboard.press("Enter")
    vic.keyboard.press("Enter")
    assert vic.evaluate("() => getComputedStyle(document.getElementById('watch')).getPropertyValue('--watch-text')") \
        .strip() == "1.3"
    vic.get_by_role("button", name=re.compile("^Captions")).click()
    expect(vic.get_by_role("button", name="Captions on")).to_have_attribute("aria-pressed", "true")
    axe(vic, "watching")
    vic.screenshot(path=str(SHOTS / "viewer-1366.png"))
    axe(wyn, "watching on a phone")
    wyn.screenshot(path=str(SHOTS / "viewer-390.png"), full_page=True)

    # a question reaches the chair's queue; a request to speak is brought in
    vic.get_by_label("Your question for the meeting").fill("Will the figures be published by ward?")
    vic.get_by_role("button", name="Send question").click()
    expect(vic.locator("#question-status")).to_have_text("Thank you: the chair has your question.")
    wyn.get_by_role("button", name="Ask to speak").click()
    expect(wyn.locator("#speak-status")).to_contain_text("The chair has your request")
    open_tab(chair, "chair")
    queue = chair.locator("#viewer-queue")
    expect(queue).to_contain_text("Vic Viewer asks: Will the figures be published by ward?")
    expect(queue).to_contain_text("Wyn Watcher asks to speak")
    axe(chair, "the viewers' queue")
    chair.screenshot(path=str(SHOTS / "chair-queue-1366.png"))
    chair.get_by_role("button", name="Bring in Wyn Watcher").click()
    expect(queue).not_to_contain_text("Wyn Watcher")
    link = wyn.get_by_role("link", name="Join the meeting")
    expect(link).to_be_focused()
    link.click()
    expect(wyn.locator("#join-button")).to_be_visible()
    expect(wyn.locator("#camera-select")).to_be_attached()   # a participant's pre-join, not an observer's
    expect(wyn.locator("#preview-status")).to_have_text("This is how you will look.")
    wyn.get_by_role("button", name="Join meeting").click()
    connected(wyn)
    expect(chair.locator("#grid .tile")).to_have_count(2, timeout=30_000)
    axe(wyn, "brought in")

    # the chair stops the broadcast: the remaining viewer is told, the meeting goes on
    chair.get_by_role("button", name="Stop broadcast").click()
    expect(vic.locator("#watch-status")).to_have_text("The broadcast has ended.", timeout=5_000)
    expect(vic.get_by_role("button", name="Play")).to_be_disabled()
    expect(chair.locator("#on-air")).to_be_hidden()
    axe(vic, "the broadcast ended")
