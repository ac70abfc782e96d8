"""Nothing lost: a scripted Socket.IO client posts 500 messages with client ids
to the real production server (`flask --app wsgi serve`) while the server is
killed with SIGKILL and restarted twice in the middle. Afterwards every post the
server acknowledged exists exactly once, every post left unacknowledged was
sent again after reconnecting, nothing is duplicated, and the client's event
stream (live events plus `sync` after each reconnect) is exactly the room's
events, in order, without gaps."""
from __future__ import annotations

import threading
import time

import pytest
import requests
import socketio

from tests.live_support import ScriptedClient
from tests.liveserver import NO_MEDIA, make_server

pytestmark = pytest.mark.slow

TOTAL = 500
WINDOW = 25          # posts in flight at once, so that a kill catches several mid-way
KILL_AT = (150, 350)  # acknowledged posts before each SIGKILL
PASSWORD = "a long enough test passphrase"


def test_no_post_lost_across_two_sigkills(tmp_path):
    server = make_server(tmp_path / "data", extra_env={"COLLAB_LIVE_POST_LIMIT": "100000 per minute", **NO_MEDIA})
    server.start()
    client = None
    try:
        server.flask("users", "create", "--email", "poster@example.org", "--name", "Pat Poster", input=PASSWORD + "\n")
        token = server.flask("tokens", "create", "--email", "poster@example.org").stdout.strip().splitlines()[-1]
        h = {"Authorization": f"Bearer {token}"}
        room = requests.post(server.url + "/api/v1/rooms", json={"name": "No loss", "visibility": "private"},
                             headers=h, timeout=10).json()
        thread = requests.post(server.url + f"/api/v1/rooms/{room['id']}/threads",
                               json={"title": "Five hundred", "body": "start"}, headers=h, timeout=10).json()

        client = ScriptedClient(server.url, token, room["id"])
        client.connect()
        lock = threading.Lock()
        acked: dict[str, dict] = {}          # client id -> the post the server acknowledged
        created_flags: dict[str, bool] = {}
        inflight: dict[str, float] = {}
        unacked_resent: set[str] = set()
        pending = [f"nl-{i:03d}" for i in range(TOTAL)]  # to send, in order
        kills: list[dict] = []
        refusals: list = []

        def on_disconnect(*_args):
            # callbacks of emits in flight never fire now: those posts go back to be sent again
            with lock:
                for cid in inflight:
                    unacked_resent.add(cid)
                pending[:0] = sorted(inflight)
                inflight.clear()

        client.sio.on("disconnect", on_disconnect)

        def make_callback(cid):
            def cb(ack):
                with lock:
                    if cid not in inflight:
                        return  # answered after we gave up on it: it was resent anyway
                    del inflight[cid]
                    if ack.get("ok"):
                        acked[cid] = ack["post"]
                        created_flags[cid] = ack["created"]
                    else:
                        pending.insert(0, cid)
                        if ack["error"]["code"] != "rate_limited":
                            refusals.append((cid, ack))
            return cb

        def killer():
            for mark in KILL_AT:
                while len(acked) < mark:
                    time.sleep(0.002)
                with lock:
                    in_flight_at_kill = len(inflight)
                server.kill()  # SIGKILL to the whole process group: supervisor, gunicorn, workers
                kills.append({"acked": len(acked), "in_flight": in_flight_at_kill})
                time.sleep(0.5)
                server.start()

        k = threading.Thread(target=killer, daemon=True)
        k.start()
        deadline = time.time() + 240
        while True:
            assert time.time() < deadline, f"gave up: {len(acked)} acknowledged, kills {kills}"
            assert not refusals, refusals
            with lock:
                done = len(acked) == TOTAL
            if done:
                break
            if not client.sio.connected:
                time.sleep(0.05)
                continue
            try:
                client.catch_up()
            except (socketio.exceptions.TimeoutError, socketio.exceptions.BadNamespaceError,
                    socketio.exceptions.DisconnectedError):
                continue
            with lock:
                now = time.time()
                for cid, sent in list(inflight.items()):
                    if now - sent > 10:  # no answer at all: send again (idempotent on client id)
                        del inflight[cid]
                        unacked_resent.add(cid)
                        pending.insert(0, cid)
                batch = []
                while pending and len(inflight) + len(batch) < WINDOW:
                    cid = pending.pop(0)
                    if cid in acked:
                        continue
                    batch.append(cid)
                    inflight[cid] = now
            for cid in batch:
                try:
                    client.sio.emit("post", {"thread_id": thread["id"], "body": f"message {cid}", "client_id": cid},
                                    callback=make_callback(cid))
                except (socketio.exceptions.BadNamespaceError, socketio.exceptions.DisconnectedError):
                    with lock:
                        if cid in inflight:
                            del inflight[cid]
                            pending.insert(0, cid)
            time.sleep(0.001)
        k.join(timeout=60)
        assert len(kills) == 2, kills
        # let the last live events arrive, then make sure the client has everything
        time.sleep(0.5)
        client.need_sync = True
        client.catch_up()

        # 1. every acknowledged post exists exactly once, with its text
        posts = requests.get(server.url + f"/api/v1/threads/{thread['id']}", headers=h, timeout=30).json()["posts"]
        replies = [p for p in posts if p["parent_id"] is not None]
        by_cid: dict[str, list[dict]] = {}
        for p in replies:
            by_cid.setdefault(p["client_id"], []).append(p)
        assert len(replies) == TOTAL, f"{len(replies)} posts stored for {TOTAL} sent"
        assert all(len(v) == 1 for v in by_cid.values()), [k for k, v in by_cid.items() if len(v) > 1]
        assert sorted(by_cid) == sorted(f"nl-{i:03d}" for i in range(TOTAL))
        for cid, post in acked.items():
            assert by_cid[cid][0]["id"] == post["id"] and by_cid[cid][0]["body"] == f"message {cid}"
        assert len({p["body"] for p in replies}) == TOTAL

        # 2. the kills really interrupted posts in flight, and those were sent again
        assert all(k["in_flight"] > 0 for k in kills), kills
        assert unacked_resent, "no post was in flight when the server was killed"
        resent_existing = sorted(c for c in unacked_resent if created_flags.get(c) is False)
        print(f"\nkills: {kills}; posts sent again after reconnecting: {len(unacked_resent)}, of which the server "
              f"already had {len(resent_existing)} (answered with the same post, not a copy); reconnects: "
              f"{client.connects - 1}; duplicate live deliveries ignored by seq: {client.ignored_duplicates}")

        # 3. the client's event stream is the room's, in order, with no gaps and nothing twice
        seqs = [s for s, _e, _d in client.accepted]
        assert seqs == list(range(1, len(seqs) + 1))
        latest = client.sio.call("subscribe", {"room_id": room["id"]}, timeout=30)["seq"]
        assert client.last == latest, (client.last, latest)
        seen_posts = [d["post"]["id"] for d in client.events_named("post.created")]
        assert sorted(seen_posts) == sorted(p["id"] for p in replies)
        assert len(seen_posts) == len(set(seen_posts))
    finally:
        if client:
            client.close()
        server.kill()
