"""Captions benchmark (issue 16): word error rate and speed of each available engine on a generated test set,
and caption latency through a real media worker.

    .venv/bin/python bench/captions.py            # every engine that can run here
    .venv/bin/python bench/captions.py --write    # also replace "## Captions (issue 16)" in docs/benchmarks.md
    COLLAB_CAPTIONS_MODEL_DIR=/srv/models/vosk-en .venv/bin/python bench/captions.py --engines vosk

The test set: the sentences of tests/captions_support.py (police and IAG vocabulary, at least 30), spoken by
espeak-ng (en-gb, 135 words a minute). Synthetic speech is hard for models trained on people (pocketsphinx in
particular): the figures say how an engine does on this set, not on a meeting.

Per engine:
- WER: word-level edit distance / reference words over the whole set, each sentence transcribed whole
  (16 kHz PCM straight from the WAV);
- real-time factor: recognition seconds / audio seconds (the baseline, measured in the same run, is the audio
  itself: below 1 keeps up with a speaker);
- caption latency: a real media worker (captions on, that engine) with a synthetic speaker sending the
  sentence as Opus packets with the audio level a browser adds, and a listener: from the end of the speech
  (the speaker's last voiced packet) to the final caption arriving at the listener; p50 / p90 / max over
  `--latency-runs` sentences. The worker ends an utterance after 0.7 s without voice (END_SILENCE), so that
  much of the latency is by design.
"""
from __future__ import annotations

import support  # noqa: F401  (first: the repository on sys.path)

import argparse
import asyncio
import os
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from media.captions import audio, engine
from media.captions.service import END_SILENCE
from media.client import SyntheticParticipant
from tests.captions_support import SENTENCES, espeak_wav, wer, words
from tests.test_media_signalling import token, until, with_worker

ENGINES = ("pocketsphinx", "vosk", "faster-whisper")


def test_set(folder: Path) -> list[tuple[str, Path]]:
    return [(s, espeak_wav(s, folder / f"{i:02d}.wav")) for i, s in enumerate(SENTENCES)]


def accuracy(name: str, model_dir: str | None, items) -> dict:
    rec = engine.create(name, model_dir)
    heard, seconds, audio_seconds = [], 0.0, 0.0
    for ref, wav in items:
        pcm = audio.wav_to_pcm(str(wav))
        audio_seconds += len(pcm) / engine.BYTES_PER_SECOND
        t = time.process_time()
        heard.append((ref, engine.transcribe(rec, pcm)))
        seconds += time.process_time() - t
    ref_words = sum(len(words(r)) for r, _ in heard)
    errors = sum(wer(r, h) * len(words(r)) for r, h in heard)
    return {"wer": errors / ref_words, "rtf": seconds / audio_seconds, "audio_s": audio_seconds,
            "examples": heard[:3], "sentences": len(heard),
            "some_words": sum(1 for r, h in heard if set(words(r)) & set(words(h)))}


def latency(name: str, model_dir: str | None, items, runs: int) -> list[float]:
    clips = [audio.wav_to_opus(str(wav), silence_after=1.5) for _, wav in items[:runs]]
    out: list[float] = []

    async def scenario(url):
        speaker = await SyntheticParticipant(url, token(1), audio=clips[0]).start()
        listener = await SyntheticParticipant(url, token(2)).start()
        try:
            assert await until(lambda: speaker.connected.is_set() and listener.connected.is_set(), 30)
            await asyncio.sleep(2.0)   # the first recogniser loads its model on first speech: warm it
            for clip in clips:
                speaker.audio_track.clip, speaker.audio_track.index = clip, 0
                seen = sum(1 for m in listener.messages if m["type"] == "caption" and m["final"])
                speaker.speaking = True
                await asyncio.sleep(len(clip) * 0.02 - 1.5)
                ended = time.time()
                speaker.speaking = False
                got = await until(lambda: sum(1 for m in listener.messages
                                              if m["type"] == "caption" and m["final"]) > seen, 60)
                if got:
                    out.append(time.time() - ended)
                await asyncio.sleep(2.0)
        finally:
            await speaker.close()
            await listener.close()

    with_worker(scenario, timeout=120 + runs * 30, captions_engine=name, captions_model_dir=model_dir)
    return out


