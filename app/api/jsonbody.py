"""Large read models (a car's history: 20 records of 8 work items and 8 parts each) written as JSON
without FastAPI's jsonable_encoder, which first walks and copies every value in Python: json.dumps
(C) with a default for the few non-JSON types, written as the encoder writes them."""

import json
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from fastapi.responses import Response


def _plain(value: Any) -> Any:
    if isinstance(value, date | datetime | time):
        return value.isoformat()
    if isinstance(value, Decimal):  # as fastapi.encoders.decimal_encoder: 700 → 700, 700.50 → 700.5
        return int(value) if value.as_tuple().exponent >= 0 else float(value)  # type: ignore[operator]
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def json_body(content: Any, status_code: int = 200) -> Response:
    body = json.dumps(content, ensure_ascii=False, separators=(",", ":"), default=_plain)
    return Response(body.encode(), status_code=status_code, media_type="application/json")
