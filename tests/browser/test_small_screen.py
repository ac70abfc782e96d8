"""A phone-sized screen (320 CSS pixels, which is also 1280 px at 400% zoom):
nothing makes any page scroll sideways (WCAG 1.4.10 Reflow), deep threads
included, and the deeper replies open with the keyboard. Every page of the app
is visited: the walk is checked against the app's own routes, so a new page
cannot be left out without saying why."""
from __future__ import annotations

import functools
import re
import time
import urllib.request
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, expect

from collab import create_app
from media.captions import report as captions_report
from tests.browser.conftest import (ADMIN_EMAIL, NO_MEDIA, PASSWORD, api, axe, new_token, start_server,
                                    stop_server)
from tests.live_support import SmtpSink

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


# GET routes that are not pages of their own, each with the reason the walk does not visit it.
NOT_PAGES = {
    "static": "files", "core.index": "redirects to the rooms list", "rooms.post_link": "redirects to its thread",
    "live.open_notification": "redirects to the post", "security.login_code": "only in the middle of a sign-in "
    "with two steps (tests/browser/test_setup.py)", "rooms.attachment": "a file", "rooms.attachment_thumb": "an image",
    "meetings.ics": "a calendar file", "meetings.minutes_pdf": "a PDF", "meetings.deck_file": "a file",
    "meetings.deck_page": "an image", "meetings.deck_titles": "JSON", "meetings.state_json": "JSON",
    "live.mention_json": "JSON", "live.thread_reactions_json": "JSON", "search.similar_ideas": "JSON",
    "security.admin_audit_csv": "a CSV file", "polls.results": "the results region alone, for the poll's live update",
    "rooms.people_json": "JSON", "transcript.vtt": "a WebVTT file", "monitor.healthz": "JSON", "monitor.readyz": "JSON",
    "monitor.metrics_endpoint": "Prometheus text", "broadcast.queue": "JSON",
    "recordings.file": "a video file", "recordings.timeline": "JSON", "recordings.captions": "a WebVTT file",
}


@functools.lru_cache(maxsize=1)
def _routes():
    """The app's own routes (an app made here only to read them; it serves nothing)."""
    return create_app({"TESTING": True, "DATABASE_URL": "sqlite://", "SECRET_KEY": "reflow-walk-only",
                       "REDIS_URL": None, "SMTP_HOST": None}).url_map


def _page_endpoints() -> set[str]:
    return {r.endpoint for r in _routes().iter_rules()
            if "GET" in r.methods and not r.rule.startswith("/api/")} - set(NOT_PAGES)


def checked(page: Page, visited: set[str], context: str = "") -> None:
    """axe-core and reflow on the page as it is; note which route it is."""
    axe(page, context)
    assert_reflows(page)
    visited.add(_routes().bind("localhost").match(urlsplit(page.url).path)[0])


