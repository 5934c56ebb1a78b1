"""`app-worker`: background jobs. It keeps month partitions of record_version created ahead of time (so
uploads never land in the default partition) and, when the exchange is enabled, runs its relay,
reconciliation and upward statistics (app.exchange.worker)."""

import logging
import signal
import threading
from types import FrameType

from sqlalchemy import text

from app import logs
from app.db.session import Database
from app.exchange import worker as exchange_worker
from app.exchange.node import ExchangeNode
from app.settings import get_settings

log = logging.getLogger("app.worker")
MONTHS_AHEAD = 3


def ensure_partitions(db: Database) -> int:
    with db.transaction() as s:
        made = s.scalar(text("SELECT ensure_record_partitions(now()::date, :n)"), {"n": MONTHS_AHEAD + 1})
    return int(made or 0)


def main() -> None:
    settings = get_settings()
    logs.configure(settings.log_level)
    db = Database(settings.database_url, pool_size=3, max_overflow=0)
    stop = threading.Event()
    node = ExchangeNode.from_settings(settings)

    def on_signal(signum: int, _: FrameType | None) -> None:
        log.info("stopping", extra={"signal": signum})
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    threads = exchange_worker.start(node, db, settings.database_url, stop) if node else []
    while not stop.is_set():
        try:
            log.info("partitions ensured", extra={"partitions_created": ensure_partitions(db)})
        except Exception:  # a failed round is logged and retried next round; the worker keeps running
            log.exception("partition maintenance failed")
        stop.wait(settings.worker_interval_seconds)
    for t in threads:
        t.join(timeout=30)
    db.dispose()


if __name__ == "__main__":
    main()
