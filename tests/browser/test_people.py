"""People (issue 14) in a real browser, at 1366x768 and 390x844, axe-core on every page and state: the
people picker (type-ahead by name, keyboard only) on a room's members page and for a meeting's chairs,
inviting by e-mail from the room in one step, a bulk invitation of ~80 volunteers with its preview, and the
display preferences (text size x contrast) on a few pages. Takes docs/img/people-picker.png and
docs/img/bulk-invite.png from the demo data."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PASSWORD, api, axe, new_token
from tests.browser.test_small_screen import assert_reflows

pytestmark = pytest.mark.browser

IMG = Path(__file__).resolve().parents[2] / "docs" / "img"
ADMIN = "admin@demo.collab"   # Sam Patel, the demo's administrator
SIZES = [(1366, 768), (390, 844)]


def volunteers(n: int) -> str:
    rows = [f"volunteer{i:02d}@iag.example.org, Volunteer {i:02d}, IAG volunteer" for i in range(1, n + 1)]
    rows[3] = "not-an-address@, Broken Row"
    rows[7] = rows[6]                                   # the same person twice
    return "email, name, kind\n" + "\n".join(rows) + "\nrosemary.clarke@demo.collab, Rosemary Clarke\n"


def test_people_picker_invite_and_bulk_invitation(demo_site, pages):
    token = new_token(demo_site, ADMIN)
    room = api(demo_site, token, "POST", "/rooms", {"name": "Hampshire IAG plenary 2026", "visibility": "private",
                                                     "description": "The quarterly plenary and its papers."})
    for width, height in SIZES:
        page = pages.open(demo_site, email=ADMIN, width=width, height=height)
        page.goto(f"/rooms/{room['id']}/members")
        axe(page)
        box = page.get_by_role("combobox", name="Name or e-mail address")
        box.press_sequentially("ma", delay=30)
        listbox = page.get_by_role("listbox", name="Matching people")
        expect(listbox.get_by_role("option")).to_have_count(2)          # Margaret Ellis, Martin Hughes
        expect(box).to_have_attribute("aria-expanded", "true")
        expect(page.locator(".picker-status")).to_have_text(re.compile(r"^2 people found"))
        box.press("ArrowDown")
        expect(box).to_have_attribute("aria-activedescendant", re.compile(r"opt-0$"))
        axe(page, f"picker open at {width}px")
        assert_reflows(page)
        if width == 1366:
            page.locator("main").screenshot(path=IMG / "people-picker.png")
        first = width == 1366
        name = "Margaret Ellis" if first else "Martin Hughes"
        if not first:
            box.press("ArrowDown")
        box.press("Enter")
        expect(box).to_have_value(name)
        expect(listbox).to_be_hidden()
        page.get_by_label("Role", exact=True).select_option("member")
        page.get_by_role("button", name="Add to room").click()
        expect(page.get_by_role("status").first).to_contain_text(f"{name} is now a member of this room.")
        axe(page, f"added at {width}px")
        expect(page.get_by_role("row").filter(has_text=name)).to_be_visible()
        # someone already in the room is offered, but marked and not chosen again
        box = page.get_by_role("combobox", name="Name or e-mail address")
        box.press_sequentially(name.split()[0][:3], delay=30)
        expect(page.get_by_role("option").filter(has_text=name)).to_have_attribute("aria-disabled", "true")
        box.press("Escape")
        expect(page.get_by_role("listbox", name="Matching people")).to_be_hidden()

    # Invite by e-mail, one step: invitation and membership (SMTP is not set here: the link is shown)
    box.fill("")
    box.press_sequentially("new.volunteer@example.org", delay=5)
    page.get_by_label("If they are new: kind of account").select_option(label="IAG volunteer")
    page.get_by_role("button", name="Add to room").click()
    expect(page.locator("#invite-done")).to_contain_text("new.volunteer@example.org is invited.")
    expect(page.get_by_label("Invitation link")).to_have_value(re.compile(r"/invite/[\w-]+$"))
    axe(page, "invited by e-mail at 390px")
    assert_reflows(page)

    # The picker for a meeting's chairs: chosen people show as removable chips, keyboard only
    page = pages.open(demo_site, email=ADMIN, width=1366, height=768)
    page.goto(f"/rooms/{room['id']}/meetings/schedule")
    axe(page)
    chair = page.get_by_role("combobox", name="Add a chair: type a name")
    chair.press_sequentially("marg", delay=30)
    expect(page.get_by_role("option")).to_have_count(1)
    chair.press("ArrowDown")
    chair.press("Enter")
    chips = page.get_by_role("list", name="Chairs chosen")
    expect(chips.get_by_role("listitem")).to_have_text(["Margaret EllisRemove"])
    expect(page.locator("#chair-list")).to_be_hidden()
    axe(page, "a chair chosen")
    chips.get_by_role("button", name="Remove Margaret Ellis").click()
    expect(chips.get_by_role("listitem")).to_have_count(0)

    # Bulk invitation: ~80 volunteers pasted, a preview with per-row problems, then one step
    for width, height in SIZES:
        page = pages.open(demo_site, email=ADMIN, width=width, height=height)
        page.goto(f"/admin/people/bulk?room_id={room['id']}")
        axe(page)
        page.get_by_label("Paste the list").fill(volunteers(80))
        expect(page.get_by_label("Into the room")).to_have_value(str(room["id"]))
        page.get_by_role("button", name="Check the list").click()
        preview = page.locator("#bulk-preview")
        expect(preview.get_by_role("status")).to_have_text("79 ready, 2 with a problem")
        expect(preview.get_by_role("row").filter(has_text="not-an-address")).to_contain_text(
            "This is not a valid e-mail address.")
        expect(preview.get_by_role("row").filter(has_text="rosemary.clarke")).to_contain_text(
            "Has an account: will be added to the room as member.")
        axe(page, f"bulk preview at {width}px")
        assert_reflows(page)
        if width == 1366:
            page.set_viewport_size({"width": 1366, "height": 900})
            page.screenshot(path=IMG / "bulk-invite.png")   # the summary and the first lines, as seen
    page.get_by_role("button", name=re.compile(r"^Invite 79 people into")).click()
    done = page.locator("#bulk-done")
    expect(done.get_by_role("status")).to_have_text("79 done, 2 left out")
    axe(page, "bulk invitations created")
    assert_reflows(page)
    page.goto(f"/rooms/{room['id']}/members")
    axe(page)
    expect(page.get_by_role("row").filter(has_text="Rosemary Clarke")).to_be_visible()


def test_text_size_and_contrast_hold_wcag_in_every_combination(site, pages):
    site.flask("users", "create", "--email", "pat.prefs@example.org", "--name", "Pat Prefs", "--org",
               "Hampshire Constabulary", input=PASSWORD + "\n")
    page = pages.open(site, email="pat.prefs@example.org", width=1366, height=768)
    token = new_token(site, "pat.prefs@example.org")
    room = api(site, token, "POST", "/rooms", {"name": "Preferences room", "visibility": "private"})
    thread = api(site, token, "POST", f"/rooms/{room['id']}/threads", {"title": "Large print", "body": "**Hello**"})
    checked = [f"/rooms/{room['id']}", f"/threads/{thread['id']}", "/rooms"]
    for size in ("Default", "Large", "Larger"):
        for contrast in (False, True):
            page.goto("/account#preferences")
            axe(page)
            prefs = page.get_by_role("region", name="Preferences")
            prefs.get_by_role("radio", name=size, exact=True).check()
            prefs.get_by_role("checkbox", name=re.compile("^High contrast")).set_checked(contrast)
            prefs.get_by_role("button", name="Save text size and contrast").click()
            expect(page.get_by_role("status").first).to_contain_text("Your display preferences have been saved.")
            want = " ".join(c for c in ([f"text-{size.lower()}"] if size != "Default" else [])
                            + (["contrast-high"] if contrast else []))
            expect(page.locator("html")).to_have_attribute("class", want) if want else \
                expect(page.locator("html")).not_to_have_attribute("class", re.compile("."))
            axe(page, f"account page, {size}, contrast {contrast}")
            for path in checked:
                page.goto(path)
                axe(page, f"{size}, contrast {contrast}")
    # the largest text with high contrast on a phone still reflows
    page.set_viewport_size({"width": 390, "height": 844})
    size_px = page.evaluate("parseFloat(getComputedStyle(document.documentElement).fontSize)")
    assert size_px == 24, size_px     # 150 % of 16 px
    for path in [*checked, "/account"]:
        page.goto(path)
        axe(page, "phone, larger, high contrast")
        assert_reflows(page)
    # remembered per account, on the server: another browser of that account shows the same
    other = pages.open(site, email="pat.prefs@example.org", width=1366, height=768)
    other.goto("/rooms")
    axe(other)
    expect(other.locator("html")).to_have_attribute("class", "text-larger contrast-high")
