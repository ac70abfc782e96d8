"""The artifact access matrix (issue 10): every kind of thing derived from a room, for every caller,
over every channel that serves it, with the answer each caller must get.

The world: a private room labelled OFFICIAL-SENSITIVE with an owner, a moderator, a member, an
observer and a guest (a member whose account is of kind "guest"). In it: a post that was edited (so
it has a history), a post a moderator hid, a post with a PDF attachment whose text holds a word found
nowhere else, and a scheduled meeting with a deck (its slide titles too), a chat message, a key message open to the vote
and minutes (thread and PDF).

Callers besides the five in the room: a staff member of the same organisation who is not a member
(non-member), someone of another organisation (outsider), a member removed from the room, a member
whose account was suspended, a staff member who has not set up two-step sign-in after the site
started to require it (every other caller is an IAG volunteer, whom that policy does not cover),
and anonymous. Each signed in (browser session and access token) BEFORE they lost access, the way
an attacker keeps what they had.

Channels: the HTML pages (browser session), the JSON API (token), Socket.IO (token: `sync` replay
and the meeting's `meeting_state`), search (API) and file downloads (browser session). Meeting
media is the join token the worker needs (the worker's side is proven in
tests/test_media_revocation.py).

Each artifact kind names the function of rooms/policy.py that decides it; a `may_*` function there
without a kind here fails the test, and so does a kind without an expected answer for a caller.
"""
from __future__ import annotations

import io
from datetime import datetime, timedelta, timezone

import pytest

from auth import mfa, suspension
from collab.extensions import db
from collab import tasks
from rooms import moderation, policy, trust_settings
from rooms.ideas import services as ideas
from rooms import services as rs
from rooms import posts as room_posts
from rooms.meetings import attendance, broadcast, conversion, decks, minutes, schedule, state, transcript, votes
from rooms.meetings.models import Deck
from rooms.polls import services as polls
from rooms.qa import services as qa
from tests.conftest import bearer
from tests.live_support import login_client, sock
from tests.meeting_support import finished_recording

CALLERS = ("owner", "moderator", "member", "observer", "guest", "nonmember", "outsider", "removed", "suspended",
           "no_mfa", "anonymous")
IN_ROOM = ("owner", "moderator", "member", "observer", "guest")
OUT = ("nonmember", "outsider", "removed", "suspended", "no_mfa", "anonymous")


def expect(yes: tuple[str, ...]) -> dict[str, bool]:
    return {c: c in yes for c in CALLERS}


FILES = ("owner", "moderator", "member", "observer")     # the guest is kept from files of a labelled room
PARTICIPANTS = ("owner", "moderator", "member", "guest")  # observers follow but do not vote

