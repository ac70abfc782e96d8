"""The authorization matrix (issue 7): every HTML route, every /api/v1 endpoint
and every Socket.IO event, for each of nine callers, against a private room,
an organisation-wide room, a national room and a non-attributed room, with the
outcome each caller must get:

    ok      allowed (any answer that is not a refusal and not a 5xx: 2xx, a
            redirect that is not to the sign-in page, or a 400/409/413/422
            about the generic input this walk sends)
    login   anonymous: a redirect to /login (pages) or 401 (API, sockets)
    404     may not see it (the same answer as for something that does not exist)
    403     can see it but may not do this
    form    (HTML form posts) the form came back (200/4xx) with a message: the
            input this walk sends was refused; nothing was done. Never a refusal
            for permission reasons: those answer 403 (or 404), see collab/forms.py

The expected outcomes are data (MATRIX, SOCKET_MATRIX), built from a few
named rows (READ, WRITE, ...). The walk goes over app.url_map and the socket
handler registry and fails for any route or event without an entry, so a new
route cannot be added without deciding who may use it.

The walk runs against the private room, then (for every route that names something in a room)
against an organisation-wide room, a national room and a non-attributed room, each with the same
callers in the same places; KIND_OVERRIDES says where the outcome differs from the private room.

Callers: anonymous; a guest and an IAG volunteer of the room's organisation
and a staff colleague (none of them members); an observer, a member, a
moderator and the owner of the room; and a site administrator who is *not* a
member (administrators do not see into private rooms).

Every request that was allowed and could have changed something is followed by
restoring the SQLite database from a snapshot (SQLite backup API), so each cell
starts from the same world. On PostgreSQL (no cheap snapshot) the GET rows of
the matrix and the socket read events run; the full walk runs on SQLite."""
from __future__ import annotations

import copy
import io
import os
import re
import sqlite3
import time

import pytest
from sqlalchemy import select

from collab.extensions import db, socketio
from tests.conftest import PASSWORD, bearer

ROLES = ("anonymous", "guest", "iag", "staff", "observer", "member", "moderator", "owner", "admin")
MEMBERS = ("observer", "member", "moderator", "owner")


def row(default: str, **per_role: str) -> dict[str, str]:
    out = {r: default for r in ROLES}
    out.update(per_role)
    return out


# Named rows (role -> outcome); room-scoped addresses point into the private room.
PUBLIC = row("ok")
INVALID_LINK = row("404")                   # invitation / reset links with an unknown token
SIGNS_OUT = row("login")                    # /logout, /setup once set up: everyone ends at the sign-in page
SIGNED_IN = row("ok", anonymous="login")
OWN_FORM = row("form", anonymous="login")   # the caller's own account forms (this walk's input is refused)
ADMIN = row("404", anonymous="login", admin="ok")
ADMIN_FORM = row("404", anonymous="login", admin="form")
READ = row("404", anonymous="login", **{m: "ok" for m in MEMBERS})
MEMBER_FORM = row("404", anonymous="login", **{m: "form" for m in MEMBERS})
WRITE = dict(READ, observer="403")
MODERATE = dict(READ, observer="403", member="403")
MODERATORS_ONLY = row("404", anonymous="login", moderator="ok", owner="ok")   # moderation pages: hidden from others
OWNER_ONLY = row("404", anonymous="login", owner="ok")
AUTHOR = dict(READ, observer="403", moderator="403", owner="403")           # the seeded reply is the member's
HOST = dict(MODERATE, moderator="403")                                       # the seeded Q&A session's host is the owner
NO_SUCH_DECK = row("404", anonymous="login")                                 # the walk names a deck that does not exist
CREATE_ROOM = row("ok", anonymous="login", guest="403")
NO_MAIL = row("404")                        # self-service password reset: only where SMTP is set (not here)

