"""Rooms, threads and posts in a real browser: create a room, start a thread,
reply to a reply with the inline composer, edit a post (and read its history),
attach an image."""
from __future__ import annotations

import io
import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import (
    ADMIN_EMAIL,
    ADMIN_NAME,
    api,
    axe,
    png_bytes,
    sent_post,
)

pytestmark = pytest.mark.browser


def make_thread(site, token, *, room: str, title: str, body: str) -> dict:
    """Arrange a room and thread through the API (what these tests are not about)."""
    r = api(site, token, "POST", "/rooms", {"name": room, "description": "", "visibility": "private"})
    return api(site, token, "POST", f"/rooms/{r['id']}/threads", {"title": title, "body": body})


def test_create_room_and_start_thread(site, pages):
    page = pages.open(site, email=ADMIN_EMAIL)
    page.goto("/rooms")
    axe(page)
    page.get_by_role("link", name="New room").click()
    expect(page).to_have_url(re.compile(r"/rooms/new$"))
    axe(page)
    page.get_by_label("Room name").fill("Southampton IAG: neighbourhood policing")
    page.get_by_label("What is it for?").fill("Papers and comment between IAG meetings.")
    visibility = page.get_by_role("group", name="Who can read it")
    expect(visibility.get_by_role("radio", name=re.compile("^Private"))).to_be_checked()
    visibility.get_by_role("radio", name=re.compile("^Organisation")).check()
    page.get_by_role("button", name="Create room").click()
    expect(page).to_have_url(re.compile(r"/rooms/\d+$"))
    axe(page)
    room_url = page.url
    expect(page.get_by_role("heading", level=1)).to_have_text("Southampton IAG: neighbourhood policing")
    expect(page.get_by_role("status").first).to_contain_text("Room “Southampton IAG: neighbourhood policing” created")
    expect(page.get_by_text("Organisation — all staff of one organisation")).to_be_visible()
    expect(page.get_by_text("You are an owner")).to_be_visible()
    expect(page.get_by_text("No threads yet.")).to_be_visible()

    page.get_by_role("link", name="New thread").click()
    expect(page).to_have_url(re.compile(r"/rooms/\d+/threads/new$"))
    axe(page)
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Start a thread in Southampton IAG: neighbourhood policing")
    page.get_by_label("Title").fill("Evening patrols around the Bargate")
    page.get_by_label("Opening post").fill(
        "We would welcome views on **evening patrols**:\n\n- where people feel unsafe\n- what times matter\n")
    page.get_by_role("button", name="Start thread").click()
    expect(page).to_have_url(re.compile(r"/threads/\d+$"))
    axe(page)
    expect(page.get_by_role("heading", level=1)).to_have_text("Evening patrols around the Bargate")
    opening = page.locator(".opening").get_by_role("article", name=ADMIN_NAME)
    expect(opening.locator("strong")).to_have_text("evening patrols")
    expect(opening.get_by_role("listitem")).to_have_text(["where people feel unsafe", "what times matter"])
    expect(page.get_by_text("No replies yet.")).to_be_visible()

    page.get_by_role("link", name="Southampton IAG: neighbourhood policing").click()
    expect(page).to_have_url(room_url)
    axe(page)
    item = page.get_by_role("listitem").filter(has=page.get_by_role("link", name="Evening patrols around the Bargate"))
    expect(item).to_contain_text(f"Started by {ADMIN_NAME} · 1 post")


def test_reply_to_a_reply_with_the_inline_composer(site, admin_token, pages):
    t = make_thread(site, admin_token, room="Reply test room", title="Town centre CCTV",
                    body="Should the CCTV review include the IAG?")
    opening_id = t["posts"][0]["id"]
    page = pages.open(site, email=ADMIN_EMAIL)
    page.goto(f"/threads/{t['id']}")
    axe(page)

    opening = page.locator(f"#post-{opening_id}")
    opening.get_by_role("link", name=f"Reply to {ADMIN_NAME}").click()
    box = opening.get_by_role("textbox", name="Your reply")
    expect(box).to_be_focused()
    axe(page, "inline reply composer open")
    box.fill("Yes: the IAG saw the last review and it helped.")
    opening.get_by_role("button", name="Post reply").click()
    first, first_id = sent_post(page, "Yes: the IAG saw the last review and it helped.")
    axe(page, "first reply posted")
    expect(first).to_be_focused()
    expect(page.locator(f"li:has(> #post-{first_id})")).to_have_class(re.compile(r"\bdepth-1\b"))

    # Reply to that reply: the new post sits inside the first reply's own list of replies.
    first.get_by_role("link", name=f"Reply to {ADMIN_NAME}").click()
    box = first.get_by_role("textbox", name="Your reply")
    expect(box).to_be_focused()
    axe(page, "inline reply composer open on a reply")
    box.fill("Agreed, and this time include the **night-time economy** group.")
    first.get_by_role("button", name="Post reply").click()
    second, second_id = sent_post(page, "Agreed, and this time include the night-time economy group.")
    axe(page, "reply to the reply posted")
    expect(second).to_be_focused()
    expect(second.locator("strong")).to_have_text("night-time economy")
    nested = page.locator(f"li:has(> #post-{first_id}) > ol.replies > li > #post-{second_id}")
    expect(nested).to_have_count(1)
    # After a reload the server draws the same tree.
    page.reload()
    axe(page)
    expect(nested).to_have_count(1)
    # The tree as the API sees it agrees with the page.
    posts = {p["id"]: p for p in api(site, admin_token, "GET", f"/threads/{t['id']}")["posts"]}
    assert posts[first_id]["parent_id"] == opening_id
    assert posts[second_id]["parent_id"] == first_id

    # The inline composer also closes with its Cancel button, giving focus back to Reply.
    reply_link = page.locator(f"#post-{second_id}").get_by_role("link", name=f"Reply to {ADMIN_NAME}")
    reply_link.click()
    composer = page.locator(f"#post-{second_id}").get_by_role("textbox", name="Your reply")
    expect(composer).to_be_focused()
    page.locator(f"#post-{second_id}").get_by_role("button", name="Cancel").click()
    expect(composer).to_have_count(0)
    expect(reply_link).to_be_focused()


