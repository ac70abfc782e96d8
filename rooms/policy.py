"""Who may see or do what with a room and everything derived from it: the one place.

Every route, API endpoint, socket handler, search result and file response asks a
function here (flaskbb's `utils/requirements.py` is the model: small named checks
that compose). Rules about accounts themselves (who may administer, invite or
suspend an account) live in `auth/permissions.py`.

Two rules are decided once here and nowhere else:
- guests in a room labelled above the lowest label (`_guest_kept_out`) get no
  attachment, deck file, slide image or minutes PDF, and no text drawn from any of
  them (search snippets);
- in a non-attributed room only moderators see who is who (`sees_names`).

Services call these and turn a "no" into NotFound (cannot see) or Forbidden (can
see, may not act).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from sqlalchemy import Select, bindparam, false, or_, select, true
from sqlalchemy.orm import lazyload

from auth import mfa
from auth import permissions as perm
from auth.models import User
from collab.db import transaction_memo, utcnow
from collab.extensions import db
from rooms import labels
from rooms.ideas.models import DECIDED_STATUSES, Idea, IdeaDecider, IdeaSettings
from rooms.models import Attachment, Membership, Post, Room
from rooms.moderation_models import RoomMute
from rooms.polls.models import Poll, PollVote
from rooms.qa.models import LIVE_STATUSES, QaHost, QaQuestion, QaSession

if TYPE_CHECKING:  # pragma: no cover - meetings depend on rooms, never the other way at run time
    from rooms.meetings.models import Meeting

POSTING_ROLES = ("owner", "moderator", "member")
MODERATING_ROLES = ("owner", "moderator")


_MEMO = "perm_memberships"
_ENROL_MEMO = "perm_enrolment"


def membership(user: Optional[User], room: Room) -> Optional[Membership]:
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    # Remembered for the rest of the session's transaction (a thread page asks once per post); any write,
    # commit or rollback forgets it, so a check inside a write transaction always reads the database.
    memo = transaction_memo(db.session(), _MEMO)
    key = (user.id, room.id)
    if key not in memo:
        memo[key] = db.session.scalar(_MEMBERSHIP, {"room_id": room.id, "user_id": user.id})
    return memo[key]


# Built once (asked on every post and page): building a statement costs as much as running it.
_MEMBERSHIP = select(Membership).where(Membership.room_id == bindparam("room_id"),
                                       Membership.user_id == bindparam("user_id"))





def _signed_in(user: Optional[User]) -> bool:
    """An active account that has done what the site requires of it: one that must set up two-step
    sign-in and has not reads nothing, over any channel (its pages lead it to set-up)."""
    if user is None or not getattr(user, "is_authenticated", False) or not user.active:
        return False
    memo = transaction_memo(db.session(), _ENROL_MEMO)
    if user.id not in memo:
        memo[user.id] = not mfa.must_enrol(user)
    return memo[user.id]


def _sees_without_membership(user: User, room: Room) -> bool:
    if room.visibility == "national":
        return True
    if room.visibility == "organisation":
        return user.kind == "staff" and user.organisation_id is not None and user.organisation_id == room.organisation_id
    return False


def can_read_room(user: Optional[User], room: Room) -> bool:
    if not _signed_in(user):
        return False
    return _sees_without_membership(user, room) or membership(user, room) is not None


def readable_rooms_clause(user: Optional[User]):
    """A WHERE clause on Room for the rooms `user` may read (used by lists and search)."""
    if not _signed_in(user):
        return false()
    member_rooms = select(Membership.room_id).where(Membership.user_id == user.id)
    clauses = [Room.visibility == "national", Room.id.in_(member_rooms)]
    if user.kind == "staff" and user.organisation_id is not None:
        clauses.append((Room.visibility == "organisation") & (Room.organisation_id == user.organisation_id))
    return or_(*clauses)


def room_readers_clause(room: Room):
    """A WHERE clause on User for the accounts that may read `room`: can_read_room for many people
    in one query (who of them hears about a post)."""
    member = User.id.in_(select(Membership.user_id).where(Membership.room_id == room.id))
    if room.visibility == "national":
        sees = true()
    elif room.visibility == "organisation" and room.organisation_id is not None:
        sees = (User.kind == "staff") & (User.organisation_id == room.organisation_id)
    else:
        sees = false()
    return User.active.is_(True) & or_(sees, member)


def readable_room_ids(user: Optional[User]) -> Select:
    return select(Room.id).where(readable_rooms_clause(user))


# readable_rooms_clause as one statement built once, with the account as parameters (asked by every
# search: building the statement cost as much as running it). organisation_id NULL matches no room.
_READABLE_IDS = select(Room.id).where(or_(
    Room.visibility == "national",
    Room.id.in_(select(Membership.room_id).where(Membership.user_id == bindparam("user_id"))),
    (Room.visibility == "organisation") & (Room.organisation_id == bindparam("org_id"))))


def readable_room_id_list(user: Optional[User]) -> list[int]:
    """The ids of the rooms `user` may read (as readable_room_ids), in one compact query."""
    if not _signed_in(user):
        return []
    org = user.organisation_id if user.kind == "staff" else None
    return list(db.session.scalars(_READABLE_IDS, {"user_id": user.id, "org_id": org}))


def can_join_room(user: Optional[User], room: Room) -> bool:
    """Open rooms (organisation, national) can be joined by anyone who may read them."""
    return _signed_in(user) and not room.archived and _sees_without_membership(user, room)


def can_post(user: Optional[User], room: Room) -> bool:
    """Members post; readers of open rooms may post too (they join on first post)."""
    if not _signed_in(user) or room.archived:
        return False
    if room.id is not None and muted_until(user, room) is not None:
        return False
    m = membership(user, room)
    if m is not None:
        return m.role in POSTING_ROLES
    return can_join_room(user, room)


def can_moderate(user: Optional[User], room: Room) -> bool:
    if not _signed_in(user):
        return False
    m = membership(user, room)
    return m is not None and m.role in MODERATING_ROLES


def can_manage_room(user: Optional[User], room: Room) -> bool:
    """Edit settings, archive, change roles: room owners and site administrators who can read it."""
    if not _signed_in(user):
        return False
    m = membership(user, room)
    if m is not None and m.role == "owner":
        return True
    return user.is_admin and can_read_room(user, room)


def can_invite_to_room(user: Optional[User], room: Room) -> bool:
    return not room.archived and (can_moderate(user, room) or can_manage_room(user, room))


def can_edit_post(user: Optional[User], post: Post) -> bool:
    return (
        _signed_in(user)
        and not post.deleted
        and post.author_id == user.id
        and not post.thread.room.archived
        and can_read_room(user, post.thread.room)
    )


def can_delete_post(user: Optional[User], post: Post) -> bool:
    if not _signed_in(user) or post.deleted or post.thread.room.archived:
        return False
    if post.author_id == user.id and can_read_room(user, post.thread.room):
        return True
    return can_moderate(user, post.thread.room)


# -- trust and safety (issue 7) ----------------------------------------------------------

def muted_until(user: Optional[User], room: Room):
    """When a moderator's mute of `user` in `room` ends (None: not muted)."""
    if not _signed_in(user):
        return None
    return db.session.scalar(_MUTED, {"room_id": room.id, "user_id": user.id, "now": utcnow()})


