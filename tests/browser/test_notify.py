"""Issue 14 in a real browser: notifications that are read by reading (live too), the room and thread
"Notifications" menus and "Leave room" asked in a dialog, all by keyboard, axe-clean in every state."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import ADMIN_EMAIL, PASSWORD, api, axe, new_token

pytestmark = pytest.mark.browser


def test_notifications_menus_and_leaving_by_keyboard(site, admin_token, pages, tmp_path):
    # Earlier tests on this shared site left the administrator notifications: start from none unread.
    api(site, admin_token, "POST", "/notifications/read", {"all": True})
    site.flask("users", "create", "--email", "nia.notify@example.org", "--name", "Nia Notify",
               "--org", "Hampshire Constabulary", input=PASSWORD + "\n")
    nia_token = new_token(site, "nia.notify@example.org")
    nia_id = api(site, nia_token, "GET", "/me")["id"]
    room = api(site, admin_token, "POST", "/rooms", {"name": "Eastleigh IAG", "visibility": "private"})
    api(site, admin_token, "POST", f"/rooms/{room['id']}/members", {"user_id": nia_id, "role": "member"})
    thread = api(site, nia_token, "POST", f"/rooms/{room['id']}/threads", {
        "title": "Stop and search figures", "body": "We had **four** complaints:\n\n| Month | Count |\n|---|---|\n| May | 4 |"})
    api(site, nia_token, "POST", f"/threads/{thread['id']}/posts",
        {"body": "@Alex Admin can you look?", "parent_id": thread["posts"][0]["id"]})

    # The administrator: two unread, previews in plain text, the new thread named by its room.
    admin = pages.open(site, email=ADMIN_EMAIL, width=1366, height=768)
    admin.goto("/notifications")
    axe(admin)
    bell = admin.locator("[data-bell-count]")
    expect(bell).to_have_text("2 unread")
    expect(admin.get_by_role("link", name="Nia Notify started a thread in Eastleigh IAG")).to_be_visible()
    expect(admin.get_by_text("We had four complaints: Month Count May 4")).to_be_visible()
    admin.screenshot(path=tmp_path / "notifications-1366.png", full_page=True)
    # Reading the thread reads both; a reply that arrives while it is on screen is read as it comes.
    admin.goto(f"/threads/{thread['id']}")
    axe(admin)
    expect(bell).to_be_hidden()
    api(site, nia_token, "POST", f"/threads/{thread['id']}/posts",
        {"body": "@Alex Admin one more thing", "parent_id": thread["posts"][0]["id"]})
    expect(admin.get_by_text("one more thing")).to_be_visible()
    for _ in range(200):   # the page reads it as it comes: wait for that, however long it takes here
        if api(site, admin_token, "GET", "/notifications?unread=true")["total"] == 0:
            break
        admin.wait_for_timeout(50)
    expect(bell).to_be_hidden()
    admin.goto("/notifications")
    expect(admin.locator(".notification.is-unread")).to_have_count(0)
    expect(bell).to_be_hidden()

    # Nia, on a phone: she started the thread, so she watches it (Discourse's rule). The thread's menu by
    # keyboard (Enter opens, the current level has focus, Escape closes and gives focus back), then Normal chosen.
    nia = pages.open(site, email="nia.notify@example.org", width=390, height=844)
    nia.goto(f"/threads/{thread['id']}")
    summary = nia.locator("#thread-watch summary")
    expect(summary).to_have_accessible_name("Notifications for this thread: Watching")
    summary.focus()
    nia.keyboard.press("Enter")
    watching = nia.locator("#thread-watch").get_by_role("button", name="Watching")
    normal = nia.locator("#thread-watch").get_by_role("button", name="Normal")
    expect(watching).to_be_focused()
    expect(watching).to_have_attribute("aria-pressed", "true")
    axe(nia, "thread menu open")
    nia.screenshot(path=tmp_path / "thread-menu-390.png")
    nia.keyboard.press("Escape")
    expect(summary).to_be_focused()
    nia.keyboard.press("Enter")
    expect(watching).to_be_focused()
    nia.keyboard.press("Tab")
    nia.keyboard.press("Tab")
    expect(normal).to_be_focused()
    nia.keyboard.press("Enter")
    expect(nia.get_by_text("This thread’s notifications: Normal.")).to_be_visible()
    expect(summary).to_have_accessible_name("Notifications for this thread: Normal")
    axe(nia, "thread set to normal")

    # The room's menu, and leaving: asked first, in a dialog; Escape keeps her in; confirming lands on
    # the rooms list with a message.
    nia.goto(f"/rooms/{room['id']}")
    axe(nia)
    nia.locator("#room-watch summary").click()
    axe(nia, "room menu open")
    nia.screenshot(path=tmp_path / "room-menu-390.png")
    nia.locator("#room-watch").get_by_role("button", name="Muted").click()
    expect(nia.get_by_text("This room’s notifications: Muted.")).to_be_visible()
    nia.wait_for_load_state("load")   # the page's script is running (without it, the question is a page)
    leave = nia.get_by_role("button", name="Leave room…")
    leave.focus()
    nia.keyboard.press("Enter")
    dialog = nia.get_by_role("dialog", name="Leave Eastleigh IAG?")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("you will need a new invitation to come back")
    expect(dialog.get_by_role("button", name="Stay in the room")).to_be_focused()
    axe(nia, "leave dialog")
    nia.screenshot(path=tmp_path / "leave-dialog-390.png")
    nia.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(leave).to_be_focused()
    nia.keyboard.press("Enter")
    nia.keyboard.press("Shift+Tab")
    expect(dialog.get_by_role("button", name="Leave the room")).to_be_focused()
    nia.keyboard.press("Enter")
    expect(nia).to_have_url(f"{site.url}/rooms")
    expect(nia.get_by_text("You have left Eastleigh IAG.")).to_be_visible()
    axe(nia, "left the room")
