"""Simulcast publishing, handled by the worker itself because aiortc ignores it.

A browser publishing simulcast sends two encodings of its camera on one m-line,
each with its own SSRC and its RID ("l" low, "h" high) in the
`sdes:rtp-stream-id` RTP header extension (RFC 8852); its retransmissions carry
`sdes:repaired-rtp-stream-id` instead. aiortc 1.16 neither offers nor answers
simulcast and its receiver knows one SSRC per m-line, so:

- the worker's offer gets `a=rid:… recv` and `a=simulcast:recv l;h` in the camera
  m-section (`offer_layers`), added to the text sent to the browser only; the
  browser's answer says which of them it will send (`answered_layers`);
- the two header extensions are negotiated like aiortc's own (`negotiate_stream_ids`);
- aiortc's RTP router drops a packet whose SSRC it does not know when more than one
  receiver shares its payload type (camera and screen do): `route_by_mid` makes it
  route such packets by their `sdes:mid` extension and learn the SSRC, and tells the
  receiver which RTX SSRC repairs which layer;
- `Layers` gives each layer its own `media.forwarding.Source`, fed by SSRC (learnt
  from the RID), with keyframe requests (PLI) addressed to that layer's SSRC.

A publisher without simulcast (older browsers, the plain synthetic client) is a
`Layers` with one layer; everything downstream treats both alike. Forwarders
switch between layers like between speakers, on a keyframe of the new layer
(`RtpForwarder.set_source(..., seamless=True)`).
"""
from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable

from aiortc import codecs
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters

from media.forwarding import Source

log = logging.getLogger(__name__)

RIDS = ("l", "h")  # low layer first: the order of `Layers.sources`
STREAM_ID = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id"
REPAIRED_STREAM_ID = "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id"
EXTENSION_IDS = {STREAM_ID: 10, REPAIRED_STREAM_ID: 11}  # ids clear of aiortc's own (1-3)
RTX_SSRC = "_RTCRtpReceiver__rtx_ssrc"
ROUTED = "_collab_routes_by_mid"
_RID = re.compile(r"^[A-Za-z0-9_-]{1,16}$")


def negotiate_stream_ids() -> None:
    """Offer (and accept) the RID header extensions for video in this process. `HEADER_EXTENSIONS` is the
    public table of aiortc.codecs that every offer and answer copies."""
    video = codecs.HEADER_EXTENSIONS["video"]
    for uri, ext_id in EXTENSION_IDS.items():
        if not any(e.uri == uri for e in video):
            video.append(RTCRtpHeaderExtensionParameters(id=ext_id, uri=uri))


def sections(sdp: str) -> list[list[str]]:
    lines = sdp.replace("\r\n", "\n").rstrip("\n").split("\n")
    out: list[list[str]] = [[]]
    for line in lines:
        if line.startswith("m="):
            out.append([])
        out[-1].append(line)
    return out


def join_sections(sections: list[list[str]]) -> str:
    return "\r\n".join(line for s in sections for line in s) + "\r\n"


def offer_layers(sdp: str, mid: str | None, rids: tuple[str, ...] = RIDS) -> str:
    """The worker's offer with simulcast reception offered in the m-section `mid` (the camera)."""
    if mid is None:
        return sdp
    parts = sections(sdp)
    for s in parts[1:]:
        if f"a=mid:{mid}" in s and not any(x.startswith("a=simulcast:") for x in s):
            s.extend(f"a=rid:{r} recv" for r in rids)
            s.append("a=simulcast:recv " + ";".join(rids))
    return join_sections(parts)


def answered_layers(sdp: str, mid: str | None, rids: tuple[str, ...] = RIDS) -> list[str]:
    """The RIDs the answer will send in the m-section `mid`, low first; [] without simulcast. Paused
    ("~h") and unknown RIDs are left out."""
    if mid is None or not isinstance(sdp, str):
        return []
    for s in sections(sdp)[1:]:
        if f"a=mid:{mid}" not in s:
            continue
        for line in s:
            if line.startswith("a=simulcast:send "):
                sent = {r for part in line.split(" ", 2)[1].split(";") for r in part.split(",")
                        if _RID.match(r)}
                layers = [r for r in rids if r in sent]
                return layers if len(layers) > 1 else []
    return []


