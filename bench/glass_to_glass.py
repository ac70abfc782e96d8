#!/usr/bin/env python
"""Glass-to-glass latency of the web broadcast in real Chromium (issue 16):

    .venv/bin/python bench/glass_to_glass.py [--viewers 1,5] [--window 25] [--write]

Why: bench/viewer_latency.py times packets between Python clients, so a browser's capture, encoding, jitter
buffer, decoding and display are not in it. Here the chair's camera is a canvas (640×360, captured at 30 fps)
that paints `Date.now()` in black and white blocks at every animation frame; the viewer page's `#watch-video`
and, in the same run, a participant's stage video (the baseline) read the blocks back in
`requestVideoFrameCallback` and subtract the painted time from `Date.now()` there. One headless Chromium on one
machine: every page reads the same clock. The real server (`flask serve` with its media worker) on loopback.
A control viewer's page puts the audio in a MediaStream of its own, so Chromium does not lip-sync its video.
"""
from __future__ import annotations

import support  # noqa: F401  (first: takes bench/ off sys.path, puts the repository on it)

import argparse
import os
import shutil
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from playwright.sync_api import Page, expect, sync_playwright

from support import commit, loadavg, make_server, pct, write_section
from tests.browser.conftest import CHROMIUM, LAUNCH_ARGS, SHARED_ENV, api, new_token, sign_in
from tests.browser.test_meeting import wait_for_media_worker
from tests.browser.test_meeting_lifecycle import connected, join_call, make_people

SECTION = "### Glass-to-glass latency (browsers)"
ARGS = LAUNCH_ARGS + ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]
CHAIR, MEMBER = ("Gina Glass", "gina.g2g@example.police.uk"), ("Pat Participant", "pat.g2g@example.org")
REFRESH = 1000 / 60   # ms: headless Chromium renders at 60 Hz

# The code: 5 rows of 12 blocks of 48 px (on the encoder's 16 px grid; 12 px even in the ¼-size layer), read
# left to right: a start pattern 1001, Date.now() in 42 bits, then that time modulo 16381 in 14 bits.
CODE_JS = """const W = 640, H = 360, B = 48, COLS = 12, X0 = 32, Y0 = 32, START = [1, 0, 0, 1], CHECK = 16381;
  const bitsOf = (t) => [...START, ...[...Array(42)].map((_, i) => Math.floor(t / 2 ** (41 - i)) % 2),
                         ...[...Array(14)].map((_, i) => ((t % CHECK) >> (13 - i)) & 1)];
  const number = (bits) => bits.reduce((n, b) => n * 2 + b, 0);
  const timeOf = (bits, t = number(bits.slice(4, 46))) => (START.every((b, i) => bits[i] === b)
    && number(bits.slice(46)) === t % CHECK && Math.abs(Date.now() - t) < 10000 ? t : null);"""

# The chair's page: getUserMedia's camera is the canvas; the microphone stays the fake device's.
CAMERA_JS = "(() => {" + CODE_JS + """
  let canvas = null;
  function paint(ctx, t) {
    ctx.fillStyle = "#777"; ctx.fillRect(0, 0, W, H);
    ctx.fillStyle = "#c33"; ctx.fillRect((t / 8) % (W - 60), 290, 60, 60);   // something moves, as a face does
    bitsOf(t).forEach((bit, i) => {
      ctx.fillStyle = bit ? "#fff" : "#000";
      ctx.fillRect(X0 + (i % COLS) * B, Y0 + Math.floor(i / COLS) * B, B, B);
    });
    requestAnimationFrame(() => paint(ctx, Date.now()));
  }
  const md = navigator.mediaDevices, gum = md.getUserMedia.bind(md);
  md.getUserMedia = async (c = {}) => {
    const stream = c.audio ? await gum({ audio: c.audio, video: false }) : new MediaStream();
    if (!c.video) return stream;
    if (!canvas) {
      canvas = Object.assign(document.createElement("canvas"), { width: W, height: H });
      paint(canvas.getContext("2d"), Date.now());
    }
    stream.addTrack(canvas.captureStream(30).getVideoTracks()[0]);
    return stream;
  };
})();"""

