"""Polls and proposals (issue 13): a poll lives in a thread of a room, so search, moderation,
labels, non-attributed rooms and retention apply to it unchanged."""