_MUTED = (select(RoomMute.until)
          .where(RoomMute.room_id == bindparam("room_id"), RoomMute.user_id == bindparam("user_id"),
                 RoomMute.lifted_at.is_(None), RoomMute.until > bindparam("now"))
          .order_by(RoomMute.until.desc()).limit(1))


def can_flag_post(user: Optional[User], post: Post) -> bool:
    """Any member (observers too) may report a post that is still there."""
    return _signed_in(user) and not post.deleted and membership(user, post.thread.room) is not None


def can_see_hidden_post(user: Optional[User], post: Post) -> bool:
    """A hidden post's text: its author and the room's moderators."""
    if not _signed_in(user) or not can_read_room(user, post.thread.room):
        return False
    return post.author_id == user.id or can_moderate(user, post.thread.room)


def can_mute(user: Optional[User], room: Room, target: User) -> bool:
    """Moderators mute members and observers; owners and moderators cannot be muted."""
    if not can_moderate(user, room) or target.id == user.id:
        return False
    m = membership(target, room)
    return m is None or m.role not in MODERATING_ROLES


def can_change_label(user: Optional[User], room: Room) -> bool:
    return can_manage_room(user, room) and not room.archived


def can_download_attachments(user: Optional[User], room: Room) -> bool:
    """Guests cannot download attachments of rooms labelled above the lowest label (OFFICIAL-SENSITIVE)."""
    return can_read_room(user, room) and not _guest_kept_out(user, room)