# A receiving page: every frame `selector` presents is drawn and its blocks read (the mean luma of each block's
# central quarter against mid-grey: VP8 blurs the edges) and timed at the callback.
MEASURE_JS = "(selector) => {" + CODE_JS + """
  const video = document.querySelector(selector), canvas = document.createElement("canvas");
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  function bit(px, w, cx, cy, rx, ry) {
    let sum = 0, n = 0;
    for (let y = Math.round(cy - ry); y < cy + ry; y++) for (let x = Math.round(cx - rx); x < cx + rx; x++, n++)
      sum += 0.299 * px[(y * w + x) * 4] + 0.587 * px[(y * w + x) * 4 + 1] + 0.114 * px[(y * w + x) * 4 + 2];
    return sum / n > 128 ? 1 : 0;
  }
  function onFrame(now, meta) {
    const at = Date.now(), r = window.__g2g, w = meta.width, h = meta.height, sx = w / W, sy = h / H;
    if (canvas.width !== w || canvas.height !== h) Object.assign(canvas, { width: w, height: h });
    ctx.drawImage(video, 0, 0, w, h);
    const px = ctx.getImageData(0, 0, w, h).data;
    const t = timeOf([...Array(60)].map((_, i) => bit(px, w, (X0 + (i % COLS + 0.5) * B) * sx,
      (Y0 + (Math.floor(i / COLS) + 0.5) * B) * sy, Math.max(1, B * sx / 4), Math.max(1, B * sy / 4))));
    if (t === null) r.misread++;
    else r.callback.push(at - t);
    video.requestVideoFrameCallback(onFrame);
  }
  video.requestVideoFrameCallback(onFrame);
}"""
RESET_JS = "() => { window.__g2g = { callback: [], misread: 0 }; }"
DECODED_JS = "(s) => document.querySelector(s).getVideoPlaybackQuality().totalVideoFrames > 30"
# Every page's peer connections, for WebRTC's own figures (getStats): where the time goes.
PCS_JS = """(() => { const PC = window.RTCPeerConnection; window.__pcs = [];
  window.RTCPeerConnection = function (...a) { const pc = new PC(...a); window.__pcs.push(pc); return pc; };
  window.RTCPeerConnection.prototype = PC.prototype; })();"""
STATS_JS = """async () => { const s = { jb: 0, emitted: 0, ajb: 0, aemitted: 0, enc: 0, encoded: 0 };
  for (const pc of window.__pcs.filter((pc) => pc.signalingState !== "closed"))
    for (const r of (await pc.getStats()).values()) {
      const [jb, n] = r.kind === "video" ? ["jb", "emitted"] : ["ajb", "aemitted"];
      if (r.type === "inbound-rtp") Object.assign(s, { [jb]: s[jb] + r.jitterBufferDelay, [n]: s[n] + r.jitterBufferEmittedCount });
      if (r.type === "outbound-rtp" && r.kind === "video" && r.rid === "h")
        Object.assign(s, { enc: s.enc + r.totalEncodeTime, encoded: s.encoded + r.framesEncoded });
    }
  return s; }"""
# The control viewer: the worker's offer puts a page's every track in one MediaStream (aiortc: one stream id a
# peer connection), so Chromium lip-syncs the viewer's video to the speaker's audio; here the audio gets its own.
OWN_AUDIO_STREAM_JS = """(() => { const set = RTCPeerConnection.prototype.setRemoteDescription;
  RTCPeerConnection.prototype.setRemoteDescription = function (d) {
    const own = (m) => (m.startsWith("audio") ? m.replace(/a=msid:\\S+ /, "a=msid:own-audio-stream ") : m);
    return set.call(this, d?.sdp ? { type: d.type, sdp: d.sdp.split("m=").map(own).join("m=") } : d);
  }; })();"""


def open_signed_in(browser, site, email: str, *scripts: str) -> Page:
    ctx = browser.new_context(viewport={"width": 1280, "height": 720}, base_url=site.url, locale="en-GB")
    ctx.set_default_timeout(30_000)
    for script in (PCS_JS, *scripts):
        ctx.add_init_script(script)
    page = ctx.new_page()
    sign_in(page, email)
    return page


def join_quietly(page: Page, meeting_id: int) -> None:
    """The baseline participant joins muted with the camera off: the chair stays the only speaker (the stage)."""
    page.goto(f"/meetings/{meeting_id}")
    expect(page.locator("#preview-status")).to_have_text("This is how you will look.")
    page.locator("#join-muted").check()
    page.locator("#join-camera-off").check()
    page.get_by_role("button", name="Join meeting").click()
    connected(page)


def watch(page: Page, meeting_id: int) -> None:
    page.goto(f"/meetings/{meeting_id}/watch")
    page.get_by_role("button", name="Play").click()
    expect(page.locator("#watch-status")).to_contain_text("Live", timeout=30_000)


