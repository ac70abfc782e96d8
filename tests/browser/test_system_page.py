"""The administrators' System page (issue 17) in a real browser on a real server (gunicorn, search worker
and media worker started by `flask serve`): what it says, axe-core, and how it looks on a laptop and a
phone (screenshots in the test's folder)."""
from __future__ import annotations

import json
import urllib.request

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import ADMIN_EMAIL, axe

pytestmark = pytest.mark.browser


def test_system_page_on_a_laptop_and_a_phone(site, pages, tmp_path):
    with urllib.request.urlopen(f"{site.url}/readyz", timeout=30) as resp:   # the test runs on loopback
        ready = json.loads(resp.read())
    assert ready["ready"] is True and ready["checks"]["database"]["ok"] is True
    for width, height in ((1366, 768), (390, 844)):
        page = pages.open(site, email=ADMIN_EMAIL, width=width, height=height)
        page.goto("/admin/people")
        axe(page, f"administration at {width} px")
        page.get_by_role("link", name="System", exact=True).click()
        expect(page.get_by_role("heading", level=1)).to_have_text("System")
        axe(page, f"System page at {width} px")
        for heading in ("Checks", "Versions and uptime", "Search index", "Waiting jobs", "Workers", "Disk",
                        "Last backup"):
            expect(page.get_by_role("heading", level=2, name=heading)).to_be_visible()
        expect(page.locator("#system-summary")).to_contain_text("Everything is working." if ready["status"] == "ok" else "Working, with a problem")
        expect(page.get_by_text("No backup recorded on this server")).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        page.screenshot(path=str(tmp_path / f"system-{width}.png"), full_page=True)
