"""The OpenAPI 3 description of /api/v1 (served at /api/v1/openapi.json)."""
from __future__ import annotations

from typing import Any

from collab import __version__


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict) -> dict:
    return {"content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict:
    text = {400: "Bad input", 401: "No valid token", 404: "Not found or not visible to the caller",
            403: "Visible, but the caller may not do this", 409: "Conflict", 413: "Too large", 422: "Invalid field",
            503: "A service it needs (the media worker) did not answer: nothing was done",
            429: "Too many requests from this account: wait as the message says"}
    return {str(c): {"description": text[c], **_json(_ref("Error"))} for c in codes}


def _id_param(name: str) -> dict:
    return {"name": name, "in": "path", "required": True,
            "schema": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}}


def _page_param() -> dict:
    return {"name": "page", "in": "query", "required": False,
            "schema": {"type": "integer", "minimum": 1, "maximum": 10000}}


NULLABLE_STR = {"type": ["string", "null"]}
NULLABLE_INT = {"type": ["integer", "null"]}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object", "required": ["error"],
        "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {
            "code": {"type": "string"}, "message": {"type": "string"}, "field": {"type": "string"}}}},
    },
    "Me": {
        "type": "object", "required": ["id", "name", "email", "kind"],
        "properties": {"id": {"type": "integer"}, "name": {"type": "string"}, "email": {"type": "string"},
                       "kind": {"type": "string", "enum": ["staff", "iag", "guest"]}, "role": {"type": "string"},
                       "organisation_id": NULLABLE_INT, "job_title": NULLABLE_STR},
    },
    "Person": {"type": ["object", "null"], "properties": {
        "id": {"type": "integer"}, "name": {"type": "string"},
        "pseudonym": {"type": "boolean", "description": "true in non-attributed rooms: a name like “Participant 4” "
                                                         "and no id"}}},
    "Room": {
        "type": "object", "required": ["id", "name", "description", "visibility"],
        "properties": {"id": {"type": "integer"}, "name": {"type": "string"}, "description": {"type": "string"},
                       "visibility": {"type": "string", "enum": ["private", "organisation", "national"]},
                       "organisation_id": NULLABLE_INT, "archived": {"type": "boolean"},
                       "label": {"type": "string", "description": "Confidentiality label (COLLAB_LABELS)"},
                       "non_attributed": {"type": "boolean"},
                       "created_at": {"type": "string"}, "my_role": NULLABLE_STR},
    },
    "RoomCreate": {
        "type": "object", "required": ["name"],
        "properties": {"name": {"type": "string", "maxLength": 120}, "description": {"type": "string"},
                       "visibility": {"type": "string", "enum": ["private", "organisation", "national"]},
                       "organisation_id": {"type": "integer"},
                       "non_attributed": {"type": "boolean", "description": "Chatham House: members see posts as "
                                          "“Participant n”; only moderators see who wrote what. Fixed once the "
                                          "room has a thread."}},
    },
    "Attachment": {
        "type": "object",
        "properties": {"id": {"type": "integer"}, "filename": {"type": "string"}, "size": {"type": "integer"},
                       "content_type": {"type": "string"}, "is_image": {"type": "boolean"},
                       "url": {"type": "string"}, "thumbnail_url": NULLABLE_STR},
    },
    "Post": {
        "type": "object",
        "required": ["id", "parent_id", "author", "body", "html", "created_at", "edited_at", "client_id"],
        "properties": {"id": {"type": "integer"}, "thread_id": {"type": "integer"}, "parent_id": NULLABLE_INT,
                       "depth": {"type": "integer"}, "author": _ref("Person"), "body": {"type": "string"},
                       "html": {"type": "string"}, "created_at": {"type": "string"}, "edited_at": NULLABLE_STR,
                       "deleted": {"type": "boolean"}, "client_id": NULLABLE_STR,
                       "hidden": {"type": "boolean"}, "hidden_reason": NULLABLE_STR,
                       "attachments": {"type": "array", "items": _ref("Attachment")}},
    },
    "Thread": {
        "type": "object", "required": ["id", "title", "room_id"],
        "properties": {"id": {"type": "integer"}, "title": {"type": "string"}, "room_id": {"type": "integer"},
                       "author": _ref("Person"), "created_at": {"type": "string"},
                       "last_post_at": {"type": "string"}, "post_count": {"type": "integer"},
                       "posts": {"type": "array", "items": _ref("Post")}},
    },
    "ThreadCreate": {
        "type": "object", "required": ["title", "body"],
        "properties": {"title": {"type": "string", "maxLength": 200}, "body": {"type": "string"},
                       "client_id": {"type": "string", "maxLength": 64}},
    },
    "PostCreate": {
        "type": "object", "required": ["body"],
        "properties": {"body": {"type": "string"}, "parent_id": {"type": "integer"},
                       "client_id": {"type": "string", "maxLength": 64}},
    },
    "PostEdit": {"type": "object", "required": ["body"], "properties": {"body": {"type": "string"}}},
    "MemberAdd": {
        "type": "object", "required": ["user_id"],
        "properties": {"user_id": {"type": "integer"},
                       "role": {"type": "string", "enum": ["owner", "moderator", "member", "observer"]}},
    },
    "Member": {"type": "object", "properties": {"user": _ref("Person"), "role": {"type": "string"}}},
    "Meeting": {
        "type": "object", "required": ["id", "room_id", "title", "created_at"],
        "properties": {"id": {"type": "integer"}, "room_id": {"type": "integer"}, "title": {"type": "string"},
                       "created_by": _ref("Person"), "created_at": {"type": "string"}, "ended_at": NULLABLE_STR,
                       "url": {"type": "string", "description": "The meeting page"}},
    },
    "MeetingCreate": {"type": "object", "description": "With `agenda`, `starts_at`, `ends_at`, `chairs` or "
                      "`invitees` the meeting is scheduled (ends two hours after the start unless given; invitees "
                      "default to everyone in the room) and the answer is a MeetingSchedule.",
                      "properties": {"title": {"type": "string", "maxLength": 200},
                                     "agenda": {"type": "string", "maxLength": 20000, "description": "Markdown"},
                                     "starts_at": {"type": "string", "format": "date-time"},
                                     "ends_at": {"type": "string", "format": "date-time"},
                                     "chairs": {"type": "array", "items": {"type": "integer"}},
                                     "invitees": {"type": "array", "items": {"type": "integer"}}}},
    "MeetingJoin": {
        "type": "object", "required": ["url", "token", "role"],
        "properties": {"meeting": _ref("Meeting"), "url": {"type": "string", "description": "Media worker WebSocket"},
                       "token": {"type": "string"},
                       "role": {"type": "string", "enum": ["host", "member", "observer", "viewer"]},
                       "expires_in": {"type": "integer"}},
    },
    "Broadcast": {
        "type": "object", "required": ["viewer_url", "whep_url", "live"],
        "properties": {"viewer_url": {"type": "string", "description": "The viewer page (readers of the room)"},
                       "whep_url": {"type": "string", "description": "The broadcast's WHEP endpoint (POST an SDP offer)"},
                       "live": {"type": "boolean"},
                       "started_at": {"type": ["string", "null"], "format": "date-time"}},
    },
    "Recording": {
        "type": "object", "required": ["id", "started_at", "ended_at", "url", "status"],
        "properties": {"id": {"type": "integer"},
                       "started_at": {"type": "string", "format": "date-time"},
                       "ended_at": {"type": ["string", "null"], "format": "date-time"},
                       "url": {"type": "string", "description": "The replay page (slides, camera, captions, index)"},
                       "file_url": {"type": ["string", "null"], "description": "The composed WebM, once ready"},
                       "status": {"type": "string", "enum": ["recording", "stopped", "composing", "ready", "failed"]},
                       "progress": {"type": "integer", "description": "Per cent of the composed file done"},
                       "message": {"type": "string"}, "duration": {"type": "number"}, "size": {"type": "integer"}},
    },
}

