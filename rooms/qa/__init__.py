"""Q&A sessions (issue 13): a host's session in a room, questions voted up in advance and live,
answered in writing or aloud; each session a thread underneath and each question a post in it."""
