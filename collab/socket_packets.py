"""Socket.IO packets that a hostile client cannot use to crash the decoder.

Python's JSON parser gives up on very deeply nested input with RecursionError (not
ValueError); inside python-socketio that escapes as a logged server error and the
client never hears back. Decoded with `SafePacket`, such a message still reaches
its event handler, as `[event name, TOO_DEEP]` with its acknowledgement id kept,
and the handler answers with a clear "invalid" error like any malformed payload.
"""
from __future__ import annotations

import json
import re
from typing import Any

from socketio import packet

# The event name at the start of an EVENT packet's arguments: '["post", ...'.
_EVENT_NAME = re.compile(r'\s*\[\s*"([A-Za-z0-9_.:-]{1,64})"')


class _TooDeep:
    """The stand-in for arguments too deeply nested to read (no JSON value can be it)."""

    def __repr__(self) -> str:
        return "TOO_DEEP"


TOO_DEEP: Any = _TooDeep()


class _GuardedJSON:
    """The `json` module as socketio.packet uses it, but nesting too deep decodes to TOO_DEEP."""

    @staticmethod
    def dumps(*args: Any, **kwargs: Any) -> str:
        return json.dumps(*args, **kwargs)

    @staticmethod
    def loads(text: str, **kwargs: Any) -> Any:
        try:
            return json.loads(text, **kwargs)
        except RecursionError:
            name = _EVENT_NAME.match(text)
            return [name.group(1), TOO_DEEP] if name else TOO_DEEP


class SafePacket(packet.Packet):
    json = _GuardedJSON
