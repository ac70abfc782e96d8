"""Rooms, memberships, threads, posts and attachments."""
