"""The operator's endpoints: `/healthz` (alive), `/readyz` (ready, collab/health.py), `/metrics`
(Prometheus, collab/metrics.py) and the administrators' System page (`/admin/system`).

Who sees what, and why:
- `/healthz` answers anyone, with nothing but "ok": a liveness probe must not need credentials, and
  saying "alive" tells an attacker nothing.
- `/readyz` answers anyone with its status (200 ready / 503 not), so a load balancer needs no secret;
  each check's detail (database kind, worker addresses, disk space, backlog) only to loopback, to the
  addresses in COLLAB_HEALTH_ALLOW, or to a signed-in site administrator.
- `/metrics` only to loopback and COLLAB_METRICS_ALLOW (403 to others, signed in or not): metrics
  describe the whole site's activity, so they are not given to accounts, only to the monitoring host.
"""
from __future__ import annotations

import time

from flask import Blueprint, Response, abort, current_app, g, jsonify, render_template, request
from flask_login import current_user, login_required
from prometheus_client.core import GaugeMetricFamily

from auth import permissions as perm
from collab import allowlist, health, logs, metrics, system_info
from collab.extensions import db
from search.indexer import outbox_size

bp = Blueprint("monitor", __name__)


def _nets(name: str) -> tuple:
    value = current_app.config.get(name) or ()
    return allowlist.parse(f"COLLAB_{name}", value) if isinstance(value, str) else tuple(value)


_FORWARDING = ("X-Forwarded-For", "Forwarded", "X-Real-Ip")


def _may(setting: str) -> bool:
    """The caller's address is loopback or in the allow-list `setting`. Behind nginx without
    COLLAB_TRUSTED_PROXIES every request comes from 127.0.0.1: one that carries forwarding headers then
    is not counted as loopback (else the whole internet would read the metrics through the proxy)."""
    untrusted = not current_app.config.get("TRUSTED_PROXIES") and any(h in request.headers for h in _FORWARDING)
    return allowlist.allowed(request.remote_addr, _nets(setting), via_untrusted_proxy=untrusted)


def _plain(body: dict, status: int) -> Response:
    resp = jsonify(body)
    resp.status_code = status
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.get("/healthz")
def healthz():
    return _plain({"status": "ok"}, 200)


@bp.get("/readyz")
def readyz():
    report = health.run_cached(current_app._get_current_object())
    status = 200 if report["ready"] else 503
    if _may("HEALTH_ALLOW") or perm.can_administer(current_user):
        return _plain(report, status)
    return _plain({"status": report["status"], "ready": report["ready"]}, status)


class ScrapeCollector:
    """Figures read at scrape time: the search outbox backlog, and each media worker's meetings,
    participants, forwarded streams and CPU (its signed /status, a short timeout each)."""

    def __init__(self, app) -> None:
        self.app = app

    def collect(self):
        backlog = GaugeMetricFamily("collab_search_outbox_backlog", "Index changes waiting to be applied.")
        try:
            backlog.add_metric([], outbox_size())
        except Exception:  # noqa: BLE001 - the database being down shows as a missing figure, not a 500
            db.session.rollback()
        yield backlog
        up = GaugeMetricFamily("collab_media_worker_up", "1 when the media worker answers its signed /status.",
                               labels=["worker"])
        families = {key: GaugeMetricFamily(f"collab_media_{key}", helptext, labels=["worker"]) for key, helptext in (
            ("meetings", "Meetings open on the media worker."),
            ("participants", "Participants connected to the media worker."),
            ("streams", "Streams the media worker forwards (each published stream to each receiver)."),
            ("cpu_seconds", "CPU seconds the media worker has used (all its processes)."))}
        for url in self.app.config.get("MEDIA_URLS") or []:
            st = system_info.worker_status(self.app, url)
            up.add_metric([url], 1 if st is not None else 0)
            for key, family in families.items():
                if st is not None and isinstance(st.get(key), (int, float)):
                    family.add_metric([url], st[key])
        yield up
        yield from families.values()


@bp.get("/metrics")
def metrics_endpoint():
    if not _may("METRICS_ALLOW"):
        return Response("Metrics are served to the monitoring host only (COLLAB_METRICS_ALLOW).\n", 403,
                        mimetype="text/plain")
    body = metrics.exposition(ScrapeCollector(current_app._get_current_object()))
    return Response(body, 200, headers={"Content-Type": metrics.CONTENT_TYPE, "Cache-Control": "no-store"})


@bp.get("/admin/system")
@login_required
def system():
    if not perm.can_administer(current_user):
        abort(404)
    return render_template("admin/system.html", info=system_info.gather(current_app._get_current_object()))


def init_app(app) -> None:
    """Request ids and JSON request lines (collab/logs.py), request metrics, and the routes above.
    MONITORING_HOOKS=False (bench/monitoring.py only, no setting) leaves the per-request hooks out, so the
    benchmark can measure what they cost."""
    app.register_blueprint(bp)
    if app.config.get("MONITORING_HOOKS") is False:
        return
    logs.init_app(app)

    @app.after_request
    def _measure(resp):
        started = g.get("request_started")
        if started is not None:
            endpoint = request.endpoint or "(none)"  # unmatched paths share one label: bounded cardinality
            metrics.REQUEST_SECONDS.labels(endpoint=endpoint, method=request.method).observe(
                time.perf_counter() - started)
            if resp.status_code >= 500:
                metrics.REQUEST_ERRORS.labels(endpoint=endpoint, status=str(resp.status_code)).inc()
        return resp