def measure(receivers: dict[str, tuple[Page, str]], window: float) -> dict[str, dict]:
    """Once every receiver decodes frames and reads codes, time `window` seconds of frames on each."""
    for page, selector in receivers.values():
        page.wait_for_function(DECODED_JS, arg=selector, timeout=60_000)
        if page.evaluate("() => !window.__g2g"):
            page.evaluate(RESET_JS)
            page.evaluate(MEASURE_JS, selector)
        page.wait_for_function("() => window.__g2g.callback.length > 30", timeout=60_000)
    stats = {}
    for name, (page, _) in receivers.items():
        page.evaluate(RESET_JS)
        stats[name] = page.evaluate(STATS_JS)
    time.sleep(window)
    out = {name: page.evaluate("() => window.__g2g") for name, (page, _) in receivers.items()}
    for name, (page, _) in receivers.items():
        out[name]["stats"] = Counter({k: v - stats[name][k] for k, v in page.evaluate(STATS_JS).items()})
    return out


def merge(results: list[dict]) -> dict:
    """Several receivers' figures as one (the viewers of a row)."""
    return {"callback": sum((r["callback"] for r in results), []), "misread": sum(r["misread"] for r in results),
            "stats": sum((r["stats"] for r in results), Counter())}


def run(browser, site, viewers: list[int], window: float) -> list[dict]:
    emails = [f"viewer{i}.g2g@example.org" for i in range(max(viewers) + 1)]   # the last one: the control
    make_people(site, [CHAIR, MEMBER] + [(f"Viewer {i}", e) for i, e in enumerate(emails)])
    tok = new_token(site, CHAIR[1])
    room = api(site, tok, "POST", "/rooms", {"name": "Latency panel", "visibility": "national"})
    mid = api(site, tok, "POST", f"/rooms/{room['id']}/meetings", {"title": "Glass to glass"})["id"]
    wait_for_media_worker(site)
    chair = open_signed_in(browser, site, CHAIR[1], CAMERA_JS)
    join_call(chair, mid)
    connected(chair)
    api(site, tok, "POST", f"/meetings/{mid}/broadcast")
    member = open_signed_in(browser, site, MEMBER[1])
    join_quietly(member, mid)
    control = open_signed_in(browser, site, emails[-1], OWN_AUDIO_STREAM_JS)
    watch(control, mid)
    me = chair.evaluate("() => document.getElementById('meeting').dataset.meId")
    fixed = {"self": (chair, f"#grid .tile[data-participant-id='{me}'] video"), "participant": (member, "#stage-video"),
             "control": (control, "#watch-video")}
    rows, pages = [], []
    for n in viewers:
        while len(pages) < n:
            pages.append(open_signed_in(browser, site, emails[len(pages)]))
            watch(pages[-1], mid)
        before = loadavg()
        got = measure({**fixed, **{f"viewer {i + 1}": (p, "#watch-video") for i, p in enumerate(pages)}}, window)
        for name, r in got.items():
            print(f"{n} viewer(s), {name}: {figures(r)} ms, mean {mean(r['callback']):.1f}, {len(r['callback'])} "
                  f"frames, {r['misread']} misread, {dict(r['stats'])}", flush=True)
        rows.append({"viewers": n, "load": f"{before} → {loadavg()}", **{k: got[k] for k in fixed},
                     "viewer": merge([got[f"viewer {i + 1}"] for i in range(n)])})
    return rows


def mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def figures(r: dict) -> str:
    v = r["callback"]
    return f"{pct(v, 50):.0f} / {pct(v, 95):.0f} / {max(v, default=float('nan')):.0f}"


def per_frame(stats: dict, total: str, count: str) -> str:
    return f"{1000 * stats[total] / stats[count]:.0f}" if stats.get(count) else "–"


HOW = ("Measured {started}, commit {commit}, with `bench/glass_to_glass.py --viewers {viewers} --window {window:g}` "
       "({cores} cores; the real server with its embedded media worker and one headless Chromium holding every "
       "page, on loopback; {window:g} s per row once every receiver decoded and read codes; a row's pages stay for "
       "the next). The chair's camera is a 640×360 canvas captured at 30 fps that paints `Date.now()` as 60 black "
       "and white blocks at every animation frame; each receiving page reads them back from every frame its "
       "`<video>` presents (`requestVideoFrameCallback`) and subtracts the painted time from `Date.now()` taken "
       "first thing in that callback. Included: the wait for the canvas's capture, VP8 encoding (simulcast; the "
       "high layer, up to 350 kbit/s), pacing, loopback, the worker's forwarding (it does not decode), the "
       "receiver's jitter buffer and decoding, and the wait for the page's next rendering step (60 Hz: figures "
       "cluster at multiples of 16.7 ms; compare means too). Not included: a camera sensor's exposure and readout, "
       "a physical screen (headless Chromium has none: \"display\" is the compositor's frame callback, not "
       "`expectedDisplayTime`, which fell on the callback or a refresh before it), a real network. Receivers: the chair's own preview (the canvas in "
       "its tile, not encoded: the method's floor); the baseline, a participant (muted, camera off: the chair stays "
       "the speaker) watching the meeting page's stage; the viewers' `#watch-video`; a control viewer whose page "
       "gives the audio a MediaStream of its own. Misread: frames whose code failed its check (start pattern, "
       "14-bit checksum), not timed; of a window's {frames} frames, one replaced by the next before a rendering "
       "step is never presented, so never timed. Jitter buffer: WebRTC's `jitterBufferDelay` a frame (video) or "
       "sample (audio) over the window. The browser's pages share the {cores} cores with the server (see the load).")


