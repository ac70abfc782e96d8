"""Captions in a real media worker: a synthetic participant speaks an espeak-ng sentence (Opus packets
with the audio level a browser adds), another participant receives partial and final captions for it
over the signalling channel, and the final captions reach the web app as a signed report. Also: only
people speaking are transcribed, and more speakers than COLLAB_CAPTIONS_SPEAKERS get a note, not a
queue that grows."""
from __future__ import annotations

import asyncio
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from media.captions import audio, report
from media.client import SyntheticParticipant
from tests.captions_support import SENTENCES, espeak_wav, wer
from tests.live_support import until
from tests.test_media_signalling import SECRET, token, with_worker


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    """Two sentences as Opus packets, each followed by a second of silence."""
    d = tmp_path_factory.mktemp("speech")
    return [audio.wav_to_opus(str(espeak_wav(s, d / f"{i}.wav")), silence_after=1.0)
            for i, s in enumerate(SENTENCES[:2])]


class WebApp:
    """Stands where the web app's POST /media/captions is: records what the worker reports (checked with the
    same verification the web app uses)."""

    def __init__(self) -> None:
        self.reports: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.reports.append(report.verify(SECRET, body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


async def speak(p: SyntheticParticipant, clip_seconds: float) -> float:
    """Speak the clip once from its start; returns when the speech ended (time.time())."""
    p.audio_track.index = 0
    p.speaking = True
    await asyncio.sleep(clip_seconds - 1.0)   # the clip ends with a second of silence
    ended = time.time()
    p.speaking = False
    return ended


def captions(p: SyntheticParticipant, final: bool | None = None) -> list[dict]:
    return [m for m in p.messages if m["type"] == "caption" and (final is None or m["final"] is final)]


def test_a_speaker_is_captioned_for_the_others_and_the_web_app_gets_the_final_text(speech):
    web = WebApp()

    async def scenario(url):
        speaker = await SyntheticParticipant(url, token(1), audio=speech[0]).start()
        listener = await SyntheticParticipant(url, token(2)).start()
        try:
            assert await until(lambda: speaker.connected.is_set() and listener.connected.is_set(), 20)
            await asyncio.sleep(1.0)
            assert captions(listener) == []   # silence is not transcribed
            ended = await speak(speaker, len(speech[0]) * 0.02)
            assert await until(lambda: captions(listener, final=True), 30), listener.messages[-5:]
            got_at = time.time()
            final = captions(listener, final=True)[0]
            assert final["participant"] == 1 and final["text"].strip()
            assert final["start"] <= final["end"] and final["start"] > ended - 30
            assert isinstance(wer(SENTENCES[0], final["text"]), float)
            assert got_at - ended < 30        # an upper bound only; bench/captions.py measures the latency
            # the speaker sees their own captions too, with the same utterance key
            assert await until(lambda: any(c["utterance"] == final["utterance"] for c in captions(speaker, True)))
            # the web app got the same final text, signed, once
            assert await until(lambda: web.reports, 15)
            seg = web.reports[0]["segments"][0]
            assert web.reports[0]["meeting"] == 1
            assert (seg["account"], seg["key"], seg["text"]) == (1, final["utterance"], final["text"])
        finally:
            await speaker.close()
            await listener.close()

    try:
        with_worker(scenario, timeout=120, captions_engine="pocketsphinx", report_url=web.url)
    finally:
        web.close()


def test_more_speakers_than_allowed_get_a_note_and_one_is_still_captioned(speech):
    async def scenario(url):
        a = await SyntheticParticipant(url, token(1), audio=speech[0]).start()
        b = await SyntheticParticipant(url, token(2), audio=speech[1]).start()
        c = await SyntheticParticipant(url, token(3)).start()
        try:
            assert await until(lambda: all(p.connected.is_set() for p in (a, b, c)), 20)
            await asyncio.sleep(0.5)
            await asyncio.gather(speak(a, len(speech[0]) * 0.02), speak(b, len(speech[1]) * 0.02))
            assert await until(lambda: captions(c, final=True), 30)
            notes = [m for m in c.messages if m["type"] == "caption_note"]
            assert len(notes) >= 1 and "not being captioned" in notes[0]["message"]
            assert {n["participant"] for n in notes} <= {1, 2}
            # one utterance at a time: no partial of one speaker arrives between another's partials and final
            order = [m["utterance"] for m in captions(c)]
            assert all(order.index(k) == i or order[i - 1] == k for i, k in enumerate(order))
        finally:
            for p in (a, b, c):
                await p.close()

    with_worker(scenario, timeout=120, captions_engine="pocketsphinx", captions_speakers=1)


def test_reports_are_refused_when_forged_stale_or_malformed():
    seg = {"account": 3, "key": "k-3-1", "text": "hello", "start": time.time() - 2, "end": time.time() - 1}
    body = report.sign(SECRET, {"op": "captions", "meeting": 5, "segments": [seg]})
    assert report.verify(SECRET, body)["segments"] == [seg]
    with pytest.raises(report.Refused) as err:
        report.verify("another secret", body)
    assert err.value.status == 403
    with pytest.raises(report.Refused):
        report.verify(SECRET, report.sign(SECRET, {"op": "captions", "meeting": 5, "segments": [seg]},
                                          now=time.time() - 120))
    for bad in ([], [dict(seg, account="3")], [dict(seg, start=seg["end"] + 5)], [dict(seg, text="x" * 5000)]):
        with pytest.raises(report.Refused) as err:
            report.verify(SECRET, report.sign(SECRET, {"op": "captions", "meeting": 5, "segments": bad}))
        assert err.value.status == 400
    with pytest.raises(report.Refused):
        report.verify(SECRET, b"not json")
