"""A meeting's beginning and end for each person in it (issue 12), in real Chromium with a fake
camera and microphone, against the real server and its media worker:

- the chair ends the meeting: within 2 seconds every participant is told so (with the minutes
  when they exist), their call is closed, their camera and microphone are released, and their
  page does not try to get back in;
- someone removed from the meeting by the chair is told so and does not try to get back in;
- pressing Join before the camera preview has arrived waits for the camera instead of joining
  with it off;
- someone who refused the camera joins without it and is told why.
"""
from __future__ import annotations

import os
import re
import time

import pytest
import socketio
from playwright.sync_api import Page, expect, sync_playwright

from tests.browser.conftest import CHROMIUM, LAUNCH_ARGS, PASSWORD, api, checked_pages, axe, new_token
from tests.browser.test_meeting import wait_for_media_worker

pytestmark = pytest.mark.browser

FAKE_DEVICES = ["--use-fake-device-for-media-stream"]
AUTO_ALLOW = ["--use-fake-ui-for-media-stream"]   # every camera and microphone request is allowed

# Instruments the page (not the app): every peer connection it makes and every camera or
# microphone track it is given, so the test can check they are closed and stopped.
RECORD_MEDIA_JS = """(() => {
  window.__pcs = [];
  window.__tracks = [];
  const PC = window.RTCPeerConnection;
  window.RTCPeerConnection = function (...args) { const pc = new PC(...args); window.__pcs.push(pc); return pc; };
  window.RTCPeerConnection.prototype = PC.prototype;
  const md = navigator.mediaDevices;
  const gum = md.getUserMedia.bind(md);
  md.getUserMedia = async (c) => { const s = await gum(c); window.__tracks.push(...s.getTracks()); return s; };
})();"""

# The camera and microphone answer only when the test says so (window.__releaseDevices()):
# the test decides the order (Join pressed first, devices after), not a delay.
HOLD_DEVICES_JS = """(() => {
  const md = navigator.mediaDevices;
  const gum = md.getUserMedia.bind(md);
  const gate = new Promise((resolve) => { window.__releaseDevices = resolve; });
  window.__asked = 0;
  md.getUserMedia = async (c) => { window.__asked += 1; await gate; return gum(c); };
})();"""

MEDIA_STATE_JS = """() => ({pcs: window.__pcs.map((pc) => pc.connectionState),
                          tracks: window.__tracks.map((t) => t.readyState)})"""