# kind -> (the policy function that decides it, who gets it)
ARTIFACTS: dict[str, tuple[str, dict[str, bool]]] = {
    "post": ("may_read_post", expect(IN_ROOM)),
    "post_history": ("may_read_post_history", expect(IN_ROOM)),
    "hidden_post": ("may_read_post", expect(("owner", "moderator", "member"))),   # member wrote it
    "hidden_post_history": ("may_read_post_history", expect(("owner", "moderator", "member"))),
    "attachment": ("may_download_attachment", expect(FILES)),
    "attachment_text": ("may_read_attachment_text", expect(FILES)),
    "deck_file": ("may_download_deck", expect(FILES)),
    "deck_page": ("may_download_deck", expect(FILES)),
    "slide_titles": ("may_read_slide_titles", expect(FILES)),
    "minutes_thread": ("may_see_meeting", expect(IN_ROOM)),
    "minutes_pdf": ("may_download_minutes_pdf", expect(FILES)),
    "transcript": ("may_read_transcript", expect(IN_ROOM)),
    "meeting_state": ("may_see_meeting", expect(IN_ROOM)),
    "meeting_media": ("may_join_meeting", expect(IN_ROOM)),
    "broadcast_media": ("may_watch_broadcast", expect(IN_ROOM)),
    "viewer_requests": ("may_read_viewer_requests", expect(("owner", "moderator"))),   # the chairs
    "recording": ("may_read_recordings", expect(FILES)),
    "recording_control": ("may_record", expect(("owner", "moderator"))),   # the chairs (stopping: always)
    "vote": ("may_act_in_meeting", expect(PARTICIPANTS)),
    "idea": ("may_see_idea", expect(IN_ROOM)),
    "poll": ("may_see_poll", expect(IN_ROOM)),
    "poll_results": ("may_see_poll_results", expect(IN_ROOM)),                 # results shown always
    "poll_results_after_vote": ("may_see_poll_results", expect(("member",))),  # only the member voted
    "poll_vote": ("may_vote_in_poll", expect(PARTICIPANTS)),
    "poll_settings": ("may_close_poll", expect(("owner", "moderator"))),      # the owner created it
    "qa_session": ("may_see_qa_session", expect(IN_ROOM)),
    "question": ("may_see_question", expect(IN_ROOM)),
    "pending_question": ("may_see_question", expect(("owner", "moderator", "member"))),   # asker, host, moderators
    "anonymous_asker": ("may_reveal_qa_asker", expect(("owner", "moderator"))),    # an audited reveal
    "qa_hosting": ("may_host_qa", expect(("owner",))),                              # the owner hosts it
    "qa_moderation": ("may_moderate_qa", expect(("owner", "moderator"))),
    "qa_answer": ("may_answer_question", expect(("owner",))),
}
# Where one channel deliberately serves less than the kind allows, and why.
CHANNEL_NARROWER: dict[tuple[str, str], tuple[str, ...]] = {
    # A hidden post's text is shown to its author and the moderators on the thread page and in the API
    # only; live replay and search carry the tombstone for everyone.
    ("hidden_post", "socket"): (),
    ("hidden_post", "search"): (),
    # A question waiting for approval is a hidden post: never in live replay or search.
    ("pending_question", "socket"): (),
    ("pending_question", "search"): (),
    # Who asked an anonymous question: only through the moderators' audited reveal, never in the
    # question's own JSON, for anyone (tests/test_qa.py checks events, search, notifications, exports).
    ("anonymous_asker", "api_question"): (),
}
# Policy functions decided elsewhere than an artifact of its own (names, archived rooms), with the
# test that proves them.
COVERED_ELSEWHERE = {"sees_names": "tests/test_non_attributed.py"}


def test_every_policy_function_for_a_derived_thing_has_a_kind():
    deciders = {name for name in dir(policy) if name.startswith("may_")}
    assert deciders - COVERED_ELSEWHERE.keys() <= {fn for fn, _ in ARTIFACTS.values()}, (
        "rooms/policy.py has an access function no artifact kind of this matrix uses")
    for kind, (fn, who) in ARTIFACTS.items():
        assert hasattr(policy, fn), (kind, fn)
        assert set(who) == set(CALLERS), kind


def _pdf(text: str) -> bytes:
    from fpdf import FPDF

    doc = FPDF()
    doc.set_font("helvetica", size=24)
    doc.add_page()
    doc.cell(text=text)
    return bytes(doc.output())


@pytest.fixture
def backend():  # the whole matrix on the embedded default; the policy is the same code on PostgreSQL
    return "sqlite"


@pytest.fixture
def app_config():
    return {"LIVE_PRESENCE_DELAY": 0.02}


