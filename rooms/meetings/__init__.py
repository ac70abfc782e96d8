"""Meetings: hybrid video meetings that belong to a room and inherit its access rules.

The web app decides who may join and hands the browser a short-lived signed
token for a media worker (`media/`), which carries the audio and video."""
