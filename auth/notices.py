"""E-mails that tell account holders their sign-in details changed, so a change
they did not make does not go unnoticed. Sent only when SMTP is set
(COLLAB_SMTP_HOST); a failure to send is logged and never undoes the change."""
from __future__ import annotations

from auth.models import User
from collab import mail, timezones
from collab.db import utcnow

CHANGES = {
    "password_changed": ("Your Collab password was changed", "the password of your Collab account was changed"),
    "password_reset": ("Your Collab password was reset", "the password of your Collab account was reset with a link"),
    "mfa_enabled": ("Two-step sign-in is on for your Collab account",
                    "two-step sign-in was set up (or moved to a new phone) for your Collab account"),
    "mfa_disabled": ("Two-step sign-in is off for your Collab account",
                     "two-step sign-in was turned off for your Collab account"),
    "mfa_reset": ("An administrator turned off your two-step sign-in",
                  "an administrator turned off two-step sign-in for your Collab account"),
    "recovery_codes": ("New Collab recovery codes", ("new recovery codes were made for your Collab account; "
                                                    "the old ones no longer work")),
}


def _now_for(user: User) -> str:
    """"14:05 BST on Sunday 07 June 2026": now, in the recipient's time zone."""
    zone, now = timezones.zone_name_for(user), utcnow()
    return f"{timezones.fmt(now, zone, 'clock')} on {timezones.fmt(now, zone, 'longdate')}"


def email_changed(user: User, old_address: str) -> bool:
    """Tell the previous address that the account's e-mail address changed."""
    if not mail.enabled():
        return False
    return mail.send(old_address, "The e-mail address of your Collab account was changed",
                     f"Hello {user.name},\n\nAt {_now_for(user)}, the e-mail address of "
                     "your Collab account was changed from this address to another one. Your other devices were "
                     "signed out.\n\nIf this was you, there is nothing to do. If it was not, tell your administrator "
                     "at once: someone else may have your password.\n")


def security_change(user: User, what: str) -> bool:
    if what not in CHANGES or not mail.enabled():
        return False
    subject, sentence = CHANGES[what]
    return mail.send(user.email, subject,
                     f"Hello {user.name},\n\nAt {_now_for(user)}, {sentence}. "
                     "Your other devices were signed out.\n\nIf this was you, there is nothing to do. If it was not, "
                     "tell your administrator at once: someone else may have your password.\n")
