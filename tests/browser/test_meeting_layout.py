"""The meeting page as a meeting application (issue 12, Layout), in real Chromium with fake camera
and microphone against the real server: a chair and a participant at 1366×768, a second participant
on a phone (390×844, touch). The pre-join screen shows Join without scrolling; in the call nothing
scrolls the page at either size; the chair presents a deck and everyone's stage shows the slide; every
tab of the side panel is reached with the arrow keys; a raised hand shows on the tile and in People;
muted shows on one's own tile whatever the name's length; a vote cannot be closed without choosing
its outcome; axe-core finds nothing serious in any of these states. The README's meeting pictures
(docs/img/meeting-*.png) are taken here."""
from __future__ import annotations

import os
import re
from datetime import UTC, datetime

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from tests.browser.conftest import CHROMIUM, LAUNCH_ARGS, PASSWORD, Pages, api, axe, new_token
from tests.browser.test_meeting import MEDIA_ARGS, wait_for_media_worker

pytestmark = pytest.mark.slow

IMG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs", "img")
DESKTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}
# A long name: on one's own tile it must give way to "(muted)", not hide it.
PEOPLE = [("Margaret Ellis", "margaret.layout@example.police.uk"),
          ("Anjali Bhattacharya-Fitzgerald", "anjali.layout@example.org"),
          ("Ben Osei", "ben.layout@example.org")]
TABS = ["people", "hands", "votes", "chat", "agenda", "chair"]


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing: `make test` installs Debian's chromium")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS + MEDIA_ARGS + [
            "--auto-select-desktop-capture-source=Entire screen"])   # "Share screen" gets a screen without asking
        yield b
        b.close()


def deck_pdf() -> bytes:
    """Three slides that look like a plenary's: a title and a few lines each."""
    from fpdf import FPDF

    slides = [("Stop and search: quarterly figures", ["1,204 searches, 22 % with a find", "Section 60: 3 authorisations",
                                                       "Body-worn video on in 97 % of searches"]),
              ("What the IAG asked for", ["Monthly publication of the data", "Reasons recorded in plain words"]),
              ("Key messages to agree", ["Publish the data every month", "Review Section 60 use each quarter"])]
    doc = FPDF(orientation="L")
    for title, lines in slides:
        doc.add_page()
        doc.set_fill_color(29, 63, 114)
        doc.rect(0, 0, 297, 40, style="F")
        doc.set_text_color(255, 255, 255)
        doc.set_font("helvetica", "B", size=30)
        doc.set_xy(15, 12)
        doc.cell(text=title)
        doc.set_text_color(26, 26, 26)
        doc.set_font("helvetica", size=24)
        for i, line in enumerate(lines):
            doc.set_xy(20, 65 + i * 22)
            doc.cell(text=f"-  {line}")
    return bytes(doc.output())


@pytest.fixture(scope="module")
def plenary(site):
    ids = {}
    for name, email in PEOPLE:
        site.flask("users", "create", "--email", email, "--name", name, "--kind", "staff", input=PASSWORD + "\n")
    tok = new_token(site, PEOPLE[0][1])
    room = api(site, tok, "POST", "/rooms", {"name": "Hampshire IAG plenary", "visibility": "private"})
    for _, email in PEOPLE[1:]:
        ids[email] = api(site, new_token(site, email), "GET", "/me")["id"]
        api(site, tok, "POST", f"/rooms/{room['id']}/members", {"user_id": ids[email]})
    ids[PEOPLE[0][1]] = api(site, tok, "GET", "/me")["id"]
    meeting = api(site, tok, "POST", f"/rooms/{room['id']}/meetings",
                  {"title": "Quarterly IAG plenary", "agenda": "1. Welcome\n2. Stop and search figures\n3. Key messages",
                   "starts_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")})
    return {"room": room, "meeting": meeting, "ids": ids}


def shoot(page: Page, name: str) -> None:
    """The viewport as the person sees it (the call view is exactly one screen)."""
    os.makedirs(IMG, exist_ok=True)
    page.screenshot(path=os.path.join(IMG, name))


