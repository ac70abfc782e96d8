"""A Q&A session live (issue 13), three people on three pages: the asker types a question into the
session's box (the session is moderated: it waits), the room's owner (a moderator, and the host) approves
it, a colleague on a phone (390 x 844) upvotes it, the host marks it "Now answering" and then answers it
in writing; the asker sees each step arrive live on their page without reloading. Every page passes
axe-core and the phone page reflows. The session page is photographed for docs/img (1366 x 768, 390 x 844)."""
from __future__ import annotations

import os
import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import ADMIN_EMAIL, PASSWORD, api, axe, new_token
from tests.browser.test_small_screen import assert_reflows

pytestmark = pytest.mark.browser

IMG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs", "img")
QUESTION = "When will the new body-worn cameras reach response teams?"


def _person(site, email: str, name: str) -> int:
    out = site.flask("users", "create", "--email", email, "--name", name, "--kind", "staff",
                     "--org", "Hampshire Constabulary", input=PASSWORD + "\n").stdout
    return int(re.search(r"Created account (\d+)", out).group(1))


def test_question_asked_approved_upvoted_and_answered_live(site, pages, admin_token):
    asker_id = _person(site, "sam.sergeant@example.org", "Sam Sergeant")
    voter_id = _person(site, "vic.constable@example.org", "Vic Constable")
    room = api(site, admin_token, "POST", "/rooms", {"name": "#askthechief", "visibility": "private"})
    for uid in (asker_id, voter_id):
        api(site, admin_token, "POST", f"/rooms/{room['id']}/members", {"user_id": uid, "role": "member"})
    s = api(site, admin_token, "POST", f"/rooms/{room['id']}/qa",
            {"title": "Ask the Chief Constable: December", "starts_at": "2026-12-10T18:00:00Z", "moderated": True})
    voter_token = new_token(site, "vic.constable@example.org")
    for text in ("Can we have more say over rest-day cancellations?", "Is the custody suite refit still going ahead?"):
        q = api(site, voter_token, "POST", f"/qa/{s['id']}/questions", {"body": text})
        api(site, admin_token, "POST", f"/questions/{q['id']}/approve")
    url = f"/qa/{s['id']}"

    asker = pages.open(site, email="sam.sergeant@example.org", width=1366, height=768)
    asker.goto(url)
    axe(asker)
    asker.get_by_label("Your question").fill(QUESTION)
    asker.get_by_role("button", name="Send").click()
    expect(asker.get_by_text("it shows once a moderator approves it")).to_be_visible()
    expect(asker.get_by_role("heading", name=re.compile("Your questions waiting for approval"))).to_be_visible()
    axe(asker, "question waiting")

    host = pages.open(site, email=ADMIN_EMAIL, width=1366, height=768)
    host.goto(url)
    axe(host)
    queue = host.locator(".qa-queue")
    expect(queue).to_contain_text(QUESTION)
    queue.get_by_role("button", name="Approve").click()
    expect(host.get_by_text("The question is approved")).to_be_visible()
    axe(host, "approved")

    # the asker's page follows live: the question leaves the waiting list and joins the open ones
    card = asker.locator(".qa-open .qa-q").filter(has=asker.locator(".qa-text", has_text=QUESTION))
    expect(card).to_be_visible()

    voter = pages.open(site, email="vic.constable@example.org", width=390, height=844)
    voter.goto(url)
    axe(voter)
    assert_reflows(voter)
    vcard = voter.locator(".qa-q").filter(has=voter.locator(".qa-text", has_text=QUESTION))
    upvote = vcard.get_by_role("button", name=re.compile("upvote"))
    upvote.focus()
    voter.keyboard.press("Enter")
    expect(vcard.locator("[data-qa-votes]")).to_have_text("1")
    expect(vcard.get_by_role("button", name=re.compile("upvote"))).to_have_attribute("aria-pressed", "true")
    axe(voter, "upvoted")
    expect(card.locator("[data-qa-votes]")).to_have_text("1")          # live on the asker's page

    # (a moderator's card lists the other questions to merge into: find the card by its own text)
    hcard = host.locator(".qa-q").filter(has=host.locator(".qa-text", has_text=QUESTION))
    hcard.get_by_role("button", name="Answer now").click()
    expect(host.locator(".qa-now .qa-text")).to_contain_text(QUESTION)
    axe(host, "now answering")
    banner = asker.locator(".qa-now")
    expect(banner).to_contain_text(QUESTION)                           # live
    expect(voter.locator(".qa-now")).to_contain_text(QUESTION)
    axe(asker, "now answering, live")
    axe(voter, "now answering, live")
    assert_reflows(voter)
    asker.screenshot(path=os.path.join(IMG, "qa.png"))
    voter.screenshot(path=os.path.join(IMG, "qa-phone.png"))

    now = host.locator(".qa-now .qa-q")
    now.locator("summary", has_text="Answer").click()
    now.get_by_label(re.compile("Written answer")).fill("The first 200 arrive in January; response teams first.")
    now.get_by_role("button", name="Post the answer").click()
    expect(host.get_by_text("The answer is posted.")).to_be_visible()
    axe(host, "answered")
    answered = asker.locator(".qa-answered .qa-q").filter(has=asker.locator(".qa-text", has_text=QUESTION))
    expect(answered).to_contain_text("The first 200 arrive in January")   # live
    expect(asker.locator(".qa-now")).to_have_count(0)
    axe(asker, "answered, live")