@pytest.fixture
def world(app, make):
    org, other = make.org(), make.org()
    admin = make.user(admin=True, org=org, kind="iag")
    iag = {"org": org}
    people = {
        "owner": make.user(name="Olive Owner", **iag, kind="iag"),
        "moderator": make.user(name="Mo Moderator", **iag, kind="iag"),
        "member": make.user(name="Mel Member", **iag, kind="iag"),
        "observer": make.user(name="Obi Observer", **iag, kind="iag"),
        "guest": make.user(name="Gus Guest", org=org, kind="guest"),
        "nonmember": make.user(name="Nan Nonmember", **iag, kind="iag"),
        "outsider": make.user(name="Otto Outsider", org=other, kind="iag"),
        "removed": make.user(name="Rae Removed", **iag, kind="iag"),
        "suspended": make.user(name="Sue Suspended", **iag, kind="iag"),
        "no_mfa": make.user(name="Nia Nomfa", org=org, kind="staff"),
    }
    p = people
    room = make.room(p["owner"], members=[p["member"], p["guest"], p["removed"], p["suspended"], p["no_mfa"]],
                     moderator=p["moderator"], observer=p["observer"], name="IAG frank room")
    trust_settings.set_label(p["owner"], room.id, "OFFICIAL-SENSITIVE")
    thread = make.thread(p["owner"], room, title="Draft policy", body="Opening words")
    post = make.reply(p["member"], thread, "quokkafrank first thought")
    room_posts.edit_post(p["member"], post.id, body="quokkafrank second thought")
    hidden = make.reply(p["member"], thread, "wombatsecret rude words")
    moderation.hide_post(p["moderator"], hidden.id, "Rude")
    with_file, _ = room_posts.create_post(p["member"], thread.id, body="The paper is attached.",
                                          uploads=[("paper.pdf", io.BytesIO(_pdf("platypusfile appears only in here")))])
    attachment = with_file.attachments[0]

    soon = (datetime.now(timezone.utc) + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    meeting = schedule.schedule_meeting(p["owner"], room.id, title="Plenary", agenda="1. Welcome", starts_at=soon)
    deck = decks.upload(p["owner"], meeting.id, io.BytesIO(_pdf("bilbytitle slide one")), "deck.pdf", background=False)
    assert conversion.convert(deck.id) == "ready"
    deck = db.session.get(Deck, deck.id, populate_existing=True)
    attendance.join(p["member"], meeting.id)
    state.chat(p["member"], meeting.id, body="numbatchat from home")
    km = votes.draft(p["owner"], meeting.id, text="echidnakey message")["key_message_id"]
    votes.open_vote(p["owner"], km)
    minutes_thread = minutes.post_minutes(p["owner"], meeting.id)
    now = datetime.now(timezone.utc).timestamp()
    transcript.save_report({"meeting": meeting.id, "segments": [{"account": p["member"].id, "key": "matrix-1",
                                                                 "text": "quokkasaid out loud", "start": now - 3,
                                                                 "end": now - 1}]})
    ideas.update_settings(p["owner"], room.id, enabled=True)
    idea = ideas.create_idea(p["member"], room.id, title="kiwiidea shorter forms", body="One page")
    poll = polls.create_poll(p["owner"], room.id, question="dingopoll where?", kind="single", options=["A", "B"])
    polls.vote(p["member"], poll.id, choices=[1])
    poll_after = polls.create_poll(p["owner"], room.id, question="Later?", kind="single", options=["A", "B"],
                                   results="after_vote")
    polls.vote(p["member"], poll_after.id, choices=[0])
    session = qa.create_session(p["owner"], room.id, title="emuqa town hall", starts_at="2026-12-01T10:00:00Z")
    question = qa.ask(p["member"], session.id, body="wallabyq why so few?")
    to_answer = qa.ask(p["member"], session.id, body="Second question")
    anonymous = qa.ask(p["member"], session.id, body="Who decides?", anonymous=True)
    moderated = qa.create_session(p["owner"], room.id, title="Moderated", starts_at="2026-12-01T10:00:00Z",
                                  moderated=True)
    pending = qa.ask(p["member"], moderated.id, body="bandicootq waiting")
    broadcast.start(p["owner"], meeting.id)
    broadcast.ask(p["observer"], meeting.id, body="koalaq watching from home")
    recording = finished_recording(meeting, p["owner"])

    # Everyone signs in and makes a token while they still may ...
    web = {name: login_client(app, u) for name, u in people.items()}
    tokens = {name: make.token(u) for name, u in people.items()}
    # ... then some lose access, each through the service a person would use.
    rs.remove_member(p["owner"], room.id, p["removed"].id)
    suspension.suspend_account(admin, p["suspended"].id, 3, "Abusive messages")
    mfa.set_policy(admin, "staff")
    tasks.settle(app)
    web["anonymous"], tokens["anonymous"] = app.test_client(), None
    return {"room": room, "thread": thread, "post": post, "hidden": hidden, "attachment": attachment,
            "meeting": meeting, "deck": deck, "km": km, "recording": recording, "minutes_thread": minutes_thread, "idea": idea,
            "poll": poll,
            "poll_after": poll_after, "session": session, "question": question, "to_answer": to_answer,
            "anonymous": anonymous, "moderated": moderated, "pending": pending,
            "web": web, "tokens": tokens}


# -- channels: each answers "did the caller get it?" ------------------------------------------------

def _html(w, caller, url: str, marker: str | None = None) -> bool:
    r = w["web"][caller].get(url)
    assert r.status_code < 500, (caller, url, r.status_code)
    return r.status_code == 200 and (marker is None or marker.encode() in r.data)


def _api(w, caller, method: str, url: str, marker: str | None = None, json: dict | None = None) -> bool:
    tok = w["tokens"][caller]
    headers = bearer(tok) if tok else {}
    c = w["web"]["anonymous"]
    r = c.open(url, method=method, headers=headers, json=json)
    assert r.status_code < 500, (caller, url, r.status_code)
    return r.status_code in (200, 201) and (marker is None or marker.encode() in r.data)


def _search(w, caller, word: str) -> bool:
    return _api(w, caller, "GET", f"/api/v1/search?q={word}", marker=word)


def _socket(w, app, caller, event: str, payload: dict, marker: str) -> bool:
    tok = w["tokens"][caller]
    sc = sock(app, token=tok) if tok else sock(app)
    if not sc.is_connected():
        return False
    try:
        ack = sc.emit(event, payload, callback=True)
        return bool(ack and ack.get("ok")) and marker in repr(ack)
    finally:
        if sc.is_connected():
            sc.disconnect()


def channels(w, app) -> dict[str, dict]:
    post, hidden, att, m, deck = w["post"], w["hidden"], w["attachment"], w["meeting"], w["deck"]
    room_id, tid = w["room"].id, w["thread"].id
    return {
        "post": {
            "html": lambda c: _html(w, c, f"/threads/{tid}", "quokkafrank"),
            "api": lambda c: _api(w, c, "GET", f"/api/v1/posts/{post.id}", "quokkafrank"),
            "socket": lambda c: _socket(w, app, c, "sync", {"room_id": room_id, "after_seq": 0}, "quokkafrank"),
            "search": lambda c: _search(w, c, "quokkafrank"),
        },
        "post_history": {
            "html": lambda c: _html(w, c, f"/posts/{post.id}/history", "first thought"),
        },
        "hidden_post": {
            "html": lambda c: _html(w, c, f"/threads/{tid}", "wombatsecret"),
            "api": lambda c: _api(w, c, "GET", f"/api/v1/posts/{hidden.id}", "wombatsecret"),
            "socket": lambda c: _socket(w, app, c, "sync", {"room_id": room_id, "after_seq": 0}, "wombatsecret"),
            "search": lambda c: _search(w, c, "wombatsecret"),
        },
        "hidden_post_history": {
            "html": lambda c: _html(w, c, f"/posts/{hidden.id}/history", "wombatsecret"),
        },
        "attachment": {
            "file": lambda c: _html(w, c, f"/attachments/{att.id}/{att.filename}"),
        },
        "attachment_text": {
            "search": lambda c: _search(w, c, "platypusfile"),
        },
        "deck_file": {
            "file": lambda c: _html(w, c, f"/meetings/{m.id}/decks/{deck.id}/file"),
        },
        "deck_page": {
            "file": lambda c: _html(w, c, f"/meetings/{m.id}/decks/{deck.id}/pages/1.png"),
        },
        "slide_titles": {
            "file": lambda c: _html(w, c, f"/meetings/{m.id}/decks/{deck.id}/titles.json", "bilbytitle"),
        },
        "minutes_thread": {
            "html": lambda c: _html(w, c, f"/threads/{w['minutes_thread'].id}", "echidnakey"),
            "api": lambda c: _api(w, c, "GET", f"/api/v1/threads/{w['minutes_thread'].id}", "Plenary"),
        },
        "transcript": {
            "html": lambda c: _html(w, c, f"/meetings/{m.id}/transcript", "quokkasaid"),
            "file": lambda c: _html(w, c, f"/meetings/{m.id}/transcript.vtt", "quokkasaid"),
            "api": lambda c: _api(w, c, "GET", f"/api/v1/meetings/{m.id}/transcript", "quokkasaid"),
            # found through the minutes post (whose snippet is the minutes' own text)
            "search": lambda c: _api(w, c, "GET", "/api/v1/search?q=quokkasaid",
                                     f'"thread_id":{w["minutes_thread"].id}'),
        },
        "minutes_pdf": {
            "file": lambda c: _html(w, c, f"/meetings/{m.id}/minutes.pdf"),
        },
        "meeting_state": {
            "html": lambda c: _html(w, c, f"/meetings/{m.id}/state", "numbatchat"),
            "api": lambda c: _api(w, c, "GET", f"/api/v1/meetings/{m.id}/state", "numbatchat"),
            "socket": lambda c: _socket(w, app, c, "meeting_state", {"meeting_id": m.id}, "numbatchat"),
        },
        "meeting_media": {
            "api": lambda c: _api(w, c, "POST", f"/api/v1/meetings/{m.id}/token", "token"),
        },
        "broadcast_media": {
            "api": lambda c: _api(w, c, "POST", f"/api/v1/meetings/{m.id}/broadcast/token", '"role":"viewer"'),
            "html": lambda c: _html(w, c, f"/meetings/{m.id}/watch", "Press Play"),
        },
        "viewer_requests": {
            "html": lambda c: _html(w, c, f"/meetings/{m.id}/broadcast/queue", "koalaq"),
        },
        "recording": {
            "html": lambda c: _html(w, c, f"/meetings/{m.id}/recordings/{w['recording'].id}", "replay-video"),
            "file": lambda c: _html(w, c, f"/meetings/{m.id}/recordings/{w['recording'].id}/file"),
            "api": lambda c: _api(w, c, "GET", f"/api/v1/meetings/{m.id}/recordings",
                                  f"/recordings/{w['recording'].id}"),
        },
        "recording_control": {
            "api": lambda c: _api(w, c, "DELETE", f"/api/v1/meetings/{m.id}/recording", '"ok"'),
        },
        "vote": {
            "api": lambda c: _api(w, c, "POST", f"/api/v1/key-messages/{w['km']}/votes", "agree",
                                  json={"choice": "agree"}),
        },
        "idea": {
            "html": lambda c: _html(w, c, f"/threads/{w['idea'].thread_id}", "Status:"),
            "api": lambda c: _api(w, c, "GET", f"/api/v1/ideas/{w['idea'].id}", "kiwiidea"),
            "socket": lambda c: _socket(w, app, c, "sync", {"room_id": room_id, "after_seq": 0}, "idea.created"),
            "search": lambda c: _search(w, c, "kiwiidea"),
        },
        "poll": {
            "html": lambda c: _html(w, c, f"/threads/{w['poll'].thread_id}", "dingopoll"),
            "api": lambda c: _api(w, c, "GET", f"/api/v1/polls/{w['poll'].id}", "dingopoll"),
            "search": lambda c: _search(w, c, "dingopoll"),
        },
        "poll_results": {
            "api": lambda c: _api(w, c, "GET", f"/api/v1/polls/{w['poll'].id}", '"totals"'),
        },
        "poll_results_after_vote": {
            "api": lambda c: _api(w, c, "GET", f"/api/v1/polls/{w['poll_after'].id}", '"totals"'),
        },
        "poll_vote": {
            "api": lambda c: _api(w, c, "POST", f"/api/v1/polls/{w['poll'].id}/votes", '"my_vote":{',
                                  json={"choices": [0]}),
        },
        "poll_settings": {
            "api": lambda c: _api(w, c, "PATCH", f"/api/v1/polls/{w['poll'].id}", '"closes_at":"',
                                  json={"closes_at": "2099-01-01T00:00:00Z"}),
        },
        **qa_channels(w, app),
    }


def qa_channels(w, app) -> dict[str, dict]:
    room_id, s, q, pq, anon = w["room"].id, w["session"], w["question"], w["pending"], w["anonymous"]
    sync = {"room_id": room_id, "after_seq": 0}
    return {
        "qa_session": {
            "html": lambda c: _html(w, c, f"/qa/{s.id}", "emuqa"),
            "api": lambda c: _api(w, c, "GET", f"/api/v1/qa/{s.id}", "emuqa"),
            "socket": lambda c: _socket(w, app, c, "sync", sync, "qa.created"),
            "search": lambda c: _search(w, c, "emuqa"),
        },
        "question": {
            "html": lambda c: _html(w, c, f"/qa/{s.id}", "wallabyq"),
            "api": lambda c: _api(w, c, "GET", f"/api/v1/questions/{q.id}", "wallabyq"),
            "socket": lambda c: _socket(w, app, c, "sync", sync, "wallabyq"),
            "search": lambda c: _search(w, c, "wallabyq"),
        },
        "pending_question": {
            "html": lambda c: _html(w, c, f"/qa/{w['moderated'].id}", "bandicootq"),
            "api": lambda c: _api(w, c, "GET", f"/api/v1/questions/{pq.id}", "bandicootq"),
            "socket": lambda c: _socket(w, app, c, "sync", sync, "bandicootq"),
            "search": lambda c: _search(w, c, "bandicootq"),
        },
        "anonymous_asker": {
            "api": lambda c: _api(w, c, "POST", f"/api/v1/questions/{anon.id}/reveal", "Mel Member",
                                  json={"reason": "A rude question"}),
            "api_question": lambda c: _api(w, c, "GET", f"/api/v1/questions/{anon.id}", "Mel Member"),
        },
        "qa_hosting": {
            "api": lambda c: _api(w, c, "POST", f"/api/v1/questions/{q.id}/now-answering", '"status":"answering"'),
        },
        "qa_moderation": {
            "api": lambda c: _api(w, c, "POST", f"/api/v1/questions/{q.id}/edit", '"edited_by_moderator":true',
                                  json={"body": "wallabyq why so few? (edited)"}),
        },
        "qa_answer": {
            "api": lambda c: _api(w, c, "POST", f"/api/v1/questions/{w['to_answer'].id}/answer", '"status":"answered"',
                                  json={"body": "Because."}),
        },
    }


def test_every_caller_gets_exactly_what_the_policy_allows_on_every_channel(app, world):
    table = channels(world, app)
    assert set(table) == set(ARTIFACTS), "an artifact kind without channels, or channels without a kind"
    wrong = []
    for kind, by_channel in table.items():
        _fn, who = ARTIFACTS[kind]
        for channel, got in by_channel.items():
            allowed = expect(CHANNEL_NARROWER[kind, channel]) if (kind, channel) in CHANNEL_NARROWER else who
            for caller in CALLERS:
                if got(caller) != allowed[caller]:
                    wrong.append(f"{kind} via {channel} for {caller}: expected "
                                 f"{'allowed' if allowed[caller] else 'refused'}")
    tasks.settle(app)
    assert not wrong, "\n".join(wrong)


def render_table() -> str:
    """The matrix as the Markdown table docs/security.md carries ("What a member can see")."""
    head = "| What | Decided by | " + " | ".join(c.replace("_", " ") for c in CALLERS) + " |"
    lines = [head, "|" + "---|" * (len(CALLERS) + 2)]
    for kind, (fn, who) in ARTIFACTS.items():
        cells = " | ".join("yes" if who[c] else "no" for c in CALLERS)
        lines.append(f"| {kind.replace('_', ' ')} | `{fn}` | {cells} |")
    return "\n".join(lines)


def test_the_security_doc_shows_this_matrix():
    from pathlib import Path

    doc = (Path(__file__).resolve().parent.parent / "docs" / "security.md").read_text()
    assert render_table() in doc, ("docs/security.md's table under 'What a member can see, and when it stops' "
                                   "differs from the matrix; paste tests.test_artifact_matrix.render_table():\n"
                                   + render_table())
