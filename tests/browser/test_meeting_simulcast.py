"""Simulcast from a real browser (issue 15): Chromium answers the worker's offer of two camera layers
("l", "h") with simulcast, and a second Chromium receives the low layer while the camera is a
thumbnail and the high layer once it is on the stage, by frame width from getStats."""
from __future__ import annotations

import time

import pytest

from media import tokens
from media.client import SyntheticParticipant
from media.synthetic import opus_clip, vp8_clip
from tests.media_thread import WorkerThread
from tests.browser.test_meeting import SUBSCRIBE_JS, VIDEO_STATS_JS, media_browser  # noqa: F401 (fixture)

pytestmark = pytest.mark.browser

# A 640×360 camera drawn on a canvas (no device needed), published like meeting.js does, with the
# low layer at a quarter of the size.
PUBLISH_JS = """async ({url, token}) => {
  const canvas = document.createElement("canvas");
  canvas.width = 640; canvas.height = 360;
  document.body.append(canvas);
  const g = canvas.getContext("2d");
  let n = 0;
  setInterval(() => {
    n += 1;
    g.fillStyle = `hsl(${n % 360}, 60%, 50%)`; g.fillRect(0, 0, 640, 360);
    g.fillStyle = "#fff"; g.fillRect((n * 7) % 600, 100, 40, 160);
    g.font = "48px sans-serif"; g.fillText(String(n), 20, 60);
  }, 50);
  const track = canvas.captureStream(20).getVideoTracks()[0];
  const pc = new RTCPeerConnection({bundlePolicy: "max-bundle"});
  const ws = new WebSocket(url);
  window.__pub = pc;
  pc.onicecandidate = (ev) => {
    if (ev.candidate) ws.send(JSON.stringify({type: "candidate", candidate: ev.candidate.toJSON()}));
  };
  ws.onmessage = async (ev) => {
    const msg = JSON.parse(ev.data);
    if (msg.type !== "offer") return;
    await pc.setRemoteDescription({type: "offer", sdp: msg.sdp});
    const publish = Object.values(msg.publish || {});
    let camera = null;
    for (const t of pc.getTransceivers()) {
      if (t.mid === msg.publish.video) {
        camera = t;
        if (!t.sender.track) await t.sender.replaceTrack(track);
        t.direction = "sendonly";
      } else if (publish.includes(t.mid) && !t.sender.track) t.direction = "inactive";
    }
    await pc.setLocalDescription();
    ws.send(JSON.stringify({type: "answer", sdp: pc.localDescription.sdp}));
    window.__answer = pc.localDescription.sdp;
    const p = camera.sender.getParameters();
    p.encodings.forEach((e) => Object.assign(e, e.rid === "l" ? {scaleResolutionDownBy: 4, maxBitrate: 100000}
                                                             : {scaleResolutionDownBy: 1, maxBitrate: 600000}));
    p.degradationPreference = "maintain-resolution";
    await camera.sender.setParameters(p);
    window.__rids = camera.sender.getParameters().encodings.map((e) => e.rid || "");
  };
  await new Promise((resolve) => { ws.onopen = resolve; });
  ws.send(JSON.stringify({type: "join", token, audio: false, video: true}));
}"""


def test_chromium_publishes_simulcast_thumbnail_gets_low_layer_stage_gets_high(media_browser):  # noqa: F811
    secret = "simulcast-browser-secret"
    media = WorkerThread(secret)
    url = media.url

    def mint(account, role="member"):
        return tokens.mint(secret, meeting=9, account=account, name=f"Person {account}", role=role, ttl=300)

    on_loop = media.run

    async def speaker():  # someone else speaks: they are on the viewer's stage
        return await SyntheticParticipant(url, mint(2), video=vp8_clip(), audio=opus_clip(), speaking=True).start()

    b = on_loop(speaker())
    context = media_browser.new_context()
    publisher, viewer = context.new_page(), context.new_page()
    try:
        publisher.evaluate(PUBLISH_JS, {"url": url, "token": mint(1)})
        publisher.wait_for_function("() => window.__rids", timeout=20_000)
        assert "a=simulcast:send" in publisher.evaluate("() => window.__answer")
        assert sorted(publisher.evaluate("() => window.__rids")) == ["h", "l"]
        viewer.evaluate(SUBSCRIBE_JS, {"url": url, "token": mint(3, role="observer")})

        def width_of(member, timeout=40):
            """The frame width Chromium decodes for `member`'s camera, once it is steady."""
            deadline = time.monotonic() + timeout
            last = None
            while time.monotonic() < deadline:
                slots = viewer.evaluate("() => window.__slots")
                mid = next((m for m, s in slots.items() if s and s["participant"] == member
                            and s["source"] == "video"), None)
                stats = {s["mid"]: s for s in viewer.evaluate(VIDEO_STATS_JS)}
                now = stats.get(mid)
                if now and last and now["frames"] > last["frames"] + 10 and now["width"] == last["width"] > 0:
                    return now["width"]
                last = now
                time.sleep(0.5)
            raise AssertionError(f"no steady video of {member}: {viewer.evaluate(VIDEO_STATS_JS)}")

        # the speaker is on the stage; the Chromium publisher is a thumbnail: low layer
        viewer.wait_for_function("() => Object.values(window.__slots).some((s) => s && s.participant === 1)",
                                 timeout=30_000)
        deadline = time.monotonic() + 40
        while (low := width_of(1)) > 160 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert low == 160, low
        # the speaker leaves: the Chromium publisher is on the stage now, in the high layer
        on_loop(b.leave())
        deadline = time.monotonic() + 40
        while (high := width_of(1)) <= 160 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert high == 640, high
    finally:
        context.close()
        on_loop(b.close())
        media.stop()
