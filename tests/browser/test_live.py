"""Two people, two browser contexts, one thread, on the real production server:
one sees the other typing, their reply placed in the tree, a reaction, and the
@mention notification in the bell, all without reloading. Then the composer
while the connection is down: the text stays, it says so, and it is sent when
the connection returns."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PASSWORD, api, axe, new_token

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def people(site):
    """Two accounts (by the CLI), a room they are both in and a thread with one reply (by the API)."""
    for email, name in (("ann.able@example.police.uk", "Ann Able"), ("bea.bright@example.org", "Bea Bright")):
        site.flask("users", "create", "--email", email, "--name", name, "--kind", "staff", input=PASSWORD + "\n")
    ann_tok, bea_tok = new_token(site, "ann.able@example.police.uk"), new_token(site, "bea.bright@example.org")
    bea = api(site, bea_tok, "GET", "/me")
    room = api(site, ann_tok, "POST", "/rooms", {"name": "Stop and search scrutiny", "visibility": "private"})
    thread = api(site, ann_tok, "POST", f"/rooms/{room['id']}/threads",
                 {"title": "Draft policy, second reading", "body": "Comments on section 3, please."})
    first = api(site, ann_tok, "POST", f"/threads/{thread['id']}/posts", {"body": "Section 3.2 needs a definition."})
    api(site, ann_tok, "POST", f"/rooms/{room['id']}/members", {"user_id": bea["id"]})
    return {"room": room, "thread": thread, "first": first, "ann_tok": ann_tok, "bea_tok": bea_tok}


def live(page):
    expect(page.locator("html[data-live=on]")).to_have_count(1)


def test_two_people_see_each_other_live(site, pages, people):
    thread, first = people["thread"], people["first"]
    ann = pages.open(site, email="ann.able@example.police.uk")
    bea = pages.open(site, email="bea.bright@example.org")
    for page in (ann, bea):
        page.goto(f"/threads/{thread['id']}")
        live(page)
        axe(page)
    expect(ann.locator("#presence")).to_contain_text("Bea Bright")
    expect(ann.locator("#presence")).to_have_text(re.compile(r"[^.]\.$"))   # one full stop, never two

    # Bea starts typing a reply to Ann's first reply; Ann sees it
    bea.locator(f'[data-reply-to="{first["id"]}"]').click()
    box = bea.locator(f'[data-reply-slot="{first["id"]}"] textarea')
    box.press_sequentially("Agreed, ")
    expect(ann.locator("#typing")).to_have_text("Bea Bright is typing…")

    # @mention with autocomplete: "@An" offers Ann, Enter picks her
    box.press_sequentially("@An")
    option = bea.get_by_role("option", name=re.compile("Ann Able"))
    expect(option).to_be_visible()
    axe(bea, "mention suggestions open")
    box.press("Enter")
    expect(box).to_have_value("Agreed, @Ann Able ")
    box.press_sequentially("can you draft the definition?")
    bea.locator(f'[data-reply-slot="{first["id"]}"]').get_by_role("button", name="Post reply").click()
    expect(box).to_have_count(0)  # the inline composer closes once the server confirms

    # Ann sees the reply nested under her post, and the mention in the bell, without reloading
    nested = ann.locator(f'#post-{first["id"]}').locator("xpath=ancestor::li[1]").locator("ol.replies article.post")
    expect(nested).to_have_count(1)
    expect(nested).to_contain_text("can you draft the definition?")
    expect(nested.locator(".author")).to_have_text("Bea Bright")
    # the mention is in the thread Ann is reading, so it arrives already read: no badge (notifications.js)
    expect(ann.locator("[data-bell-count]")).to_have_text("0 unread")
    expect(ann.locator("[data-bell-count]")).to_be_hidden()
    expect(ann.locator("#typing")).to_have_text("")
    axe(ann, "after a live reply")

    # a reaction from Ann shows on Bea's page
    ann_post = ann.locator(f'#post-{first["id"]}')
    ann_post.get_by_role("button", name=re.compile("^More actions")).click()  # the post's "…" menu
    ann.get_by_role("menuitem", name="Add reaction").click()
    ann.locator(f'#react-menu-{first["id"]}').get_by_role("button", name="thumbs up").click()
    expect(bea.locator(f'#post-{first["id"]} > .reactions .reaction')).to_have_text("👍 1")
    expect(ann_post.locator(":scope > .reactions .reaction")).to_have_attribute("aria-pressed", "true")

    # a reply on the main composer lands at the end of the top-level list for both
    ann.get_by_label("Your reply").first.fill("Will do by Friday.")
    ann.get_by_role("button", name="Post reply").first.click()
    last = bea.locator(".thread-replies > ol.replies > li").last
    expect(last).to_contain_text("Will do by Friday.")
    axe(bea, "after a live reply at the top level")

    # an edit and a removal (here through the API) show on the open page
    post_id = int(last.locator("article.post").get_attribute("data-post-id"))
    api(site, people["ann_tok"], "PATCH", f"/posts/{post_id}", {"body": "Will do by **Thursday**."})
    expect(last.locator(".post-body strong")).to_have_text("Thursday")
    expect(last.locator(".post-head")).to_contain_text("edited")
    api(site, people["ann_tok"], "DELETE", f"/posts/{post_id}")
    expect(last.locator(".tombstone")).to_have_text("This post was removed.")
    expect(last.locator(".author")).to_have_text("Post removed")
    expect(last).not_to_contain_text("Thursday")

    # the notification is on the notifications page, read (Ann saw the post when it arrived); it leads back
    ann.locator("[data-bell]").click()
    expect(ann).to_have_url(re.compile(r"/notifications$"))
    axe(ann)
    expect(ann.locator(".notification")).to_have_count(1)
    expect(ann.locator(".notification.is-unread")).to_have_count(0)
    ann.get_by_role("link", name=re.compile("Bea Bright mentioned you")).click()
    expect(ann).to_have_url(re.compile(rf"/threads/{thread['id']}"))
    axe(ann)
    expect(ann.locator("[data-bell-count]")).to_be_hidden()


def test_offline_composer_keeps_the_text_and_sends_on_reconnect(site, pages, people):
    thread = people["thread"]
    bea = pages.open(site, email="bea.bright@example.org")
    state = {"online": True, "sockets": []}

    def route(ws):
        if not state["online"]:
            ws.close()
            return
        ws.connect_to_server()
        state["sockets"].append(ws)

    bea.route_web_socket(re.compile(r"/socket\.io/"), route)
    bea.goto(f"/threads/{thread['id']}")
    live(bea)
    axe(bea)

    state["online"] = False
    for ws in state["sockets"]:
        ws.close()
    expect(bea.locator("html[data-live=off]")).to_have_count(1)
    box = bea.get_by_label("Your reply").first
    box.fill("Written on the train, no signal.")
    bea.get_by_role("button", name="Post reply").first.click()
    expect(bea.locator("[data-composer-status]").first).to_contain_text("offline")
    expect(box).to_have_value("Written on the train, no signal.")
    axe(bea, "offline, reply waiting")

    # the text survives a reload while still offline
    bea.reload()
    expect(bea.get_by_label("Your reply").first).to_have_value("Written on the train, no signal.")
    axe(bea)

    # The client reconnects by itself, then sends what was waiting. (A socket the test closes before it
    # opens is noticed only at the client's 10 s connect timeout, hence the long wait.)
    state["online"] = True
    expect(bea.get_by_label("Your reply").first).to_have_value("", timeout=40_000)
    expect(bea.locator(".thread-replies article.post", has_text="Written on the train")).to_have_count(1)
    posts = api(site, people["ann_tok"], "GET", f"/threads/{thread['id']}")["posts"]
    assert [p["body"] for p in posts].count("Written on the train, no signal.") == 1
    assert bea.evaluate("localStorage.getItem('collab-outbox')") is None
    axe(bea, "sent after reconnecting")


def test_room_page_shows_new_threads_replies_and_members_live(site, pages, people, admin_token):
    room, thread = people["room"], people["thread"]
    ann = pages.open(site, email="ann.able@example.police.uk")
    ann.goto(f"/rooms/{room['id']}")
    live(ann)
    axe(ann)
    count = ann.locator("#threads-h .hint").inner_text()
    new = api(site, people["bea_tok"], "POST", f"/rooms/{room['id']}/threads",
              {"title": "Community meeting dates", "body": "Which evenings suit?"})
    first_item = ann.locator("#thread-list > li").first
    expect(first_item.get_by_role("link", name="Community meeting dates")).to_be_visible()
    expect(first_item).to_contain_text("1 new")
    expect(ann.locator("#threads-h .hint")).not_to_have_text(count)
    api(site, people["bea_tok"], "POST", f"/threads/{thread['id']}/posts", {"body": "Back to the policy."})
    item = ann.locator(f'.thread-item[data-thread-id="{thread["id"]}"]')
    expect(ann.locator("#thread-list > li").first).to_have_attribute("data-thread-id", str(thread["id"]))
    expect(item.locator(".unread")).to_contain_text("new")
    admin = api(site, admin_token, "GET", "/me")
    api(site, people["ann_tok"], "POST", f"/rooms/{room['id']}/members", {"user_id": admin["id"], "role": "observer"})
    expect(ann.locator("#live-activity")).to_have_text(f"{admin['name']} joined the room as observer.")
    axe(ann, "after live thread, reply and member")
    assert new["id"] > thread["id"]
