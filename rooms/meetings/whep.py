"""WHEP (WebRTC-HTTP Egress Protocol) for a meeting's web broadcast (issue 16): other players (GStreamer's
`whepsrc`, OBS, a WHEP test page) receive what the viewer page receives — the stage and a speaker's audio.

    POST   /api/v1/meetings/<id>/whep           Authorization: Bearer <API token>, Content-Type: application/sdp,
                                                 the player's offer  →  201, the answer (application/sdp),
                                                 Location: the session
    DELETE /api/v1/meetings/<id>/whep/<session>  ends it

The caller must be allowed to watch (rooms.policy.may_watch_broadcast, through broadcast.viewer_token, which
also records the media grant the revocation path needs). The web app hands the offer to the meeting's media
worker over its signalling WebSocket with a viewer token; the worker answers, keeps the session and lets the
connection go (media/signalling.py `_whep`). Ending it, or losing access, reaches the worker as a signed
control message like every other way out. The worker's answer carries its candidates; trickle (PATCH) is not
supported (405), so a player must send its candidates in the offer, as most do.
"""
from __future__ import annotations

import json
import logging

from flask import current_app
from websockets.exceptions import WebSocketException
from websockets.sync.client import connect

from auth.models import User
from collab import validate
from collab.errors import Invalid, NotFound, Unavailable
from rooms.meetings import access, broadcast, media_control

log = logging.getLogger(__name__)

MAX_OFFER = 100_000   # characters: an SDP offer is a few kilobytes
TIMEOUT = 10.0
SESSION_CHARS = 64


def offer(actor: User, meeting_id: object, sdp: str) -> dict[str, str]:
    """The worker's answer to a player's offer, and the session's id."""
    if not sdp.strip() or len(sdp) > MAX_OFFER or not sdp.lstrip().startswith("v=0"):
        raise Invalid("Send the player's SDP offer as the body, with Content-Type: application/sdp.", "body")
    joined = broadcast.viewer_token(actor, meeting_id)
    try:
        with connect(joined["url"], open_timeout=TIMEOUT, close_timeout=1, max_size=2**20) as ws:
            ws.send(json.dumps({"type": "join", "token": joined["token"], "offer": sdp}))
            reply = json.loads(ws.recv(timeout=TIMEOUT))
    except (OSError, TimeoutError, WebSocketException, ValueError) as exc:
        log.warning("the media worker did not answer a WHEP offer: %r", exc)
        raise Unavailable("The media server did not answer. Try again in a moment.") from None
    if reply.get("type") != "answer":
        message = reply.get("message") or "The media server refused the offer."
        if reply.get("code") == "bad_sdp":
            raise Invalid(message, "body")
        raise Unavailable(message)
    return {"sdp": reply["sdp"], "session": reply["session"], "url": joined["url"]}


def stop(actor: User, meeting_id: object, session: object) -> None:
    """End a WHEP session (the player's DELETE): its worker closes it. Anyone who may see the meeting may
    ask, but only the player holds the session's id (random, in the Location it was given)."""
    meeting = access.get_meeting(actor, meeting_id)
    sid = validate.text(session, "session", max_len=SESSION_CHARS)
    if not sid.replace("-", "").replace("_", "").isalnum():
        raise NotFound("No such session.")
    secret = current_app.config["SECRET_KEY"]
    for worker in media_control.workers(meeting.media_url, current_app.config["MEDIA_URLS"]):
        media_control.whep_stop(worker, secret, meeting_id=meeting.id, session=sid)