def test_every_page_reflows_at_320px(site, admin_token, pages, tmp_path_factory):
    """Every page, signed in and out, at 320 px: no sideways scrolling, and axe-core clean."""
    site.flask("users", "create", "--email", "rhys.reader@example.org", "--name", "Rhys Reader",
               "--org", "Hampshire Constabulary", input=PASSWORD + "\n")
    reader_token = new_token(site, "rhys.reader@example.org")
    me = api(site, reader_token, "GET", "/me")
    room = api(site, admin_token, "POST", "/rooms", {"name": "Southampton IAG: stop and search scrutiny panel",
                                                      "visibility": "private"})
    rid = room["id"]
    api(site, admin_token, "POST", f"/rooms/{rid}/members", {"user_id": me["id"], "role": "member"})
    thread = api(site, reader_token, "POST", f"/rooms/{rid}/threads",
                 {"title": "Body-worn video: what the panel reviewed in the third quarter of 2026",
                  "body": "**Twelve** clips. https://www.example.org/reports/2026/q3/body-worn-video-panel-review"})
    reply = api(site, reader_token, "POST", f"/threads/{thread['id']}/posts",
                {"body": "@Alex Admin | a | table |\n|---|---|\n| 1 | 2 |", "parent_id": thread["posts"][0]["id"]})
    poll = api(site, admin_token, "POST", f"/rooms/{rid}/polls", {
        "question": "Which quarter should the panel review next?", "kind": "single",
        "options": ["The fourth quarter of 2026", "The first quarter of 2027"], "results": "always"})
    starts = (datetime.now(timezone.utc) + timedelta(days=7)).replace(microsecond=0)
    meeting = api(site, admin_token, "POST", f"/rooms/{rid}/meetings", {
        "title": "Quarterly scrutiny panel", "agenda": "Body-worn video review", "starts_at": starts.isoformat(),
        "ends_at": (starts + timedelta(hours=1)).isoformat()})
    admin_id = api(site, admin_token, "GET", "/me")["id"]
    qa = api(site, admin_token, "POST", f"/rooms/{rid}/qa", {"title": "Ask the panel chair", "starts_at": starts.isoformat()})
    api(site, reader_token, "POST", f"/qa/{qa['id']}/questions",
        {"body": "Will the panel publish which clips it reviewed, with the reasons for choosing them?"})

    page = pages.open(site, email=ADMIN_EMAIL, width=320, height=640)
    visited: set[str] = set()

    def visit(path: str) -> None:
        page.goto(path)
        checked(page, visited)
        # An idea's and a poll's own addresses open their thread there: that page was the one checked.
        visited.add(_routes().bind("localhost").match(urlsplit(path).path)[0])

    # Ideas need turning on first (their settings page is one of the pages).
    visit(f"/rooms/{rid}/ideas/settings")
    page.get_by_label("This room takes ideas").check()
    page.get_by_role("button", name="Save idea settings").click()
    expect(page.get_by_text("Idea settings saved.")).to_be_visible()
    idea = api(site, reader_token, "POST", f"/rooms/{rid}/ideas",
               {"title": "Publish the panel's findings in plain English", "body": "A one-page summary."})
    # An invitation, shown on the administration page and opened by someone signed out.
    visit("/admin/people")
    page.get_by_label("Their email").fill("new.volunteer@example.org")
    page.get_by_role("button", name="Create invitation").click()
    invite = page.locator("#invite-link").input_value()
    checked(page, visited, "invitation created")
    page.get_by_role("button", name="Password reset link for Rhys Reader").click()
    reset = page.locator("#reset-link").input_value()

    # What the media worker would report of the meeting (signed as it signs): the chair's correction forms.
    now = time.time()
    body = captions_report.sign(site.env["COLLAB_SECRET_KEY"], {"op": "captions", "meeting": meeting["id"],
                                                                "segments": [{"account": me["id"], "key": "reflow-1", "text": "The panel reviewed twelve body-worn video clips from the "
         "third quarter and asked for the unredacted custody records", "start": now - 9, "end": now - 2}]})
    urllib.request.urlopen(urllib.request.Request(f"{site.url}/media/captions", data=body, method="POST",
                                                  headers={"Content-Type": "application/json"}), timeout=10).close()
    # A recording (issue 16) of a meeting held now, with the chair in its call: the owner allows it on the
    # room's trust page first; its replay page is then one of the pages (preparing or ready).
    page.goto(f"/rooms/{rid}/trust")
    page.get_by_label("Chairs may record this room's meetings").check()
    page.locator("form:has(#recording_allowed)").get_by_role("button", name="Save").click()
    expect(page.get_by_text("Chairs may record this room's meetings.")).to_be_visible()
    now_meeting = api(site, admin_token, "POST", f"/rooms/{rid}/meetings", {"title": "Panel held now"})
    api(site, admin_token, "POST", f"/meetings/{now_meeting['id']}/token")
    recording = api(site, admin_token, "POST", f"/meetings/{now_meeting['id']}/recording")
    api(site, admin_token, "DELETE", f"/meetings/{now_meeting['id']}/recording")
    for path in [
        f"/meetings/{now_meeting['id']}/recordings/{recording['id']}",
        "/rooms", f"/rooms/{rid}", f"/rooms/{rid}/members", "/rooms/new", f"/rooms/{rid}/settings",
        f"/rooms/{rid}/trust", f"/rooms/{rid}/moderation", f"/rooms/{rid}/threads/new", f"/rooms/{rid}/polls/new",
        f"/rooms/{rid}/ideas", f"/rooms/{rid}/ideas/new", f"/ideas/{idea['id']}", f"/rooms/{rid}/you-said-we-did",
        "/you-said-we-did", f"/rooms/{rid}/meetings/schedule", f"/threads/{thread['id']}",
        f"/posts/{reply['id']}/reply", f"/posts/{reply['id']}/flag", f"/posts/{reply['id']}/moderate",
        f"/posts/{reply['id']}/history", f"/polls/{poll['id']}",
        "/notifications", "/meetings", f"/meetings/{meeting['id']}", f"/meetings/{meeting['id']}/edit",
        "/search?q=panel", "/account", "/account/two-step", "/admin/audit", "/admin/system",
        f"/admin/people/{me['id']}/suspend", f"/admin/people/{me['id']}/erase", f"/admin/people/{me['id']}/edit",
        "/admin/people/bulk", f"/posts/{reply['id']}/actions", f"/rooms/{rid}/qa", f"/rooms/{rid}/qa/new",
        f"/qa/{qa['id']}", f"/meetings/{meeting['id']}/transcript", f"/meetings/{meeting['id']}/watch",
    ]:
        visit(path)
    # The post's own edit page is its author's.
    reader = pages.open(site, email="rhys.reader@example.org", width=320, height=640)
    reader.goto(f"/posts/{reply['id']}/edit")
    checked(reader, visited)
    # Signed out: sign-in, an invitation, a password reset; and a fresh install's set-up screen.
    out = pages.open(site, width=320, height=640)
    for link in ("/login", invite, reset):
        out.goto(link)
        checked(out, visited)
    # A fresh install of its own (the shared fresh site may already be set up by test_setup.py by now), which
    # sends e-mail (to a real SMTP server on loopback): the forgotten-password page exists only then.
    sink = SmtpSink()
    fresh = start_server(tmp_path_factory, "reflow-fresh", extra_env={
        "COLLAB_SMTP_HOST": "127.0.0.1", "COLLAB_SMTP_PORT": str(sink.port), **NO_MEDIA})
    try:
        first = pages.open(fresh, width=320, height=640)
        first.goto("/setup")
        expect(first).to_have_url(re.compile(r"/setup$"))
        checked(first, visited)
        first.goto("/password/forgot")
        checked(first, visited)
        first.get_by_label("Email").fill("somebody.with.a.long.address@example.police.uk")
        first.get_by_role("button", name="Send me a link").click()
        expect(first.get_by_role("status").filter(
            has_text="If that address belongs to an active Collab account")).to_be_visible()
        checked(first, visited, "forgotten password: the answer")
    finally:
        stop_server(fresh)
        sink.stop()
    assert admin_id and not _page_endpoints() - visited, f"pages the walk missed: {_page_endpoints() - visited}"