# Live rooms (issue 3): notifications and reactions.
SCHEMAS.update({
    "Notification": {
        "type": "object", "required": ["id", "kind", "text", "post_id", "read"],
        "properties": {"id": {"type": "integer"}, "kind": {"type": "string"},
                       "text": {"type": "string"}, "headline": {"type": "string",
                                                                "description": "What happened and where, in one line"}, "actor": _ref("Person"),
                       "room": {"type": "object", "properties": {"id": {"type": "integer"}, "name": {"type": "string"}}},
                       "thread": {"type": "object",
                                  "properties": {"id": {"type": "integer"}, "title": {"type": "string"}}},
                       "post_id": {"type": "integer"}, "excerpt": {"type": "string"}, "url": {"type": "string"},
                       "created_at": {"type": "string"}, "read": {"type": "boolean"}},
    },
    "NotificationsRead": {
        "type": "object", "description": "Either `ids` (1 to 500 notification ids) or `all: true`.",
        "properties": {"ids": {"type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": 500},
                       "all": {"type": "boolean"}},
    },
    "RoomNotifyLevel": {"type": "object", "required": ["level"], "description":
                        "Discourse's watch levels; the names used before issue 14 (all, mentions, mute) are still "
                        "accepted and mean tracking, normal and muted.",
                        "properties": {"level": {"type": "string", "enum": ["watching", "tracking", "normal", "muted",
                                                                             "all", "mentions", "mute"]}}},
    "ThreadNotifyLevel": {"type": "object", "required": ["level"], "description":
                          "normal: as the room is set (a watched room watches its threads, a muted one mutes them).",
                          "properties": {"level": {"type": "string",
                                                   "enum": ["watching", "tracking", "normal", "muted"]}}},
    "Reactions": {
        "type": "object", "properties": {"post_id": {"type": "integer"}, "reactions": {"type": "array", "items": {
            "type": "object", "properties": {"emoji": {"type": "string"}, "label": {"type": "string"},
                                             "count": {"type": "integer"},
                                             "user_ids": {"type": "array", "items": {"type": "integer"}}}}}},
    },
})


# Hybrid meetings (issue 6): schedule, state, decks, key messages, minutes.
SCHEMAS.update({
    "MeetingSchedule": {"type": "object", "properties": {
        "id": {"type": "integer"}, "room_id": {"type": "integer"}, "title": {"type": "string"},
        "status": {"type": "string", "enum": ["scheduled", "open", "ended", "cancelled"]},
        "agenda": {"type": "string"}, "agenda_html": {"type": "string"}, "starts_at": NULLABLE_STR,
        "ends_at": NULLABLE_STR, "cancelled_at": NULLABLE_STR, "all_members": {"type": "boolean"},
        "chairs": {"type": "array", "items": _ref("Person")},
        "invitees": {"type": ["array", "null"], "items": _ref("Person")}, "url": {"type": "string"}}},
    "MeetingEdit": {"type": "object", "properties": {
        "title": {"type": "string", "maxLength": 200}, "agenda": {"type": "string", "maxLength": 20000},
        "starts_at": {"type": "string", "format": "date-time"}, "ends_at": {"type": "string", "format": "date-time"}}},
    "MeetingState": {"type": "object", "description": "The live state, as the `meeting.state` Socket.IO event "
                     "sends it (docs/realtime.md), plus `me`.",
                     "properties": {"meeting_id": {"type": "integer"}, "version": {"type": "integer"},
                                    "deck_id": {"type": ["integer", "null"]}, "page": {"type": "integer"},
                                    "hands": {"type": "array", "items": {"type": "object"}},
                                    "key_messages": {"type": "array", "items": {"type": "object"}},
                                    "decks": {"type": "array", "items": _ref("Deck")},
                                    "attendance": {"type": "object"}, "me": {"type": "object"}}},
    "Deck": {"type": "object", "properties": {
        "id": {"type": "integer"}, "filename": {"type": "string"}, "kind": {"type": "string"},
        "status": {"type": "string", "enum": ["queued", "converting", "ready", "failed", "download"]},
        "pages": {"type": "integer"}, "done": {"type": "integer"}, "message": {"type": "string"},
        "size": {"type": "integer"}}},
    "KeyMessageCreate": {"type": "object", "required": ["text"],
                         "properties": {"text": {"type": "string", "maxLength": 1000}}},
    "VoteCast": {"type": "object", "required": ["choice"], "properties": {
        "choice": {"type": "string", "enum": ["agree", "disagree", "abstain"]},
        "comment": {"type": "string", "maxLength": 500}}},
})