def test_edit_a_post_shows_edited_and_its_history(site, admin_token, pages):
    t = make_thread(site, admin_token, room="Edit test room", title="Meeting notes, March",
                    body="The next meeting is on Tuesday.")
    post_id = t["posts"][0]["id"]
    page = pages.open(site, email=ADMIN_EMAIL)
    page.goto(f"/threads/{t['id']}")
    axe(page)
    post = page.locator(f"#post-{post_id}")
    expect(post.get_by_role("link", name="edited")).to_have_count(0)
    post.get_by_role("button", name=re.compile("^More actions")).click()  # the post's "…" menu
    page.get_by_role("menuitem", name="Edit").click()
    expect(page).to_have_url(re.compile(rf"/posts/{post_id}/edit$"))
    axe(page)
    body = page.get_by_label("Post text")
    expect(body).to_have_value("The next meeting is on Tuesday.")
    body.fill("The next meeting is on *Wednesday*, not Tuesday.")
    page.get_by_role("button", name="Save changes").click()
    expect(page).to_have_url(re.compile(rf"/threads/{t['id']}\?page=1#post-{post_id}$"))
    axe(page)
    post = page.locator(f"#post-{post_id}")
    expect(post.locator(".post-body")).to_have_text("The next meeting is on Wednesday, not Tuesday.")
    expect(post.locator("em")).to_have_text("Wednesday")
    post.get_by_role("link", name="edited").click()
    expect(page).to_have_url(re.compile(rf"/posts/{post_id}/history$"))
    axe(page)
    current = page.get_by_role("region", name=re.compile("^Current version"))
    expect(current).to_contain_text("The next meeting is on Wednesday, not Tuesday.")
    earlier = page.get_by_role("region", name=re.compile("^Version written"))
    expect(earlier).to_have_count(1)
    expect(earlier).to_contain_text("The next meeting is on Tuesday.")
    page.get_by_role("link", name="Back to the post in “Meeting notes, March”").click()
    expect(page).to_have_url(re.compile(rf"#post-{post_id}$"))
    axe(page)


def test_attach_an_image_shows_a_thumbnail(site, admin_token, pages):
    t = make_thread(site, admin_token, room="Attachment test room", title="Patrol map",
                    body="Where should the extra patrols go?")
    png = png_bytes(900, 600)
    page = pages.open(site, email=ADMIN_EMAIL)
    page.goto(f"/threads/{t['id']}")
    axe(page)
    composer = page.get_by_role("region", name="Reply to the thread")
    composer.get_by_role("textbox", name="Your reply").fill("Here is the map from the last meeting.")
    composer.get_by_label("Attach files").set_input_files(
        {"name": "patrol-map.png", "mimeType": "image/png", "buffer": png})
    composer.get_by_role("button", name="Post reply").click()
    # With a file the ordinary form is used: the page reloads at the new post, which has focus.
    expect(page).to_have_url(re.compile(r"#post-\d+$"))
    post, post_id = sent_post(page, "Here is the map from the last meeting.")
    assert page.url.endswith(f"#post-{post_id}")
    axe(page)
    expect(post).to_be_focused()
    thumb = post.get_by_role("img", name="Image: patrol-map.png")
    expect(thumb).to_be_visible()
    # The thumbnail really loaded, and it is smaller than the original.
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=thumb.element_handle())
    natural = thumb.evaluate("img => [img.naturalWidth, img.naturalHeight]")
    assert 0 < natural[0] < 900 and 0 < natural[1] < 600, natural
    resp = page.request.get(thumb.get_attribute("src"))
    assert resp.ok and resp.headers["content-type"] == "image/png"
    from PIL import Image

    assert Image.open(io.BytesIO(resp.body())).format == "PNG"
    # The original is offered as a download, byte for byte.
    download = post.get_by_role("link", name="patrol-map.png", exact=True)
    resp = page.request.get(download.get_attribute("href"))
    assert resp.ok and resp.body() == png
    assert resp.headers["content-disposition"].startswith("attachment")
    assert resp.headers["x-content-type-options"] == "nosniff"
