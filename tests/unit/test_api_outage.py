"""Which failures are outages of a backing service (answered 503 + Retry-After) and which are not."""

import psycopg
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError
from sqlalchemy import exc as sa_exc

from app.api.errors import outage


def _client_error(status: int) -> ClientError:
    return ClientError({"Error": {"Code": "X"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "GetObject")


def test_database_and_object_store_outages_are_recognised_even_when_wrapped():
    lost = sa_exc.OperationalError("SELECT 1", {}, psycopg.OperationalError("connection refused"))
    assert outage(lost) == "database"
    assert outage(sa_exc.TimeoutError("QueuePool limit reached")) == "database"
    assert outage(EndpointConnectionError(endpoint_url="http://127.0.0.1:9")) == "object_store"
    assert outage(ReadTimeoutError(endpoint_url="http://127.0.0.1:9")) == "object_store"
    assert outage(_client_error(503)) == "object_store"
    try:
        try:
            raise lost
        except sa_exc.OperationalError as e:
            raise RuntimeError("while reading") from e
    except RuntimeError as wrapped:
        assert outage(wrapped) == "database"


def test_bugs_and_bad_input_are_not_outages():
    assert outage(sa_exc.IntegrityError("INSERT", {}, psycopg.errors.UniqueViolation("dup"))) is None
    assert outage(_client_error(404)) is None
    assert outage(ValueError("x")) is None
    assert outage(None) is None
