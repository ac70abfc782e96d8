"""Key messages, votes and minutes (issue 6): one vote per person, changeable until the vote
closes; the minutes thread, editable by the chair with its history."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from collab.errors import Forbidden, Invalid
from collab.extensions import db
from rooms.meetings import attendance, minutes, services, state, votes
from rooms.models import Post
from tests.live_support import login_client
from tests.meeting_support import (  # noqa: F401  (app_config, settle_live: fixtures)
    app_config,
    ready_deck,
    settle_live,
    setup_meeting,
    soon,
)


def test_votes_one_per_person_changeable_refused_after_close_and_minutes(app, make):
    chair, ann, bob, _room, meeting = setup_meeting(make, starts_at=soon())
    deck = ready_deck(chair, meeting, pages=1)
    kid = votes.draft(chair, meeting.id, text="Stop and search data should be published monthly")["key_message_id"]
    with pytest.raises(Forbidden):
        votes.cast(ann, kid, choice="agree")            # not open yet
    votes.edit(chair, kid, text="Stop and search data must be published monthly")
    votes.open_vote(chair, kid)
    votes.cast(ann, kid, choice="disagree")
    votes.cast(ann, kid, choice="agree", comment="Weekly would be better")
    votes.cast(bob, kid, choice="abstain")
    with pytest.raises(Invalid):
        votes.cast(bob, kid, choice="maybe")
    votes.room_counts(chair, kid, agree=5, disagree=1, abstain=0)
    km = state.get_state(ann, meeting.id)["key_messages"][0]
    assert km["tally"]["total"] == {"agree": 6, "disagree": 1, "abstain": 1}
    assert km["tally"]["remote"] == {"agree": 1, "disagree": 0, "abstain": 1}
    with pytest.raises(Forbidden):
        votes.close(ann, kid, outcome="agreed")
    votes.close(chair, kid, outcome="agreed")
    with pytest.raises(votes.VoteClosed) as e:
        votes.cast(bob, kid, choice="agree")
    assert "closed" in e.value.message
    assert state.get_state(ann, meeting.id)["me"]["votes"][str(kid)]["choice"] == "agree"
    attendance.mark_in_room(chair, meeting.id, user_id=bob.id)
    attendance.mark_in_room(chair, meeting.id, name="Dee Visitor")
    services.join(ann, meeting.id)   # Ann joins the call (her media token): she attends
    state.add_action(chair, meeting.id, text="Publish the March data", owner="Chair Person")
    thread = minutes.end_with_minutes(chair, meeting.id)
    post = db.session.scalar(select(Post).where(Post.thread_id == thread.id))
    assert thread.title == "Minutes: IAG plenary"
    for text in ("Stop and search data must be published monthly", "**Agreed**", "6 agree", "Bob Baker",
                 "Dee Visitor", "Ann Able", "Stop and search", "plenary.pdf", "Publish the March data",
                 "Weekly would be better"):
        assert text in post.body, text
    # the chair can edit the minutes (normal post editing keeps the history)
    from rooms import posts as room_posts

    room_posts.edit_post(chair, post.id, body=post.body + "\n\nCorrected.")
    name, data = minutes.pdf(ann, meeting.id)
    assert data[:5] == b"%PDF-" and name.endswith(".pdf")
    import pypdfium2 as pdfium

    text = pdfium.PdfDocument(data)[0].get_textpage().get_text_range()
    assert "IAG plenary" in text and "Agreed" in text
    # The room's confidentiality label is on the minutes thread and on every PDF page.
    assert post.body.startswith("**OFFICIAL**")
    pdf = pdfium.PdfDocument(data)
    for i in range(len(pdf)):
        assert pdf[i].get_textpage().get_text_range().count("OFFICIAL") >= 2, f"page {i + 1}"
    assert deck.id


def test_minutes_thread_is_editable_by_the_chair_with_history(app, make):
    from rooms import posts as room_posts
    from rooms.models import PostRevision

    chair, ann, _bob, _room, meeting = setup_meeting(make)
    kid = votes.draft(chair, meeting.id, text="Publish the data monthly")["key_message_id"]
    votes.open_vote(chair, kid)
    votes.cast(ann, kid, choice="agree")
    votes.close(chair, kid, outcome="deferred")
    thread = minutes.end_with_minutes(chair, meeting.id)
    post = db.session.scalar(select(Post).where(Post.thread_id == thread.id))
    assert "**Deferred**" in post.body and "1 agree" in post.body
    room_posts.edit_post(chair, post.id, body=post.body + "\n\nCorrected: Dee sent apologies.")
    with pytest.raises(Forbidden):
        room_posts.edit_post(ann, post.id, body="Mine now")
    revisions = list(db.session.scalars(select(PostRevision).where(PostRevision.post_id == post.id)))
    assert len(revisions) == 1 and "Corrected" not in revisions[0].body
    c = login_client(app, ann)
    page = c.get(f"/threads/{thread.id}").data.decode()
    assert "Corrected: Dee sent apologies." in page
    pdf = c.get(f"/meetings/{meeting.id}/minutes.pdf")
    assert pdf.status_code == 200 and pdf.data[:5] == b"%PDF-"
    assert login_client(app, make.user()).get(f"/meetings/{meeting.id}/minutes.pdf").status_code == 404
    # votes after the meeting ended are refused with a message, and change nothing
    with pytest.raises(votes.VoteClosed) as e:
        votes.cast(ann, kid, choice="disagree")
    assert "closed" in e.value.message
    assert state.get_state(ann, meeting.id)["key_messages"][0]["tally"]["total"]["agree"] == 1
