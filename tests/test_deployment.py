"""The reference deployment (issue 17), brought up from the files operators copy: docs/deploy/nginx.conf,
collab.env, collab-web@.service and collab-media.service. nginx terminates TLS (a certificate made for the test)
in front of two web processes sharing PostgreSQL and Redis and one media worker; the test changes only addresses,
ports and paths. Then a smoke walk through nginx: sign in, post, a live event that crosses the two processes,
search, and a meeting with media over the worker's WebSocket behind /media/.

Needs root (nginx binds and writes as root here), nginx (`make test` installs Debian's when missing), PostgreSQL
and Redis; skipped with the reason otherwise."""
from __future__ import annotations

import asyncio
import os
import re
import time

import pytest
import requests
import socketio

from media import net
from media.client import SyntheticParticipant
from media.synthetic import opus_clip, vp8_clip
from tests.deployment_support import deployment as bring_up
from tests.deployment_support import missing
from tests.live_support import wait_for

PASSWORD = "a long enough test passphrase"
pytestmark = pytest.mark.slow


@pytest.fixture
def deployment(tmp_path):
    why = missing()
    if why:
        pytest.skip(why)

    def seed(d) -> None:
        for email, name in (("chair@example.org", "Chris Chair"), ("member@example.org", "Mo Member")):
            d.flask("users", "create", "--email", email, "--name", name, input=PASSWORD + "\n")
        d.tokens = [d.flask("tokens", "create", "--email", e).strip().splitlines()[-1]
                    for e in ("chair@example.org", "member@example.org")]

    with bring_up(tmp_path, web_processes=2, seed=seed) as d:
        yield d


def _session(d) -> requests.Session:
    s = requests.Session()
    s.trust_env = False  # REQUESTS_CA_BUNDLE in the environment would win over the session's own CA
    s.verify = d.ca
    return s


def _sign_in(d, email: str) -> requests.Session:
    s = _session(d)
    page = s.get(d.url + "/login", timeout=30)
    assert page.status_code == 200 and page.url.startswith("https://localhost")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    r = s.post(d.url + "/login", data={"email": email, "password": PASSWORD, "csrf_token": csrf}, timeout=30,
               allow_redirects=False, headers={"Referer": d.url + "/login"})  # (as a browser: CSRF over TLS)
    assert r.status_code in (302, 303), (s.cookies.keys(), re.search(r"<p>(.*?)</p>", r.text, re.S).group(1))
    assert s.cookies.get("session") and any(c.secure for c in s.cookies)  # behind TLS: secure cookies
    return s


def _cookie_for_upstream(d, want: int) -> str:
    """A session-cookie value that nginx's sticky hash sends to the web process on port `want`."""
    s = _session(d)
    for i in range(200):
        value = f"probe-{i}"
        r = s.get(d.url + "/login", headers={"Cookie": f"session={value}"}, timeout=30)
        if r.headers.get("X-Collab-Upstream", "").endswith(f":{want}"):
            return value
    raise AssertionError(f"no cookie value reached port {want}")


def test_reference_deployment_smoke_walk_through_nginx(deployment):
    d = deployment
    # plain HTTP is sent to HTTPS by the documented config; TLS answers with the site
    chair = _sign_in(d, "chair@example.org")
    home = chair.get(d.url + "/", timeout=30)
    assert home.status_code == 200 and "Chris Chair" in home.text

    h = [{"Authorization": f"Bearer {t}"} for t in d.tokens]
    api = _session(d)
    member_id = api.get(d.url + "/api/v1/me", headers=h[1], timeout=30).json()["id"]
    room = api.post(d.url + "/api/v1/rooms", json={"name": "Deployment check", "visibility": "private"},
                    headers=h[0], timeout=30).json()
    api.post(d.url + f"/api/v1/rooms/{room['id']}/members", json={"user_id": member_id}, headers=h[0], timeout=30)
    thread = api.post(d.url + f"/api/v1/rooms/{room['id']}/threads", json={"title": "Smoke", "body": "Opening"},
                      headers=h[0], timeout=30).json()

    # a live event crosses the two processes: the member's connection is held by one, the post made on the other
    listen, post_on = d.web
    http = _session(d)
    received = []
    sio = socketio.Client(http_session=http)
    sio.on("post.created", lambda data: received.append(data))
    cookie = _cookie_for_upstream(d, listen)
    sio.connect(d.url, auth={"token": d.tokens[1]}, headers={"Cookie": f"session={cookie}"},
                transports=["websocket"], wait_timeout=30)
    try:
        assert sio.call("subscribe", {"room_id": room["id"]}, timeout=30)["ok"]
        poster = _session(d)
        poster.headers["Cookie"] = f"session={_cookie_for_upstream(d, post_on)}"
        r = poster.post(d.url + f"/api/v1/threads/{thread['id']}/posts", headers=h[0], timeout=30,
                        json={"body": "Custody suite visits resume in March", "client_id": "smoke-1"})
        assert r.status_code == 201 and r.headers["X-Collab-Upstream"].endswith(f":{post_on}")
        assert wait_for(lambda: any(e["post"]["body"].startswith("Custody suite") for e in received), timeout=10)
    finally:
        sio.disconnect()

    # search (PostgreSQL full text, shared by both processes) finds it through nginx
    found = wait_for(lambda: api.get(d.url + "/api/v1/search", params={"q": "custody"}, headers=h[1],
                                     timeout=30).json()["results"], timeout=15, interval=0.3)
    assert found and found[0]["thread_id"] == thread["id"]

    # a meeting with media: tokens from the web app, signalling through nginx's /media/, media over UDP
    meeting = api.post(d.url + f"/api/v1/rooms/{room['id']}/meetings", json={"title": "Smoke meeting"},
                       headers=h[0], timeout=30).json()
    joins = [api.post(d.url + f"/api/v1/meetings/{meeting['id']}/token", headers=x, timeout=30).json() for x in h]
    assert all(j["url"] == f"wss://localhost:{d.url.rsplit(':', 1)[1]}/media/" for j in joins), joins
    saved = os.environ.get("SSL_CERT_FILE")
    os.environ["SSL_CERT_FILE"] = d.ca  # the synthetic participants' TLS (websockets' default context)
    try:
        asyncio.run(_meeting_with_media(joins))
    finally:
        if saved is None:
            os.environ.pop("SSL_CERT_FILE", None)
        else:
            os.environ["SSL_CERT_FILE"] = saved


async def _meeting_with_media(joins) -> None:
    net.use_addresses(["127.0.0.1"])
    video, audio = vp8_clip(), opus_clip()
    chair = await SyntheticParticipant(joins[0]["url"], joins[0]["token"], video=video, audio=audio,
                                       speaking=True).start()
    member = await SyntheticParticipant(joins[1]["url"], joins[1]["token"], video=video, audio=audio).start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (chair.me and member.video_frames_from(chair.me["id"]) > 5
                                                   and member.audio_frames_from(chair.me["id"]) > 10):
            await asyncio.sleep(0.1)
        assert chair.me and member.video_frames_from(chair.me["id"]) > 5, "no video reached the member"
        assert member.audio_frames_from(chair.me["id"]) > 10, "no audio reached the member"
    finally:
        await chair.close()
        await member.close()
