"""Self-service password reset by e-mail (issue 14) against a real SMTP server (aiosmtpd): the same answer
whether or not the address has an account, a single-use expiring link, every session ended on reset,
rate-limited, audited; and the display preferences that follow an account to every page."""
from __future__ import annotations

import re
from datetime import timedelta

import lxml.html
import pytest
from sqlalchemy import select, update

from auth import password_reset, preferences
from auth.audit import AuditEvent
from auth.models import PasswordReset
from collab.db import utcnow
from collab.tokens import digest
from collab.errors import Invalid
from collab.extensions import db
from collab import tasks
from tests.conftest import PASSWORD
from tests.live_support import login_client

NEW_PASSWORD = "a brand new passphrase 42"


@pytest.fixture
def app_config(smtp):
    return {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": smtp.port, "RESET_LIMIT": "1000 per minute"}


def _link(body: str) -> str:
    return re.search(r"http://localhost(/reset/\S+)", body).group(1)


def _answer(resp) -> str:
    return lxml.html.fromstring(resp.data).xpath("//div[@role='status']")[0].text_content().strip()


def test_reset_by_email_answers_alike_works_once_and_ends_every_session(app, make, smtp):
    user = make.user(email="ann@example.org")
    signed_in = login_client(app, user)
    assert signed_in.get("/account").status_code == 200
    c = app.test_client()
    assert b"/password/forgot" in c.get("/login").data
    unknown = c.post("/password/forgot", data={"email": "nobody@example.org"})
    known = c.post("/password/forgot", data={"email": " ANN@example.org "})
    assert unknown.status_code == known.status_code == 200 and _answer(unknown) == _answer(known)
    tasks.settle(app)
    mails = smtp.wait(1)
    assert len(mails) == 1 and mails[0]["to"] == ["ann@example.org"]     # nothing went to the unknown address
    link = _link(mails[0]["body"])
    rows = list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == "auth.password_reset_requested")
                                   .order_by(AuditEvent.id)))
    assert [r.target_id for r in rows] == [None, user.id]
    assert c.get(link).status_code == 200
    r = c.post(link, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert r.status_code == 302 and r.headers["Location"].endswith("/login")
    assert signed_in.get("/account").status_code == 302                  # every session ended
    assert c.post(link, data={"password": "another passphrase 99", "confirm": "another passphrase 99"}
                  ).status_code == 422                                     # single use
    assert db.session.scalar(select(AuditEvent.id).where(AuditEvent.action == "auth.password_reset",
                                                         AuditEvent.target_id == user.id))
    assert c.post("/login", data={"email": user.email, "password": NEW_PASSWORD}).status_code == 302


def test_links_expire_and_asking_again_replaces_the_earlier_link(app, make, smtp):
    make.user(email="bea@example.org")
    password_reset.request_reset("bea@example.org")
    password_reset.request_reset("bea@example.org")
    tasks.settle(app)
    links = [_link(m["body"]) for m in smtp.wait(2)]
    # The two e-mails are sent by background tasks, so they may arrive in either order: the link asked for
    # first is the one whose row was written first.
    order = {h: i for i, h in enumerate(db.session.scalars(select(PasswordReset.token_hash)
                                                           .order_by(PasswordReset.id)))}
    first, second = sorted(links, key=lambda link: order[digest(link.rsplit("/", 1)[1])])
    c = app.test_client()
    assert c.get(first).status_code == 422           # replaced by the second
    db.begin_write()
    db.session.execute(update(PasswordReset).where(PasswordReset.used_at.is_(None))
                       .values(expires_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    assert c.get(second).status_code == 422          # expired
    # bad input gets the one answer too, never an error
    assert password_reset.request_reset(None) == password_reset.ANSWER
    assert password_reset.request_reset("x" * 5000) == password_reset.ANSWER
    assert c.post("/password/forgot", data={"email": "\x00"}).status_code == 200


def test_requests_are_rate_limited_per_address_asked_about(app, make, smtp):
    app.config["RESET_LIMIT"] = "2 per hour"
    make.user(email="cat@example.org")
    c = app.test_client()
    codes = [c.post("/password/forgot", data={"email": "cat@example.org"},
                    environ_base={"REMOTE_ADDR": f"198.51.100.{i}"}).status_code for i in range(3)]
    assert codes == [200, 200, 429]


def test_without_smtp_there_is_no_self_service_reset(app, make):
    app.config["SMTP_HOST"] = None
    c = app.test_client()
    assert c.get("/password/forgot").status_code == 404
    assert b"/password/forgot" not in c.get("/login").data


def test_display_preferences_are_kept_per_account_and_on_every_page(app, make):
    user = make.user()
    c = login_client(app, user)
    html_class = (lambda path: lxml.html.fromstring(c.get(path).data).xpath("/html/@class"))  # noqa: E731
    assert html_class("/rooms") == []
    r = c.post("/account", data={"action": "display", "text_size": "larger", "high_contrast": "on"})
    assert r.status_code == 302
    for path in ("/rooms", "/account", "/notifications", "/search?q=x"):
        assert html_class(path) == ["text-larger contrast-high"], path
    r = c.post("/account", data={"action": "display", "text_size": "huge"})
    assert r.status_code == 200 and b"Text size must be one of" in r.data
    assert html_class("/rooms") == ["text-larger contrast-high"]        # a refused change changes nothing
    preferences.set_display(user, text_size="large", high_contrast="")
    assert html_class("/rooms") == ["text-large"]
    with pytest.raises(Invalid):
        preferences.set_display(user, text_size="large", high_contrast="maybe")
    assert preferences.html_class(None) == ""
    assert login_client(app, make.user()).get("/rooms").data.count(b'class="text-') == 0
    assert PASSWORD