def can_create_room(user: Optional[User], visibility: str) -> bool:
    if not _signed_in(user) or user.kind == "guest":
        return False
    if visibility == "national":
        return user.is_admin or user.kind == "staff"
    if visibility == "organisation":
        return user.is_admin or (user.kind == "staff" and user.organisation_id is not None)
    return True


# -- things derived from a room --------------------------------------------------------------------
# One function per kind of thing; each starts from can_read_room, so whatever cuts reading a room
# (removal, the room made private, suspension, two-step sign-in not set up) cuts all of them.

def _kept_from_some_files(user: User) -> bool:
    """Whether any room's files (and text drawn from them) can be kept from `user`: guests only."""
    return user.kind == "guest"


def _guest_kept_out(user: User, room: Room) -> bool:
    """Guests are kept from files (and text drawn from files) of rooms labelled above the lowest label."""
    return _kept_from_some_files(user) and labels.is_sensitive(room)


def may_read_post(user: Optional[User], post: Post) -> bool:
    """A post's text: readers of its room; a hidden one only its author and the moderators."""
    if not can_read_room(user, post.thread.room):
        return False
    return post.hidden_at is None or can_see_hidden_post(user, post)


def may_read_post_history(user: Optional[User], post: Post) -> bool:
    """Earlier versions of a post: like its text, and never once it is removed or hidden from the
    reader (the history would hand back what the tombstone took away)."""
    return not post.deleted and may_read_post(user, post)


def may_download_attachment(user: Optional[User], attachment: Attachment) -> bool:
    return can_download_attachments(user, attachment.post.thread.room)


def may_read_attachment_text(user: Optional[User], room: Room) -> bool:
    """Text extracted from a room's attachments (search hits and snippets): as the files themselves."""
    return can_download_attachments(user, room)


def rooms_without_attachment_text(user: Optional[User], room_ids: list[int]) -> set[int]:
    """Of `room_ids`, those whose attachment text `user` may not read (may_read_attachment_text for
    many rooms): search looks there in the posts' own text only, so a word found only in a file is
    no hit, no count and no snippet. Costs no query for anyone who can never be kept from files."""
    if not room_ids or not _signed_in(user) or not _kept_from_some_files(user):
        return set()
    rooms = db.session.scalars(select(Room).where(Room.id.in_(room_ids))).all()
    return {r.id for r in rooms if not may_read_attachment_text(user, r)}


def may_see_meeting(user: Optional[User], meeting: Meeting) -> bool:
    """A meeting's page, state, chat, hands, votes and the minutes thread: readers of its room."""
    return can_read_room(user, meeting.room)


def may_download_deck(user: Optional[User], meeting: Meeting) -> bool:
    """A meeting's pre-read files and their slide images: as the room's attachments."""
    return can_download_attachments(user, meeting.room)


def may_read_slide_titles(user: Optional[User], meeting: Meeting) -> bool:
    """A deck's slide titles (text read from its pages): exactly as its slide images."""
    return may_download_deck(user, meeting)


def may_read_transcript(user: Optional[User], meeting: Meeting) -> bool:
    """A meeting's transcript (final captions, as corrected; the WebVTT export; the captions themselves
    come over the media channel, which only those who may join hold): readers of its room, like the
    minutes thread. Correcting it is the chairs' (rooms/meetings/access.py is_chair) in a writable room."""
    return may_see_meeting(user, meeting)


def may_download_minutes_pdf(user: Optional[User], meeting: Meeting) -> bool:
    return can_download_attachments(user, meeting.room)


def may_join_meeting(user: Optional[User], meeting: Meeting) -> bool:
    """The meeting's audio and video: readers of an open room, while the meeting has not ended.
    (The chair's removals and locks are checked by the meeting itself, rooms/meetings/attendance.py.)"""
    return meeting.ended_at is None and not meeting.room.archived and can_read_room(user, meeting.room)


def may_watch_broadcast(user: Optional[User], meeting: Meeting, *, live: bool) -> bool:
    """A meeting's web broadcast (the viewer page, a viewer's media token, WHEP): readers of its room, while
    the meeting runs in an open room and the broadcast is `live`. Sending it a question or asking to speak
    is watching it: a homebound reader of the room may ask (the chairs' queue is moderated)."""
    return live and may_join_meeting(user, meeting)


