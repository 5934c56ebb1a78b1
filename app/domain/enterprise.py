"""An enterprise's registration data and its validation."""

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from app.domain.errors import message
from app.domain.record import no_nul
from app.domain.reference import code_tables, regions
from app.domain.uscc import uscc_error


def _uscc(v: str) -> str:
    v = v.strip().upper()
    if err := uscc_error(v):
        raise PydanticCustomError(err, message(err))
    return v


def _region(v: str) -> str:
    if v not in regions():
        raise PydanticCustomError("REGION_UNKNOWN", message("REGION_UNKNOWN"))
    return v


def _category(v: str | None) -> str | None:
    if v is not None and v not in code_tables()["enterprise_category"]:
        raise PydanticCustomError("CODE_UNKNOWN", message("CODE_UNKNOWN"))
    return v


class EnterpriseIn(BaseModel):
    """维修企业登记信息"""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    _no_nul = field_validator("*", mode="before")(no_nul)

    uscc: Annotated[str, AfterValidator(_uscc)] = Field(
        min_length=18,
        max_length=18,
        description="统一社会信用代码（18 位，含校验位）",
        examples=["91350100M000100Y43"],
    )
    name: str = Field(min_length=1, max_length=200, description="企业名称")
    licence_no: str | None = Field(default=None, max_length=50, description="道路运输经营许可证号")
    category: Annotated[str | None, AfterValidator(_category)] = Field(
        default=None, max_length=4, description="经营类别（代码表 enterprise_category）"
    )
    business_scope: str | None = Field(default=None, max_length=500, description="经营范围")
    region_code: Annotated[str, AfterValidator(_region)] = Field(
        pattern=r"^\d{6}$", description="所在地行政区划代码（GB/T 2260）", examples=["320102"]
    )
    address: str | None = Field(default=None, max_length=200, description="地址")
    contact_name: str | None = Field(default=None, max_length=50, description="联系人")
    contact_phone: str | None = Field(default=None, max_length=30, description="联系电话")