def no_page_scroll(page: Page) -> None:
    sizes = page.evaluate("() => [document.scrollingElement.scrollHeight, window.innerHeight]")
    assert sizes[0] <= sizes[1], f"the call view scrolls: {sizes[0]} px of content in a {sizes[1]} px window"


def open_tab(page: Page, name: str) -> None:
    page.locator(f"#tab-{name}").click()
    expect(page.locator(f"#panel-{name}")).to_be_visible()


def in_view(page: Page, selector: str) -> None:
    box = page.locator(selector).bounding_box()
    vp = page.viewport_size
    assert box and box["y"] >= 0 and box["y"] + box["height"] <= vp["height"], (selector, box, vp)


def focused_in_sight(page: Page, selector: str) -> None:
    """Focus the element; it is then in the window and nothing (a fixed toolbar, the stage) covers it."""
    page.locator(selector).focus()
    covered = page.evaluate("""(sel) => { const e = document.querySelector(sel); const r = e.getBoundingClientRect();
        const top = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
        return (top === e || e.contains(top)) ? null : [r.top, r.bottom, innerHeight, top && top.outerHTML.slice(0, 120)]; }""",
        selector)
    assert not covered, f"{selector} is out of sight or behind something when focused: {covered}"


def videos_playing(page: Page, others: int) -> None:
    """Wait until `others` remote cameras show frames (for pictures that show people, not black tiles)."""
    page.wait_for_function("""(n) => [...document.querySelectorAll('#grid .tile[data-participant-id]')]
        .filter((t) => Number(t.dataset.participantId) !== Number(document.getElementById('meeting').dataset.meId))
        .filter((t) => t.querySelector('video').videoWidth > 0).length >= n""", arg=others, timeout=40_000)


def join(page: Page) -> None:
    expect(page.locator("#preview-status")).to_have_text("This is how you will look.")
    page.get_by_role("button", name="Join meeting").click()
    expect(page.locator("#call")).to_be_visible()


def test_the_call_is_one_screen_with_a_stage_tabs_and_a_toolbar(site, browser, plenary, tmp_path, request):
    pages = Pages(browser)
    try:
        _plenary(site, pages, plenary, tmp_path)
        assert not pages.unchecked(), pages.unchecked()
        assert not pages.script_errors(), pages.script_errors()
    finally:
        pages.close()