# Ideas (issue 13): a thread kind with votes, a budget and a status with a response.
_PERSON_RANK = {"type": ["object", "null"], "properties": {
    "id": {"type": "integer"}, "name": {"type": "string"}, "pseudonym": {"type": "boolean"},
    "job_title": {"type": ["string", "null"], "description": "only where the caller may see ranks (not in a "
                  "“judge on merit” room before a decision, unless a moderator; never in a non-attributed room)"}}}
_BUDGET = {"type": ["object", "null"], "description": "the caller's open votes in the room; null: no limit",
           "properties": {"total": {"type": "integer"}, "used": {"type": "integer"}, "left": {"type": "integer"}}}
IDEA_STATUSES = ["new", "under_review", "adopted", "not_adopted", "already_exists", "done"]
SCHEMAS.update({
    "Idea": {"type": "object", "required": ["id", "thread_id", "status", "votes"], "properties": {
        "id": {"type": "integer"}, "thread_id": {"type": "integer"}, "room_id": {"type": "integer"},
        "title": {"type": "string"}, "author": _PERSON_RANK,
        "status": {"type": "string", "enum": IDEA_STATUSES}, "status_label": {"type": "string"},
        "response": NULLABLE_STR, "decided_by": NULLABLE_STR, "decided_at": NULLABLE_STR, "review_on": NULLABLE_STR,
        "duplicate_of": {"type": ["object", "null"], "properties": {"id": {"type": "integer"},
                                                                    "title": {"type": "string"}}},
        "votes": {"type": "integer"}, "created_at": {"type": "string"}, "url": {"type": "string"},
        "my_vote": {"type": "boolean"}, "can_vote": {"type": "boolean"}, "can_decide": {"type": "boolean"},
        "voters": {"type": ["array", "null"], "items": _PERSON_RANK,
                   "description": "GET of one idea only; null in a non-attributed room for those who do not see names"},
        "budget": _BUDGET}},
    "IdeaCreate": {"type": "object", "required": ["title", "body"], "properties": {
        "title": {"type": "string", "maxLength": 200}, "body": {"type": "string", "maxLength": 50000}}},
    "IdeaStatus": {"type": "object", "required": ["status"], "properties": {
        "status": {"type": "string", "enum": IDEA_STATUSES[1:]},
        "response": {"type": "string", "maxLength": 5000, "description": "required for not_adopted (the reason)"},
        "duplicate_of": {"type": "integer", "description": "required for already_exists: the idea it repeats"},
        "review_on": {"type": "string", "format": "date", "description": "under_review only"}}},
})


# Polls and proposals (issue 13).
SCHEMAS.update({
    "PollCreate": {"type": "object", "required": ["question", "kind"], "properties": {
        "question": {"type": "string", "maxLength": 300},
        "kind": {"type": "string", "enum": ["single", "multiple", "ranked", "score", "dot", "proposal"]},
        "options": {"type": "array", "items": {"type": "string", "maxLength": 200}, "minItems": 2, "maxItems": 20,
                    "description": "2 to 20 different texts; none for a proposal (always Agree, Abstain, "
                                   "Disagree, Block)"},
        "closes_at": {"type": ["string", "null"], "format": "date-time", "description": "in the future"},
        "anonymous": {"type": "boolean", "description": "locked once created: no voter is ever named"},
        "results": {"type": "string", "enum": ["always", "after_vote", "after_close"],
                    "description": "who sees the tallies, and when; locked once created"},
        "quorum": {"type": ["integer", "null"], "minimum": 1},
        "dots": {"type": ["integer", "null"], "minimum": 1, "maximum": 100,
                 "description": "dot votes only: each voter's budget (default 8)"},
        "body": {"type": "string", "maxLength": 10000},
        "meeting_id": {"type": ["integer", "null"], "minimum": 1, "description":
                       "a meeting of the same room, not ended, that the caller may chair: the poll is taken in it "
                       "and its outcome goes into the meeting's minutes"}}},
    "PollVote": {"type": "object", "required": ["choices"], "properties": {
        "choices": {"type": "array", "items": {"type": "integer", "minimum": 0}, "description":
                    "Options numbered from 0. single, proposal: [i] (proposal: 0 agree, 1 abstain, 2 disagree, "
                    "3 block); multiple: different options; ranked: every option once, first preference first; "
                    "score: one 0-5 per option; dot: dots per option, at most the budget in all"},
        "reason": {"type": "string", "maxLength": 2000, "description": "required with a block"}}},
    "PollChange": {"type": "object", "properties": {"closes_at": {"type": ["string", "null"], "format": "date-time"}},
                   "description": "Only the closing time changes; anonymous, results, kind, options and dots "
                                  "answer 409 (locked at creation)."},
    "PollClose": {"type": "object", "properties": {"outcome": {"type": "string", "maxLength": 5000}}},
    "Poll": {"type": "object", "required": ["id", "thread_id", "question", "kind", "options", "results"],
             "properties": {
                 "id": {"type": "integer"}, "room_id": {"type": "integer"}, "thread_id": {"type": "integer"},
                 "post_id": NULLABLE_INT, "meeting_id": NULLABLE_INT, "question": {"type": "string"},
                 "kind": {"type": "string"},
                 "options": {"type": "array", "items": {"type": "string"}}, "dots": NULLABLE_INT,
                 "anonymous": {"type": "boolean"},
                 "results_visibility": {"type": "string", "enum": ["always", "after_vote", "after_close"]},
                 "quorum": NULLABLE_INT, "closes_at": NULLABLE_STR, "closed": {"type": "boolean"},
                 "closed_at": NULLABLE_STR, "outcome": NULLABLE_STR, "outcome_post_id": NULLABLE_INT,
                 "created_at": {"type": "string"},
                 "results": {"type": ["object", "null"], "description":
                             "null unless the caller may see them: voters, totals per option, quorum_reached; "
                             "score: means; ranked: rounds (counts per option still in, eliminated) and winner",
                             "properties": {"voters": {"type": "integer"},
                                            "totals": {"type": "array", "items": {"type": "integer"}},
                                            "quorum_reached": {"type": ["boolean", "null"]}}},
                 "results_hidden_reason": NULLABLE_STR,
                 "my_vote": {"type": ["object", "null"]}, "voted": {"type": "boolean"},
                 "may_vote": {"type": "boolean"}, "may_close": {"type": "boolean"},
                 "voters": {"type": "array", "items": {"type": "object"}, "description":
                            "who voted what: never for an anonymous poll, never in a non-attributed room, "
                            "only with the results; not in a vote's answer (GET the poll)"}}},
})


