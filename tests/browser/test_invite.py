"""Invite and accept: an administrator creates an invitation link on
/admin/people; someone else opens it in another browser and creates the account."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import ADMIN_EMAIL, axe

pytestmark = pytest.mark.browser


def test_invite_and_accept(site, pages):
    admin = pages.open(site, email=ADMIN_EMAIL)
    admin.get_by_role("navigation", name="Main").get_by_role("link", name="Administration").click()
    expect(admin).to_have_url(re.compile(r"/admin/people$"))
    axe(admin)

    form = admin.get_by_role("region", name="Invite someone")
    form.get_by_label("Their email").fill("eileen.brooks@example.org")
    form.get_by_label("Kind of account").select_option(label="IAG volunteer")
    form.get_by_label("Organisation", exact=True).select_option(label="Hampshire Constabulary")
    form.get_by_label("Personal note").fill("Welcome to the Hampshire IAG space, Eileen.")
    form.get_by_role("button", name="Create invitation").click()
    expect(admin.get_by_role("status").filter(has_text="Invitation created")).to_be_visible()
    axe(admin, "invitation created")
    link = admin.get_by_label("Invitation link").input_value()
    assert re.fullmatch(re.escape(site.url) + r"/invite/[\w-]+", link), link
    expect(admin.get_by_role("region", name="Open invitations")).to_contain_text("eileen.brooks@example.org")

    # The invitee, in a browser of their own (no shared cookies), opens the link.
    guest = pages.open(site)
    guest.goto(link)
    axe(guest)
    expect(guest.get_by_role("heading", level=1)).to_have_text("Create your Collab account")
    expect(guest.get_by_role("main")).to_contain_text("invited you as an IAG volunteer of Hampshire Constabulary")
    expect(guest.get_by_role("main")).to_contain_text("Welcome to the Hampshire IAG space, Eileen.")
    email = guest.get_by_label("Email")
    expect(email).to_have_value("eileen.brooks@example.org")
    expect(email).not_to_be_editable()
    name = guest.get_by_label("Your name")
    expect(name).to_have_accessible_description("As others in Collab will see it.")
    name.fill("Eileen Brooks")
    guest.get_by_label("Password", exact=True).fill("river otter kettle sundial")
    guest.get_by_role("button", name="Create account").click()
    expect(guest).to_have_url(re.compile(r"/rooms$"))
    axe(guest)
    expect(guest.get_by_role("status").first).to_contain_text("Welcome to Collab, Eileen Brooks.")
    nav = guest.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Eileen Brooks")).to_be_visible()
    expect(nav.get_by_role("link", name="Administration")).to_have_count(0)

    # The link worked once.
    again = pages.open(site)
    again.goto(link)
    axe(again)
    expect(again.get_by_role("heading", level=1)).to_have_text("This link cannot be used")

    # The administrator sees the new account, and the invitation is no longer open.
    admin.goto("/admin/people")
    axe(admin)
    row = admin.get_by_role("row").filter(has_text="eileen.brooks@example.org")
    expect(row).to_contain_text("Eileen Brooks")
    expect(row).to_contain_text("IAG volunteer")
    expect(row).to_contain_text("active")
    expect(admin.get_by_text("eileen.brooks@example.org — IAG volunteer")).to_have_count(0)
