"""Captions made on the premises, end to end (issue 16): Chromium's fake microphone plays a sentence spoken by
espeak-ng, the media worker inside `flask serve` transcribes it (pocketsphinx), and the captions appear on
another participant's page: over the stage and in the transcript panel (a log, with the speaker's name),
with the note that they are automatic. The toggle works from the keyboard and is remembered for the
account; the final captions are saved as the meeting's transcript (WebVTT over the API)."""
from __future__ import annotations

import os
import re
import urllib.request
import wave

import av
import pytest
from playwright.sync_api import expect, sync_playwright

from media.captions.audio import wav_to_pcm
from tests.browser.conftest import (CHROMIUM, LAUNCH_ARGS, PASSWORD, SHARED_ENV, _make_admin, api, axe, checked_pages,
                                    new_token, start_server, stop_server)
from tests.browser.test_meeting import MEDIA_ARGS, wait_for_media_worker
from tests.captions_support import SENTENCES, espeak_wav

pytestmark = pytest.mark.browser

SPEAKER = ("Carys Evans", "carys.evans@example.police.uk")
LISTENER = ("Dev Sharma", "dev.sharma@example.org")


@pytest.fixture(scope="module")
def speech_wav(tmp_path_factory):
    """A sentence, then two seconds of silence (Chromium plays the file in a loop), as 48 kHz 16-bit mono."""
    d = tmp_path_factory.mktemp("fake-mic")
    pcm16k = wav_to_pcm(str(espeak_wav(SENTENCES[0], d / "sentence.wav")))
    frame = av.AudioFrame(format="s16", layout="mono", samples=len(pcm16k) // 2)
    frame.sample_rate = 16000
    frame.planes[0].update(pcm16k)
    resampler = av.AudioResampler(format="s16", layout="mono", rate=48000)
    out = b"".join(bytes(f.planes[0])[:f.samples * 2] for f in [*resampler.resample(frame), *resampler.resample(None)])
    path = d / "fake-mic.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(48000)
        w.writeframes(out + bytes(2 * 48000 * 2))
    return path


@pytest.fixture(scope="module")
def mic_browser(speech_wav):
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing: `make test` installs Debian's chromium")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                              args=LAUNCH_ARGS + MEDIA_ARGS + [f"--use-file-for-fake-audio-capture={speech_wav}"])
        yield b
        b.close()


@pytest.fixture(scope="module")
def captions_site(tmp_path_factory):
    """A server of its own with captions on (the shared test servers run with COLLAB_CAPTIONS_ENGINE=off)."""
    server = start_server(tmp_path_factory, "captions", extra_env={**SHARED_ENV, "COLLAB_CAPTIONS_ENGINE": "pocketsphinx"})
    _make_admin(server)
    yield server
    stop_server(server)


@pytest.fixture
def mic_pages(mic_browser, request):
    yield from checked_pages(mic_browser, request)


@pytest.mark.timeout(900)   # an upper bound: recognition shares 2 cores with everything else running
def test_speech_from_the_microphone_is_captioned_on_another_participants_page(captions_site, mic_pages):
    site = captions_site
    admin_token = new_token(site, "alex.admin@example.police.uk")
    for name, email in (SPEAKER, LISTENER):
        site.flask("users", "create", "--email", email, "--name", name, "--org", "Hampshire Constabulary",
                   input=PASSWORD + "\n")
    room = api(site, admin_token, "POST", "/rooms", {"name": "Stop and search panel", "visibility": "national"})
    meeting = api(site, admin_token, "POST", f"/rooms/{room['id']}/meetings", {"title": "Captioned panel"})
    wait_for_media_worker(site)

    listener = mic_pages.open(site, email=LISTENER[1])
    listener.goto(f"/meetings/{meeting['id']}")
    listener.get_by_label("Join muted").check()    # the listener's own microphone plays the same file: muted
    listener.get_by_role("button", name="Join meeting").click()
    expect(listener.locator("#call")).to_be_visible()
    button = listener.get_by_role("button", name=re.compile("^Captions"))
    expect(button).to_have_attribute("aria-pressed", "false")
    listener.keyboard.press("Alt+Shift+C")          # on, from the keyboard
    expect(button).to_have_attribute("aria-pressed", "true")
    panel = listener.locator("#captions-panel")
    expect(panel).to_be_visible()
    expect(panel).to_contain_text("Captions are automatic and may contain mistakes")

    speaker = mic_pages.open(site, email=SPEAKER[1])
    speaker.goto(f"/meetings/{meeting['id']}")
    speaker.get_by_role("button", name="Join meeting").click()
    expect(speaker.locator("#call")).to_be_visible()
    axe(speaker, "speaking in the call")

    log = listener.get_by_role("log", name="Captions")
    final = log.locator(".caption-entry:not(.partial)").first
    expect(final).to_be_visible(timeout=90_000)
    expect(final.locator(".caption-speaker")).to_have_text(f"{SPEAKER[0]}:")
    assert final.locator(".caption-text").inner_text().strip()
    expect(listener.locator("#captions-overlay .caption-line").first).to_contain_text(SPEAKER[0])
    axe(listener, "captions shown")

    # remembered for the account: a new page of the listener starts with captions on
    listener.reload()
    expect(listener.locator("#meeting")).to_have_attribute("data-captions", "on")
    axe(listener, "meeting page, captions remembered")

    # the final captions were saved as the meeting's transcript
    vtt = ""
    for _ in range(60):
        vtt = api_text(site, admin_token, f"/meetings/{meeting['id']}/transcript")
        if f"<v {SPEAKER[0]}>" in vtt:
            break
        listener.wait_for_timeout(500)
    assert vtt.startswith("WEBVTT") and f"<v {SPEAKER[0]}>" in vtt, vtt
    speaker.get_by_role("button", name=re.compile("^Leave")).click()


def api_text(site, token: str, path: str) -> str:
    req = urllib.request.Request(f"{site.url}/api/v1{path}", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.read().decode()