# Q&A sessions (issue 13).
_QA_PERSON = {"type": ["object", "null"], "properties": {"id": {"type": "integer"}, "name": {"type": "string"},
                                                         "pseudonym": {"type": "boolean"}},
              "description": "no id in a non-attributed room for those who do not see names"}
QA_STATUSES = ["pending", "open", "answering", "answered", "declined", "merged"]
SCHEMAS.update({
    "QaCreate": {"type": "object", "required": ["title", "starts_at"], "properties": {
        "title": {"type": "string", "maxLength": 200},
        "starts_at": {"type": "string", "format": "date-time",
                      "description": "ISO 8601; without an offset, in the caller's time zone"},
        "ends_at": {"type": ["string", "null"], "format": "date-time"},
        "meeting_id": {"type": ["integer", "null"], "description": "a meeting of the same room: its Q&A tab"},
        "moderated": {"type": "boolean", "description": "questions wait for a moderator's or host's approval"},
        "hosts": {"type": "array", "items": {"type": "integer"}, "maxItems": 20,
                  "description": "account ids; others than the caller only by the room's owners and moderators"},
        "body": {"type": "string", "maxLength": 5000}}},
    "QaSession": {"type": "object", "required": ["id", "thread_id", "title"], "properties": {
        "id": {"type": "integer"}, "thread_id": {"type": "integer"}, "room_id": {"type": "integer"},
        "meeting_id": NULLABLE_INT, "title": {"type": "string"}, "moderated": {"type": "boolean"},
        "starts_at": {"type": "string"}, "ends_at": NULLABLE_STR, "ended_at": NULLABLE_STR,
        "now_answering_id": NULLABLE_INT, "url": {"type": "string"},
        "hosts": {"type": "array", "items": _QA_PERSON}, "is_host": {"type": "boolean"},
        "can_ask": {"type": "boolean"}, "can_moderate": {"type": "boolean"}, "can_host": {"type": "boolean"}}},
    "QaAsk": {"type": "object", "required": ["body"], "properties": {
        "body": {"type": "string", "minLength": 1, "maxLength": 1000},
        "anonymous": {"type": "boolean", "description": "no one but the room's moderators (through an audited "
                                                        "reveal) can learn who asked"}}},
    "Question": {"type": "object", "required": ["id", "session_id", "status", "votes"], "properties": {
        "id": {"type": "integer"}, "session_id": {"type": "integer"}, "post_id": {"type": "integer"},
        "status": {"type": "string", "enum": QA_STATUSES}, "status_label": {"type": "string"},
        "votes": {"type": "integer"}, "body": {"type": "string"}, "html": {"type": "string"},
        "author": {"type": ["object", "null"], "description": "{name: Anonymous, anonymous: true} for an anonymous "
                                                              "question: never a name or id"},
        "anonymous": {"type": "boolean"}, "mine": {"type": "boolean"}, "my_vote": {"type": "boolean"},
        "edited_by_moderator": {"type": "boolean"}, "answered_aloud": {"type": "boolean"},
        "merged_into_id": NULLABLE_INT, "created_at": {"type": "string"}, "answered_at": NULLABLE_STR,
        "answered_by": _QA_PERSON, "answer": {"type": ["object", "null"], "properties": {
            "post_id": {"type": "integer"}, "body": {"type": "string"}, "html": {"type": "string"}}},
        "decline_reason": {"type": ["string", "null"], "description": "to the asker and the moderators only"},
        "owner": _QA_PERSON, "due_on": NULLABLE_STR}},
    "QaAnswer": {"type": "object", "properties": {
        "body": {"type": "string", "maxLength": 10000, "description": "a written answer (a reply post)"},
        "aloud": {"type": "boolean", "description": "answered aloud (listed in the meeting's minutes)"}},
        "description": "a body, or aloud: true, or both"},
    "QaEdit": {"type": "object", "required": ["body"], "properties": {"body": {"type": "string", "maxLength": 1000}}},
    "QaMerge": {"type": "object", "required": ["into"], "properties": {
        "into": {"type": "integer", "description": "another question of the same session"}}},
    "QaReason": {"type": "object", "required": ["reason"], "properties": {"reason": {"type": "string", "maxLength": 500}}},
    "QaEnd": {"type": "object", "properties": {
        "owner_id": {"type": "integer", "description": "who answers what is left (default: the caller)"},
        "due_on": {"type": "string", "format": "date", "description": "default: in 14 days"}}},
    "QaHostAdd": {"type": "object", "required": ["user_id"], "properties": {"user_id": {"type": "integer"}}},
    "TranscriptSegment": {"type": "object", "required": ["id", "speaker", "start", "end", "text", "heard", "corrected"],
                          "properties": {"id": {"type": "integer"}, "speaker": {"type": "object"},
                                         "start": {"type": "string", "format": "date-time"},
                                         "end": {"type": "string", "format": "date-time"},
                                         "offset": {"type": "string"}, "text": {"type": "string"},
                                         "heard": {"type": "string"}, "corrected": {"type": "boolean"}}},
    "TranscriptSegments": {"type": "object", "required": ["meeting_id", "segments"],
                           "properties": {"meeting_id": {"type": "integer"},
                                          "segments": {"type": "array", "items": _ref("TranscriptSegment")}}},
    "TranscriptCorrection": {"type": "object", "required": ["text"],
                             "properties": {"text": {"type": "string", "maxLength": 2000}}},
})


