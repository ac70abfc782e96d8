"""How much one subscriber's downlink carries, and what to send them within it (issue 15).

The estimate comes from what every browser (and aiortc) already sends back for each
stream it receives: RTCP receiver reports (fraction lost; round-trip time from the
sender reports' LSR/DLSR) and, where the receiver sends it, REMB. The worker forwards
packets as they come, so it cannot make a stream smaller; it fits the set of streams
to the estimate instead, giving up in this order (`allocate`):

1. higher layers of cameras off the stage (they are always sent in the low layer),
2. cameras off the stage, the least recent speakers first (last-N shrinks),
3. the stage's high layer (it drops to the low one);

audio is never given up, nor the stage's low layer: that floor is sent whatever
the estimate says.

The estimate is loss-based, like the loss controller of Google's congestion
control: no cap while nothing is lost; when more than `LOSS_HIGH` is lost the
estimate becomes what arrived (sent × (1 − loss)) with a margin; between
`LOSS_LOW` and `LOSS_HIGH` it holds; below `LOSS_LOW` it grows (probing back up):
slowly just after a loss, fast back up to near the rate at which the line last
overflowed, and beyond it by probes: one step (the next camera) at a time, kept
if `PROBE_GAP` seconds stay clean (`PROBE_GAP_LOSSLESS` once nothing at all is
lost), each successful probe bolder than the last,
so a line that got better is found within seconds while a line that did not
costs one step's overflow now and then. Each probe that goes through doubles
the next (one camera, two, four…), so a line that recovered fully is back to
the full set within a few probes — but only a probe during which nothing at
all was lost for `LOSSLESS` seconds and the round-trip time did not rise
(`QUEUE_QUIET`) shows room to spare (the same spell ends the caution after a
loss early); one that went through with some loss or a rising queue keeps the
next at a single step (a line with random loss near its limit is probed
gently). The
cap is lifted once it exceeds everything wanted. A round-trip time well above
the lowest of the last 10 s (the lowest of the last second's reports, so one
late report from a busy event loop is not a queue) means the line's queue is
filling: the estimate stops growing, and backs off as for a loss when the queue
grows further, before packets are lost (audio shares that queue). A probe is
called off by the first single report that shows its queue (`_check_probe`):
waiting for the next update let tbf's queue fill, and the audio behind it came
late. A round-trip time under half the lowest of the seconds before is a new
path (`_rtt`): the old one's limit is forgotten and the estimate grows fast.

On a healthy line nothing is cut: only loss is evidence of a limit. Once a loss
has shown one (the estimate is capped, or some loss is reported), a growing
queue and REMB refine it; before that they are not evidence: on a loaded machine
the round-trip time swings by a quarter of a second on loopback (Chromium and
the worker's event loop answer late), and a receiver's REMB follows the rate it
receives (Chromium's ramps up from a start value), so capping to either on a
healthy line would starve a thumbnail or the stage's high layer for good. REMB
counts only below what is sent, for `REMB_SUSTAIN` updates in a row.
"""
from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from aiortc import clock
from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket, RtcpRrPacket, RtcpSrPacket, unpack_remb_fci

LOSS_LOW = 0.02
LOSS_HIGH = 0.06
MARGIN = 0.9            # fraction of what arrived that the estimate is set to after a loss
SLOW_GROWTH = 1.03      # per second, for `CAUTIOUS` seconds after a loss and near the rate that overflowed
FAST_GROWTH = 1.5       # per second otherwise
CAUTIOUS = 4.0
NEAR = 0.9              # "near" the rate at which the line last overflowed
PROBE_GAP = 2.5         # seconds a probe above that rate must stay clean to count as carried (longer
                        # than a line's queue takes to fill with one step too many, plus a report)