MATRIX: dict[tuple[str, str], dict[str, str]] = {
    ("DELETE", "api.api_unreact"): WRITE,
    ("DELETE", "api.delete_post"): WRITE,
    ("DELETE", "api.remove_member"): MODERATE,
    ("GET", "api.api_notifications"): SIGNED_IN,
    ("GET", "api.get_meeting"): READ,
    ("GET", "api.get_post"): READ,
    ("GET", "api.get_room"): READ,
    ("GET", "api.get_thread"): READ,
    ("GET", "api.list_members"): READ,
    ("GET", "api.list_rooms"): SIGNED_IN,
    ("GET", "api.list_threads"): READ,
    ("GET", "api.me"): SIGNED_IN,
    ("GET", "api.meeting_ics"): READ,
    ("GET", "api.meeting_state"): READ,
    ("GET", "api.my_meetings"): SIGNED_IN,
    ("GET", "api.openapi"): SIGNED_IN,
    ("GET", "api.search"): SIGNED_IN,
    ("GET", "auth.accept_invite"): INVALID_LINK,
    ("GET", "auth.account"): SIGNED_IN,
    ("GET", "auth.admin_people"): ADMIN,
    ("GET", "auth.edit_account"): ADMIN,
    ("GET", "auth.forgot_password"): NO_MAIL,
    ("GET", "rooms.bulk_invite_page"): ADMIN,
    ("GET", "rooms.people_json"): READ,
    ("GET", "auth.login"): PUBLIC,
    ("GET", "auth.reset_password"): INVALID_LINK,
    ("GET", "auth.setup"): SIGNS_OUT,
    ("GET", "core.index"): SIGNED_IN,
    ("GET", "live.mention_json"): READ,
    ("GET", "live.notifications_page"): SIGNED_IN,
    ("GET", "live.open_notification"): OWNER_ONLY,
    ("GET", "live.thread_reactions_json"): READ,
    ("GET", "meetings.deck_file"): NO_SUCH_DECK,
    ("GET", "meetings.deck_page"): NO_SUCH_DECK,
    ("GET", "meetings.deck_titles"): NO_SUCH_DECK,
    ("GET", "meetings.edit_page"): MODERATE,
    ("GET", "meetings.ics"): READ,
    ("GET", "meetings.meeting"): READ,
    ("GET", "meetings.mine"): SIGNED_IN,
    ("GET", "meetings.minutes_pdf"): READ,
    ("GET", "meetings.schedule_page"): READ,
    ("GET", "meetings.state_json"): READ,
    ("GET", "api.meeting_transcript"): READ,           # transcripts (issue 16): readers of the room
    ("GET", "api.transcript_segments"): READ,
    ("GET", "transcript.page"): READ,
    ("GET", "transcript.vtt"): READ,
    ("PATCH", "api.correct_segment"): MODERATE,        # the chairs: the room's moderators and the organiser
    ("POST", "transcript.correct"): MODERATE,
    ("POST", "transcript.captions_preference"): SIGNED_IN,   # the caller's own Captions toggle
    ("POST", "transcript.worker_report"): row("403"),  # media workers only: refused without their signature
    ("GET", "api.broadcast_state"): READ,              # the web broadcast (issue 16): readers watch and ask,
    ("POST", "api.broadcast_token"): READ,
    ("POST", "api.whep_offer"): READ,                  # WHEP (the walk's JSON body: 415, not a refusal)
    ("DELETE", "api.whep_stop"): READ,
    ("PATCH", "api.whep_trickle"): READ,               # 405: trickle is not supported
    ("GET", "broadcast.watch"): READ,                  # the chairs (the room's moderators, the organiser) run it
    ("POST", "broadcast.token"): READ,
    ("POST", "broadcast.question"): READ,
    ("POST", "broadcast.speak"): READ,                 # the seeded observer has asked already: 409 (ok) for them
    ("POST", "api.start_broadcast"): MODERATE,
    ("DELETE", "api.stop_broadcast"): MODERATE,
    ("POST", "broadcast.start"): MODERATE,
    ("POST", "broadcast.stop"): MODERATE,
    ("GET", "broadcast.queue"): MODERATE,
    ("POST", "broadcast.bring_in"): MODERATE,
    ("POST", "broadcast.dismiss"): MODERATE,
    ("GET", "api.meeting_recordings"): READ,           # recordings (issue 16): as the room's attachments;
    ("GET", "recordings.replay"): READ,                # the chairs record (the walk's meeting has nobody in
    ("GET", "recordings.file"): READ,                  # its call: 409, past the permission check)
    ("GET", "recordings.timeline"): READ,
    ("GET", "recordings.captions"): READ,
    ("POST", "api.start_recording"): MODERATE,
    ("DELETE", "api.stop_recording"): MODERATE,
    ("POST", "recordings.start"): MODERATE,
    ("POST", "recordings.stop"): MODERATE,
    ("GET", "rooms.attachment"): READ,
    ("GET", "rooms.attachment_thumb"): READ,
    ("GET", "rooms.edit"): AUTHOR,
    ("GET", "rooms.flag_post"): READ,
    ("GET", "rooms.history"): READ,
    ("GET", "rooms.members"): READ,
    ("GET", "rooms.moderate_post"): MODERATORS_ONLY,
    ("GET", "rooms.moderation_queue"): MODERATORS_ONLY,
    ("GET", "rooms.new_room"): SIGNED_IN,
    ("GET", "rooms.new_thread"): WRITE,
    ("GET", "rooms.post_link"): READ,
    ("GET", "rooms.post_actions"): READ,       # the "…" menu of a post as a page (issue 14)
    ("GET", "rooms.reply"): WRITE,
    ("GET", "rooms.room"): READ,
    ("GET", "rooms.room_trust"): OWNER_ONLY,
    ("GET", "rooms.rooms"): SIGNED_IN,
    ("GET", "search.search"): SIGNED_IN,
    ("GET", "rooms.settings"): OWNER_ONLY,
    ("GET", "auth.suspend_account"): ADMIN,
    ("GET", "rooms.thread"): READ,
    ("GET", "security.admin_audit"): ADMIN,
    ("GET", "security.admin_audit_csv"): ADMIN,
    ("GET", "rooms.admin_erase"): ADMIN,
    ("GET", "security.login_code"): SIGNED_IN,
    ("GET", "security.two_step"): SIGNED_IN,
    ("GET", "static"): PUBLIC,
    ("GET", "monitor.healthz"): PUBLIC,           # alive: says nothing else (tests/test_monitoring.py)
    ("GET", "monitor.readyz"): PUBLIC,            # status to all; detail to loopback/allowed/admins (test_monitoring)
    ("GET", "monitor.metrics_endpoint"): PUBLIC,  # this walk's client is loopback; others get 403 (test_monitoring)
    ("GET", "monitor.system"): ADMIN,
    ("PATCH", "api.edit_meeting"): MODERATE,
    ("PATCH", "api.edit_post"): AUTHOR,
    ("POST", "api.add_attachments"): AUTHOR,
    ("POST", "api.add_member"): MODERATE,
    ("POST", "api.api_notifications_read"): SIGNED_IN,
    ("POST", "api.cancel_meeting"): MODERATE,
    ("POST", "api.create_post"): WRITE,
    ("POST", "api.create_room"): CREATE_ROOM,
    ("POST", "api.create_thread"): WRITE,
    ("POST", "api.draft_key_message"): MODERATE,
    ("POST", "api.meeting_token"): READ,
    ("POST", "api.post_minutes"): MODERATE,
    ("POST", "api.start_meeting"): WRITE,
    ("POST", "api.upload_deck"): MODERATE,
    ("POST", "api.vote"): WRITE,
    ("GET", "api.poll_get"): READ,
    ("PATCH", "api.poll_change"): MODERATE,    # the seeded poll is the owner's: its creator and the moderators
    ("POST", "api.poll_close"): MODERATE,
    ("POST", "api.poll_create"): WRITE,
    ("POST", "api.poll_vote"): WRITE,
    ("GET", "polls.new"): WRITE,
    ("POST", "polls.new"): dict(MEMBER_FORM, observer="403"),
    ("GET", "polls.poll"): READ,
    ("GET", "polls.results"): READ,
    ("POST", "polls.vote"): dict(MEMBER_FORM, observer="403"),    # the walk's form chooses nothing
    ("POST", "polls.close"): MODERATE,
    ("POST", "auth.accept_invite"): INVALID_LINK,
    ("POST", "auth.account"): OWN_FORM,
    ("POST", "auth.admin_people"): ADMIN_FORM,
    ("POST", "auth.edit_account"): ADMIN_FORM,
    ("POST", "auth.forgot_password"): NO_MAIL,
    ("POST", "rooms.bulk_invite_page"): ADMIN_FORM,
    ("POST", "auth.login"): SIGNED_IN,
    ("POST", "auth.logout"): SIGNS_OUT,
    ("POST", "auth.reset_password"): INVALID_LINK,
    ("POST", "auth.setup"): SIGNS_OUT,
    ("POST", "live.notifications_page"): OWN_FORM,
    ("POST", "live.react"): WRITE,
    ("POST", "meetings.cancel"): MODERATE,
    ("POST", "meetings.deck_delete"): dict(MODERATE, moderator="404", owner="404"),  # chairs: no such deck
    ("POST", "meetings.deck_upload"): MODERATE,
    ("POST", "meetings.edit_page"): MODERATE,
    ("POST", "meetings.end"): MODERATE,
    ("POST", "meetings.finish"): MODERATE,
    ("POST", "meetings.post_minutes"): MODERATE,
    ("POST", "meetings.schedule_page"): dict(MEMBER_FORM, observer="403"),
    ("POST", "meetings.start"): WRITE,
    ("POST", "meetings.token"): READ,
    ("POST", "meetings.call_leave"): READ,
    ("POST", "rooms.delete"): WRITE,
    ("POST", "rooms.edit"): AUTHOR,
    ("POST", "rooms.flag_post"): READ,
    ("POST", "rooms.join"): READ,
    ("POST", "rooms.leave"): MEMBER_FORM,  # asks first (this walk does not confirm): the question is the form
    # watch levels (issue 14): this walk sends no level, so the answer is the refusal of its input
    ("POST", "live.thread_level"): MEMBER_FORM,
    ("POST", "live.room_level"): MEMBER_FORM,
    ("PUT", "api.api_thread_level"): READ,
    ("POST", "rooms.lift_mute"): MODERATORS_ONLY,
    ("POST", "rooms.members"): dict(MEMBER_FORM, observer="403", member="403"),
    ("POST", "rooms.moderate_post"): MODERATORS_ONLY,
    ("POST", "rooms.new_room"): CREATE_ROOM,
    ("POST", "rooms.new_thread"): WRITE,
    ("POST", "rooms.reply"): WRITE,
    ("POST", "rooms.preview"): SIGNED_IN,      # renders the text it is sent; reads nothing of any room
    ("POST", "rooms.room_trust"): dict(OWNER_ONLY, owner="form"),
    ("POST", "rooms.settings"): dict(OWNER_ONLY, owner="form"),
    ("POST", "auth.suspend_account"): ADMIN,
    ("POST", "security.admin_end_sessions"): ADMIN,
    ("POST", "rooms.admin_erase"): ADMIN_FORM,
    ("POST", "security.admin_reset_two_step"): ADMIN,
    ("POST", "security.admin_security"): ADMIN_FORM,
    ("POST", "security.end_other_sessions"): OWN_FORM,     # the walk sends no password: asked again
    ("POST", "security.end_session"): dict(OWNER_ONLY, owner="form"),  # ... and here (auth/reauth.py)
    ("POST", "rooms.export_data"): OWN_FORM,
    ("POST", "security.login_code"): SIGNED_IN,
    ("POST", "rooms.room_retention"): dict(MODERATE, moderator="403"),
    ("POST", "security.two_step"): OWN_FORM,
    ("POST", "security.two_step_codes"): OWN_FORM,
    ("POST", "security.two_step_off"): OWN_FORM,
    ("PUT", "api.api_react"): WRITE,
    ("PUT", "api.api_room_level"): READ,
    # ideas (issue 13): the walk's idea is the owner's; its JSON and form carry no status, so a
    # decision-maker's attempt is refused for its input (422: "ok" for the API, "form" for the page)
    ("GET", "api.list_ideas"): READ,
    ("POST", "api.create_idea"): WRITE,
    ("GET", "api.get_idea"): READ,
    ("POST", "api.vote_idea"): WRITE,
    ("DELETE", "api.withdraw_idea_vote"): WRITE,       # no vote to withdraw: 409, said in the answer
    ("POST", "api.set_idea_status"): MODERATE,
    ("GET", "ideas.room_ideas"): READ,
    ("GET", "ideas.new_idea"): WRITE,
    ("POST", "ideas.new_idea"): WRITE,
    ("GET", "ideas.idea_page"): READ,
    ("POST", "ideas.vote"): WRITE,
    ("POST", "ideas.set_status"): dict(MODERATE, moderator="form", owner="form"),
    ("GET", "ideas.settings"): MODERATE,
    ("POST", "ideas.settings"): dict(MODERATE, moderator="form", owner="form"),
    ("GET", "ideas.room_said_done"): READ,
    ("GET", "ideas.said_done"): SIGNED_IN,
    ("GET", "search.similar_ideas"): READ,
    # Q&A sessions (issue 13): the walk's session is the owner's (its host), its question the member's
    ("GET", "api.qa_list"): READ,
    ("POST", "api.qa_create"): WRITE,
    ("GET", "api.qa_get"): READ,
    ("POST", "api.qa_add_host"): MODERATE,
    ("POST", "api.qa_end"): HOST,
    ("GET", "api.qa_questions"): READ,
    ("POST", "api.qa_ask"): WRITE,
    ("GET", "api.question_get"): READ,
    ("POST", "api.question_vote"): WRITE,
    ("DELETE", "api.question_unvote"): WRITE,          # no vote to withdraw: 409, said in the answer
    ("POST", "api.question_approve"): MODERATE,        # not waiting for approval: 409
    ("POST", "api.question_edit"): MODERATE,
    ("POST", "api.question_merge"): MODERATE,          # the walk names no other question: 422
    ("POST", "api.question_decline"): MODERATE,
    ("POST", "api.question_now_answering"): HOST,
    ("POST", "api.question_answer"): HOST,
    ("POST", "api.question_reveal"): MODERATE,         # not anonymous: 422 (hosts who are not moderators: 403)
    ("GET", "qa.room_sessions"): READ,
    ("GET", "qa.new_session"): WRITE,
    ("POST", "qa.new_session"): dict(MEMBER_FORM, observer="403"),
    ("GET", "qa.session_page"): READ,
    ("POST", "qa.ask"): WRITE,
    ("POST", "qa.vote"): WRITE,
    ("POST", "qa.act"): MEMBER_FORM,                   # the walk's action ("hide") is not one: said on the form
    ("POST", "qa.end"): HOST,
    ("POST", "qa.add_host"): dict(MODERATE, moderator="form", owner="form"),
}