def _op(summary: str, ok_status: str, ok_schema: dict, *errors: int, body: str | None = None,
        params: list | None = None) -> dict:
    if body and 413 not in errors:  # every JSON body has a size limit (collab.api.MAX_JSON_BYTES)
        errors = (*errors, 413)
    if 429 not in errors:  # every call counts against the account's rate limits (collab/limits.py)
        errors = (*errors, 429)
    op: dict[str, Any] = {"summary": summary, "responses": {ok_status: {"description": "OK", **_json(ok_schema)},
                                                            **_errors(401, *errors)}}
    if body:
        op["requestBody"] = {"required": True, **_json(_ref(body))}
    if params:
        op["parameters"] = params
    return op


def _with_ok(op: dict, description: str, schema: dict) -> dict:
    """Also declare a 200 answer (idempotent repeats answer 200 instead of 201)."""
    op["responses"]["200"] = {"description": description, **_json(schema)}
    return op


def _ics_op(meeting_id: dict) -> dict:
    op = _op("The meeting as an iCalendar invitation", "200", {"type": "string"}, 404, 422, params=[meeting_id])
    op["responses"]["200"] = {"description": "OK", "content": {"text/calendar": {"schema": {"type": "string"}}}}
    return op


def _session_param() -> dict:
    return {"name": "session", "in": "path", "required": True, "schema": {"type": "string", "maxLength": 64}}


def _sdp_op() -> dict:
    """WHEP's offer: an SDP body in, 201 with the answer (application/sdp) and the session's Location."""
    op = _op("WHEP: receive the broadcast (the stage and a speaker's audio) in another player; the body is the "
             "player's SDP offer (readers of the room while the broadcast is on)", "201", {"type": "string"},
             403, 404, 422, params=[_id_param("meeting_id")])
    op["requestBody"] = {"required": True, "content": {"application/sdp": {"schema": {"type": "string"}}}}
    op["responses"]["201"] = {"description": "The answer; Location: the session (DELETE it to end)",
                              "headers": {"Location": {"schema": {"type": "string"}}},
                              "content": {"application/sdp": {"schema": {"type": "string"}}}}
    op["responses"]["415"] = {"description": "Not Content-Type: application/sdp"}
    op["responses"]["503"] = {"description": "The media server did not answer"}
    return op


def _vtt_op(meeting_id: dict) -> dict:
    op = _op("The meeting's transcript as WebVTT captions (automatic, as a chair corrected them; readers of the "
             "room; speakers named or as \"Participant n\" as the room requires)", "200", {"type": "string"},
             404, 422, params=[meeting_id])
    op["responses"]["200"] = {"description": "OK", "content": {"text/vtt": {"schema": {"type": "string"}}}}
    return op


