"""Transcript endpoints of the JSON API (issue 16); each calls rooms/meetings/transcript.py.

`GET /api/v1/meetings/<id>/transcript` answers WebVTT (text/vtt); `…/transcript/segments` the same as
JSON; `PATCH /api/v1/transcript-segments/<id>` {"text"} is a chair's correction (empty: undo)."""
from __future__ import annotations

from flask import Response

from collab.api import api_user, bp, json_body, ok
from collab.http import confidential
from rooms.meetings import transcript


@bp.get("/meetings/<int:meeting_id>/transcript")
def meeting_transcript(meeting_id: int):
    return confidential(Response(transcript.webvtt(api_user(), meeting_id), mimetype="text/vtt"))


@bp.get("/meetings/<int:meeting_id>/transcript/segments")
def transcript_segments(meeting_id: int):
    meeting, segments = transcript.segments(api_user(), meeting_id, "api")
    return ok({"meeting_id": meeting.id, "segments": segments})


@bp.patch("/transcript-segments/<int:segment_id>")
def correct_segment(segment_id: int):
    seg = transcript.correct(api_user(), segment_id, json_body().get("text"))
    meeting, segments = transcript.segments(api_user(), seg.meeting_id, "api")
    return ok(next(s for s in segments if s["id"] == seg.id))