def classify(r, *, api: bool, method: str = "GET") -> str:
    code = r.status_code
    assert code < 500, (code, r.data[:300])
    if not api and method != "GET" and code in (200, 400, 409, 413, 422) and not r.is_json:
        return "form"   # the form came back with a message (invalid input, or a refusal shown on the form)
    if code in (301, 302, 303, 307, 308):
        loc = r.headers.get("Location", "")
        return "login" if re.match(r"^(https?://[^/]+)?/login(\?|$)", loc) else "ok"
    if code == 401:
        return "login"
    if code in (403, 404):
        return str(code)
    return "ok"


ROOM_PARAMS = {"room_id", "thread_id", "post_id", "attachment_id", "meeting_id", "deck_id", "key_message_id",
               "mute_id", "idea_id", "poll_id", "qa_id", "question_id", "segment_id", "request_id", "recording_id"}
FORM = {"body": "matrix text", "title": "matrix", "name": "matrix", "description": "x", "reason": "matrix reason",
        "action": "hide", "role": "member", "user_id": "0", "hours": "1", "days": "1", "confirm": "",
        "token_name": "matrix", "email": "matrix@example.org", "emoji": "👍"}
JSON = {"body": "matrix text", "title": "matrix", "name": "matrix", "text": "matrix", "choice": "agree"}