PROBE_WAIT_MAX = 12.0   # the longest wait for a probe after cuts in a row (see `_congested`)
PROBE_STEPS_MAX = 4     # the boldest probe, in steps (cameras) above what is sent
LOSSLESS = 3.0          # seconds without any loss: a line with room (even random loss stopped) …
PROBE_GAP_LOSSLESS = 1.5  # … is probed this often
BOLD_AFTER = 4.5        # seconds without any loss before probes grow bolder (NACKs repair a video stream's
                        # random loss, so a line at its limit can look lossless for a few seconds)
REMB_BELOW = 0.85       # REMB under this fraction of what is sent …
REMB_SUSTAIN = 2        # … for this many updates in a row: the receiver says the line overflows
QUEUE_QUIET = 0.025     # seconds of queue (round-trip time above the lowest) that count as none
QUEUE_SAMPLE = 1.0      # the queue: the lowest round-trip time of this many last seconds, above the window's
PROBE_MAX = 1.35        # the boldest probe: a third more than is sent
SETTLE = 1.5            # seconds after a cut during which reports still describe the time before it
ALARM_PACKETS = 4       # lost packets in one report that make heavy loss an alarm
REACT = 0.7             # seconds between two reactions to heavy loss between updates
RTT_WINDOW = 10.0       # seconds over which the lowest round-trip time is kept
PROBE_QUEUE = 0.04      # seconds of queue during a probe that say it overfills the line (a step over a line
                        # at its limit fills tbf's or a router's queue by tens of ms a second, before loss)
QUEUE_HOLD = 0.06       # seconds of round-trip time above the lowest: stop growing
QUEUE_BACKOFF = 0.12    # … back off to `QUEUE_FACTOR` of what is sent, as for a loss
QUEUE_FACTOR = 0.85
OVERHEAD = 48           # bytes per packet of IP/UDP/SRTP and RTP header around a payload
NEW_PATH_RATIO = 0.5    # a round-trip time under half the lowest of the seconds before, …
NEW_PATH_DROP = 0.02    # … and this many seconds under it: the path changed (see `_rtt`)
NEW_PATH_HISTORY = 5.0  # seconds of round-trip times that must be known before


def _ntp_middle() -> int:
    """The middle 32 bits of the NTP time now, in the unit of LSR and DLSR (1/65536 s)."""
    return (clock.current_ntp_time() >> 16) & 0xFFFFFFFF


