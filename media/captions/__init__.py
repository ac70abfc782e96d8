"""Captions made on the premises: speech recognition of each speaker's audio inside the media worker
(engine.py: the engines behind one interface; audio.py: Opus to 16 kHz PCM; service.py: which
speakers are transcribed, off the event loop, and where captions go; report.py: final captions to
the web app, which saves them as the meeting's transcript)."""