def url_for_rule(rule, ids: dict) -> str:
    url = rule.rule
    for name in rule.arguments:
        url = re.sub(r"<(?:[a-z]+(?:\([^)]*\))?:)?" + name + ">", str(ids.get(name, 1)), url)
    assert "<" not in url, url
    return url


def methods_of(rule) -> list[str]:
    return sorted(rule.methods - {"HEAD", "OPTIONS"})


def png_bytes() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (32, 24), (10, 120, 30)).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def app_config():
    return {"RATELIMIT_ENABLED": False, "LIVE_PRESENCE_DELAY": 0.02}


class World(dict):
    pass


def _seed_room(make, users: dict, muted, *, visibility: str, name: str, non_attributed: bool = False) -> dict:
    """A room with the nine callers in their places (observer, member, moderator, owner), a
    thread, a reply by the member with an attachment, a muted member, a running meeting
    and an open key-message vote; returns the ids the walk fills routes with."""
    from rooms import moderation, trust_settings
    from rooms import posts as room_posts
    from rooms.ideas import services as ideas
    from rooms.meetings import services as ms
    from rooms.meetings import votes
    from rooms.models import Attachment
    from rooms.polls import services as polls
    from rooms.qa import services as qa

    owner = users["owner"]
    room = make.room(owner, visibility=visibility, name=name, members=[users["member"], muted],
                     moderator=[users["moderator"]], observer=[users["observer"]])
    if non_attributed:
        trust_settings.set_non_attributed(owner, room.id, True)
    thread = make.thread(owner, room, title=f"{name} thread", body=f"{name} opening @Member Person")
    reply, _ = room_posts.create_post(users["member"], thread.id, body=f"{name} reply @Owner Person",
                                      uploads=[("photo.png", io.BytesIO(png_bytes()))])
    att = db.session.scalar(select(Attachment).where(Attachment.post_id == reply.id))
    mute = moderation.mute_member(users["moderator"], room.id, muted.id, 24, "matrix")
    meeting = ms.start_meeting(owner, room.id, title=f"{name} meeting")
    km = votes.draft(owner, meeting.id, text=f"{name} key message")
    votes.open_vote(owner, km["key_message_id"])
    ideas.update_settings(owner, room.id, enabled=True, vote_budget=10)
    idea = ideas.create_idea(owner, room.id, title=f"{name} idea", body="An idea")
    poll = polls.create_poll(owner, room.id, question=f"{name} poll", kind="single", options=["Yes", "No"])
    session = qa.create_session(owner, room.id, title=f"{name} Q&A", starts_at="2026-12-01T10:00:00Z")
    question = qa.ask(users["member"], session.id, body=f"{name} question")
    from rooms.meetings import transcript
    from rooms.meetings.transcript_models import TranscriptSegment

    now = time.time()
    transcript.save_report({"meeting": meeting.id, "segments": [
        {"account": users["member"].id, "key": f"matrix-{meeting.id}", "text": f"{name} said", "start": now - 3,
         "end": now - 1}]})
    segment = db.session.scalar(select(TranscriptSegment).where(TranscriptSegment.meeting_id == meeting.id))
    from rooms.meetings import broadcast

    broadcast.start(owner, meeting.id)
    broadcast.ask_to_speak(users["observer"], meeting.id)
    (request,) = broadcast.queue(owner, meeting.id)
    from tests.meeting_support import finished_recording

    trust_settings.set_recording_allowed(owner, room.id, True)
    recording = finished_recording(meeting, owner)
    return {"room": room, "thread": thread, "reply": reply, "meeting": meeting, "ids": {
        "room_id": room.id, "thread_id": thread.id, "post_id": reply.id, "attachment_id": att.id,
        "filename": att.filename, "meeting_id": meeting.id, "key_message_id": km["key_message_id"],
        "mute_id": mute.id, "idea_id": idea.id, "poll_id": poll.id,
        "qa_id": session.id, "question_id": question.id, "segment_id": segment.id, "request_id": request["id"],
        "recording_id": recording.id}}


