"""The exchange's part of app-worker: the relay (woken by NOTIFY at each commit that wrote the outbox,
else polling), and on their own schedules reconciliation with every peer and statistics upward."""

import logging
import threading
import time

import psycopg
from sqlalchemy.engine import make_url

from app.db.session import Database
from app.exchange import admin, statistics
from app.exchange.client import http_client
from app.exchange.reconcile import reconcile_all
from app.exchange.relay import Relay
from app.node import ExchangeNode
from app.services.outbox import NOTIFY_CHANNEL

log = logging.getLogger("app.exchange.worker")


def _libpq_url(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def relay_loop(node: ExchangeNode, db: Database, url: str, stop: threading.Event) -> None:
    """The relay, started again on a fresh connection whenever the database connection is lost."""
    while not stop.is_set():
        try:
            _relay(node, db, url, stop)
        except Exception:  # the LISTEN connection (or the lock with it) is gone: reconnect and go on
            log.exception("relay connection lost")
            stop.wait(max(node.config.poll_seconds, 1.0))


def _relay(node: ExchangeNode, db: Database, url: str, stop: threading.Event) -> None:
    with psycopg.connect(_libpq_url(url), autocommit=True) as conn, http_client(node) as client:
        relay = Relay(node, db, client)
        # one relay per node: a second app-worker (another app host of the site) waits as standby
        while not stop.is_set():
            if conn.execute("SELECT pg_try_advisory_lock(%s)", (relay.lock_key(),)).fetchone() == (True,):
                break
            stop.wait(node.config.poll_seconds)
        conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
        log.info("relay running", extra={"node": node.name, "peers": sorted(node.peers)})
        while not stop.is_set():
            try:
                relay.run_once()
                wait = relay.next_wakeup()
            except Exception:  # a failed round is logged and retried; the worker keeps running
                log.exception("relay round failed")
                wait = node.config.poll_seconds
            for _ in conn.notifies(timeout=wait, stop_after=1):
                pass


def schedule_loop(node: ExchangeNode, db: Database, stop: threading.Event) -> None:
    cfg = node.config
    next_reconcile = time.monotonic() + min(cfg.reconcile_interval_seconds, 30)
    next_stats = next_purge = time.monotonic()
    with http_client(node) as client:
        while not stop.is_set():
            at = time.monotonic()
            try:
                if at >= next_stats:
                    next_stats = at + cfg.statistics_interval_seconds
                    with db.transaction() as s:
                        statistics.report(s, node)
                if at >= next_purge:
                    next_purge = at + 6 * 3600
                    with db.transaction() as s:
                        log.info(
                            "exchange purged",
                            extra=admin.purge(s, max(cfg.retention_days, cfg.reconcile_days + 1)),
                        )
                if at >= next_reconcile:
                    next_reconcile = at + cfg.reconcile_interval_seconds
                    reconcile_all(node, db, client)
            except Exception:  # logged and tried again at the next turn
                log.exception("exchange schedule failed")
            stop.wait(max(0.1, min(next_stats, next_reconcile, next_purge) - time.monotonic()))


def start(node: ExchangeNode, db: Database, url: str, stop: threading.Event) -> list[threading.Thread]:
    threads = [
        threading.Thread(target=relay_loop, args=(node, db, url, stop), name="exchange-relay", daemon=True),
        threading.Thread(target=schedule_loop, args=(node, db, stop), name="exchange-schedule", daemon=True),
    ]
    for t in threads:
        t.start()
    return threads
