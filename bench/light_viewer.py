"""A broadcast viewer that costs its load generator little: the benchmark's side of issue 16's 300 viewers.

A synthetic viewer (media/client.py) is a whole aiortc receiver: every packet goes
through aioice's queue, a coroutine or two, RTP parsing, the jitter buffer and RTCP
statistics — about three cores for 300 viewers, more than this machine has beside
the worker it is meant to measure. `count_only(p)` keeps aiortc for what a viewer
must do with the worker (signalling, ICE, DTLS, consent checks, RTCP) and takes the
media packets off the nominated pair before aiortc sees them: each is SRTP-decrypted
(the same libsrtp session aiortc would use, so a packet the worker garbled fails here
too), its SSRC mapped to the slot it belongs to, and counted as the synthetic client
counts frames (one per audio packet, one per video packet with the marker bit).

What the viewer no longer does: reassemble frames, send receiver reports and NACKs.
The worker sends a viewer the same packets either way (a viewer's missing reports
only leave its estimate uncapped, as on a good line), so what it costs is measured
as before.
"""
from __future__ import annotations

import time

from aiortc.sdp import SessionDescription


def count_only(p) -> None:
    """Count `p`'s (a started, connected media.client.SyntheticParticipant) incoming media in its
    `frames`, as its own receivers would, without them."""
    dtls = p.pc.getTransceivers()[0].receiver.transport
    connection = dtls.transport._connection
    original = connection.data_received
    ssrc_mid: dict[int, str] = {}

    def learn() -> None:
        description = p.pc.remoteDescription
        if description is None:
            return
        for media in SessionDescription.parse(description.sdp).media:
            for ssrc in media.ssrc:
                ssrc_mid[ssrc.ssrc] = media.rtp.muxId

    def data_received(data: bytes, component: int) -> None:
        # RTP (RFC 5761: version 2, payload types outside RTCP's 192–223); the rest is aiortc's
        if len(data) > 12 and 127 < data[0] < 192 and not 192 <= data[1] <= 223:
            try:
                plain = dtls._rx_srtp.unprotect(data)
            except Exception:  # noqa: BLE001  (pylibsrtp.Error: replayed or not ours)
                return
            ssrc = int.from_bytes(plain[8:12], "big")
            mid = ssrc_mid.get(ssrc)
            if mid is None:
                learn()
                mid = ssrc_mid.get(ssrc)
            slot = p.slots.get(mid) if mid is not None else None
            if slot and (slot["source"] != "video" or plain[1] & 0x80):
                key = (slot["participant"], slot["source"])
                p.frames[key] += 1
                if key not in p.first_frame_at:
                    p.first_frame_at[key] = time.time()
            return
        original(data, component)

    learn()
    connection.data_received = data_received
