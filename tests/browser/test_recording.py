"""Recording a meeting in real Chromium (issue 16), against the real server and its media worker: the room's
owner allows recording on the room's settings page; the chair joins with a fake camera, presents a deck
and starts recording from the Chair tab; the other participant sees the "Recording" badge and both are
told (the page's announcer) when it starts and stops; the chair moves to slide 2 while it records. A
reader of the room then opens the replay page: it shows the progress while the file is composed, then
plays it, and the keyboard-operable index ("Jump to") shows slide 2 at the moment it was presented and
slide 1 before. Screenshots at 1366×768 and 390×844 go to $COLLAB_RECORDING_SHOTS."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import api, axe, new_token
from tests.browser.test_hybrid import pdf_bytes
from tests.browser.test_meeting import wait_for_media_worker
from tests.browser.test_meeting_layout import open_tab
from tests.browser.test_meeting_lifecycle import browsers, connected, join_call, make_people, media_pages  # noqa: F401

pytestmark = pytest.mark.browser

SHOTS = Path(os.environ.get("COLLAB_RECORDING_SHOTS", "/tmp/recording16"))
PEOPLE = [("Rhi Recorder", "rhi.recording@example.police.uk"), ("Pat Participant", "pat.recording@example.org"),
          ("Ros Reader", "ros.recording@example.org")]
SLIDE_JS = "() => document.getElementById('replay-slide').getAttribute('src') || ''"


def test_a_recorded_meeting_replays_with_each_slide_at_its_moment(site, media_pages, tmp_path):  # noqa: F811
    SHOTS.mkdir(parents=True, exist_ok=True)
    make_people(site, PEOPLE)
    tok = new_token(site, PEOPLE[0][1])
    room = api(site, tok, "POST", "/rooms", {"name": "Recorded panel", "visibility": "national"})
    mid = api(site, tok, "POST", f"/rooms/{room['id']}/meetings", {"title": "Stop and search scrutiny"})["id"]
    wait_for_media_worker(site)
    chair = media_pages.open(site, email=PEOPLE[0][1], width=1366, height=768)
    chair.on("dialog", lambda d: d.accept())

    # before the owners allow it, the Chair tab says why it cannot record
    join_call(chair, mid)
    connected(chair)
    open_tab(chair, "chair")
    expect(chair.locator("#recording-status")).to_contain_text("owners have not allowed")
    expect(chair.get_by_role("button", name="Start recording")).to_be_disabled()
    settings = media_pages.open(site, email=PEOPLE[0][1], width=1366, height=768)
    settings.goto(f"/rooms/{room['id']}/trust")
    axe(settings, "the room's trust settings")
    settings.get_by_label("Chairs may record this room's meetings").check()
    settings.locator("form:has(#recording_allowed)").get_by_role("button", name="Save").click()
    expect(settings.locator(".flash")).to_contain_text("Chairs may record")
    axe(settings, "the room, recording allowed")
    settings.close()

    deck = tmp_path / "scrutiny.pdf"
    deck.write_bytes(pdf_bytes(3))
    open_tab(chair, "agenda")
    chair.locator("#deck-file").set_input_files(str(deck))
    chair.get_by_role("button", name="Attach", exact=True).click()
    expect(chair.locator("#deck-list")).to_contain_text("Ready · 3 pages", timeout=30_000)
    chair.get_by_role("button", name="Present scrutiny.pdf").click()
    expect(chair.locator("#slide-status")).to_contain_text("1 of 3", timeout=10_000)

    pat = media_pages.open(site, email=PEOPLE[1][1], width=390, height=844)
    join_call(pat, mid)
    connected(pat)
    expect(pat.locator("#recording-badge")).to_be_hidden()

    # the chair starts recording: everyone sees the badge and is told
    join_call(chair, mid)   # again: the meeting's state now says it may be recorded
    connected(chair)
    open_tab(chair, "chair")
    start = chair.get_by_role("button", name="Start recording")
    expect(start).to_be_enabled(timeout=10_000)
    start.focus()
    chair.keyboard.press("Enter")
    expect(chair.get_by_role("button", name="Stop recording")).to_have_attribute("aria-pressed", "true")
    for p in (chair, pat):
        expect(p.locator("#recording-badge")).to_be_visible(timeout=10_000)
        expect(p.locator("#live-announcer")).to_contain_text("Recording started")
    axe(chair, "recording")
    axe(pat, "recording, on a phone")
    chair.screenshot(path=str(SHOTS / "meeting-recording-1366.png"))
    pat.screenshot(path=str(SHOTS / "meeting-recording-390.png"))

    # a few seconds on slide 1, then slide 2, then stop
    chair.wait_for_timeout(2500)
    open_tab(chair, "agenda")
    chair.get_by_role("button", name="Next slide").click()
    expect(chair.locator("#slide-status")).to_contain_text("2 of 3")
    chair.wait_for_timeout(2500)
    open_tab(chair, "chair")
    chair.get_by_role("button", name="Stop recording").click()
    for p in (chair, pat):
        expect(p.locator("#recording-badge")).to_be_hidden(timeout=10_000)
        expect(p.locator("#live-announcer")).to_contain_text("Recording stopped")

    # a reader of the room replays it
    reader_tok = new_token(site, PEOPLE[2][1])
    [rec] = api(site, reader_tok, "GET", f"/meetings/{mid}/recordings")["recordings"]
    ros = media_pages.open(site, email=PEOPLE[2][1], width=1366, height=768)
    ros.goto(f"/meetings/{mid}/recordings/{rec['id']}")
    expect(ros.locator("#replay-main")).to_be_visible(timeout=120_000)   # composed in the background
    expect(ros.locator("#replay-progress-box")).to_be_hidden()
    entries = ros.locator("#replay-entries button")
    expect(entries.filter(has_text="Slide 2")).to_have_count(1)
    expect(entries.filter(has_text="Rhi Recorder speaks").first).to_be_visible()
    ros.wait_for_function("() => document.getElementById('replay-video').readyState >= 1", timeout=30_000)
    # before slide 2 was presented, slide 1 shows; "Jump to: Slide 2" (keyboard) shows slide 2
    ros.wait_for_function(f"() => ({SLIDE_JS})().endsWith('/pages/1.png')")
    entries.filter(has_text="Slide 2").focus()
    ros.keyboard.press("Enter")
    ros.wait_for_function(f"() => ({SLIDE_JS})().endsWith('/pages/2.png')", timeout=10_000)
    expect(ros.locator("#replay-now-text")).to_have_text("Slide 2")
    expect(ros.locator("#replay-entries button[aria-current='true']")).to_have_count(1)
    t2 = ros.evaluate("() => document.getElementById('replay-video').currentTime")
    assert t2 > 1.0, t2   # presented a few seconds into the recording
    entries.filter(has_text="Slide 1").focus()
    ros.keyboard.press("Enter")
    ros.wait_for_function(f"() => ({SLIDE_JS})().endsWith('/pages/1.png')", timeout=10_000)
    # it plays: frames are decoded
    ros.evaluate("() => { const v = document.getElementById('replay-video'); v.muted = true; return v.play(); }")
    ros.wait_for_function("() => document.getElementById('replay-video').getVideoPlaybackQuality().totalVideoFrames > 5",
                          timeout=30_000)
    axe(ros, "replaying a recording")
    ros.screenshot(path=str(SHOTS / "replay-1366.png"))
    ros.set_viewport_size({"width": 390, "height": 844})
    axe(ros, "replaying on a phone")
    ros.screenshot(path=str(SHOTS / "replay-390.png"), full_page=True)
    # the minutes list it once the meeting ends with minutes (the API lists it for readers)
    assert rec["url"].endswith(f"/meetings/{mid}/recordings/{rec['id']}")