@pytest.fixture
def world(app, make):
    from auth.account_models import UserSession
    from rooms.notifications import Notification

    org = make.org()
    users = {
        "guest": make.user(org=org, kind="guest", name="Guest Person"),
        "iag": make.user(org=org, kind="iag", name="Iag Person"),
        "staff": make.user(org=org, name="Staff Person"),
        "observer": make.user(org=org, name="Observer Person"),
        "member": make.user(org=org, name="Member Person"),
        "moderator": make.user(org=org, name="Moderator Person"),
        "owner": make.user(org=org, name="Owner Person"),
        "admin": make.user(org=org, admin=True, name="Admin Person"),
    }
    muted = make.user(org=org, name="Muted Person")
    owner = users["owner"]
    private = _seed_room(make, users, muted, visibility="private", name="Private room")
    # The same world in an organisation-wide, a national and a non-attributed (private) room.
    kinds = {"organisation": _seed_room(make, users, muted, visibility="organisation", name="Org room"),
             "national": _seed_room(make, users, muted, visibility="national", name="National room"),
             "non_attributed": _seed_room(make, users, muted, visibility="private", name="Frank room",
                                          non_attributed=True)}
    room, thread, reply, meeting = private["room"], private["thread"], private["reply"], private["meeting"]
    clients = {"anonymous": app.test_client()}
    for role, u in users.items():
        c = app.test_client()
        r = c.post("/login", data={"email": u.email, "password": PASSWORD})
        assert r.status_code == 302, (role, r.data[:200])
        clients[role] = c
    tokens = {role: make.token(u) for role, u in users.items()}
    session_id = db.session.scalar(select(UserSession.id).where(UserSession.user_id == owner.id))
    notification_id = db.session.scalar(select(Notification.id).where(Notification.user_id == owner.id))
    assert notification_id, "the reply mentions the owner"
    common = {"deck_id": 999_999, "page": 1, "session_id": session_id, "notification_id": notification_id,
              "user_id": muted.id, "emoji": "👍", "token": "not-a-real-token"}
    ids = dict(private["ids"], **common)
    kind_ids = {kind: dict(seeded["ids"], **common) for kind, seeded in kinds.items()}
    return World(users=users, clients=clients, tokens=tokens, ids=ids, room=room, kind_ids=kind_ids,
                 org_room=kinds["organisation"]["room"], national=kinds["national"]["room"], thread=thread,
                 reply=reply, meeting=meeting, muted=muted)


class Snapshot:
    """The SQLite database as it was, put back after each request that may have changed it."""

    def __init__(self, app, clients):
        url = app.config["DATABASE_URL"]
        self.path = url.removeprefix("sqlite:///") if url.startswith("sqlite") else None
        if self.path:
            db.session.remove()
            self.copy = sqlite3.connect(":memory:")
            src = sqlite3.connect(self.path)
            src.backup(self.copy)
            src.close()
        self.cookies = {role: copy.deepcopy(c._cookies) for role, c in clients.items()}
        self.clients = clients

    def restore(self) -> None:
        for role, c in self.clients.items():   # a sign-out clears the browser's cookie too
            c._cookies = copy.deepcopy(self.cookies[role])
        if not self.path:
            return
        db.session.remove()
        dst = sqlite3.connect(self.path, timeout=30)
        self.copy.backup(dst)
        dst.close()


def _request(w: World, role: str, method: str, url: str):
    c = w["clients"][role]
    if url.startswith("/api/"):
        headers = bearer(w["tokens"][role]) if role != "anonymous" else {}
        if method in ("POST", "PUT", "PATCH") and url.endswith(("/attachments", "/decks")):
            return c.open(url, method=method, headers=headers,
                          data={"file": (io.BytesIO(png_bytes()), "matrix.png")})
        return c.open(url, method=method, headers=headers, json=JSON if method != "GET" else None)
    if method == "GET":
        return c.get(url)
    return c.open(url, method=method, data=dict(FORM, file=(io.BytesIO(png_bytes()), "matrix.png")))


def _walk(app, w: World, *, only_get: bool, ids: dict | None = None, room_scoped: bool = False):
    """(method, endpoint) -> {role: outcome} for every route (only those that name something in
    the room when `room_scoped`), and the routes with no matrix entry."""
    snap = Snapshot(app, w["clients"])
    ids = ids or w["ids"]
    actual: dict[tuple[str, str], dict[str, str]] = {}
    missing = []
    cells = sorted(((m, r) for r in app.url_map.iter_rules() for m in methods_of(r)
                    if not room_scoped or set(r.arguments) & ROOM_PARAMS),
                   key=lambda mr: (mr[0] != "GET", mr[1].rule, mr[0]))   # reads first
    for method, rule in cells:
        url = url_for_rule(rule, dict(ids, filename="css/app.css") if rule.endpoint == "static" else ids)
        if True:
            key = (method, rule.endpoint)
            if key not in MATRIX and not os.environ.get("AUTHZ_DISCOVER"):
                missing.append(key)
                continue
            if only_get and method != "GET":
                continue
            got = {}
            for role in ROLES:
                r = _request(w, role, method, url)
                got[role] = classify(r, api=url.startswith("/api/"), method=method)
                if method != "GET":
                    snap.restore()
            actual[key] = got
    return actual, missing


def _diff(expected: dict, actual: dict) -> list[str]:
    out = []
    for key, got in actual.items():
        want = expected.get(key)
        for role in ROLES:
            if want is None or want[role] != got[role]:
                out.append(f"{key[0]} {key[1]} as {role}: expected {want and want[role]}, got {got[role]}")
    return out


def test_every_route_has_a_matrix_entry_and_every_caller_gets_its_outcome(app, world):
    actual, missing = _walk(app, world, only_get=app.config["DATABASE_URL"].startswith("postgres"))
    if os.environ.get("AUTHZ_DISCOVER"):
        with open(os.environ["AUTHZ_DISCOVER"], "w") as f:
            f.writelines(f"{key[0]} {key[1]} {got}\n" for key, got in sorted(actual.items()))
    assert not missing, f"routes with no entry in the authorization matrix: {missing}"
    assert not set(MATRIX) - {(m, r.endpoint) for r in app.url_map.iter_rules() for m in methods_of(r)}, \
        "matrix entries for routes that no longer exist"
    problems = _diff(MATRIX, actual)
    assert not problems, "\n".join(problems)



# -- the same routes in an organisation-wide, a national and a non-attributed room ----------------------
#
# The callers keep their places (observer, member, moderator and owner are members of each room); what
# changes is who else may read and write. In an organisation room the staff colleague and the
# administrator (a staff account of the same organisation) read without being members, post (joining
# by posting) and, for the administrator, manage the room; guests and IAG volunteers still see nothing.
# In a national room every signed-in account reads and posts. A non-attributed room is private: the
# same outcomes as the private room (what differs is what is shown: tests/test_non_attributed.py).

