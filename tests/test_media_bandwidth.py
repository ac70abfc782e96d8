"""The per-subscriber bandwidth estimate and the allocation order of issue 15 (media/bandwidth.py),
fed real RTCP packets (aiortc's classes) on a clock the test advances."""
from __future__ import annotations

from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket, RtcpReceiverInfo, RtcpRrPacket, pack_remb_fci

from media import bandwidth
from media.bandwidth import Estimate, Rate, allocate


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def rr(ssrc: int, fraction: float, lost_total: int = 0, lsr: int = 0, dlsr: int = 0) -> RtcpRrPacket:
    return RtcpRrPacket(ssrc=1, reports=[RtcpReceiverInfo(ssrc=ssrc, fraction_lost=int(fraction * 256),
                                                          packets_lost=lost_total, highest_sequence=0, jitter=0,
                                                          lsr=lsr, dlsr=dlsr)])


def test_allocation_gives_up_thumbnails_then_the_stage_layer_never_audio():
    thumbs = [100.0, 100.0, 100.0]
    assert allocate(None, 50, 300, 100, thumbs) == (True, 3)          # no cap: everything
    assert allocate(1000, 50, 300, 100, thumbs) == (True, 3)
    assert allocate(560, 50, 300, 100, thumbs) == (True, 2)           # the last thumbnails go first
    assert allocate(360, 50, 300, 100, thumbs) == (True, 0)           # the speaker only
    assert allocate(200, 50, 300, 100, thumbs) == (False, 0)          # then the stage's high layer
    assert allocate(10, 50, 300, 100, thumbs) == (False, 0)           # the floor: audio + low layer, always


def test_no_cap_until_loss_then_what_arrived_then_probing_back_up():
    clock = Clock()
    e = Estimate(now=clock)
    e.feedback(7, rr(7, 0.0))
    assert e.update(1_000_000, 1_000_000, {7: 100}) is None           # nothing lost: no cap
    clock.t += 1
    e.feedback(7, rr(7, 0.4))
    e.feedback(8, rr(8, 0.0))                                          # a quiet stream counts for less
    bps = e.update(1_000_000, 1_000_000, {7: 90, 8: 10})
    assert abs(e.loss - 0.9 * int(0.4 * 256) / 256) < 1e-9              # weighted by packets sent
    assert bps is not None and abs(bps - 1_000_000 * (1 - e.loss) * bandwidth.MARGIN) < 1
    capped = bps
    # clean reports: it grows, slowly at first (until `LOSSLESS` seconds without loss), never past what is sent plus the next step
    for _ in range(2):
        clock.t += 1
        e.feedback(7, rr(7, 0.0))
        e.update(capped, 1_000_000, {7: 100}, next_step=100_000)
    assert capped < e.bps <= capped * bandwidth.SLOW_GROWTH ** 2 + 1
    # a long clean spell and probes that go through: the cap is lifted
    sent = e.bps
    for _ in range(40):
        clock.t += 1
        e.feedback(7, rr(7, 0.0))
        if e.update(sent, 1_000_000, {7: 100}, next_step=100_000) is None:
            break
        sent = e.bps
    assert e.bps is None


def test_heavy_loss_of_several_packets_acts_at_once_one_packet_of_a_thumbnail_does_not():
    clock = Clock()
    e = Estimate(now=clock)
    alarms = []
    e.on_alarm = lambda: alarms.append(clock.t)
    e.update(800_000, 800_000, {})
    e.feedback(5, rr(5, 0.1, lost_total=1))   # first report of this stream: its count is the baseline
    e.feedback(5, rr(5, 0.1, lost_total=2))   # 10 % of a 10-packet stream is one packet: no alarm
    assert alarms == []
    e.feedback(5, rr(5, 0.3, lost_total=12))
    assert alarms and e.emergency() and e.bps is not None and e.bps < 800_000
    assert not e.emergency()                  # once per reaction time


def remb(bps: int) -> RtcpPsfbPacket:
    return RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=1, media_ssrc=0, fci=pack_remb_fci(bps, [3]))


def test_remb_and_round_trip_times_cut_nothing_on_a_line_that_lost_nothing():
    clock = Clock()
    e = Estimate(now=clock)
    # a receiver's REMB ramps up from a start value, below what is sent, and a loaded machine's round
    # trips swing: without loss neither is evidence of a limit
    for i in range(8):
        clock.t += 1
        e.feedback(3, remb(150_000))
        e._rtt(0.01 if i % 2 else 0.3)
        e.feedback(3, rr(3, 0.0))
        assert e.update(400_000, 900_000, {3: 100}) is None


def test_remb_caps_a_limited_line_when_it_stays_below_what_is_sent():
    clock = Clock()
    e = Estimate(now=clock)
    clock.t += 1
    e.feedback(3, rr(3, 0.04))                  # some loss: the line has a limit
    e.feedback(3, remb(300_000))
    assert e.update(900_000, 900_000, {3: 100}) is None   # one REMB below what is sent is not enough
    clock.t += 1
    e.feedback(3, rr(3, 0.04))
    e.feedback(3, remb(300_000))
    assert e.update(900_000, 900_000, {3: 100}) == 300_000


def test_rtt_comes_from_lsr_dlsr():
    e = Estimate()
    lsr = bandwidth._ntp_middle()
    e.feedback(3, rr(3, 0.0, lsr=lsr, dlsr=0))
    assert e.rtt is not None and 0 <= e.rtt < 5


