"""Prometheus metrics, every one named `collab_…`, served at `/metrics` (collab/monitoring_views.py).

Why these: an operator needs to see a slow or failing route, live connections and how fast events
reach them, search latency and its backlog, sign-ins and lockouts, uploads and deck conversions, and
meetings on the media worker, without reading logs. Counters and histograms are bumped where the thing
happens (services call `count`/`observe` style helpers below); what is cheaper to read at scrape
time than to track (the outbox backlog, the media workers' load and CPU) is asked then, by a
collector registered by the view, bounded by timeouts.

Several gunicorn workers: `flask serve` points PROMETHEUS_MULTIPROC_DIR at `<data>/prometheus/<port>`, emptied
at each start (`prepare_multiprocess_dir`), before the workers import prometheus_client; each process
writes its own files and a scrape adds them up (`registry()`). Live gauges of processes that died are
reaped at scrape time (`_reap_dead`), so a restarted worker's old connections are not counted.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)

from media import supervisor

disable_created_metrics()  # no `_created` series: half the lines of a scrape, and nobody graphs them

ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST
OWN = CollectorRegistry(auto_describe=True)  # collab_… only (not the client's process_/python_ defaults)
_FAST = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

REQUEST_SECONDS = Histogram("collab_http_request_duration_seconds", "Time to answer an HTTP request, by endpoint.",
                            ["endpoint", "method"], buckets=_FAST, registry=OWN)
REQUEST_ERRORS = Counter("collab_http_errors_total", "HTTP answers with a 5xx status, by endpoint.",
                         ["endpoint", "status"], registry=OWN)
SOCKET_CONNECTIONS = Gauge("collab_socketio_connections", "Live Socket.IO connections held by the web processes.",
                           multiprocess_mode="livesum", registry=OWN)
SOCKET_CONNECTS = Counter("collab_socketio_connects_total", "Socket.IO connections accepted.", registry=OWN)
FANOUT_SECONDS = Histogram("collab_fanout_seconds", "Time to hand one committed event to its live channels.",
                           buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1), registry=OWN)
EVENTS_REPLAYED = Counter("collab_events_replayed_total", "Room events sent again to clients catching up (sync).", registry=OWN)
SEARCH_SECONDS = Histogram("collab_search_duration_seconds", "Time to answer one search.", buckets=_FAST, registry=OWN)
LOGINS = Counter("collab_logins_total", "Sign-in attempts by result (ok, failed, locked).", ["result"], registry=OWN)
LOCKOUTS = Counter("collab_lockouts_total", "Accounts locked after too many failed sign-ins.", registry=OWN)
UPLOADS = Counter("collab_uploads_total", "Files attached to posts.", registry=OWN)
UPLOAD_BYTES = Counter("collab_upload_bytes_total", "Bytes of files attached to posts.", registry=OWN)
DECK_CONVERSIONS = Counter("collab_deck_conversions_total", "Meeting deck conversions by result.", ["result"], registry=OWN)
MEETINGS_STARTED = Counter("collab_meetings_started_total", "Meetings started.", registry=OWN)
MEETINGS_ENDED = Counter("collab_meetings_ended_total", "Meetings ended.", registry=OWN)


def multiprocess_dir() -> str | None:
    return os.environ.get(ENV) or None


def prepare_multiprocess_dir(env: dict, data_dir: str | os.PathLike, port: int) -> str:
    """Empty `<data>/prometheus/<port>` and name it in `env` for the processes `flask serve` starts (their
    metrics from an earlier run would otherwise be added to this one's). One folder per port: several
    `flask serve` on one host may share a data folder (collab-web@5001, @5002), and each answers for its
    own processes (Prometheus scrapes each); a restart of one must not empty the others' files."""
    path = Path(data_dir) / "prometheus" / str(int(port))
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True, exist_ok=True)
    env[ENV] = str(path)
    return str(path)


def _reap_dead(path: str) -> None:
    """Remove the live-gauge files of processes that have exited (gunicorn restarts workers)."""
    for name in os.listdir(path):
        if name.startswith("gauge_live") and name.endswith(".db"):
            pid = name.rsplit("_", 1)[-1][:-3]
            if pid.isdigit() and not supervisor.pid_alive(int(pid)):
                multiprocess.mark_process_dead(int(pid), path)


def registry(*extra) -> CollectorRegistry:
    """The registry a scrape reads: every process's files in multiprocess mode, else this process's."""
    path = multiprocess_dir()
    if path:
        _reap_dead(path)
        reg = CollectorRegistry()
        multiprocess.MultiProcessCollector(reg, path=path)
    else:
        reg = CollectorRegistry()
        reg.register(_Default())
    for collector in extra:
        reg.register(collector)
    return reg


class _Default:
    """This process's metrics (`OWN`), inside a registry of the scrape's own."""

    def collect(self):
        yield from OWN.collect()


def exposition(*extra) -> bytes:
    return generate_latest(registry(*extra))
