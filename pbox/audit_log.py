"""`pbox audit verify-log`: walk the application's keyed audit chain, name the first broken row, and
check it against the chain heads anchored on the central log host."""

from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.security.auditlog import Verification, verify_with_anchors


def verify_log(
    database_url: str,
    key: bytes | None = None,
    anchor_lines: Iterable[str] | None = None,
    node: str | None = None,
) -> Verification:
    """Read-only: the check runs in a read-only transaction, so it can use an auditor's account."""
    engine = sa.create_engine(database_url)
    try:
        with Session(engine) as session, session.begin():
            session.execute(sa.text("SET TRANSACTION READ ONLY"))
            return verify_with_anchors(session, key, anchor_lines, node)
    finally:
        engine.dispose()
