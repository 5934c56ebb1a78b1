"""`app-worker`: background jobs, each on its own interval: keep month partitions of record_version
created ahead of time (so uploads never land in the default partition), re-aggregate the statistics
of the days changed since the last round (app.services.aggregates), re-verify the audit-log
hash chain, exported as pbox_audit_chain_ok for the AuditChainBroken alert, and anchor the chain's
head off the database host (syslog, tag pbox-audit-anchor, forwarded to the central log host and
checked by `verify-log --anchors`); when the exchange is
enabled, its relay, reconciliation and upward statistics run in threads beside them
(app.exchange.worker). Its metrics have their own registry and listener (not app-web's)."""

import logging
import signal
import syslog
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType

from prometheus_client import CollectorRegistry, Gauge, start_http_server
from sqlalchemy import text

from app import logs
from app.db.session import Database
from app.exchange import worker as exchange_worker
from app.node import ExchangeNode
from app.runtime import audit_log, failure_limiter, node_name
from app.security import auditlog
from app.security.ratelimit import FailureLimiter
from app.services import aggregates
from app.settings import get_settings

log = logging.getLogger("app.worker")
MONTHS_AHEAD = 3

REGISTRY = CollectorRegistry()
AUDIT_CHAIN_OK = Gauge(
    "pbox_audit_chain_ok",
    "1 if the last verification found the audit-log hash chain unbroken, else 0",
    registry=REGISTRY,
)
AUDIT_CHAIN_ROWS = Gauge(
    "pbox_audit_chain_rows_verified", "Audit rows the last verification walked", registry=REGISTRY
)
AUDIT_CHAIN_VERIFIED_AT = Gauge(
    "pbox_audit_chain_last_verified_timestamp_seconds",
    "When the audit chain was last verified",
    registry=REGISTRY,
)
AUDIT_ANCHOR_SEQ = Gauge(
    "pbox_audit_anchor_seq", "The audit chain's head as last anchored to syslog", registry=REGISTRY
)
AUDIT_ANCHORED_AT = Gauge(
    "pbox_audit_anchor_last_timestamp_seconds",
    "When the audit chain head was last anchored",
    registry=REGISTRY,
)


def ensure_partitions(db: Database) -> int:
    with db.transaction() as s:
        made = s.scalar(text("SELECT ensure_record_partitions(now()::date, :n)"), {"n": MONTHS_AHEAD + 1})
    return int(made or 0)


def refresh_statistics(db: Database) -> int:
    """Re-aggregate the days marked since the last round; returns how many."""
    with db.transaction() as s:
        days = aggregates.refresh(s)
    if days:
        log.info("statistics re-aggregated", extra={"days": days})
    return days


def verify_audit_chain(db: Database, audit: auditlog.AuditLog | None = None) -> auditlog.ChainReport:
    try:
        with db.transaction() as s:
            report = audit.verify(s) if audit else auditlog.verify(s)
    except auditlog.MissingAuditKey as e:  # a keyed chain this node cannot check counts as not verified
        report = auditlog.ChainReport(0, "", e.seq, str(e))
    AUDIT_CHAIN_OK.set(1 if report.ok else 0)
    AUDIT_CHAIN_ROWS.set(report.checked)
    AUDIT_CHAIN_VERIFIED_AT.set_to_current_time()
    if report.ok:
        log.info("audit chain verified", extra={"audit_rows": report.checked})
    else:
        log.error("audit chain broken", extra={"audit_seq": report.broken_seq, "reason": report.reason})
    return report


def syslog_anchor(message: str) -> None:
    """To the local syslog socket under a fixed tag; journald/rsyslog forward it to the log host."""
    syslog.openlog(auditlog.ANCHOR_TAG, syslog.LOG_PID, syslog.LOG_AUTHPRIV)
    syslog.syslog(syslog.LOG_NOTICE, message)


def anchor_audit_chain(
    db: Database, audit: auditlog.AuditLog, node: str, emit: Callable[[str], None] = syslog_anchor
) -> str | None:
    """Write the chain's head off the host; a keyed node first marks where its keyed chain starts."""
    with db.transaction() as s:
        audit.ensure_keyed(s)
        top = auditlog.head(s)
    if top is None:
        return None
    message = auditlog.anchor_message(node, *top)
    emit(message)
    AUDIT_ANCHOR_SEQ.set(top[0])
    AUDIT_ANCHORED_AT.set_to_current_time()
    log.info("audit chain anchored", extra={"audit_seq": top[0], "audit_hash": top[1]})
    return message


def purge_auth_failures(db: Database, limiter: FailureLimiter) -> int:
    with db.transaction() as s:
        gone = limiter.purge(s)
    log.info("old login failures purged", extra={"purged": gone})
    return gone


@dataclass
class Job:
    name: str
    interval: float
    run: Callable[[], object]
    due: float = 0.0


def run_due(jobs: list[Job]) -> None:
    for job in jobs:
        if job.due <= time.monotonic():
            try:
                job.run()
            except Exception:  # a failed round is logged and retried next round; the worker keeps running
                log.exception("job failed", extra={"job": job.name})
            job.due = time.monotonic() + job.interval


def main() -> None:
    settings = get_settings()
    logs.configure(settings.log_level)
    db = Database(settings.database_url, pool_size=3, max_overflow=0)
    audit = audit_log(settings)
    stop = threading.Event()
    node = ExchangeNode.from_settings(settings)
    limiter = failure_limiter(settings)

    def on_signal(signum: int, _: FrameType | None) -> None:
        log.info("stopping", extra={"signal": signum})
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server = None
    if settings.worker_metrics_port:
        server, _ = start_http_server(settings.worker_metrics_port, addr=settings.host, registry=REGISTRY)
    threads = exchange_worker.start(node, db, settings.database_url, stop) if node else []

    def partitions() -> None:
        log.info("partitions ensured", extra={"partitions_created": ensure_partitions(db)})

    jobs = [
        Job("partitions", settings.worker_interval_seconds, partitions),
        Job("statistics", settings.stats_refresh_interval_seconds, lambda: refresh_statistics(db)),
        # anchoring first: on a newly keyed node it marks the keyed chain's start before the verification
        Job("audit-anchor", settings.audit_anchor_interval_seconds,
            lambda: anchor_audit_chain(db, audit, node_name(settings))),
        Job("audit-chain", settings.audit_verify_interval_seconds, lambda: verify_audit_chain(db, audit)),
        Job("auth-failures", settings.worker_interval_seconds, lambda: purge_auth_failures(db, limiter)),
    ]
    while not stop.is_set():
        run_due(jobs)
        stop.wait(max(0.0, min(j.due for j in jobs) - time.monotonic()))
    for t in threads:
        t.join(timeout=30)
    if server is not None:
        server.shutdown()
    db.dispose()


if __name__ == "__main__":
    main()