def recording_refusal(room: Room) -> str | None:
    """Why a room's meetings may not be recorded, or None if a chair may record them: its owners allowed
    it, its label is at most COLLAB_RECORDING_MAX_LABEL (default the lowest: a frank OFFICIAL-SENSITIVE
    discussion is never kept as audio), and it is not non-attributed (a voice names its speaker)."""
    if room.non_attributed:
        return "This room is non-attributed: its meetings are never recorded, since a voice names its speaker."
    limit = labels.recording_max_label()
    if labels.rank(labels.label_of(room)) > labels.rank(limit):
        return f"Meetings of rooms labelled above {limit} are not recorded."
    if not room.recording_allowed:
        return "The room's owners have not allowed meetings here to be recorded."
    return None


def may_record(user: Optional[User], meeting: Meeting, *, chair: bool) -> bool:
    """Start or stop a meeting's recording: its chairs (`chair`: rooms/meetings/access.py is_chair), while it
    runs in an open room. Starting also needs a room that may be recorded (`recording_refusal`); stopping
    never does, so a chair can always stop one."""
    return chair and meeting.ended_at is None and may_act_in_meeting(user, meeting)


def may_read_recordings(user: Optional[User], meeting: Meeting) -> bool:
    """A meeting's recordings (the list, the replay page, the composed file, its timeline and captions):
    as the room's attachments — readers of the room, except guests of a room labelled above the lowest."""
    return can_download_attachments(user, meeting.room)


def may_read_viewer_requests(user: Optional[User], meeting: Meeting, *, chair: bool) -> bool:
    """The broadcast's queue (viewers' questions and requests to speak, with their names): the meeting's
    chairs only (`chair`: rooms/meetings/access.py is_chair), never the other participants or viewers."""
    return chair and may_see_meeting(user, meeting)


def may_act_in_meeting(user: Optional[User], meeting: Meeting) -> bool:
    """Anything that changes a meeting's record (hands, chat, votes, attendance, chair tools):
    never in an archived room, which is read-only everywhere."""
    return not meeting.room.archived and can_read_room(user, meeting.room)


def sees_tally(*, hidden: bool, chair: bool, voted: bool) -> bool:
    """A key message's running tally (counts, the room's show of hands, comments): everyone who follows
    the meeting, unless the chair opened the vote with its tally hidden and it is still open
    (rooms/meetings/state.py tally_hidden); then only the chairs and those who have voted on it."""
    return not hidden or chair or voted


def sees_names(user: Optional[User], room: Room) -> bool:
    """Whether `user` sees who wrote, chaired, attended or voted in `room`: everyone who reads it,
    except in a non-attributed room, where only its moderators and managers do (and the reveal is
    audited by the caller)."""
    if not room.non_attributed:
        return can_read_room(user, room)
    return can_moderate(user, room) or can_manage_room(user, room)


def people_visible_clause(user: Optional[User]):
    """A WHERE clause on User: the active accounts `user` may be offered by name in a people picker
    (rooms/people.py). Site administrators: everyone. Others: themselves, the staff of their own
    organisation (staff only: an IAG volunteer or guest is not shown the force's directory), and the members
    of the rooms they may read where they see names (`sees_names`: in a non-attributed room only its
    moderators and owners), so a picker never reveals who belongs to a room its user cannot read or may
    not see the members of."""
    if not _signed_in(user):
        return false()
    if user.is_admin:
        return User.active.is_(True)
    named_rooms = select(Room.id).where(readable_rooms_clause(user), or_(
        Room.non_attributed.is_(False),
        Room.id.in_(select(Membership.room_id).where(Membership.user_id == user.id,
                                                      Membership.role.in_(MODERATING_ROLES)))))
    seen = [User.id == user.id,
            User.id.in_(select(Membership.user_id).where(Membership.room_id.in_(named_rooms)))]
    if user.kind == "staff" and user.organisation_id is not None:
        seen.append(User.organisation_id == user.organisation_id)
    return User.active.is_(True) & or_(*seen)


def can_invite_by_email(user: Optional[User], room: Room) -> bool:
    """Inviting someone who has no account yet straight into a room (one step: an invitation that makes
    them a member when they accept, rooms/people.py): whoever may add members to the room *and* may
    invite accounts (auth/permissions.py: site administrators; organisation administrators, into their
    organisation)."""
    return can_invite_to_room(user, room) and perm.can_invite_accounts(user, user.organisation_id or None)