def route_by_mid(dtls, receiver, learn: Callable[[object], bool]) -> None:
    """Route packets of SSRCs that aiortc's RTP router (of `dtls`, an RTCDtlsTransport) does not know yet
    and whose `sdes:mid` header extension names `receiver` through `learn(packet)` first: it decides
    whether the SSRC belongs to `receiver` (then the router keeps it) or is dropped. Without this, aiortc
    would drop such a packet when camera and screen share its payload type, or give it to the only
    receiver of that payload type without a word about which layer, or RTX of which layer, it is."""
    router = dtls._rtp_router
    hooks = getattr(router, ROUTED, None)
    if hooks is None:
        hooks = {}
        setattr(router, ROUTED, hooks)
        original = router.route_rtp

        def route_rtp(packet):
            mid = packet.extensions.mid
            if mid is not None and packet.ssrc not in router.ssrc_table:
                target = router.mid_table.get(mid)
                hook = hooks.get(target)
                if hook is not None:
                    if not hook(packet):
                        return None
                    router.ssrc_table[packet.ssrc] = target
                    return target
            return original(packet)

        router.route_rtp = route_rtp
    hooks[receiver] = learn


class Layers:
    """The layers of one published camera, low first, each a `Source`, fed by SSRC."""

    def __init__(self, label: str, rids: list[str], receiver,
                 request_keyframe: Callable[[object, int], None] | None = None) -> None:
        self.rids = list(rids) or [""]
        self.receiver = receiver
        self._pli = request_keyframe
        self.sources = [Source("video", f"{label}:{r}" if r else label,
                               request_keyframe=self._requester(i)) for i, r in enumerate(self.rids)]
        self.ssrc_of: dict[int, int] = {}   # layer index → media SSRC
        self.by_ssrc: dict[int, Source] = {}
        self.unrouted = 0

    @property
    def simulcast(self) -> bool:
        return len(self.sources) > 1

    def _requester(self, index: int) -> Callable[[], None]:
        def request() -> None:
            ssrc = self.ssrc_of.get(index)
            if self._pli is not None and ssrc is not None:
                self._pli(self.receiver, ssrc)
        return request

    def learn(self, packet) -> bool:
        """A packet of an unknown SSRC reached the router with this camera's mid: keep it if its RID
        (or, for a retransmission, the RID it repairs) is one of ours."""
        receiver = self.receiver
        ext = packet.extensions
        if ext.rtp_stream_id is not None:
            if ext.rtp_stream_id not in self.rids:
                return False
            index = self.rids.index(ext.rtp_stream_id)
            self.ssrc_of[index] = packet.ssrc
            self.by_ssrc[packet.ssrc] = self.sources[index]
            return True
        if ext.repaired_rtp_stream_id in self.rids:
            media = self.ssrc_of.get(self.rids.index(ext.repaired_rtp_stream_id))
            table = getattr(receiver, RTX_SSRC, None)
            if media is None or not isinstance(table, dict):
                return False
            table[packet.ssrc] = media
            return True
        if self.simulcast or ext.repaired_rtp_stream_id is not None:
            return False
        return self.ssrc_of.get(0, packet.ssrc) == packet.ssrc  # one layer: the first SSRC for this mid

    def feed_rtp(self, packet) -> None:
        """The packet tap of the camera's receiver: one packet (decrypted, RTX unwrapped)."""
        source = self.by_ssrc.get(packet.ssrc)
        if source is None:
            if self.simulcast or 0 in self.ssrc_of:
                self.unrouted += 1  # an SSRC that is not (or not yet known as) one of our layers
                return
            source = self.sources[0]
            self.by_ssrc[packet.ssrc] = source
            self.ssrc_of[0] = packet.ssrc
        source.feed_rtp(packet)

    def layer(self, high: bool) -> Source:
        return self.sources[-1] if high else self.sources[0]

    def has_sinks(self) -> bool:
        return any(s.sinks for s in self.sources)

    def close(self) -> None:
        for s in self.sources:
            s.close()


def pli(receiver, ssrc: int) -> None:
    """Ask the publisher for a keyframe of one layer (`RTCRtpReceiver._send_rtcp_pli`)."""
    asyncio.ensure_future(receiver._send_rtcp_pli(ssrc))