def _plenary(site, pages: Pages, plenary, tmp_path):
    mid, ids = plenary["meeting"]["id"], plenary["ids"]
    wait_for_media_worker(site)
    chair = pages.open(site, email=PEOPLE[0][1], **DESKTOP)
    chair.on("dialog", lambda d: d.accept())
    chair.goto(f"/meetings/{mid}")
    axe(chair, "pre-join")

    # every tab by keyboard: the arrow keys move along the tabs and show each panel, Home and End the ends
    chair.locator("#tab-people").focus()
    for name in TABS[1:]:
        chair.keyboard.press("ArrowRight")
        expect(chair.locator(f"#tab-{name}")).to_be_focused()
        expect(chair.locator(f"#tab-{name}")).to_have_attribute("aria-selected", "true")
        expect(chair.locator(f"#panel-{name}")).to_be_visible()
        assert chair.locator('[role="tabpanel"]:visible').count() == 1
    chair.keyboard.press("Home")
    expect(chair.locator("#tab-people")).to_be_focused()
    chair.keyboard.press("ArrowLeft")
    expect(chair.locator("#tab-chair")).to_be_focused()
    chair.keyboard.press("End")
    expect(chair.locator("#tab-chair")).to_be_focused()
    chair.keyboard.press("Tab")                      # out of the tab list, into the panel
    expect(chair.locator("#panel-chair")).to_be_focused()

    # the chair attaches the deck (Agenda and papers)
    open_tab(chair, "agenda")
    deck = tmp_path / "stop-and-search-figures.pdf"
    deck.write_bytes(deck_pdf())
    chair.locator("#deck-file").set_input_files(str(deck))
    chair.get_by_role("button", name="Attach", exact=True).click()
    axe(chair)
    expect(chair.locator("#panel-agenda")).to_be_visible()     # back on the tab of the link (#decks)
    expect(chair.locator("#deck-list")).to_contain_text("Ready · 3 pages", timeout=30_000)
    expect(chair.locator("#slide-status")).to_contain_text(
        "Slide 1 of 3: Stop and search: quarterly figures (stop-and-search-figures.pdf)")

    ann = pages.open(site, email=PEOPLE[1][1], **DESKTOP)
    ann.goto(f"/meetings/{mid}")
    expect(ann.locator("#preview-status")).to_have_text("This is how you will look.")
    axe(ann, "pre-join")
    in_view(ann, "#join-button")
    shoot(ann, "meeting-prejoin.png")

    ctx = pages.browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2,
                                    base_url=site.url, locale="en-GB", timezone_id="Europe/London")
    pages.contexts.append(ctx)
    ben = _phone_page(pages, ctx, site)
    ben.goto(f"/meetings/{mid}")
    expect(ben.locator("#preview-status")).to_have_text("This is how you will look.")
    axe(ben, "pre-join on a phone")
    in_view(ben, "#join-button")                      # Join without scrolling
    shoot(ben, "meeting-prejoin-phone.png")

    for p in (chair, ann, ben):
        join(p)
    for p in (chair, ann, ben):
        for uid in ids.values():
            expect(p.locator(f'#grid .tile[data-participant-id="{uid}"]')).to_have_count(1, timeout=30_000)
    # nothing presented yet: the stage shows a person (the one speaking, or the first other person)
    expect(ann.locator("#stage-slides")).to_be_hidden()
    expect(ann.locator("#stage-person")).to_be_visible()
    expect(ann.locator("#stage-label")).to_contain_text(re.compile("Margaret Ellis|Ben Osei"))
    expect(ann.locator("#grid .tile.on-stage")).to_have_count(1)
    no_page_scroll(ann)
    axe(ann, "in the call, a speaker on the stage")
    # Ann shares her screen: it takes the stage (on the others' pages) until she stops
    ann.get_by_role("button", name="Share screen").click()
    expect(ann.locator("#screen-button")).to_have_attribute("aria-pressed", "true")
    expect(chair.locator("#stage-h")).to_have_text("Shared screen", timeout=30_000)
    expect(chair.locator("#stage-label")).to_contain_text("Anjali Bhattacharya-Fitzgerald’s screen")
    chair.wait_for_function("() => document.getElementById('stage-video').videoWidth > 0", timeout=30_000)
    no_page_scroll(chair)
    ann.get_by_role("button", name="Stop sharing").click()
    expect(chair.locator("#stage-h")).to_have_text("Speaker", timeout=30_000)
    # a phone shows no screen sharing and no keyboard shortcuts
    expect(ben.locator("#screen-button")).to_be_hidden()
    ben.get_by_role("button", name="More").click()
    expect(ben.locator("#more-panel")).to_be_visible()
    expect(ben.locator("#more-panel").get_by_role("button", name="Audio only")).to_be_visible()
    expect(ben.locator('#more-panel [data-proxy="screen-button"]')).to_be_hidden()
    expect(ben.locator("#more-panel").get_by_text(re.compile(r"Alt\+Shift"))).to_be_hidden()
    ben.keyboard.press("Escape")
    expect(ben.locator("#more-panel")).to_be_hidden()

    # the chair presents the deck: it is on everyone's stage
    open_tab(chair, "agenda")
    chair.get_by_role("button", name=f"Present {deck.name}").click()
    chair.get_by_role("button", name="Next slide").click()
    for p in (chair, ann, ben):
        expect(p.locator("#stage-slides")).to_be_visible()
        expect(p.locator("#slide-img")).to_be_visible()
        expect(p.locator("#slide-img")).to_have_attribute("data-page", "2")
        # the slide is announced with its number and title (read from the deck's text)
        expect(p.locator("#slide-status")).to_contain_text(f"Slide 2 of 3: What the IAG asked for ({deck.name})")
        expect(p.locator("#slide-img")).to_have_attribute("alt", f"Slide 2 of 3: What the IAG asked for ({deck.name})")
        expect(p.locator("#slide-status")).not_to_contain_text("prepared")
        no_page_scroll(p)
    ann.wait_for_function("() => document.getElementById('slide-img').naturalWidth > 0")
    videos_playing(ann, 2)
    axe(ann, "in the call, a slide presented")
    shoot(ann, "meeting-call.png")

    # the chair attaches another paper in the call: no reload (she stays in the call), and while it is
    # being prepared the stage goes on showing the slide, never "being prepared"
    second = tmp_path / "section-60-review.pdf"
    second.write_bytes(deck_pdf())
    chair.locator("#deck-file").set_input_files(str(second))
    chair.get_by_role("button", name="Attach", exact=True).click()
    expect(chair.locator("#deck-note")).to_contain_text("is attached")
    expect(chair.locator("#call")).to_be_visible()
    expect(chair.locator("#deck-list li")).to_have_count(2)
    for p in (chair, ann, ben):
        expect(p.locator("#slide-status")).to_contain_text("Slide 2 of 3: What the IAG asked for")
    expect(chair.locator("#deck-list li", has_text=second.name)).to_contain_text("Ready · 3 pages", timeout=30_000)
    expect(ann.locator("#deck-list li")).to_have_count(2)
    expect(ann.locator("#slide-status")).not_to_contain_text("prepared")

    # Ann mutes: her own tile says so, however long her name
    ann.get_by_role("button", name="Mute", exact=True).click()
    own = ann.locator(f'#grid .tile[data-participant-id="{ids[PEOPLE[1][1]]}"]')
    expect(own.locator(".tile-mic")).to_be_visible()
    tile, mic = own.bounding_box(), own.locator(".tile-mic").bounding_box()
    assert mic["x"] + mic["width"] <= tile["x"] + tile["width"], (tile, mic)
    expect(chair.locator(f'#grid .tile[data-participant-id="{ids[PEOPLE[1][1]]}"] .tile-mic')).to_be_visible()

    # Ben raises his hand on the phone: on his tile and in People on the chair's screen
    ben.get_by_role("button", name="Raise hand").click()
    ben_tile = chair.locator(f'#grid .tile[data-participant-id="{ids[PEOPLE[2][1]]}"]')
    expect(ben_tile.locator(".tile-hand")).to_be_visible()
    expect(ben_tile.locator(".tile-hand")).to_contain_text("Hand raised (1)")
    expect(chair.locator("#hand-announcer")).to_contain_text("Ben Osei raised a hand, number 1 in the queue.")
    open_tab(chair, "people")
    row = chair.locator("#people-list li", has_text="Ben Osei")
    expect(row).to_contain_text("hand raised, number 1 in the queue")
    expect(chair.locator("#people-list li", has_text="Anjali")).to_contain_text("muted")
    expect(chair.locator("#count-hands")).to_contain_text("1")
    expect(row.get_by_role("button", name="Give the floor to Ben Osei")).to_be_visible()
    axe(chair, "in the call, People")
    shoot(chair, "meeting-people.png")
    no_page_scroll(ben)
    axe(ben, "in the call on a phone, hand raised")
    open_tab(ben, "chat")
    for sel in ("#chat-text", "#tab-agenda", "#slide-next", "#more-button"):
        focused_in_sight(ben, sel)
    open_tab(ben, "people")
    shoot(ben, "meeting-phone.png")

    # chat: a message on the log (role="log" wraps the list), the tab counts what was not read
    open_tab(ann, "chat")
    ann.locator("#chat-text").fill("The Section 60 figure: is that for the whole county?")
    ann.locator("#chat-text").press("Enter")
    expect(ann.locator("#chat-log li")).to_have_count(1)
    expect(chair.locator("#count-chat")).to_contain_text("1")
    open_tab(chair, "chat")
    expect(chair.locator("#chat-log")).to_contain_text("Section 60 figure")
    expect(chair.locator("#count-chat")).to_be_empty()
    axe(ann, "in the call, chat")
    shoot(ann, "meeting-chat.png")
    no_page_scroll(ann)

    # a key message: the tally hidden until each has voted; closing asks for the outcome
    open_tab(chair, "votes")
    chair.locator("#km-draft-text").fill("Publish the stop and search data every month")
    chair.get_by_role("button", name="Add key message").click()
    chair.get_by_label("Hide the running tally until each person has voted").check()
    chair.get_by_role("button", name=re.compile("^Put to the vote")).click()
    open_tab(ann, "votes")
    expect(ann.locator("#km-list")).to_contain_text("Vote open")
    ann.locator("#km-list").get_by_label("Agree", exact=True).check()
    ann.locator("#km-list").get_by_role("button", name="Vote").click()
    expect(ann.locator("#km-announcer")).to_contain_text("recorded")
    axe(ann, "vote open")
    close = chair.get_by_role("button", name=re.compile("^Close vote"))
    close.click()
    expect(chair.locator("#km-list .km-close .field-error")).to_have_text(
        "Choose the outcome first: Agreed, Not agreed or Deferred.")
    expect(chair.locator("#km-list")).to_contain_text("Vote open")    # still open: nothing was sent
    for label in ("Agreed", "Not agreed", "Deferred"):
        expect(chair.locator("#km-list .outcome").get_by_label(label, exact=True)).not_to_be_checked()
    axe(chair, "closing a vote without an outcome")
    chair.locator("#km-list .outcome").get_by_label("Not agreed", exact=True).check()
    close.click()
    expect(ann.locator("#km-list")).to_contain_text("Closed: Not agreed")
    expect(ann.locator("#km-announcer")).to_contain_text("Closed: Not agreed")

    # 200 % zoom (1366×768 seen as 683×384): the page scrolls instead, nothing sideways, every control
    # reachable and none hidden behind another when focused
    ann.set_viewport_size({"width": 683, "height": 384})
    assert ann.evaluate("() => document.scrollingElement.scrollWidth <= window.innerWidth")
    open_tab(ann, "chat")
    for sel in ("#tab-agenda", "#leave-button", "#slide-next", "#chat-text"):
        focused_in_sight(ann, sel)
    axe(ann, "200 % zoom")
    ann.set_viewport_size(DESKTOP)

    # "See everyone": the tiles in a grid instead of the stage, still one screen
    ann.get_by_role("button", name="See everyone").click()
    expect(ann.locator("#stage")).to_be_hidden()
    expect(ann.locator("#view-toggle")).to_have_attribute("aria-pressed", "true")
    no_page_scroll(ann)
    axe(ann, "see everyone")

    # the chair ends the meeting from the Chair tab: the minutes are a thread in the room
    open_tab(chair, "chair")
    chair.get_by_role("button", name="End meeting and post minutes").click()
    expect(chair).to_have_url(re.compile(r"/threads/\d+"))
    axe(chair)
    expect(chair.locator("main")).to_contain_text("Publish the stop and search data every month")
    expect(chair.locator("main")).to_contain_text("Not agreed")
    os.makedirs(IMG, exist_ok=True)
    chair.screenshot(path=os.path.join(IMG, "meeting-minutes.png"), full_page=True)

    # the ended meeting's page: no call, the record in the tabs
    chair.goto(f"/meetings/{mid}")
    axe(chair, "ended")
    expect(chair.get_by_text("This meeting has ended.")).to_be_visible()
    expect(chair.locator("#call")).to_have_count(0)
    open_tab(chair, "agenda")
    expect(chair.get_by_role("link", name="Minutes as PDF")).to_be_visible()
    open_tab(chair, "votes")
    expect(chair.locator("#km-list")).to_contain_text("Closed: Not agreed")
    axe(chair, "ended, votes")


def _phone_page(pages: Pages, ctx, site) -> Page:
    """A signed-in page in the phone's context (Pages.open makes desktop contexts)."""
    page = ctx.new_page()
    page._axe_checked = set()
    page._visited = []
    page._errors = []
    page.on("framenavigated", lambda f: f == page.main_frame and f.url.startswith("http")
            and page._visited.append(f.url.split("#")[0]))
    page.on("pageerror", lambda err: page._errors.append(f"page error: {err}"))
    pages.pages.append(page)
    page.goto("/login")
    axe(page)
    page.get_by_label("Email").fill(PEOPLE[2][1])
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/rooms$"))
    axe(page)
    return page