# -- ideas (issue 13) ------------------------------------------------------------------------------

def idea_settings(room: Room) -> IdeaSettings:
    """The room's idea options (a row with ideas off when the room has none)."""
    memo = transaction_memo(db.session(), "idea_settings")
    if room.id not in memo:
        memo[room.id] = db.session.get(IdeaSettings, room.id) or IdeaSettings(
            room_id=room.id, enabled=False, vote_budget=None, judge_on_merit=False)
    return memo[room.id]


def may_see_idea(user: Optional[User], idea: Idea) -> bool:
    """An idea, its status, response and tally: readers of its room (it is a thread there)."""
    return can_read_room(user, idea.room)


def can_post_idea(user: Optional[User], room: Room) -> bool:
    return idea_settings(room).enabled and can_post(user, room)


def can_vote_idea(user: Optional[User], room: Room) -> bool:
    """Voting is taking part: whoever may post in the room (not observers, not the muted, never archived)."""
    return can_post(user, room)


def can_name_idea_deciders(user: Optional[User], room: Room) -> bool:
    return not room.archived and (can_moderate(user, room) or can_manage_room(user, room))


def can_decide_ideas(user: Optional[User], room: Room) -> bool:
    """Owners and moderators of the room, or people they named (who must still read the room)."""
    if not _signed_in(user) or room.archived or not can_read_room(user, room):
        return False
    if can_moderate(user, room) or can_manage_room(user, room):
        return True
    return db.session.scalar(select(IdeaDecider.id).where(
        IdeaDecider.room_id == room.id, IdeaDecider.user_id == user.id)) is not None


def sees_ranks(user: Optional[User], room: Room, *, decided: bool) -> bool:
    """Whether `user` sees the rank or job title of an idea's author and voters. Never where names are
    hidden (a non-attributed room) from whoever does not see names; in a "judge on merit" room only its
    moderators until a decision is published."""
    if not sees_names(user, room):
        return False
    if idea_settings(room).judge_on_merit and not decided:
        return can_moderate(user, room) or can_manage_room(user, room)
    return True


def sees_thread_ranks(user: Optional[User], room: Room, thread_id: int) -> bool:
    """Job titles beside the posts of a thread: hidden in an idea's thread while `sees_ranks` says so."""
    if not idea_settings(room).judge_on_merit:
        return True
    status = db.session.scalar(select(Idea.status).where(Idea.thread_id == thread_id))
    return status is None or sees_ranks(user, room, decided=status in DECIDED_STATUSES)


def sees_member_ranks(user: Optional[User], room: Room) -> bool:
    """Job titles on a judge-on-merit room's member list: its moderators only (the list would name the
    rank of every author and voter)."""
    return not idea_settings(room).judge_on_merit or can_moderate(user, room) or can_manage_room(user, room)
# -- polls and proposals (issue 13) ----------------------------------------------------------------

def may_see_poll(user: Optional[User], poll: Poll) -> bool:
    """A poll's question, options and state: as its opening post (the question and options are its
    text), so moderation and retention apply unchanged: removed (by its author, a moderator or the
    room's retention) it is gone for everyone; hidden, only its author and the moderators see it."""
    if not can_read_room(user, poll.room) or poll.post_id is None:
        return False
    # Asked several times for one answer (a vote's view): the post is held for the transaction (the
    # session's identity map alone holds rows weakly, and each ask re-read it), and read without its
    # attachments (loaded if someone asks for them).
    memo = transaction_memo(db.session(), "poll_posts")
    if poll.post_id not in memo:
        memo[poll.post_id] = db.session.get(Post, poll.post_id, options=[lazyload(Post.attachments)])
    post = memo[poll.post_id]
    return post is not None and not post.deleted and may_read_post(user, post)


def may_vote_in_poll(user: Optional[User], poll: Poll) -> bool:
    """Those who may post in the room (observers may not), while the poll is open."""
    return poll.closed_at is None and can_post(user, poll.room)


def may_close_poll(user: Optional[User], poll: Poll) -> bool:
    """Its creator and the room's moderators, in a room that is not archived."""
    if not can_read_room(user, poll.room) or poll.room.archived:
        return False
    return poll.created_by_id == user.id or can_moderate(user, poll.room)


