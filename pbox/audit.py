"""`pbox audit verify-log`: walk the application's hash-chained audit log and name the first broken row."""

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.security.auditlog import ChainReport, verify


def verify_log(database_url: str) -> ChainReport:
    """Read-only: the check runs in a read-only transaction, so it can use an auditor's account."""
    engine = sa.create_engine(database_url)
    try:
        with Session(engine) as session, session.begin():
            session.execute(sa.text("SET TRANSACTION READ ONLY"))
            return verify(session)
    finally:
        engine.dispose()