# What a non-member who may read an open room gets (in the private room: 404 for all of these).
OPEN_MAY = {   # read, and write (joining by posting), react, vote, start a meeting, join it
    ("GET", "api.get_meeting"), ("GET", "api.get_post"), ("GET", "api.get_room"), ("GET", "api.get_thread"),
    ("GET", "api.list_members"), ("GET", "api.list_threads"), ("GET", "api.meeting_ics"),
    ("GET", "api.meeting_state"), ("GET", "live.mention_json"), ("GET", "live.thread_reactions_json"),
    ("GET", "meetings.ics"), ("GET", "meetings.meeting"), ("GET", "meetings.minutes_pdf"),
    ("GET", "meetings.schedule_page"), ("GET", "meetings.state_json"), ("GET", "rooms.attachment"),
    ("GET", "rooms.attachment_thumb"), ("GET", "rooms.history"), ("GET", "rooms.members"),
    ("GET", "rooms.new_thread"), ("GET", "rooms.post_link"), ("GET", "rooms.post_actions"), ("GET", "rooms.reply"),
    ("GET", "rooms.room"),
    ("GET", "rooms.thread"), ("POST", "api.create_post"), ("POST", "api.create_thread"),
    ("POST", "api.meeting_token"), ("POST", "api.start_meeting"), ("POST", "api.vote"), ("POST", "live.react"),
    ("GET", "api.poll_get"), ("POST", "api.poll_create"), ("POST", "api.poll_vote"), ("GET", "polls.new"),
    ("GET", "polls.poll"), ("GET", "polls.results"),
    ("POST", "meetings.start"), ("POST", "meetings.token"), ("POST", "meetings.call_leave"), ("POST", "rooms.join"), ("POST", "rooms.new_thread"),
    ("POST", "rooms.reply"), ("PUT", "api.api_react"), ("PUT", "api.api_room_level"),
    ("PUT", "api.api_thread_level"), ("DELETE", "api.api_unreact"),
    ("GET", "api.list_ideas"), ("POST", "api.create_idea"), ("GET", "api.get_idea"), ("POST", "api.vote_idea"),
    ("DELETE", "api.withdraw_idea_vote"), ("GET", "ideas.room_ideas"), ("GET", "ideas.new_idea"),
    ("POST", "ideas.new_idea"), ("GET", "ideas.idea_page"), ("POST", "ideas.vote"), ("GET", "ideas.room_said_done"),
    ("GET", "search.similar_ideas"), ("GET", "rooms.people_json"),
    ("GET", "api.qa_list"), ("POST", "api.qa_create"), ("GET", "api.qa_get"), ("GET", "api.qa_questions"),
    ("POST", "api.qa_ask"), ("GET", "api.question_get"), ("POST", "api.question_vote"),
    ("DELETE", "api.question_unvote"), ("GET", "qa.room_sessions"), ("GET", "qa.new_session"),
    ("GET", "qa.session_page"), ("POST", "qa.ask"), ("POST", "qa.vote"),
    ("GET", "api.meeting_transcript"), ("GET", "api.transcript_segments"), ("GET", "transcript.page"),
    ("GET", "transcript.vtt"),
    ("GET", "api.broadcast_state"), ("GET", "broadcast.watch"), ("POST", "broadcast.token"),
    ("POST", "api.broadcast_token"), ("POST", "api.whep_offer"), ("DELETE", "api.whep_stop"),
    ("PATCH", "api.whep_trickle"),
    ("POST", "broadcast.question"), ("POST", "broadcast.speak"),
    ("GET", "api.meeting_recordings"), ("GET", "recordings.replay"), ("GET", "recordings.file"),
    ("GET", "recordings.timeline"), ("GET", "recordings.captions")}
OPEN_MAY_NOT = {  # sees it, may not: someone else's post, the chair's or the moderators' actions
    ("DELETE", "api.delete_post"), ("GET", "meetings.edit_page"), ("GET", "rooms.edit"),
    ("PATCH", "api.edit_meeting"), ("PATCH", "api.edit_post"), ("POST", "api.add_attachments"),
    ("POST", "api.cancel_meeting"), ("POST", "api.draft_key_message"), ("POST", "api.post_minutes"),
    ("POST", "api.upload_deck"), ("POST", "meetings.cancel"), ("POST", "meetings.deck_delete"),
    ("POST", "meetings.deck_upload"), ("POST", "meetings.edit_page"), ("POST", "meetings.end"),
    ("POST", "meetings.finish"), ("POST", "meetings.post_minutes"), ("POST", "rooms.delete"),
    ("POST", "rooms.edit"), ("DELETE", "api.remove_member"), ("POST", "api.add_member"),
    ("POST", "rooms.room_retention"), ("POST", "rooms.members"),
    ("POST", "api.set_idea_status"), ("POST", "ideas.set_status"), ("GET", "ideas.settings"),
    ("POST", "ideas.settings"), ("PATCH", "api.poll_change"), ("POST", "api.poll_close"), ("POST", "polls.close"),
    ("POST", "api.qa_add_host"), ("POST", "api.qa_end"), ("POST", "api.question_approve"),
    ("POST", "api.question_edit"), ("POST", "api.question_merge"), ("POST", "api.question_decline"),
    ("POST", "api.question_now_answering"), ("POST", "api.question_answer"), ("POST", "api.question_reveal"),
    ("POST", "qa.end"), ("POST", "qa.add_host"),
    ("PATCH", "api.correct_segment"), ("POST", "transcript.correct"),
    ("POST", "api.start_broadcast"), ("DELETE", "api.stop_broadcast"), ("POST", "broadcast.start"),
    ("POST", "broadcast.stop"), ("GET", "broadcast.queue"), ("POST", "broadcast.bring_in"),
    ("POST", "broadcast.dismiss"),
    ("POST", "api.start_recording"), ("DELETE", "api.stop_recording"), ("POST", "recordings.start"),
    ("POST", "recordings.stop")}
