"""Keyboard only: sign in, find the thread, reply to a reply and reply again,
with nothing but Tab, Shift+Tab, Enter, Escape, Ctrl+Enter and typing. Every
stop along the way must be visible and show a focus indicator."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import ADMIN_NAME, PASSWORD, api, axe, sent_post

pytestmark = pytest.mark.browser

FOCUS_JS = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const cs = getComputedStyle(el);
  const r = el.getBoundingClientRect();
  const label = el.labels && el.labels[0] ? el.labels[0].textContent : "";
  return {
    tag: el.tagName.toLowerCase(), id: el.id,
    name: (el.getAttribute("aria-label") || label || el.innerText || el.value || "").trim().replace(/\\s+/g, " ").slice(0, 80),
    focusVisible: el.matches(":focus-visible"),
    indicator: (cs.outlineStyle !== "none" && parseFloat(cs.outlineWidth) >= 2) || cs.boxShadow !== "none",
    onScreen: r.width > 0 && r.height > 0 && r.bottom > 0 && r.top < innerHeight && r.right > 0 && r.left < innerWidth,
  };
}"""


def focused(page: Page) -> dict | None:
    return page.evaluate(FOCUS_JS)


def check_focus_shows(page: Page, stop: dict | None) -> None:
    assert stop is not None, "focus fell back to the page itself"
    assert stop["onScreen"], f"focused element is not on screen: {stop}"
    if stop["tag"] not in ("main", "article"):  # programmatic focus targets, not Tab stops
        assert stop["focusVisible"] and stop["indicator"], f"focused element shows no focus indicator: {stop}"


def tab_to(page: Page, name: str | re.Pattern, *, limit: int = 60, backwards: bool = False) -> list[dict]:
    """Press Tab (or Shift+Tab) until the focused element's name matches; every stop on the way
    must be on screen with a visible focus indicator. Returns the stops."""
    stops = []
    for _ in range(limit):
        page.keyboard.press("Shift+Tab" if backwards else "Tab")
        stop = focused(page)
        check_focus_shows(page, stop)
        stops.append(stop)
        if (name.search(stop["name"]) if isinstance(name, re.Pattern) else stop["name"] == name):
            return stops
    raise AssertionError(f"{name!r} not reached with {limit} presses; stops: {[s['name'] for s in stops]}")


@pytest.fixture
def keyboard_thread(site, admin_token):
    """A private room with Rosemary (an IAG volunteer) as a member, a thread by the
    administrator and one reply to it."""
    out = site.flask("users", "create", "--email", "rosemary.clarke@example.org", "--name", "Rosemary Clarke",
                     "--kind", "iag", "--org", "Hampshire Constabulary", input=PASSWORD + "\n").stdout
    user_id = int(re.search(r"Created account (\d+)", out).group(1))
    room = api(site, admin_token, "POST", "/rooms", {"name": "Hampshire IAG: hate crime", "description":
                                                      "Reporting hate crime: the IAG's view.", "visibility": "private"})
    api(site, admin_token, "POST", f"/rooms/{room['id']}/members", {"user_id": user_id, "role": "member"})
    thread = api(site, admin_token, "POST", f"/rooms/{room['id']}/threads",
                 {"title": "Third-party reporting centres", "body": "Which centres do people actually use?"})
    reply = api(site, admin_token, "POST", f"/threads/{thread['id']}/posts",
                {"body": "The library in Portsmouth is the busiest.", "parent_id": thread["posts"][0]["id"]})
    return {"room": room, "thread": thread, "reply": reply}