@pytest.fixture(scope="module")
def browsers():
    """Two browsers with a fake camera and microphone: one allows them to every page, the other
    only as each context's permissions say."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing: `make test` installs Debian's chromium")
    with sync_playwright() as p:
        allowing = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=LAUNCH_ARGS + FAKE_DEVICES + AUTO_ALLOW)
        asking = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS + FAKE_DEVICES)
        yield {"allowing": allowing, "asking": asking}
        allowing.close()
        asking.close()




@pytest.fixture
def media_pages(browsers, request):
    yield from checked_pages(browsers["allowing"], request)


@pytest.fixture
def asking_pages(browsers, request):
    yield from checked_pages(browsers["asking"], request)


def make_people(site, people: list[tuple[str, str]]) -> None:
    for name, email in people:
        site.flask("users", "create", "--email", email, "--name", name, "--org", "Hampshire Constabulary",
                   input=PASSWORD + "\n")


def new_meeting(site, chair_email: str, room_name: str, title: str) -> dict:
    tok = new_token(site, chair_email)
    room = api(site, tok, "POST", "/rooms", {"name": room_name, "visibility": "national"})
    return api(site, tok, "POST", f"/rooms/{room['id']}/meetings", {"title": title})


def join_call(page: Page, meeting_id: int) -> None:
    page.goto(f"/meetings/{meeting_id}")
    expect(page.locator("#preview-status")).to_have_text("This is how you will look.")
    axe(page, "pre-join")
    page.get_by_role("button", name="Join meeting").click()
    expect(page.locator("#call")).to_be_visible()


def token_requests(page: Page, meeting_id: int) -> list[str]:
    """Every request this page makes from now on for a media token of the meeting."""
    seen: list[str] = []
    page.on("request", lambda req: req.url.endswith(f"/meetings/{meeting_id}/token") and seen.append(req.url))
    return seen


def connected(page: Page) -> None:
    page.wait_for_function("() => window.collabMeeting.pc && window.collabMeeting.pc.connectionState === 'connected'",
                           timeout=30_000)


def hold_worker_messages(page: Page, site) -> dict:
    """Route the page's signalling WebSocket to the media worker through the test. Once the returned
    switch is on, nothing the worker sends reaches the page, not even its closing: as if the worker
    had never been told the meeting ended (its signed /control request lost on the way)."""
    held = {"on": False}

    def route(ws):
        server = ws.connect_to_server()
        server.on_message(lambda message: None if held["on"] else ws.send(message))
        server.on_close(lambda code, reason: None if held["on"] else ws.close(code=code, reason=reason))

    page.route_web_socket(re.compile(rf"^ws://127\.0\.0\.1:{site.media_port}/"), route)
    return held


def test_the_chair_ends_the_meeting_and_everyone_is_told_and_let_go(site, media_pages):
    """Dev hears it from both the server and the media worker; Eve's page hears nothing from the
    worker after the end, so the server's event alone must end her call."""
    people = [("Carol Chair", "carol.ends@example.police.uk"), ("Dev Dhillon", "dev.ends@example.org"),
              ("Eve Evans", "eve.ends@example.org")]
    make_people(site, people)
    meeting = new_meeting(site, people[0][1], "Ending panel", "Panel that ends")
    mid = meeting["id"]
    wait_for_media_worker(site)
    chair, dev, eve = (media_pages.open(site, email=email) for _, email in people)
    for p in (dev, eve):
        p.add_init_script(RECORD_MEDIA_JS)
    eve_worker = hold_worker_messages(eve, site)
    for p in (chair, dev, eve):
        join_call(p, mid)
    for p in (dev, eve):
        connected(p)
        expect(p.locator("#grid .tile")).to_have_count(3, timeout=30_000)
        state = p.evaluate(MEDIA_STATE_JS)
        assert state["pcs"][-1] == "connected" and state["tracks"] and set(state["tracks"]) == {"live"}, state
    requests = {p: token_requests(p, mid) for p in (dev, eve)}

    chair.on("dialog", lambda d: d.accept())
    eve_worker["on"] = True
    ended_at = time.monotonic()   # the 2 s start as the chair presses End (Playwright's click waits for the POST)
    chair.get_by_role("button", name="End meeting", exact=True).click()
    for p in (dev, eve):
        left_ms = max(1, int((2.0 - (time.monotonic() - ended_at)) * 1000))
        expect(p.get_by_text("The chair ended the meeting").first).to_be_visible(timeout=left_ms)
    took = time.monotonic() - ended_at
    print(f"\nboth participants were told the meeting ended {took:.2f} s after the chair pressed End")
    expect(chair).to_have_url(re.compile(r"/rooms/\d+$"))
    axe(chair, "after ending")

    for p in (dev, eve):
        # the call is closed and the camera and microphone are released (the camera light goes off)
        p.wait_for_function(f"() => ({MEDIA_STATE_JS})().pcs.every((s) => s === 'closed')", timeout=5_000)
        p.wait_for_function(f"() => ({MEDIA_STATE_JS})().tracks.every((s) => s === 'ended')", timeout=5_000)
        dialog = p.get_by_role("dialog", name="The chair ended the meeting")
        expect(dialog).to_be_visible()
        expect(dialog.get_by_role("link", name=re.compile("Back to Ending panel"))).to_be_focused()
        expect(p.locator("#call")).to_be_hidden()
        expect(p.locator("#quality")).not_to_be_visible()
        expect(p.locator("#quality")).to_have_text("Connection: closed")
        axe(p, "the chair ended the meeting")
    dev.wait_for_timeout(4000)   # long enough for several reconnection attempts (the first comes after 250 ms)
    for p in (dev, eve):
        assert requests[p] == [], f"the page asked for a media token after the meeting ended: {requests[p]}"
        assert p.evaluate(MEDIA_STATE_JS)["pcs"] == ["closed"] * len(p.evaluate("window.__pcs"))
        assert "Reconnecting" not in (p.locator("#call-status").text_content() or "")


def test_the_end_links_to_the_minutes_when_the_chair_posts_them(site, media_pages):
    people = [("Mo Minutes", "mo.minutes@example.police.uk"), ("Nia Noble", "nia.minutes@example.org")]
    make_people(site, people)
    tok = new_token(site, people[0][1])
    room = api(site, tok, "POST", "/rooms", {"name": "Minutes panel", "visibility": "national"})
    start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    meeting = api(site, tok, "POST", f"/rooms/{room['id']}/meetings", {"title": "Panel with minutes",
                                                                        "starts_at": start})
    mid = meeting["id"]
    wait_for_media_worker(site)
    chair, nia = (media_pages.open(site, email=email) for _, email in people)
    nia.add_init_script(RECORD_MEDIA_JS)
    chair.goto(f"/meetings/{mid}")
    axe(chair)
    join_call(nia, mid)
    connected(nia)
    chair.on("dialog", lambda d: d.accept())
    chair.locator("#tab-chair").click()   # the chair's tools are in the side panel's Chair tab
    chair.get_by_role("button", name="End meeting and post minutes").click()
    expect(chair).to_have_url(re.compile(r"/threads/\d+"))
    axe(chair)
    thread_url = chair.url.split("#")[0]
    dialog = nia.get_by_role("dialog", name="The chair ended the meeting")
    expect(dialog).to_be_visible()
    link = dialog.get_by_role("link", name="Read the minutes")
    expect(link).to_have_attribute("href", re.compile(re.escape(thread_url.split(site.url)[1]) + "$"))
    nia.wait_for_function(f"() => ({MEDIA_STATE_JS})().tracks.every((s) => s === 'ended')", timeout=5_000)
    axe(nia, "ended, with the minutes")
    link.click()
    expect(nia).to_have_url(re.compile(r"/threads/\d+"))
    axe(nia)


