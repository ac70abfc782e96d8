"""Outgoing e-mail over SMTP, only when COLLAB_SMTP_HOST is set.

Without a mail server Collab still works: links are shown on screen to copy.
"""
from __future__ import annotations

import logging
import smtplib
import ssl
from email.message import EmailMessage

from flask import current_app

log = logging.getLogger(__name__)


def enabled() -> bool:
    return bool(current_app.config.get("SMTP_HOST"))


def send(to: str, subject: str, body: str) -> bool:
    """Send one plain-text message; returns False (and logs) on failure instead of raising."""
    cfg = current_app.config
    if not cfg.get("SMTP_HOST"):
        return False
    msg = EmailMessage()
    msg["From"] = cfg["MAIL_FROM"]
    msg["To"] = to
    msg["Subject"] = subject
    msg.set_content(body)
    try:
        if cfg.get("SMTP_TLS") == "ssl":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(cfg["SMTP_HOST"], cfg["SMTP_PORT"], timeout=10,
                                                  context=ssl.create_default_context())
        else:
            smtp = smtplib.SMTP(cfg["SMTP_HOST"], cfg["SMTP_PORT"], timeout=10)
        with smtp:
            if cfg.get("SMTP_TLS") == "starttls":
                smtp.starttls(context=ssl.create_default_context())
            if cfg.get("SMTP_USER"):
                smtp.login(cfg["SMTP_USER"], cfg.get("SMTP_PASSWORD") or "")
            smtp.send_message(msg)
        return True
    except (OSError, smtplib.SMTPException):
        log.exception("could not send mail to %s", to)
        return False