def pct(values, p):
    return support.pct(values, p) if values else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--engines", default=",".join(ENGINES))
    ap.add_argument("--latency-runs", type=int, default=8)
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    model_dir = os.environ.get("COLLAB_CAPTIONS_MODEL_DIR") or None
    started = datetime.now(timezone.utc)
    load_before = support.loadavg()
    rows, notes = [], []
    with tempfile.TemporaryDirectory(prefix="captions-bench-") as tmp:
        items = test_set(Path(tmp))
        for name in args.engines.split(","):
            try:
                engine.check_engine(name, model_dir if name != "pocketsphinx" else None)
            except engine.EngineError as err:
                notes.append(f"{name}: not measured ({err})")
                print(notes[-1])
                continue
            acc = accuracy(name, model_dir if name != "pocketsphinx" else None, items)
            lat = latency(name, model_dir if name != "pocketsphinx" else None, items, args.latency_runs)
            rows.append((name, acc, lat))
            print(name, f"WER {acc['wer']:.2f}", f"RTF {acc['rtf']:.2f}", "latency", [round(x, 2) for x in lat])
    load_after = support.loadavg()
    lines = [
        "## Captions (issue 16)", "",
        f"Measured {started:%Y-%m-%d %H:%M} UTC by `bench/captions.py` at commit {support.commit()}; "
        f"{support.machine(('aiortc', 'av', 'pocketsphinx'))}. Test set: {len(SENTENCES)} sentences of police and "
        f"IAG vocabulary (tests/captions_support.py) spoken by espeak-ng (en-gb, 135 words a minute), "
        f"{rows[0][1]['audio_s']:.0f} s of speech in all. " if rows else "",
        f"Load average (1, 5, 15 min) at the start: {load_before}; at the end: {load_after}. The machine is shared "
        "with other engineers' work, so times are upper bounds; rerun with `.venv/bin/python bench/captions.py "
        "--write` on a quiet machine.", "",
        "| Engine | WER | Sentences with a word right | Real-time factor (CPU s / audio s) | Latency p50 s | "
        "p90 s | max s | Captions received |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, acc, lat in rows:
        lines.append(f"| {name} | {acc['wer']:.2f} | {acc['some_words']}/{acc['sentences']} | {acc['rtf']:.2f} | "
                     f"{pct(lat, 50):.2f} | {pct(lat, 90):.2f} | {max(lat) if lat else float('nan'):.2f} | "
                     f"{len(lat)}/{args.latency_runs} |")
    lines += [""]
    lines += [f"- {n}" for n in notes]
    for name, acc, _ in rows:
        for ref, hyp in acc["examples"]:
            lines.append(f"- {name} heard \"{ref}\" as \"{hyp}\"")
    lines += ["", f"Latency is from the end of the speech (the speaker's last voiced packet) to the final caption at "
              f"another participant, through a real worker on 127.0.0.1; {END_SILENCE} s of it is the silence that "
              "ends an utterance. Partial captions arrive during the speech (at most every 0.8 s)."
              " Recognition competes for the CPU with everything else on the machine: at the load average above (far more runnable processes than the 2 cores), a recogniser gets a fraction of a core, falls behind the speech and the latency grows with each sentence's length; the real-time factor (CPU seconds, unaffected by waiting) is the figure to scale from on a quiet machine, where the final caption should follow the speech by about 0.7 s plus what the recogniser still has to process."]
    text = "\n".join(line for line in lines if line is not None)
    print(text)
    if args.write:
        support.write_section("## Captions (issue 16)", text)


if __name__ == "__main__":
    main()