OPEN_FORM = {("POST", "meetings.schedule_page"),   # may schedule; the walk's input is refused
             ("POST", "rooms.leave"),              # not a member: nothing to leave (said on the form)
             ("POST", "live.thread_level"), ("POST", "live.room_level"),  # no level sent (room: join first)
             ("POST", "polls.new"), ("POST", "polls.vote"),
             ("POST", "qa.new_session"), ("POST", "qa.act")}   # may; the walk's input is refused
# A site administrator who may read a room manages it (rooms/policy.py can_manage_room).
ADMIN_MANAGES = {("DELETE", "api.remove_member"): "ok", ("POST", "api.add_member"): "ok",
                 ("POST", "rooms.room_retention"): "ok", ("GET", "rooms.room_trust"): "ok",
                 ("GET", "rooms.settings"): "ok", ("POST", "rooms.members"): "form",
                 ("POST", "rooms.room_trust"): "form", ("POST", "rooms.settings"): "form",
                 ("POST", "api.set_idea_status"): "ok", ("POST", "ideas.set_status"): "form",
                 ("GET", "ideas.settings"): "ok", ("POST", "ideas.settings"): "form",
                 ("POST", "api.qa_add_host"): "ok", ("POST", "qa.add_host"): "form",
                 ("POST", "api.question_approve"): "ok", ("POST", "api.question_edit"): "ok",
                 ("POST", "api.question_merge"): "ok", ("POST", "api.question_decline"): "ok",
                 ("POST", "api.question_reveal"): "ok"}
READERS = {"organisation": ("staff", "admin"),              # staff of the room's organisation (admin is one)
           "national": ("guest", "iag", "staff", "admin"),  # every signed-in account
           "non_attributed": ()}                            # private: nobody else reads it


def _overrides(kind: str) -> dict[tuple[str, str], dict[str, str]]:
    out: dict[tuple[str, str], dict[str, str]] = {}
    for role in READERS[kind]:
        for key in OPEN_MAY:
            out.setdefault(key, {})[role] = "ok"
        for key in OPEN_MAY_NOT:
            out.setdefault(key, {})[role] = "403"
        for key in OPEN_FORM:
            out.setdefault(key, {})[role] = "form"
        if role == "admin":
            for key, outcome in ADMIN_MANAGES.items():
                out.setdefault(key, {})[role] = outcome
    return out


KIND_OVERRIDES = {kind: _overrides(kind) for kind in READERS}
# A non-attributed room's meetings are never recorded (rooms.policy.recording_refusal): its chairs are refused.
for _key in (("POST", "api.start_recording"), ("POST", "recordings.start")):
    KIND_OVERRIDES["non_attributed"].setdefault(_key, {}).update(moderator="403", owner="403")


def expected_for(kind: str) -> dict[tuple[str, str], dict[str, str]]:
    out = {}
    for key, want in MATRIX.items():
        out[key] = dict(want, **KIND_OVERRIDES[kind].get(key, {}))
    return out


@pytest.mark.parametrize("kind", ["organisation", "national", "non_attributed"])
def test_open_and_non_attributed_rooms_give_each_caller_its_outcome(app, world, kind):
    actual, missing = _walk(app, world, only_get=app.config["DATABASE_URL"].startswith("postgres"),
                            ids=world["kind_ids"][kind], room_scoped=True)
    if os.environ.get("AUTHZ_DISCOVER"):
        with open(f"{os.environ['AUTHZ_DISCOVER']}.{kind}", "w") as f:
            f.writelines(f"{key[0]} {key[1]} {got}\n" for key, got in sorted(actual.items()))
    assert not missing, f"routes with no entry in the authorization matrix: {missing}"
    assert len(actual) > 40 or app.config["DATABASE_URL"].startswith("postgres")
    problems = _diff(expected_for(kind), actual)
    assert not problems, "\n".join(problems)


# -- Socket.IO events ------------------------------------------------------------------------------

def socket_payloads(w: World) -> dict[str, dict]:
    ids, mid, km = w["ids"], w["ids"]["meeting_id"], w["ids"]["key_message_id"]
    room, thread, post = ids["room_id"], ids["thread_id"], ids["post_id"]
    m = {"meeting_id": mid}
    return {
        "subscribe": {"room_id": room}, "unsubscribe": {"room_id": room},
        "subscribe_thread": {"thread_id": thread}, "unsubscribe_thread": {"thread_id": thread},
        "sync": {"room_id": room, "after_seq": 0},
        "post": {"thread_id": thread, "body": "matrix", "client_id": "matrix-1", "parent_id": post},
        "typing": {"thread_id": thread}, "activity": {"idle": True},
        "meeting_join": m, "meeting_state": m, "meeting_here": m, "meeting_leave": m, "meeting_call_leave": m,
        "meeting_slide": dict(m, deck_id=999_999, page=1), "meeting_presenter": dict(m, user_id=w["users"]["member"].id),
        "meeting_hand": m, "meeting_hand_add": dict(m, name="Room hand"), "meeting_hand_lower": dict(m, hand_id=999_999),
        "meeting_floor": dict(m, hand_id=999_999), "meeting_mute_all": m,
        "meeting_mute": dict(m, user_id=w["users"]["member"].id),
        "meeting_remove": dict(m, user_id=w["users"]["member"].id), "meeting_lock": dict(m, locked=True),
        "meeting_attend": dict(m, user_id=w["users"]["member"].id, name="", present=True),
        "meeting_head_count": dict(m, head_count=3), "meeting_chat": dict(m, body="matrix"),
        "meeting_action": dict(m, text="matrix", owner="someone"), "meeting_minutes": m,
        "km_draft": dict(m, text="matrix"), "km_edit": {"key_message_id": km, "text": "matrix"},
        "km_open": {"key_message_id": km}, "km_vote": {"key_message_id": km, "choice": "agree", "comment": ""},
        "km_room": {"key_message_id": km, "agree": 1, "disagree": 0, "abstain": 0},
        "km_close": {"key_message_id": km, "outcome": "agreed"},
        "idea.vote": {"idea_id": ids["idea_id"]}, "idea.withdraw": {"idea_id": ids["idea_id"]},
        "poll.vote": {"poll_id": ids["poll_id"], "choices": [0]},
    }