def conclusion(rows: list[dict]) -> str:
    means = [{k: mean(r[k]["callback"]) for k in ("participant", "viewer", "control")} for r in rows]
    text = f"**A viewer sees the chair's picture {pct(rows[0]['viewer']['callback'], 50):.0f} ms (p50) after it was " \
           f"painted, a participant {pct(rows[0]['participant']['callback'], 50):.0f} ms, on loopback; means " + \
           "; ".join(f"{m['viewer']:.0f} and {m['participant']:.0f} ms with {r['viewers']} viewer(s)"
                     for r, m in zip(rows, means)) + "."
    slow = [m for m in means if m["viewer"] > m["participant"] + REFRESH]
    if not slow:
        text += " A viewer sees the meeting as promptly as a participant (within one 60 Hz refresh)."
    elif all(abs(m["control"] - m["participant"]) < REFRESH for m in slow):
        text += (" Where viewers are slower it is lip sync, not the broadcast's path: the viewer page receives the "
                 "stage's video and audio in one MediaStream, so Chromium holds the picture back to the audio's "
                 "jitter buffer (the viewer sees the chair in time with the voice; a participant's picture runs "
                 "ahead of it). The control viewer, whose audio is in a stream of its own, kept within one refresh "
                 "of the participant (" + ", ".join(f"{m['control']:.0f} ms" for m in means) + ", means).")
    return text + "**"


def report(rows: list[dict], started: str, args) -> str:
    lines = [SECTION, "", HOW.format(started=started, commit=commit(), viewers=args.viewers, window=args.window,
                                     cores=os.cpu_count(), frames=round(30 * args.window)), "",
             "| viewers | receiver | p50 / p95 / max, ms | mean, ms | frames timed (misread) | "
             "jitter buffer video / audio, ms | load average before → after |", "|---|---|---|---|---|---|---|"]
    labels = {"self": "chair's own preview", "participant": "participant (baseline)", "viewer": "viewer",
              "control": "control viewer (own audio stream)"}
    for row in rows:
        for key, label in labels.items():
            r, s = row[key], row[key]["stats"]
            label = f"viewers (all {row['viewers']})" if key == "viewer" and row["viewers"] > 1 else label
            jb = "–" if key == "self" else f"{per_frame(s, 'jb', 'emitted')} / {per_frame(s, 'ajb', 'aemitted')}"
            lines.append(f"| {row['viewers']} | {label} | {figures(r)} | {mean(r['callback']):.1f} | "
                         f"{len(r['callback'])} ({r['misread']}) | {jb} | {row['load']} |")
    lines.append("")
    for row in rows:
        p, v = row["participant"]["callback"], row["viewer"]["callback"]
        lines.append(f"- {row['viewers']} viewer(s): viewer / participant = {pct(v, 50) / pct(p, 50):.2f} at p50, "
                     f"{mean(v) / mean(p):.2f} in the mean; control viewer / participant "
                     f"{mean(row['control']['callback']) / mean(p):.2f} in the mean; the chair's encoder "
                     f"{per_frame(row['self']['stats'], 'enc', 'encoded')} ms a frame.")
    lines += ["", conclusion(rows)]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--viewers", default="1,5", help="viewer pages, one row each (a row's pages stay for the next)")
    ap.add_argument("--window", type=float, default=25.0, help="seconds of frames timed per row")
    ap.add_argument("--write", action="store_true", help=f"replace '{SECTION}' in docs/benchmarks.md")
    args = ap.parse_args()
    started = f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    data_dir = Path(tempfile.mkdtemp(prefix="collab-g2g-"))
    site = make_server(data_dir, extra_env=SHARED_ENV).start()
    try:
        with sync_playwright() as p:   # closes the browser on the way out, whatever happened
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            rows = run(browser, site, [int(x) for x in args.viewers.split(",")], args.window)
    finally:
        site.kill()
        shutil.rmtree(data_dir, ignore_errors=True)
    text = report(rows, started, args)
    print(text)
    if args.write:
        write_section(SECTION, text)


if __name__ == "__main__":
    main()
