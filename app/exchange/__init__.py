"""Node-to-node exchange (city ⇄ province ⇄ ministry), the protocol of docs/exchange.md.

Every record version written here goes into a transactional outbox, one row per peer it flows to;
the relay in app-worker ships each peer's rows in order behind a per-peer cursor; the receiving
node applies each message once (inbox keyed by message id, versions keyed by record and number);
reconciliation compares per-day, per-origin counts and digests and re-requests what is missing.
"""