def test_someone_removed_from_the_meeting_or_the_room_is_told_and_let_go(site, media_pages):
    """The chair removes Fay from the meeting (over the Socket.IO API, as any client may); Gus is
    removed from the private room. Each page says why, closes its call, releases its devices, offers
    no "Join again" and asks for no new media token; Hal, still a member, carries on."""
    people = [("Rhea Remover", "rhea.removes@example.police.uk"), ("Fay Field", "fay.removed@example.org"),
              ("Gus Grant", "gus.removed@example.org"), ("Hal Hart", "hal.stays@example.org")]
    make_people(site, people)
    tok = new_token(site, people[0][1])
    room = api(site, tok, "POST", "/rooms", {"name": "Removal panel", "visibility": "private"})
    ids = {}
    for _, email in people[1:]:
        ids[email] = api(site, new_token(site, email), "GET", "/me")["id"]
        api(site, tok, "POST", f"/rooms/{room['id']}/members", {"user_id": ids[email]})
    mid = api(site, tok, "POST", f"/rooms/{room['id']}/meetings", {"title": "Panel that removes"})["id"]
    wait_for_media_worker(site)
    fay, gus, hal = (media_pages.open(site, email=email) for _, email in people[1:])
    for p in (fay, gus, hal):
        p.add_init_script(RECORD_MEDIA_JS)
        join_call(p, mid)
    for p in (fay, gus, hal):
        connected(p)
    requests = {p: token_requests(p, mid) for p in (fay, gus)}

    chair = socketio.Client(reconnection=False)
    chair.connect(site.url, auth={"token": tok}, transports=["websocket"], wait_timeout=10)
    try:
        ack = chair.call("meeting_remove", {"meeting_id": mid, "user_id": ids[people[1][1]]}, timeout=10)
        assert ack["ok"], ack
    finally:
        chair.disconnect()
    api(site, tok, "DELETE", f"/rooms/{room['id']}/members/{ids[people[2][1]]}")

    for p, why in ((fay, "You were removed from this meeting by the chair."),
                   (gus, "You were removed from this room: you no longer have access to it.")):
        dialog = p.get_by_role("dialog", name=why)
        expect(dialog).to_be_visible()
        expect(dialog).to_contain_text("your camera and microphone are off")
        p.wait_for_function(f"() => ({MEDIA_STATE_JS})().pcs.every((s) => s === 'closed')", timeout=5_000)
        p.wait_for_function(f"() => ({MEDIA_STATE_JS})().tracks.every((s) => s === 'ended')", timeout=5_000)
        axe(p, "removed")
        dialog.get_by_role("button", name="Close").click()
        expect(p.locator("#left-h")).to_be_focused()
        expect(p.locator("#left-h")).to_have_text(why)
        expect(p.get_by_role("button", name="Join again")).to_be_hidden()
        axe(p, "removed, the dialog closed")
    fay.wait_for_timeout(4000)   # several reconnection attempts' worth
    for p in (fay, gus):
        assert requests[p] == [], f"a removed person's page asked for a media token: {requests[p]}"
    # Hal is still in the call
    assert hal.evaluate(MEDIA_STATE_JS)["pcs"][-1] == "connected"
    expect(hal.locator("#call")).to_be_visible()


SENDS_VIDEO_JS = """async () => {
  const m = window.collabMeeting;
  if (!m.pc || m.state.cameraOff) return false;
  const t = m.pc.getTransceivers().find((x) => x.mid != null && x.mid === m.state.publish.video);
  if (!t || !t.sender.track || t.sender.track.readyState !== 'live') return false;
  let frames = 0;
  (await m.pc.getStats()).forEach((s) => { if (s.type === 'outbound-rtp' && s.kind === 'video') frames += s.framesEncoded || 0; });
  return frames > 0;
}"""


