"""First run: a fresh install sends the first visitor to the setup page, which
creates the administrator."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PASSWORD, axe

pytestmark = pytest.mark.browser


def test_first_run_setup_creates_the_administrator(fresh_site, pages):
    page = pages.open(fresh_site)
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/setup$"))
    axe(page)
    expect(page.get_by_role("heading", level=1)).to_have_text("Set up Collab")

    page.get_by_label("Your name").fill("Jo Whitfield")
    page.get_by_label("Email").fill("jo.whitfield@hampshire.police.uk")
    page.get_by_label("Your organisation").fill("Hampshire Constabulary")
    # A password the server refuses: the error is summarised, focused and tied to the field.
    page.get_by_label("Password").fill("aaaaaaaaaaaaaaaa")
    page.get_by_role("button", name="Create administrator").click()
    summary = page.get_by_role("alert")
    expect(summary).to_contain_text("That password is too common")
    axe(page, "with a form error")
    expect(summary).to_be_focused()
    password = page.get_by_label("Password")
    expect(password).to_have_attribute("aria-invalid", "true")
    expect(password).to_have_accessible_description(re.compile("too common"))
    # The summary's link takes you to the field.
    summary.get_by_role("link").click()
    expect(password).to_be_focused()
    # What was typed is kept, except the password.
    expect(page.get_by_label("Your name")).to_have_value("Jo Whitfield")

    password.fill(PASSWORD)
    page.get_by_role("button", name="Create administrator").click()
    expect(page).to_have_url(re.compile(r"/rooms$"))
    axe(page)
    expect(page.get_by_role("status").first).to_contain_text("You are its first administrator")
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Jo Whitfield")).to_be_visible()
    expect(nav.get_by_role("link", name="Administration")).to_be_visible()

    # Setup is over: a second visitor is sent to sign in, and can sign in as the new administrator.
    other = pages.open(fresh_site)
    other.goto("/setup")
    expect(other).to_have_url(re.compile(r"/login$"))
    axe(other)
    other.get_by_label("Email").fill("jo.whitfield@hampshire.police.uk")
    other.get_by_label("Password").fill(PASSWORD)
    other.get_by_role("button", name="Sign in").click()
    expect(other).to_have_url(re.compile(r"/rooms$"))
    axe(other)
    expect(other.get_by_role("navigation", name="Main").get_by_role("link", name="Jo Whitfield")).to_be_visible()