class Estimate:
    """The downlink estimate of one subscriber, from the feedback to all its slots. `update` is called
    once a second with the bits per second sent to them over that second."""

    def __init__(self, now: Callable[[], float] = time.monotonic) -> None:
        self._now = now
        self.bps: float | None = None       # None: no cap (nothing lost yet, or recovered fully)
        self.remb: float | None = None
        self.loss = 0.0
        self.rtt: float | None = None
        self.sent_bps = 0.0
        self._losses: dict[int, float] = {}   # slot SSRC → fraction lost in its latest report
        self._rtts: deque[tuple[float, float]] = deque()
        self._last_loss = -1e9
        self._loss_bps: float | None = None  # what was being sent when the line last overflowed
        self.urgent = 0.0                      # the worst loss reported since the last update
        self._probing: float | None = None     # when the current probe above `_loss_bps` began
        self._probe_gain = 1.0                 # how far the next probe reaches (× what is sent)
        self._probe_steps = 1                  # … or in steps above what is sent, whichever is more
        self._remb_low = 0                     # updates in a row with REMB below what is sent
        self._probe_queue = 0.0                # the largest queue seen during the current probe
        self._lossy_at = -1e9                  # the last update that reported any loss
        self._cumulative: dict[int, int] = {}  # slot SSRC → cumulative packets lost in its last report
        self._lost_since = 0                   # packets reported lost, all streams, since the last update
        self._packets_per_second = 0           # packets sent to the subscriber in the last update's second
        self._probe_wait = PROBE_GAP           # seconds after a cut before the next probe
        self._before_probe = 0.0               # what was sent when the current probe began
        self._new_path = False                 # the round-trip time fell below anything seen before
        self._abort_probe = False              # a report during the current probe showed the queue growing
        self._path_at = -1e9                   # when the last new path was found
        self.on_alarm: Callable[[], None] | None = None  # called at once when a report shows heavy loss
        self.decreases = 0

    # -- feedback ---------------------------------------------------------------------------
    def feedback(self, ssrc: int, packet) -> None:
        """An RTCP packet that reached the sender of the slot whose SSRC is `ssrc`."""
        if isinstance(packet, (RtcpRrPacket, RtcpSrPacket)):
            for report in packet.reports:
                if report.ssrc != ssrc:
                    continue
                lost = self._losses[ssrc] = report.fraction_lost / 256
                newly = report.packets_lost - self._cumulative.get(ssrc, report.packets_lost)
                self._cumulative[ssrc] = report.packets_lost
                self._lost_since += max(0, newly)
                # one packet of a 10-packet thumbnail is 10 %: only several lost packets are an alarm; and
                # one stream's burst lost (a keyframe the receiver's socket could not take) is not the line's:
                # the alarm weighs what all streams lost since the last update against a second's packets
                overall = self._lost_since / self._packets_per_second if self._packets_per_second else lost
                if (lost > LOSS_HIGH and newly >= ALARM_PACKETS and overall > LOSS_HIGH
                        and self.on_alarm is not None):
                    self.urgent = max(self.urgent, min(lost, overall))
                    self.on_alarm()
                if report.lsr:
                    rtt = ((_ntp_middle() - report.lsr - report.dlsr) & 0xFFFFFFFF) / 65536
                    if rtt < 30:
                        self._rtt(rtt)
                        self._check_probe(rtt)
        elif isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
            try:
                self.remb = float(unpack_remb_fci(packet.fci)[0])
            except ValueError:
                pass

    def _rtt(self, rtt: float) -> None:
        """A round-trip time far under the lowest of the seconds before says the path is not the one the
        estimate learnt: a queue that stood for seconds drained (a download sharing the line stopped), a
        slow hop went (the phone moved from mobile data to Wi-Fi). Busy machines only ever make round
        trips longer, so a fall is evidence; the next update forgets the old path's limit (`_forget`)."""
        now = self._now()
        self.rtt = rtt
        if self._rtts and self._rtts[0][0] <= now - NEW_PATH_HISTORY:
            before = min(r for _, r in self._rtts)
            if rtt < before * NEW_PATH_RATIO and before - rtt > NEW_PATH_DROP:
                self._new_path = True
                self._rtts.clear()
        self._rtts.append((now, rtt))
        while self._rtts and self._rtts[0][0] < now - RTT_WINDOW:
            self._rtts.popleft()

    def _check_probe(self, rtt: float) -> None:
        """A probe whose first report already shows the line's queue growing is called off at once, not at
        the next update: the probe's extra rate fills a queue like tbf's (a few hundred ms) within a
        second or two, and the speaker's audio waits in that queue behind it. A busy receiver answering
        late can call off a probe that would have gone through; that only delays the next one."""
        if (self._probing is not None and not self._abort_probe and self.on_alarm is not None
                and rtt - min(r for _, r in self._rtts) > PROBE_QUEUE):
            self._abort_probe = True
            self.on_alarm()

    def congested(self) -> bool:
        """The line overflowed moments ago: retransmissions would only add to it."""
        return self._now() - self._last_loss < SETTLE

    @property
    def queue(self) -> float:
        """Round-trip time above the lowest of the last 10 s: the queue building on the path."""
        if self.rtt is None or not self._rtts:
            return 0.0
        recent = self._rtts[-1][0] - QUEUE_SAMPLE
        return max(0.0, min(r for t, r in self._rtts if t >= recent) - min(r for _, r in self._rtts))

    def emergency(self) -> bool:
        """Act on heavy loss at once rather than at the next `update` (a report arrives about once a
        second per stream, and every fraction of a second of overflow costs audio too); at most once per
        `REACT` seconds. True if the estimate went down."""
        now = self._now()
        if self._abort_probe:
            self._abort_probe = False
            if self._probing is not None:
                self._congested(now, self.sent_bps, self._before_probe)  # back to what was sent before it
                return True
        if not self.urgent or now - self._last_loss < REACT or now - self._path_at < SETTLE or not self.sent_bps:
            return False
        arrived = self.sent_bps * (1 - self.urgent)
        self.urgent = 0.0
        self._congested(now, arrived, arrived * MARGIN)
        return True

    def _congested(self, now: float, capacity: float, target: float) -> None:
        """The line overflowed (or is about to) while carrying about `capacity` bits/s."""
        self.bps = target if self.bps is None else min(self.bps, target)
        # Only a probe that went through raises this bar: what a loss report says arrived is rough (the
        # rate sent changes within the report's interval), and the first overflow overstates it.
        self._loss_bps = capacity if self._loss_bps is None else min(self._loss_bps, capacity)
        self._probing = None
        self._probe_gain = 1.0
        self._probe_steps = 1
        # each cut waits longer for the next probe: on a line at its limit with random loss, probes that
        # keep failing would cost the audio that shares the line's queue every few seconds
        self._probe_wait = min(PROBE_WAIT_MAX, self._probe_wait * 2)
        self._last_loss = now
        self.decreases += 1

    def _forget(self, now: float) -> None:
        """A new path (see `_rtt`): the rate at which the old one overflowed and the caution after its losses
        no longer apply, so the estimate grows at its fast rate from what is sent now (each step still
        tested by the reports that follow it) instead of probing one camera at a time. The loss in the
        reports of the next `SETTLE` seconds is the old path's."""
        self._new_path = False
        if self.bps is None:
            return
        self._path_at = now
        self._loss_bps = None
        self._last_loss = -1e9
        self._probing = None
        self._probe_wait = PROBE_GAP

    # -- once a second -------------------------------------------------------------------------
    def update(self, sent_bps: float, wanted_bps: float, weights: dict[int, int],
               next_step: float = 0.0, nacked: int = 0) -> float | None:
        """Fold the reports of the last second in. `weights`: packets sent per slot SSRC in that second
        (the loss of a busy stream counts for more); `nacked`: packets the subscriber asked again for in
        that second (a loss repaired by retransmission is missing from the reports, yet it was lost on the
        line: it too keeps the line from counting as lossless); `wanted_bps`: everything the subscriber would get
        without a cap; `next_step`: what the allocation would add next if the estimate allowed it."""
        now = self._now()
        self.sent_bps = sent_bps
        total = sum(weights.get(s, 0) for s in self._losses)
        self.loss = (sum(f * weights.get(s, 0) for s, f in self._losses.items()) / total) if total else 0.0
        self._losses.clear()
        self.urgent = 0.0
        self._lost_since = 0
        self._packets_per_second = sum(weights.values())
        queue = self.queue
        if self._new_path:
            self._forget(now)
        if self.loss > 0 or nacked > 0:
            self._lossy_at = now
        lossless = now - self._lossy_at  # seconds without a single lost packet reported
        if self._probing is not None:
            self._probe_queue = max(self._probe_queue, queue)
        settling = now - self._last_loss < SETTLE or now - self._path_at < SETTLE
        remb, self.remb = self.remb, None
        limited = self.bps is not None or self.loss >= LOSS_LOW  # the line has shown a limit already
        if remb is not None and sent_bps > 0 and remb < sent_bps * REMB_BELOW and limited:
            self._remb_low += 1
        elif remb is not None:
            self._remb_low = 0
        if self._remb_low >= REMB_SUSTAIN and not settling:
            self._remb_low = 0
            self._congested(now, remb, remb)  # the receiver says less arrives than is sent
        elif (self._probing is not None and not settling
              and (queue > PROBE_QUEUE or self.loss > LOSS_HIGH
                   or (self.loss >= LOSS_LOW and queue > QUEUE_QUIET))):
            # the probe overfills the line (its queue grows, with or without loss yet): back to what was
            # sent before it, at once; holding it until the loss reaches LOSS_HIGH would cost the audio in
            # the line's queue meanwhile. Some loss with no queue at all is not the line overflowing
            # (a receiver too busy to read its socket loses packets too): the probe goes on.
            target = self._before_probe
            if self.loss > LOSS_HIGH:
                target = min(target, sent_bps * (1 - self.loss) * MARGIN)
            self._congested(now, sent_bps, target)
        elif self.loss > LOSS_HIGH and sent_bps > 0 and not settling:
            arrived = sent_bps * (1 - self.loss)
            self._congested(now, arrived, arrived * MARGIN)
        elif queue > QUEUE_BACKOFF and sent_bps > 0 and not settling and self.bps is not None:
            self._congested(now, sent_bps, sent_bps * QUEUE_FACTOR)  # the line's queue fills: before loss
        elif self.loss < LOSS_LOW and self.bps is not None and queue < QUEUE_HOLD:
            clean = now - self._last_loss
            gap = PROBE_GAP_LOSSLESS if lossless >= LOSSLESS else PROBE_GAP
            if self._probing is not None and now - self._probing >= gap:
                # the last probe went through: the line carries what is sent now; probe bolder next time
                self._loss_bps = max(self._loss_bps or 0.0, sent_bps)
                quiet = self._probe_queue < QUEUE_QUIET and lossless >= BOLD_AFTER
                self._probe_gain = min(PROBE_MAX, self._probe_gain * 1.5) if quiet else 1.0
                self._probe_steps = min(PROBE_STEPS_MAX, self._probe_steps * 2) if quiet else 1
                self._probing = None
                self._probe_wait = PROBE_GAP
            if lossless >= LOSSLESS:
                self._probe_wait = PROBE_GAP  # the line is clean again (it may have got better)

            # grow no further than the next step above what is actually sent: an estimate nobody
            # tests cannot run away
            ceiling = max(sent_bps * 1.5, sent_bps + next_step * 1.1)
            if clean < CAUTIOUS and lossless < LOSSLESS:
                self.bps = max(self.bps, min(self.bps * SLOW_GROWTH, ceiling))
            elif self._loss_bps is None or self.bps * FAST_GROWTH < self._loss_bps * NEAR:
                self.bps = max(self.bps, min(self.bps * FAST_GROWTH, ceiling))  # back to where it was
            elif self._probing is None and clean >= self._probe_wait:
                # above the rate that last overflowed: one probe at a time, a step (more after successes)
                self.bps = max(self.bps, sent_bps + next_step * 1.1 * self._probe_steps,
                               sent_bps * self._probe_gain)
                self._before_probe = sent_bps
                self._probing, self._probe_queue = now, queue
            if self.bps > wanted_bps * 1.2 and clean > CAUTIOUS:
                self.bps = None
        return self.bps


def allocate(budget: float | None, audio: float, stage_high: float, stage_low: float,
             thumbnails: list[float]) -> tuple[bool, int]:
    """(stage in its high layer, how many thumbnails) that fit `budget` bits/s, in the order of sacrifice
    of the module docstring. `thumbnails` are the rates of the other cameras' low layers, the ones to
    keep longest first."""
    if budget is None:
        return True, len(thumbnails)
    if audio + stage_high > budget:
        return False, 0
    used, n = audio + stage_high, 0
    for rate in thumbnails:
        if used + rate > budget:
            break
        used += rate
        n += 1
    return True, n


class Rate:
    """Bits per second of a stream over the last second, from its packet and byte counters."""

    __slots__ = ("bps", "packets", "_at", "_octets")

    def __init__(self) -> None:
        self.bps = 0.0
        self.packets = 0   # the packet counter at the last sample
        self._at: float | None = None
        self._octets = 0

    def sample(self, now: float, octets: int, packets: int) -> float:
        if self._at is not None and now > self._at:
            bits = ((octets - self._octets) + OVERHEAD * (packets - self.packets)) * 8
            self.bps = bits / (now - self._at)
        self._at, self._octets, self.packets = now, octets, packets
        return self.bps