# "invalid": past the permission check, the walk's payload was refused (no such deck; head count off)
# "conflict": past it too (idea.withdraw with no vote to withdraw, said in the answer)
SOCKET_CODES = {"not_found": "404", "forbidden": "403", "unauthorized": "login", "invalid": "ok", "conflict": "ok"}
OWN = SIGNED_IN   # events that touch only the caller's own subscriptions answer the same whatever the id
CHAIR = MODERATE  # meeting chairs: the room's moderators and owners
NO_SUCH_HAND = row("404", anonymous="login")
SOCKET_MATRIX: dict[str, dict[str, str]] = {
    "activity": OWN, "unsubscribe": OWN, "unsubscribe_thread": OWN,
    "subscribe": READ, "subscribe_thread": READ, "sync": READ,
    "post": WRITE, "typing": WRITE,
    "meeting_join": READ, "meeting_state": READ, "meeting_here": READ, "meeting_leave": READ,
    "meeting_call_leave": READ,
    "meeting_chat": WRITE, "meeting_hand": WRITE, "km_vote": WRITE,
    "meeting_action": CHAIR, "meeting_attend": CHAIR, "meeting_hand_add": CHAIR, "meeting_lock": CHAIR,
    "meeting_minutes": CHAIR, "meeting_mute_all": CHAIR, "meeting_mute": CHAIR, "meeting_presenter": CHAIR, "meeting_remove": CHAIR,
    "meeting_slide": CHAIR, "meeting_head_count": CHAIR,
    "km_draft": CHAIR, "km_edit": CHAIR, "km_open": CHAIR, "km_room": CHAIR, "km_close": CHAIR,
    "meeting_floor": dict(CHAIR, moderator="404", owner="404"),   # chairs: the walk names no real hand
    "meeting_hand_lower": NO_SUCH_HAND,
    "idea.vote": WRITE, "idea.withdraw": WRITE, "poll.vote": WRITE,   # votes (issue 13): as the JSON API's
}


# Events that change nothing in the database: the only ones walked on PostgreSQL (no cheap snapshot).
SOCKET_READS = {"subscribe", "unsubscribe", "subscribe_thread", "unsubscribe_thread", "sync", "activity",
                "meeting_state"}


def _socket_events() -> list[str]:
    return sorted(set(socketio.server.handlers["/"]) - {"connect", "disconnect", "*"})


def _socket_walk(app, w: World, *, only_reads: bool = False) -> dict[str, dict[str, str]]:
    from tests.live_support import sock

    snap = Snapshot(app, w["clients"])
    payload = socket_payloads(w)
    actual = {}
    for event in _socket_events():
        if only_reads and event not in SOCKET_READS:
            continue
        if event not in payload:
            actual[event] = {r: "no payload in this test" for r in ROLES}
            continue
        got = {}
        for role in ROLES:
            if role == "anonymous":
                sc = sock(app, w["clients"]["anonymous"])
                got[role] = "ok" if sc.is_connected() else "login"
                continue
            sc = sock(app, token=w["tokens"][role])
            ack = sc.emit(event, payload[event], callback=True)
            got[role] = "ok" if ack.get("ok") else SOCKET_CODES.get(ack["error"]["code"], ack["error"]["code"])
            sc.disconnect()
            if not only_reads:
                snap.restore()
        actual[event] = got
    return actual


def test_every_socket_event_has_a_matrix_entry_and_every_caller_gets_its_outcome(app, world):
    from collab import tasks

    on_postgres = app.config["DATABASE_URL"].startswith("postgres")
    try:   # on PostgreSQL only the events that write nothing (the SQLite run walks them all)
        actual = _socket_walk(app, world, only_reads=on_postgres)
    finally:
        tasks.settle(app)
    assert len(actual) >= (len(SOCKET_READS) if on_postgres else 30)
    if os.environ.get("AUTHZ_DISCOVER"):
        with open(os.environ["AUTHZ_DISCOVER"] + ".sock", "w") as f:
            f.writelines(f"{key} {got}\n" for key, got in sorted(actual.items()))
    missing = sorted(set(_socket_events()) - set(SOCKET_MATRIX))
    assert not missing, f"Socket.IO events with no entry in the authorization matrix: {missing}"
    problems = [f"{event} as {role}: expected {SOCKET_MATRIX[event][role]}, got {got[role]}"
                for event, got in actual.items() for role in ROLES if SOCKET_MATRIX[event][role] != got[role]]
    assert not problems, "\n".join(problems)


# -- refusals on forms are 403/404, never the form again (collab/forms.py) -------------------------------

def test_forms_refused_for_permission_reasons_answer_403_or_404(app, make):
    """A member may see the members page but not change it (403); a guest may not create rooms
    (403); an organisation administrator may not deactivate someone of another organisation
    (404, as for an account that does not exist). Nothing changes."""
    from auth.models import User
    from rooms.models import Membership, Room

    org, other = make.org(), make.org()
    owner, member = make.user(org=org), make.user(org=org)
    guest = make.user(org=org, kind="guest")
    outsider = make.user(org=other)
    org_admin = make.user(org=org, org_admin=True)
    room = make.room(owner, members=[member])
    rooms_before = db.session.query(Room).count()

    def client(u):
        c = app.test_client()
        assert c.post("/login", data={"email": u.email, "password": PASSWORD}).status_code == 302
        return c

    m = client(member)
    r = m.post(f"/rooms/{room.id}/members", data={"action": "remove", "user_id": str(owner.id)})
    assert r.status_code == 403 and "owners and moderators" in r.get_data(as_text=True)
    r = m.post(f"/rooms/{room.id}/members", data={"action": "add", "email": outsider.email, "role": "member"})
    assert r.status_code == 403
    r = client(guest).post("/rooms/new", data={"name": "Guest room", "visibility": "private"})
    assert r.status_code == 403
    r = client(org_admin).post("/admin/people", data={"action": "deactivate", "user_id": str(outsider.id)})
    assert r.status_code == 404 and "not found" in r.get_data(as_text=True)
    db.session.remove()
    assert db.session.get(User, outsider.id).active
    assert db.session.query(Membership).filter_by(room_id=room.id).count() == 2
    assert db.session.query(Room).count() == rooms_before
