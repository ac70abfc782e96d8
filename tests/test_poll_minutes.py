"""Polls taken in a meeting (issue 13): a meeting's chairs start a poll in it (same room, not ended);
closing records the outcome, and the minutes (thread and PDF) list each poll's outcome beside the key
messages -- counts only, never a voter's name."""
from __future__ import annotations

import pypdfium2 as pdfium
from sqlalchemy import func, select

from collab.extensions import db
from rooms.meetings import minutes
from rooms.models import Post
from rooms.polls import services as polls
from tests.conftest import bearer
from tests.meeting_support import app_config, setup_meeting  # noqa: F401  (app_config: a fixture)


def test_a_meetings_polls_and_their_outcomes_go_into_its_minutes(app, client, make):
    chair, ann, bob, room, meeting = setup_meeting(make)
    other_room = make.room(chair, members=[ann])
    elsewhere = setup_meeting(make)[4]
    t_chair, t_ann = make.token(chair), make.token(ann)
    body = {"question": "Publish stop and search data monthly?", "kind": "proposal", "anonymous": True,
            "meeting_id": meeting.id}
    r = client.post(f"/api/v1/rooms/{room.id}/polls", headers=bearer(t_chair), json=body)
    assert r.status_code == 201 and r.json["meeting_id"] == meeting.id
    taken = r.json["id"]
    # refusals, nothing made: a member who does not chair, another room's meeting, an unseen meeting, bad input
    before = db.session.scalar(select(func.count(Post.id)))
    assert client.post(f"/api/v1/rooms/{room.id}/polls", headers=bearer(t_ann), json=body).status_code == 403
    wrong = client.post(f"/api/v1/rooms/{other_room.id}/polls", headers=bearer(t_chair), json=body)
    assert wrong.status_code == 422 and wrong.json["error"]["field"] == "meeting_id"
    unseen = client.post(f"/api/v1/rooms/{room.id}/polls", headers=bearer(t_chair),
                         json=dict(body, meeting_id=elsewhere.id))
    assert unseen.status_code == 404
    assert client.post(f"/api/v1/rooms/{room.id}/polls", headers=bearer(t_chair),
                       json=dict(body, meeting_id="x")).status_code == 422
    assert db.session.scalar(select(func.count(Post.id))) == before
    still_open = polls.create_poll(chair, room.id, question="Which day for the next plenary?", kind="single",
                                   options=["Monday", "Thursday"], results="after_close", meeting_id=meeting.id)
    unrelated = polls.create_poll(chair, room.id, question="Unrelated room poll", kind="single", options=["A", "B"])
    polls.vote(ann, taken, choices=[0])
    polls.vote(bob, taken, choices=[3], reason="Not without the context notes")
    polls.vote(ann, still_open.id, choices=[1])
    polls.vote(ann, unrelated.id, choices=[0])
    polls.close(chair, taken, outcome="Agreed to publish, with context notes.")
    thread = minutes.end_with_minutes(chair, meeting.id)
    text = db.session.scalar(select(Post.body).where(Post.thread_id == thread.id, Post.parent_id.is_(None)))
    polls_part = text[text.index("## Polls and proposals"):text.index("## Actions")]
    assert text.index("## Key messages") < text.index("## Polls and proposals")
    for want in ("1. **Publish stop and search data monthly?**", "Outcome: Agreed to publish, with context notes.",
                 "2 people voted.", "- Agree: 1 votes", "- Block: 1 votes",
                 "2. **Which day for the next plenary?**", "Still open (results hidden until it closes)."):
        assert want in polls_part, want
    assert "Unrelated" not in text and "Ann Able" not in polls_part and "Bob Baker" not in polls_part
    assert "Thursday: " not in polls_part   # a hidden tally stays hidden in the minutes
    name, data = minutes.pdf(ann, meeting.id)
    pdf = pdfium.PdfDocument(data)
    pdf_text = " ".join(pdf[i].get_textpage().get_text_range() for i in range(len(pdf)))
    assert "Polls and proposals" in pdf_text and "Agreed to publish, with context notes." in pdf_text
    # an ended meeting takes no new poll
    late = client.post(f"/api/v1/rooms/{room.id}/polls", headers=bearer(t_chair), json=body)
    assert late.status_code == 409 and late.json["error"]["field"] == "meeting_id"


def test_a_chair_starts_a_poll_from_the_meetings_votes_tab(app, make):
    from tests.live_support import login_client

    chair, ann, _bob, room, meeting = setup_meeting(make)
    web = login_client(app, chair)
    page = web.get(f"/meetings/{meeting.id}").get_data(as_text=True)
    assert "New poll in this meeting" in page and "No polls yet" in page
    form = web.get(f"/rooms/{room.id}/polls/new?meeting_id={meeting.id}").get_data(as_text=True)
    assert "taken in the meeting <strong>IAG plenary</strong>" in form and f'name="meeting_id" value="{meeting.id}"' in form
    r = web.post(f"/rooms/{room.id}/polls/new", data={"question": "Move the plenary to Thursdays?", "kind": "proposal",
                                                      "results": "always", "meeting_id": str(meeting.id)})
    assert r.status_code == 302
    poll = polls.meeting_polls(meeting)[0]
    assert poll.question == "Move the plenary to Thursdays?"
    assert "Move the plenary to Thursdays?" in login_client(app, ann).get(f"/meetings/{meeting.id}").get_data(as_text=True)
    # a member who does not chair sees the polls but gets no button, and cannot take one in the meeting
    member_page = login_client(app, ann).get(f"/meetings/{meeting.id}").get_data(as_text=True)
    assert "New poll in this meeting" not in member_page
    assert login_client(app, ann).get(f"/rooms/{room.id}/polls/new?meeting_id={meeting.id}").status_code == 403