def test_join_pressed_before_the_camera_answered_waits_for_it_and_sends_video(site, media_pages):
    people = [("Ida Early", "ida.early@example.police.uk")]
    make_people(site, people)
    mid = new_meeting(site, people[0][1], "Early joiners", "Panel joined early")["id"]
    wait_for_media_worker(site)
    ida = media_pages.open(site, email=people[0][1])
    ida.add_init_script(HOLD_DEVICES_JS)
    asked = token_requests(ida, mid)
    ida.goto(f"/meetings/{mid}")
    axe(ida, "pre-join, the camera not answered yet")
    ida.wait_for_function("() => window.__asked > 0", timeout=60_000)  # an upper bound: slow under load
    ida.get_by_role("button", name="Join meeting").click()     # before the preview arrived
    expect(ida.locator("#preview-status")).to_have_text("Starting your camera and microphone…")
    expect(ida.locator("#join-button")).to_have_attribute("aria-busy", "true")
    expect(ida.locator("#join-button")).to_have_text("Joining…")
    expect(ida.locator("#join-button")).to_be_focused()
    assert ida.locator("#call").is_hidden() and asked == [], "joined before the camera answered"
    axe(ida, "waiting for the camera")
    ida.evaluate("window.__releaseDevices()")
    expect(ida.locator("#call")).to_be_visible()
    ida.wait_for_function(SENDS_VIDEO_JS, timeout=30_000)
    expect(ida.locator("#camera-button")).to_have_attribute("aria-pressed", "false")
    expect(ida.locator("#call-status")).not_to_contain_text("without your camera")
    assert len(asked) == 1
    axe(ida, "in the call with the camera on")


def test_a_refused_camera_is_explained_and_the_call_goes_ahead_without_it(site, asking_pages):
    people = [("Jo Private", "jo.private@example.org")]
    make_people(site, people)
    mid = new_meeting(site, people[0][1], "Camera-shy panel", "Panel without cameras")["id"]
    wait_for_media_worker(site)
    jo = asking_pages.open(site, email=people[0][1])
    jo.context.grant_permissions(["microphone"], origin=site.url)   # the microphone only: the camera is refused
    jo.goto(f"/meetings/{mid}")
    status = jo.locator("#preview-status")
    expect(status).to_contain_text("Permission to use the camera was refused")
    expect(status).to_contain_text("You can join with your microphone only.")
    axe(jo, "pre-join, camera refused")
    jo.get_by_role("button", name="Join meeting").click()
    expect(jo.locator("#call")).to_be_visible()
    expect(jo.locator("#call-status")).to_contain_text("Joined without your camera. Permission to use the camera was refused")
    connected(jo)
    expect(jo.locator("#call-status")).to_contain_text("Joined without your camera.")   # still, once connected
    expect(jo.locator("#camera-button")).to_have_attribute("aria-pressed", "true")
    assert jo.evaluate("""() => { const m = window.collabMeeting;
        return m.state.cameraOff && m.state.local.getVideoTracks().length === 0
               && m.state.local.getAudioTracks().every((t) => t.readyState === 'live'); }""")
    axe(jo, "in the call without a camera")


def test_leave_ends_the_attendance_span_and_joining_again_starts_another(site, media_pages):
    """Leave, staying on the page, is the end of being in the call (the minutes must not show the
    person as present until they close the tab); Join again is a new span, or the same one when it
    comes within two minutes (rooms/meetings/attendance.py)."""
    people = [("Lee Leaver", "lee.leaves@example.police.uk"), ("Kim Keeper", "kim.keeps@example.org")]
    make_people(site, people)
    meeting = new_meeting(site, people[0][1], "Leaving panel", "Panel someone leaves")
    mid = meeting["id"]
    tok = new_token(site, people[0][1])
    wait_for_media_worker(site)
    chair, kim = (media_pages.open(site, email=email) for _, email in people)
    for p in (chair, kim):
        join_call(p, mid)
    connected(kim)

    def kims_spans() -> list[dict]:
        st = api(site, tok, "GET", f"/meetings/{mid}/state")
        remote = st.get("data", st)["attendance"]["remote"]
        return [a for a in remote if a["name"] == "Kim Keeper"]

    assert [a["left_at"] for a in kims_spans()] == [None]
    kim.get_by_role("button", name=re.compile("^Leave")).click()
    expect(kim.get_by_role("heading", name="You left the meeting")).to_be_visible()
    deadline = time.monotonic() + 10
    while kims_spans()[0]["left_at"] is None and time.monotonic() < deadline:
        kim.wait_for_timeout(100)
    spans = kims_spans()
    assert len(spans) == 1 and spans[0]["left_at"] is not None, spans   # still on the page, no longer attending
    axe(kim, "left the call")
    kim.get_by_role("button", name=re.compile("Join again")).click()
    expect(kim.locator("#preview-status")).to_have_text("This is how you will look.")
    kim.get_by_role("button", name="Join meeting").click()
    connected(kim)
    # back within two minutes: the same span, open again
    deadline = time.monotonic() + 10
    while kims_spans()[0]["left_at"] is not None and time.monotonic() < deadline:
        kim.wait_for_timeout(100)
    spans = kims_spans()
    assert len(spans) == 1 and spans[0]["left_at"] is None, spans
