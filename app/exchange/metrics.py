"""Exchange gauges, read from the database when /metrics is scraped: the relay runs in app-worker,
but the state it leaves (cursors, backlog, dead letters) is in the database every web worker sees.
Under app-web's multiprocess metrics, the most recent refresh of any worker is the value."""

from prometheus_client import Counter, Gauge
from sqlalchemy.orm import Session

from app.domain.clock import now
from app.exchange.admin import peer_status

MODE = "mostrecent"
OLDEST = Gauge(
    "pbox_exchange_outbox_oldest_age_seconds", "Age of the oldest message not yet shipped", ["peer"],
    multiprocess_mode=MODE,
)
BACKLOG = Gauge(
    "pbox_exchange_outbox_backlog", "Messages waiting to be shipped", ["peer"], multiprocess_mode=MODE
)
DEAD = Gauge(
    "pbox_exchange_dead_letters", "Messages the peer rejected, waiting for replay", ["peer"],
    multiprocess_mode=MODE,
)
FAILURES = Gauge(
    "pbox_exchange_consecutive_failures", "Failed deliveries since the last success", ["peer"],
    multiprocess_mode=MODE,
)

# counted where it happens (the app-web process that received the message); merged across processes
REFUSED = Counter(
    "pbox_exchange_refused_messages_total",
    "Messages a peer sent outside its authority, refused here (docs/exchange.md §4.1)",
    ["peer", "code"],
)


def refresh(session: Session) -> None:
    at = now()
    for st in peer_status(session):
        p = st["peer"]
        oldest = st["oldest_pending_at"]
        OLDEST.labels(p).set((at - oldest).total_seconds() if oldest else 0)
        BACKLOG.labels(p).set(st["backlog"])
        DEAD.labels(p).set(st["dead_letters"])
        FAILURES.labels(p).set(st["failures"])
