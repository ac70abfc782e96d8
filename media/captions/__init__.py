"""Captions made on the premises: speech recognition of each speaker's audio inside the media worker
(engine.py: the engines behind one interface; audio.py: Opus to 16 kHz PCM; service.py: which
speakers are transcribed, off the event loop, and where captions go; report.py: final captions to
the web app, which saves them as the meeting's transcript)."""
from __future__ import annotations

from media.captions.report import Reporter
from media.captions.service import Captions


def captions_for(config) -> Captions | None:
    """The captions of one worker process as `config` (media.config.WorkerConfig) sets them; None when off."""
    if config.captions_engine == "off":
        return None
    report = Reporter(config.report_url, config.secret_key) if config.report_url else None
    return Captions(config.captions_engine, config.captions_model_dir, config.captions_speakers, report=report)