def has_voted(user: Optional[User], poll: Poll) -> bool:
    if not _signed_in(user):
        return False
    return db.session.scalar(select(PollVote.id).where(PollVote.poll_id == poll.id,
                                                       PollVote.user_id == user.id)) is not None


def may_see_poll_results(user: Optional[User], poll: Poll, *, voted: Optional[bool] = None) -> bool:
    """A poll's tallies, chosen at creation and locked: "always" every reader of the room; "after_vote"
    a reader once they have voted; "after_close" nobody (its creator and the moderators included)
    until it is closed. Once closed, every reader. `voted`: if the caller already knows."""
    if not may_see_poll(user, poll):
        return False
    if poll.closed_at is not None or poll.results == "always":
        return True
    if poll.results == "after_vote":
        return has_voted(user, poll) if voted is None else voted
    return False


def sees_poll_voters(user: Optional[User], poll: Poll) -> bool:
    """Who voted what: never in an anonymous poll (to anyone, moderators included: the vote's account
    is kept only to allow one vote each), never in a non-attributed room (its moderators' reveals are
    one audited path, rooms/pseudonyms.py, which polls do not open); otherwise whoever sees the results."""
    return not poll.anonymous and not poll.room.non_attributed and may_see_poll_results(user, poll)


# -- Q&A sessions (issue 13) -----------------------------------------------------------------------

def may_see_qa_session(user: Optional[User], session: QaSession) -> bool:
    """A session, its hosts, its public questions, tallies and answers: readers of its room (it is a
    thread there, and its questions are posts)."""
    return can_read_room(user, session.room)


def can_create_qa(user: Optional[User], room: Room) -> bool:
    """Whoever may post in the room may open a session (they host it)."""
    return can_post(user, room)


def is_qa_host(user: Optional[User], session: QaSession) -> bool:
    if not _signed_in(user):
        return False
    return db.session.scalar(select(QaHost.id).where(QaHost.session_id == session.id,
                                                     QaHost.user_id == user.id)) is not None


def may_host_qa(user: Optional[User], session: QaSession) -> bool:
    """Mark "now answering", answer, end the session: its hosts, while they read an open room."""
    return not session.room.archived and can_read_room(user, session.room) and is_qa_host(user, session)


def can_add_qa_hosts(user: Optional[User], room: Room) -> bool:
    """Name hosts (besides oneself as creator): the room's owners and moderators."""
    return not room.archived and (can_moderate(user, room) or can_manage_room(user, room))


def may_moderate_qa(user: Optional[User], session: QaSession) -> bool:
    """The moderation queue (approve, edit, merge, decline): the room's moderators and the hosts."""
    if session.room.archived or not can_read_room(user, session.room):
        return False
    return can_moderate(user, session.room) or can_manage_room(user, session.room) or is_qa_host(user, session)


def may_reveal_qa_asker(user: Optional[User], session: QaSession) -> bool:
    """Who asked an anonymous question: the room's moderators only, never the host as host, and each
    reveal is audited by the caller (rooms/qa/hosting.py reveal_asker)."""
    return can_read_room(user, session.room) and (can_moderate(user, session.room)
                                                  or can_manage_room(user, session.room))


def can_ask_question(user: Optional[User], session: QaSession) -> bool:
    """Asking and voting are taking part: whoever may post in the room, until the session ends."""
    return session.ended_at is None and can_post(user, session.room)


def may_see_question(user: Optional[User], question: QaQuestion) -> bool:
    """A question: every reader of the room once it is approved (open, being answered, answered, merged);
    one waiting for approval or declined, only its asker and those who moderate the session. Its
    post's own rules apply too (removed by retention or a moderator: gone)."""
    session = question.session
    if not may_see_qa_session(user, session) or question.post.deleted:
        return False
    if question.status in (*LIVE_STATUSES, "answered", "merged"):
        return True
    return question.asker_id == user.id or may_moderate_qa(user, session)


def may_answer_question(user: Optional[User], question: QaQuestion) -> bool:
    """The hosts; after the session, the question's owner too."""
    session = question.session
    if may_host_qa(user, session):
        return True
    return (session.ended_at is not None and question.owner_id is not None and _signed_in(user)
            and question.owner_id == user.id and not session.room.archived and can_read_room(user, session.room))
