"""Regulator API and public enterprise lookup: both read through the audited, rule-enforcing service."""

from typing import Annotated, Any

from fastapi import APIRouter, Path

from app.api.deps import RuntimeDep, StaffDep
from app.api.errors import ERROR_RESPONSES
from app.security.rbac import PUBLIC
from app.security.reads import ReadService

router = APIRouter(prefix="/api/v1/regulator", tags=["监管"], responses=ERROR_RESPONSES)
public = APIRouter(prefix="/api/v1/public", tags=["公众"], responses=ERROR_RESPONSES)

VinPath = Annotated[str, Path(pattern=r"^[0-9A-HJ-NPR-Z]{17}$", description="车辆识别代号")]
UsccPath = Annotated[str, Path(pattern=r"^[0-9A-Z]{18}$", description="统一社会信用代码")]


@router.get(
    "/vehicles/{vin}/history",
    summary="车辆维修档案（仅本辖区企业的记录）",
    description="只返回管辖区域内企业的维修记录；每次查询均记入审计日志。",
)
def history(vin: VinPath, who: StaffDep, rt: RuntimeDep) -> dict[str, Any]:
    with rt.db.transaction() as s:
        return ReadService(s, rt.crypto, rt.audit).vehicle_history(who, vin)


@router.get("/enterprises/{uscc}", summary="企业详情（含联系人，仅本辖区）")
def enterprise(uscc: UsccPath, who: StaffDep, rt: RuntimeDep) -> dict[str, Any]:
    with rt.db.transaction() as s:
        return ReadService(s, rt.crypto, rt.audit).enterprise_detail(who, uscc)


@public.get("/enterprises/{uscc}", summary="维修企业公开信息")
def public_enterprise(uscc: UsccPath, rt: RuntimeDep) -> dict[str, Any]:
    with rt.db.transaction() as s:
        return ReadService(s, rt.crypto, rt.audit).enterprise_public(PUBLIC, uscc)
