"""A stand-in for the province's vehicle-registration gateway (公安交管), for the lab: it speaks the
protocol of app.security.vehicle_registry.HttpVehicleRegistry (docs/api.md「车辆登记信息核验接口」)
and answers from the same JSON file as the in-process stand-in. Never for production.

    python -m tests.support.registry_standin --data /srv/registry.json --port 9480 [--token-file F]
"""

import argparse
import hmac
from pathlib import Path
from typing import Annotated

import uvicorn
from fastapi import FastAPI, Header, HTTPException
from pydantic import BaseModel

from app.security.vehicle_registry import Query, StandInRegistry


class CheckIn(BaseModel):
    vin: str
    plate_no: str
    owner_name: str
    id_number: str


def create_app(data: Path, token: str | None = None) -> FastAPI:
    registry = StandInRegistry(data)
    app = FastAPI(title="vehicle registry stand-in", docs_url=None, redoc_url=None)

    @app.post("/check")
    def check(body: CheckIn, authorization: Annotated[str, Header()] = "") -> dict[str, str]:
        if token is not None and not hmac.compare_digest(authorization, f"Bearer {token}"):
            raise HTTPException(401)
        return {"result": registry.check(Query(**body.model_dump())).value}

    return app


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m tests.support.registry_standin")
    ap.add_argument(
        "--data", type=Path, required=True, help="JSON list of {vin, plate_no, owner_name, id_number}"
    )
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=9480)
    ap.add_argument("--token-file", type=Path, help="require this bearer token")
    args = ap.parse_args(argv)
    token = args.token_file.read_text().strip() if args.token_file else None
    uvicorn.run(create_app(args.data, token), host=args.host, port=args.port)


if __name__ == "__main__":
    main()