def _seconds_to_lift(e: Estimate, clock, *, rtt: float, loss: float) -> int | None:
    """Seconds of reports with this round-trip time and loss, sending what the estimate allows, until the
    cap is lifted (None: not within a minute)."""
    sent = e.bps
    for n in range(1, 60):
        clock.t += 1
        e._rtt(rtt)
        e.feedback(7, rr(7, loss))
        if e.update(sent, 1_000_000, {7: 100}, next_step=80_000) is None:
            return n
        sent = e.bps
    return None


def test_probes_double_while_nothing_is_lost_and_the_round_trip_time_stays_flat():
    def limited(clock):
        e = Estimate(now=clock)
        e._rtt(0.02)  # the line overflows at 300 kbit/s
        e.feedback(7, rr(7, 0.3))
        e.update(330_000, 1_000_000, {7: 100})
        return e

    a, b = Clock(), Clock()
    clean = _seconds_to_lift(limited(a), a, rtt=0.02, loss=0.0)
    lossy = _seconds_to_lift(limited(b), b, rtt=0.02, loss=0.01)  # 1 % random loss: near a limit, probed one step at a time
    assert clean is not None and clean <= 12, clean   # the line recovered: back to everything soon
    assert lossy is None or lossy > clean, (lossy, clean)


def test_rate_counts_payload_and_packet_overhead_per_second():
    r = Rate()
    assert r.sample(10.0, 0, 0) == 0.0
    assert r.sample(11.0, 10_000, 10) == (10_000 + 10 * bandwidth.OVERHEAD) * 8


def _limited_on_an_80_ms_path(clock) -> Estimate:
    """Seconds of an 80 ms path, then an overflow: the estimate is capped."""
    e = Estimate(now=clock)
    for _ in range(6):
        clock.t += 1
        e._rtt(0.085)
        e.feedback(7, rr(7, 0.0))
        e.update(300_000, 1_000_000, {7: 100})
    clock.t += 1
    e._rtt(0.085)
    e.feedback(7, rr(7, 0.3))
    e.update(330_000, 1_000_000, {7: 100})
    assert e.bps is not None
    return e


def test_a_round_trip_time_far_under_the_path_s_lowest_is_a_new_path_and_the_estimate_grows_fast():
    """The weak line of issue 15 lifted: its 80 ms delay and standing queue go. The estimate forgets the
    old path's limit and grows by FAST_GROWTH a second instead of probing a camera at a time."""
    a, b = Clock(), Clock()
    same_path = _seconds_to_lift(_limited_on_an_80_ms_path(a), a, rtt=0.085, loss=0.0)
    new_path = _seconds_to_lift(_limited_on_an_80_ms_path(b), b, rtt=0.004, loss=0.0)
    assert new_path is not None and same_path is not None
    assert new_path <= 6 < same_path, (new_path, same_path)


def test_round_trips_that_only_swing_or_rise_are_never_a_new_path():
    clock = Clock()
    e = Estimate(now=clock)
    for i in range(20):                  # a loaded machine: 10 ms … 300 ms, never under half the lowest
        clock.t += 0.5
        e._rtt(0.3 if i % 3 else 0.01)
    assert not e._new_path
    e._rtt(0.006)                        # 4 ms under the lowest: within the swing, not a path
    assert not e._new_path


def test_loss_reported_as_a_new_path_is_found_belongs_to_the_old_one():
    clock = Clock()
    e = _limited_on_an_80_ms_path(clock)
    capped = e.bps
    clock.t += 3
    e._rtt(0.004)                          # the line's limit lifted: its queue and delay gone …
    e.feedback(7, rr(7, 0.1))              # … and this report still counts the last second on it
    assert e.update(capped, 1_000_000, {7: 100}) == capped              # not cut for it
    clock.t += 1
    e._rtt(0.004)
    e.feedback(7, rr(7, 0.0))
    assert e.update(capped, 1_000_000, {7: 100}, next_step=80_000) >= capped * 1.4  # and fast growth


def _probing(clock):
    """An estimate capped after an overflow and then probing above it (as a line at its limit is)."""
    e = Estimate(now=clock)
    alarms = []
    e.on_alarm = lambda: alarms.append(clock.t)
    e._rtt(0.02)
    e.feedback(7, rr(7, 0.3))
    e.update(330_000, 1_000_000, {7: 100})
    sent = e.bps
    for _ in range(30):
        clock.t += 1
        e._rtt(0.02)
        e.feedback(7, rr(7, 0.0))
        e.update(sent, 1_000_000, {7: 100}, next_step=80_000)
        if e._probing is not None:
            return e, alarms, sent
        sent = e.bps
    raise AssertionError("no probe in 30 s")


def test_a_probe_is_called_off_at_the_first_report_that_shows_the_queue_growing():
    clock = Clock()
    e, alarms, before = _probing(clock)
    probe = e.bps
    assert probe > before
    clock.t += 0.3
    lsr = (bandwidth._ntp_middle() - int(0.02 * 65536)) & 0xFFFFFFFF     # 20 ms: as before, the probe goes on
    e.feedback(7, rr(7, 0.0, lsr=lsr))
    assert alarms == [] and not e.emergency()
    lsr = (bandwidth._ntp_middle() - int(0.12 * 65536)) & 0xFFFFFFFF     # 120 ms: 100 ms of queue
    e.feedback(7, rr(7, 0.0, lsr=lsr))
    assert alarms and e.emergency()                                       # at once, not at the next update
    assert e.bps <= before < probe and e._probing is None