def test_post_a_reply_with_the_keyboard_only(site, pages, keyboard_thread):
    reply_id = keyboard_thread["reply"]["id"]
    page = pages.open(site)
    page.goto("/login")
    axe(page)

    # Sign in. The first Tab reaches the skip link, which is shown when focused.
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to main content")).to_be_focused()
    check_focus_shows(page, focused(page))
    tab_to(page, "Email")
    page.keyboard.type("rosemary.clarke@example.org")
    page.keyboard.press("Tab")
    expect(page.get_by_label("Password")).to_be_focused()
    page.keyboard.type(PASSWORD)
    tab_to(page, "Sign in", limit=3)
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/rooms$"))
    axe(page)

    # Skip the header, then find the room and the thread.
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to main content")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()
    tab_to(page, "Hampshire IAG: hate crime")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(rf"/rooms/{keyboard_thread['room']['id']}$"))
    axe(page)
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")  # skip link
    tab_to(page, "Third-party reporting centres")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(rf"/threads/{keyboard_thread['thread']['id']}$"))
    axe(page)

    # Tab to the Reply control of the administrator's reply: past the opening post's one first.
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")  # skip link
    stops = tab_to(page, f"Reply to {ADMIN_NAME}")
    reply_link = page.locator(f"#post-{reply_id}").get_by_role("link", name=f"Reply to {ADMIN_NAME}")
    opening_link = page.locator(".opening").get_by_role("link", name=f"Reply to {ADMIN_NAME}")
    expect(opening_link).to_be_focused()
    stops += tab_to(page, f"Reply to {ADMIN_NAME}")
    expect(reply_link).to_be_focused()
    names = [s["name"] for s in stops]
    assert "Replies as a tree" in names and "Newest first" in names, names

    # Enter opens the inline composer and puts the cursor in it.
    page.keyboard.press("Enter")
    box = page.locator(f"#post-{reply_id}").get_by_role("textbox", name=f"Your reply to {ADMIN_NAME}")
    expect(box).to_be_focused()
    expect(reply_link).to_have_attribute("aria-expanded", "true")
    axe(page, "inline reply composer open")
    page.keyboard.type("The one in Southsea is easier to reach")
    # Escape closes it and gives focus back to Reply; what was typed is kept as a draft.
    page.keyboard.press("Escape")
    expect(box).to_have_count(0)
    expect(reply_link).to_be_focused()
    expect(reply_link).to_have_attribute("aria-expanded", "false")
    page.keyboard.press("Enter")
    expect(box).to_be_focused()
    expect(box).to_have_value("The one in Southsea is easier to reach")
    page.keyboard.press("End")
    page.keyboard.type(" by bus.")
    # Tab moves on to the file button, Shift+Tab comes back.
    page.keyboard.press("Tab")
    expect(page.locator(f"#post-{reply_id}").get_by_role("button", name="Attach files")).to_be_focused()
    page.keyboard.press("Shift+Tab")
    expect(box).to_be_focused()
    # Ctrl+Enter sends it; the new post appears in place (live, or after the form reloads the page) with focus.
    page.keyboard.press("Control+Enter")
    new_post, new_id = sent_post(page, "The one in Southsea is easier to reach by bus.")
    expect(new_post).to_be_focused()
    axe(page, "reply posted")
    expect(page.locator(f"li:has(> #post-{reply_id}) > ol.replies > li > #post-{new_id}")).to_have_count(1)
    expect(reply_link).to_have_attribute("aria-expanded", "false")
    expect(new_post).to_have_accessible_name("Rosemary Clarke")

    # From there Tab goes on inside that post: reply to it too, this time sending with the button.
    stop = tab_to(page, re.compile(r"\d{4}, \d\d:\d\d"), limit=1)[-1]  # its permalink comes first
    assert page.locator(f"#post-{new_id} a.permalink").evaluate("a => a === document.activeElement"), stop
    tab_to(page, "Reply to Rosemary Clarke", limit=3)
    page.keyboard.press("Enter")
    box = page.locator(f"#post-{new_id}").get_by_role("textbox", name="Your reply to Rosemary Clarke")
    expect(box).to_be_focused()
    page.keyboard.type("And the one in Fratton is open late on Thursdays.")
    tab_to(page, "Post reply", limit=3)
    page.keyboard.press("Enter")
    third, third_id = sent_post(page, "And the one in Fratton is open late on Thursdays.")
    expect(third).to_be_focused()
    axe(page, "second reply posted")
    expect(page.locator(f"li:has(> #post-{new_id}) > ol.replies > li > #post-{third_id}")).to_have_count(1)
