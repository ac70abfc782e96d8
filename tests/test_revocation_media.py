"""Losing a room reaches the media worker too (issue 10, "one revocation path" (b) and (c)).

tests/test_media_revocation.py proves the meeting's own ways out (the chair's "remove", the end);
tests/test_revocation.py proves the Socket.IO channels for every way of losing a room. Here the
same room-level losses are made through the services a person would use while the victim is in the
call as an API client would be (a media token only, no meeting page open) and receiving RTP through
a real worker: the worker says "bye" with the reason, no more RTP arrives, the token minted before
is refused, and the web app mints no new one. The others' call goes on.
"""
from __future__ import annotations

import asyncio

import pytest

from auth import mfa, suspension
from auth import services as accounts
from collab.errors import Forbidden, NotFound
from rooms import revocation
from rooms import services as rs
from rooms.meetings import services
from tests.live_support import until
from tests.test_media_revocation import _in_call, app_config, backend, join_reply, received, worker_url  # noqa: F401

WAYS = ("removed", "made_private", "archived", "deactivated", "suspended", "mfa_required")


def _world(make, way: str):
    org = make.org()
    admin = make.user(admin=True, org=org, kind="iag")
    chair, witness = make.user(org=org, kind="iag"), make.user(org=org, kind="iag")
    victim = make.user(org=org, kind="staff" if way in ("made_private", "mfa_required") else "iag")
    if way == "made_private":   # the victim reads an organisation room without being a member
        room = make.room(admin, visibility="organisation", moderator=[chair], members=[witness])
    else:
        room = make.room(chair, members=[witness, victim])
    return admin, chair, witness, victim, room


def _lose(way: str, admin, chair, victim, room) -> None:
    if way == "removed":
        rs.remove_member(chair, room.id, victim.id)
    elif way == "made_private":
        rs.update_room(admin, room.id, name=room.name, description="", visibility="private")
    elif way == "archived":
        rs.set_archived(chair, room.id, True)
    elif way == "deactivated":
        accounts.set_active(admin, victim.id, False)
    elif way == "suspended":
        suspension.suspend_account(admin, victim.id, 2, "Threats to another member")
    elif way == "mfa_required":
        mfa.set_policy(admin, "staff")


MESSAGES = {"removed": revocation.ROOM_MESSAGES["removed"], "made_private": revocation.ROOM_MESSAGES["room_changed"],
            "archived": revocation.ROOM_MESSAGES["archived"],
            "deactivated": revocation.SESSION_MESSAGES["deactivated"],
            "suspended": revocation.SESSION_MESSAGES["deactivated"],
            "mfa_required": revocation.SESSION_MESSAGES["mfa_required"]}


@pytest.mark.parametrize("way", WAYS)
def test_losing_the_room_ends_the_media_session_and_voids_the_old_token(app, make, worker_url, way):  # noqa: F811
    admin, chair_u, witness_u, victim_u, room = _world(make, way)
    m = services.start_meeting(chair_u, room.id, title="Review")
    chair_tok = services.join(chair_u, m.id)["token"]
    old = services.join(victim_u, m.id)["token"]   # minted before access was lost
    witness_tok = services.join(witness_u, m.id)["token"]

    async def scenario():
        chair, (victim, witness) = await _in_call(worker_url, chair_tok, old, witness_tok)
        _lose(way, admin, chair_u, victim_u, room)
        assert await until(lambda: victim.bye is not None), f"no bye after {way}"
        bye = next(x for x in victim.messages if x["type"] == "bye")
        assert bye["message"] == MESSAGES[way]
        assert await until(lambda: victim.ws.close_code is not None), "the worker closes the connection"
        await asyncio.sleep(0.5)   # packets already on the loopback wire
        frames = received(victim)
        await asyncio.sleep(2)
        assert received(victim) == frames, f"RTP still reaches the victim after {way}"
        reply, code = await join_reply(worker_url, old)
        assert reply["type"] == "error" and reply["code"] == "revoked" and code == 4003
        if way == "archived":   # everyone's call is over; nobody gets a new token
            assert await until(lambda: chair.bye is not None and witness.bye is not None)
        else:
            seen = received(witness)
            await asyncio.sleep(1)
            assert received(witness) > seen, "the meeting goes on for the others"
        for p in (chair, victim, witness):
            await p.close()

    asyncio.run(asyncio.wait_for(scenario(), 90))
    with pytest.raises((Forbidden, NotFound)):
        services.join(victim_u, m.id)