def document() -> dict[str, Any]:
    room_id, thread_id, post_id = _id_param("room_id"), _id_param("thread_id"), _id_param("post_id")
    paths = {
        "/me": {"get": _op("The caller's account", "200", _ref("Me"))},
        "/rooms": {
            "get": _op("Rooms the caller may read", "200",
                       {"type": "object", "properties": {"rooms": {"type": "array", "items": _ref("Room")}}}),
            "post": _op("Create a room (the caller becomes its owner)", "201", _ref("Room"), 400, 403, 422,
                        body="RoomCreate"),
        },
        "/rooms/{room_id}": {"get": _op("One room", "200", _ref("Room"), 404, 422, params=[room_id])},
        "/rooms/{room_id}/threads": {
            "get": _op("Threads of a room, most recently active first", "200",
                       {"type": "object", "properties": {"total": {"type": "integer"}, "page": {"type": "integer"},
                                                         "threads": {"type": "array", "items": _ref("Thread")}}},
                       400, 404, 422, params=[room_id, _page_param()]),
            "post": _op("Start a thread with its opening post", "201", _ref("Thread"), 400, 403, 404, 422,
                        body="ThreadCreate", params=[room_id]),
        },
        "/rooms/{room_id}/members": {
            "get": _op("Members of a room", "200",
                       {"type": "object", "properties": {"members": {"type": "array", "items": _ref("Member")}}},
                       404, 422, params=[room_id]),
            "post": _op("Add a member or change a member's role", "201", _ref("Member"), 400, 403, 404, 422,
                        body="MemberAdd", params=[room_id]),
        },
        "/rooms/{room_id}/members/{user_id}": {
            "delete": _op("Remove a member", "200", {"type": "object"}, 403, 404, 422,
                          params=[room_id, _id_param("user_id")]),
        },
        "/rooms/{room_id}/meetings": {
            "post": _op("Start a meeting in a room now (anyone who may post there); returns its id", "201",
                        _ref("Meeting"), 400, 403, 404, 422, body="MeetingCreate", params=[room_id]),
        },
        "/meetings/{meeting_id}": {"get": _op("One meeting", "200", _ref("Meeting"), 404, 422,
                                              params=[_id_param("meeting_id")])},
        "/meetings/{meeting_id}/token": {
            "post": _op("A short-lived token and the media worker's WebSocket URL, to join the meeting", "200",
                        _ref("MeetingJoin"), 403, 404, 422, params=[_id_param("meeting_id")]),
        },
        "/meetings/{meeting_id}/broadcast": {
            "get": _op("Whether the meeting is broadcast now, and its viewer page (readers of the room)", "200",
                       _ref("Broadcast"), 404, 422, params=[_id_param("meeting_id")]),
            "post": _op("Start the meeting's web broadcast (the chairs; again: the same one)", "200",
                        _ref("Broadcast"), 403, 404, 422, params=[_id_param("meeting_id")]),
            "delete": _op("Stop the broadcast: every viewer is let go at once (the chairs)", "200",
                          _ref("Broadcast"), 403, 404, 422, params=[_id_param("meeting_id")]),
        },
        "/meetings/{meeting_id}/recordings": {
            "get": _op("The meeting's recordings (as the room's attachments: readers, not guests of a labelled room)",
                       "200", {"type": "object", "required": ["recordings"],
                               "properties": {"recordings": {"type": "array", "items": _ref("Recording")}}},
                       404, 422, params=[_id_param("meeting_id")]),
        },
        "/meetings/{meeting_id}/recording": {
            "post": _op("Start recording (the chairs, where the room allows it, with people in the call); everyone "
                        "in the meeting is told", "201", _ref("Recording"), 403, 404, 409, 422, 503,
                        params=[_id_param("meeting_id")]),
            "delete": _op("Stop recording; the file to replay is composed in the background", "200",
                          {"type": "object"}, 403, 404, 422, params=[_id_param("meeting_id")]),
        },
        "/meetings/{meeting_id}/whep": {
            "post": _sdp_op(),
        },
        "/meetings/{meeting_id}/whep/{session}": {
            "delete": _op("End a WHEP session (its Location)", "200", {"type": "object"}, 404, 422,
                          params=[_id_param("meeting_id"), _session_param()]),
            "patch": _op("Trickle ICE: not supported (405); send the candidates in the offer", "405",
                         {"type": "object"}, 404, 422, params=[_id_param("meeting_id"), _session_param()]),
        },
        "/meetings/{meeting_id}/broadcast/token": {
            "post": _op("A viewer token (role viewer: receives the stage and the speakers' audio, sends nothing) "
                        "and the media worker's WebSocket URL, while the broadcast is on", "200",
                        _ref("MeetingJoin"), 403, 404, 422, params=[_id_param("meeting_id")]),
        },
        "/threads/{thread_id}": {"get": _op("A thread with all its posts in tree order", "200", _ref("Thread"),
                                            404, 422, params=[thread_id])},
        "/threads/{thread_id}/posts": {
            "post": _with_ok(_op("Reply (a repeated client_id returns the existing post with 200)", "201",
                                 _ref("Post"), 400, 403, 404, 422, body="PostCreate", params=[thread_id]),
                             "The post already made with this client_id", _ref("Post")),
        },
        "/posts/{post_id}": {
            "get": _op("One post", "200", _ref("Post"), 404, 422, params=[post_id]),
            "patch": _op("Edit a post (the author only; history is kept)", "200", _ref("Post"), 400, 403, 404, 422,
                         body="PostEdit", params=[post_id]),
            "delete": _op("Remove a post, leaving a tombstone", "200", _ref("Post"), 403, 404, 422, params=[post_id]),
        },
        "/search": {"get": _op(
            "Full-text search of every post the caller may read (query language as in the search box)", "200",
            {"type": "object", "required": ["total", "results"], "properties": {
                "total": {"type": "integer"}, "total_is_estimate": {"type": "boolean"}, "page": {"type": "integer"},
                "notices": {"type": "array", "items": {"type": "string"}}, "suggestion": NULLABLE_STR,
                "results": {"type": "array", "items": {"type": "object", "properties": {
                    "post_id": {"type": "integer"}, "thread_id": {"type": "integer"}, "room_id": {"type": "integer"},
                    "room_name": {"type": "string"}, "title": {"type": "string"},
                    "label": {"type": "string", "description": "Which post this is, as the search page says it: "
                              "\"Reply #12 by Priya Shah\", \"Opening post by …\" (a pseudonym in a "
                              "non-attributed room)"},
                    "author_name": NULLABLE_STR, "is_opening": {"type": "boolean"},
                    "reply_number": dict(NULLABLE_INT, description="The reply's place in its thread by time "
                                         "of posting (1 = first reply); null for the opening post"),
                    "in_attachment": {"type": "boolean", "description": "The snippet is from an attached file"},
                    "snippet_html": {"type": "string"}, "created_at": {"type": "string"}}}}}},
            404, 422, params=[
                {"name": "q", "in": "query", "required": False, "schema": {"type": "string"}},
                {"name": "room_id", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 1}},
                {"name": "author", "in": "query", "required": False,
                 "description": "Part of an author's name (as author: in the search box)",
                 "schema": {"type": "string", "maxLength": 100}},
                {"name": "after", "in": "query", "required": False, "description": "Posted on or after this day",
                 "schema": {"type": "string", "format": "date"}},
                {"name": "before", "in": "query", "required": False, "description": "Posted on or before this day",
                 "schema": {"type": "string", "format": "date"}},
                {"name": "has_attachment", "in": "query", "required": False,
                 "description": "Only posts with a file attached", "schema": {"type": "boolean"}},
                {"name": "sort", "in": "query", "required": False,
                 "schema": {"type": "string", "enum": ["relevance", "newest"]}},
                {"name": "page", "in": "query", "required": False,
                 "schema": {"type": "integer", "minimum": 1, "maximum": 50}}])},
        "/posts/{post_id}/attachments": {
            "post": dict(
                _op("Attach files to a post (the author only): multipart/form-data, one or more parts named `file`",
                    "201", _ref("Post"), 400, 403, 404, 413, 422, params=[post_id]),
                requestBody={"required": True, "content": {"multipart/form-data": {"schema": {
                    "type": "object", "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}}}}}}),
        },
    }
    emoji = {"name": "emoji", "in": "path", "required": True,
             "schema": {"type": "string", "enum": ["👍", "❤️", "🎉", "😮", "🙏", "👀"]}}
    paths.update({
        "/notifications": {"get": _op(
            "The caller's notifications, newest first (`unread=true` for unread only)", "200",
            {"type": "object", "properties": {"total": {"type": "integer"}, "page": {"type": "integer"},
                                              "unread": {"type": "integer"},
                                              "notifications": {"type": "array", "items": _ref("Notification")}}},
            422, params=[_page_param(), {"name": "unread", "in": "query", "required": False,
                                         "schema": {"type": "string", "enum": ["true", "false"]}}])},
        "/notifications/read": {"post": _op(
            "Mark notifications read", "200",
            {"type": "object", "properties": {"marked": {"type": "integer"}, "unread": {"type": "integer"}}},
            400, 422, body="NotificationsRead")},
        "/rooms/{room_id}/notifications": {"put": _op(
            "What a room notifies the caller about (members only)", "200",
            {"type": "object", "properties": {"room_id": {"type": "integer"}, "level": {"type": "string"}}},
            400, 404, 422, body="RoomNotifyLevel", params=[room_id])},
        "/threads/{thread_id}/notifications": {"put": _op(
            "What a thread notifies the caller about (anyone who may read it)", "200",
            {"type": "object", "properties": {"thread_id": {"type": "integer"}, "level": {"type": "string"}}},
            400, 404, 422, body="ThreadNotifyLevel", params=[thread_id])},
        "/posts/{post_id}/reactions/{emoji}": {
            "put": _op("React to a post (adding the same reaction twice is one)", "200", _ref("Reactions"),
                       403, 404, 422, params=[post_id, emoji]),
            "delete": _op("Take back a reaction", "200", _ref("Reactions"), 403, 404, 422, params=[post_id, emoji]),
        },
    })
    meeting_id = _id_param("meeting_id")
    paths.update({
        "/meetings": {"get": _op(
            "Scheduled meetings the caller is invited to or chairs", "200",
            {"type": "object", "properties": {"upcoming": {"type": "array", "items": _ref("MeetingSchedule")},
                                              "past": {"type": "array", "items": _ref("MeetingSchedule")}}})},
        "/meetings/{meeting_id}.ics": {"get": _ics_op(meeting_id)},
        "/meetings/{meeting_id}/cancel": {"post": _op(
            "Cancel a meeting (the chair); invitees are told", "200", _ref("MeetingSchedule"), 403, 404, 422,
            params=[meeting_id])},
        "/meetings/{meeting_id}/transcript": {"get": _vtt_op(meeting_id)},
        "/meetings/{meeting_id}/transcript/segments": {"get": _op(
            "The meeting's transcript as JSON segments", "200", _ref("TranscriptSegments"), 404, 422,
            params=[meeting_id])},
        "/transcript-segments/{segment_id}": {"patch": _op(
            "Correct one transcript segment (a chair; audited; empty text goes back to what was heard)", "200",
            _ref("TranscriptSegment"), 400, 403, 404, 422, body="TranscriptCorrection",
            params=[_id_param("segment_id")])},
        "/meetings/{meeting_id}/state": {"get": _op(
            "The meeting's live state: slide, hands, attendance, key messages, decks", "200",
            _ref("MeetingState"), 404, 422, params=[meeting_id])},
        "/meetings/{meeting_id}/decks": {"post": dict(
            _op("Attach a deck or paper (the chair): multipart/form-data, part `file`; converted in the background",
                "201", _ref("Deck"), 400, 403, 404, 413, 422, params=[meeting_id]),
            requestBody={"required": True, "content": {"multipart/form-data": {"schema": {
                "type": "object", "required": ["file"], "properties": {"file": {"type": "string", "format": "binary"}}}}}})},
        "/meetings/{meeting_id}/key-messages": {"post": _op(
            "Draft a key message (the chair)", "201", {"type": "object"}, 400, 403, 404, 422,
            body="KeyMessageCreate", params=[meeting_id])},
        "/key-messages/{key_message_id}/votes": {"post": _op(
            "Vote on a key message while its vote is open (again to change it); refused once closed", "200",
            {"type": "object"}, 400, 403, 404, 422, body="VoteCast", params=[_id_param("key_message_id")])},
        "/meetings/{meeting_id}/minutes": {"post": _op(
            "Post (or update) the minutes as a thread in the room (the chair)", "201",
            {"type": "object", "properties": {"thread_id": {"type": "integer"}}}, 403, 404, 422,
            params=[meeting_id])},
    })
    idea_id = _id_param("idea_id")
    paths.update({
        "/rooms/{room_id}/ideas": {
            "get": _op("A room's ideas, with the caller's vote budget", "200",
                       {"type": "object", "properties": {"room_id": {"type": "integer"}, "budget": _BUDGET,
                                                         "ideas": {"type": "array", "items": _ref("Idea")}}},
                       404, 422, params=[room_id,
                                         {"name": "sort", "in": "query", "required": False,
                                          "schema": {"type": "string", "enum": ["votes", "newest"]}},
                                         {"name": "status", "in": "query", "required": False,
                                          "schema": {"type": "string", "enum": ["all", "open", *IDEA_STATUSES]}}]),
            "post": _op("Post an idea (a thread with its opening post) in a room that takes ideas", "201",
                        _ref("Idea"), 400, 403, 404, 422, body="IdeaCreate", params=[room_id]),
        },
        "/ideas/{idea_id}": {"get": _op("One idea, with its voters (where names are shown) and the caller's budget",
                                        "200", _ref("Idea"), 404, 422, params=[idea_id])},
        "/ideas/{idea_id}/vote": {
            "post": _op("Vote for an open idea: one vote per person, within the room's budget (409 otherwise)",
                        "200", _ref("Idea"), 403, 404, 409, 422, params=[idea_id]),
            "delete": _op("Withdraw your vote from an open idea (409 if you have none)", "200", _ref("Idea"),
                          403, 404, 409, 422, params=[idea_id]),
        },
        "/ideas/{idea_id}/status": {"post": _op(
            "Change an idea's status (room owners and moderators, or people they name): new → under_review → "
            "adopted / not_adopted / already_exists; adopted → done", "200", _ref("Idea"), 400, 403, 404, 409, 422,
            body="IdeaStatus", params=[idea_id])},
    })
    poll_id = _id_param("poll_id")
    paths.update({
        "/rooms/{room_id}/polls": {"post": _op(
            "Start a poll or proposal in a room, with its thread (anyone who may post there)", "201", _ref("Poll"),
            400, 403, 404, 422, body="PollCreate", params=[room_id])},
        "/polls/{poll_id}": {
            "get": _op("One poll (results only when the caller may see them)", "200", _ref("Poll"), 404, 422,
                       params=[poll_id]),
            "patch": _op("Change the closing time (its creator or the room's moderators); locked settings: 409",
                         "200", _ref("Poll"), 400, 403, 404, 409, 422, body="PollChange", params=[poll_id])},
        "/polls/{poll_id}/votes": {"post": _with_ok(_op(
            "Vote (201), or change the caller's vote (200), until the poll closes", "201", _ref("Poll"),
            400, 403, 404, 409, 422, body="PollVote", params=[poll_id]), "The vote was changed", _ref("Poll"))},
        "/polls/{poll_id}/close": {"post": _op(
            "Close a poll with an outcome statement, posted in its thread (its creator or the room's moderators)",
            "200", _ref("Poll"), 400, 403, 404, 409, 422, body="PollClose", params=[poll_id])},
    })
    qa_id, question_id = _id_param("qa_id"), _id_param("question_id")
    q_ref, s_ref = _ref("Question"), _ref("QaSession")
    paths.update({
        "/rooms/{room_id}/qa": {
            "get": _op("A room's Q&A sessions", "200", {"type": "object", "properties": {
                "room_id": {"type": "integer"}, "sessions": {"type": "array", "items": s_ref}}}, 404, 422,
                params=[room_id]),
            "post": _op("Open a Q&A session (a thread) in a room; the caller hosts it", "201", s_ref,
                        400, 403, 404, 422, body="QaCreate", params=[room_id])},
        "/qa/{qa_id}": {"get": _op("One Q&A session", "200", s_ref, 404, 422, params=[qa_id])},
        "/qa/{qa_id}/hosts": {"post": _op("Add a host (the room's owners and moderators)", "200", s_ref,
                                          400, 403, 404, 409, 422, body="QaHostAdd", params=[qa_id])},
        "/qa/{qa_id}/end": {"post": _op(
            "End the session (its hosts): what is left gets an owner and a due date, and is reminded then", "200",
            s_ref, 400, 403, 404, 409, 422, body="QaEnd", params=[qa_id])},
        "/qa/{qa_id}/questions": {
            "get": _op("The questions the caller may see", "200", {"type": "object", "properties": {
                "session_id": {"type": "integer"}, "questions": {"type": "array", "items": q_ref}}}, 404, 422,
                params=[qa_id, {"name": "sort", "in": "query", "required": False,
                                "schema": {"type": "string", "enum": ["votes", "newest"]}}]),
            "post": _op("Ask a question (a post in the session's thread); refused once the session has ended",
                        "201", q_ref, 400, 403, 404, 409, 422, body="QaAsk", params=[qa_id])},
        "/questions/{question_id}": {"get": _op("One question", "200", q_ref, 404, 422, params=[question_id])},
        "/questions/{question_id}/vote": {
            "post": _op("Upvote a question: one vote per person (409 for a second)", "200", q_ref,
                        403, 404, 409, 422, params=[question_id]),
            "delete": _op("Withdraw your upvote (409 if you have none)", "200", q_ref, 403, 404, 409, 422,
                          params=[question_id])},
        "/questions/{question_id}/approve": {"post": _op(
            "Approve a question waiting for approval (the session's hosts and the room's moderators)", "200", q_ref,
            403, 404, 409, 422, params=[question_id])},
        "/questions/{question_id}/edit": {"post": _op(
            "Edit a question's text; it then says “edited by moderator” (hosts and moderators)", "200", q_ref,
            400, 403, 404, 409, 422, body="QaEdit", params=[question_id])},
        "/questions/{question_id}/merge": {"post": _op(
            "Merge a duplicate into another question of the same session: votes combined, one per person",
            "200", q_ref, 400, 403, 404, 409, 422, body="QaMerge", params=[question_id])},
        "/questions/{question_id}/decline": {"post": _op(
            "Decline a question with a reason the asker is told (hosts and moderators)", "200", q_ref,
            400, 403, 404, 409, 422, body="QaReason", params=[question_id])},
        "/questions/{question_id}/now-answering": {"post": _op(
            "Mark the question being answered now, one at a time (the hosts)", "200", q_ref, 403, 404, 409, 422,
            params=[question_id])},
        "/questions/{question_id}/answer": {"post": _op(
            "Answer in writing or mark answered aloud (the hosts; after the end, the question's owner)", "200",
            q_ref, 400, 403, 404, 409, 422, body="QaAnswer", params=[question_id])},
        "/questions/{question_id}/reveal": {"post": _op(
            "Who asked an anonymous question (the room's moderators only; audited, with a reason)", "200",
            {"type": "object", "properties": {"question_id": {"type": "integer"}, "asker": _QA_PERSON}},
            400, 403, 404, 422, body="QaReason", params=[question_id])},
    })
    paths["/meetings/{meeting_id}"]["patch"] = _op(
        "Change a scheduled meeting (the chair); invitees are told", "200", _ref("MeetingSchedule"), 400, 403, 404,
        422, body="MeetingEdit", params=[meeting_id])
    return {
        "openapi": "3.1.0",
        "info": {"title": "Collab API", "version": __version__,
                 "description": "Authenticate with a personal access token: `Authorization: Bearer <token>`. "
                                "Anything the caller may not see answers 404."},
        "servers": [{"url": "/api/v1"}],
        "components": {"schemas": SCHEMAS,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
        "paths": paths,
    }
