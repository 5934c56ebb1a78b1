"""Response models of the JSON routes that answer with what a service built (issue 23): every field each
route returns, so the OpenAPI document shows integrators the shape (docs/api.md explains the fields).

Extra fields are forbidden: a field a service starts returning without being declared here fails the
tests loudly (a response validation error) instead of vanishing from the answer. Routes whose answers
leave out some keys (rather than sending null) use response_model_exclude_unset."""

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- small acknowledgements ---


class ComplaintIdOut(Out):
    complaint_id: int


class ClaimIdOut(Out):
    claim_id: int


class RatingIdOut(Out):
    rating_id: int


class NoticeIdOut(Out):
    notice_id: int


class UserIdOut(Out):
    user_id: int


class RevokedOut(Out):
    revoked: int = Field(description="结束的会话数")


class VinOut(Out):
    vin: str


class StatusOut(Out):
    status: str


# --- a car's history (owner, regulator, authorised shop) ---


class HistoryVehicleOut(Out):
    plate_no: str | None
    brand: str | None
    model: str | None
    fuel_type: str | None
    use_nature: str | None


class TotalsOut(Out):
    labour: Decimal | None
    parts: Decimal | None
    other: Decimal | None
    total: Decimal | None


class HistoryAttachmentOut(Out):
    id: int
    kind: str | None
    content_type: str
    size_bytes: int
    sha256: str


class HistoryRecordOut(Out):
    record_id: int
    version: int
    enterprise_name: str | None = Field(description="企业经授权查看时，其他企业的记录不显示企业名称")
    enterprise_uscc: str | None
    settlement_no: str
    repair_date: date | None
    settle_date: date | None
    mileage_km: int | None
    fault_description: str | None
    repair_type: str | None
    repair_type_name: str | None
    plate_no: str | None
    items: list[dict[str, Any]] | None = Field(description="维修项目，字段同上传格式")
    parts: list[dict[str, Any]] | None = Field(description="维修配件，字段同上传格式")
    totals: TotalsOut
    attachments: list[HistoryAttachmentOut]


class HistoryOut(Out):
    vin: str
    full_history: bool | None = Field(description="车主：true 完整档案；false 仅出具查询码的企业的记录")
    vehicle: HistoryVehicleOut | None
    records: list[HistoryRecordOut]


# --- owners ---


class OwnerGrantOut(Out):
    grant_id: int
    vin: str
    enterprise_name: str
    enterprise_uscc: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    active: bool


class ComplaintOut(Out):
    id: int
    record_id: int
    settlement_no: str | None
    enterprise_uscc: str | None
    enterprise_name: str | None
    region_code: str
    title: str
    content: str
    status: str
    status_name: str
    created_at: datetime
    deadline_at: datetime | None
    overdue: bool
    accepted_at: datetime | None
    assignee_id: int | None
    assigned_at: datetime | None
    response: str | None
    responded_at: datetime | None
    closed_at: datetime | None
    close_note: str | None
    enterprise_reply: str | None
    enterprise_replied_at: datetime | None


class ClaimOut(Out):
    id: int
    vin: str
    plate_no: str
    region_code: str
    status: str
    status_name: str
    created_at: datetime
    reviewed_at: datetime | None
    review_note: str | None


# --- staff ---


class AuditVerifyOut(Out):
    ok: bool
    checked: int
    head: str


class RegulatorOut(Out):
    staff_id: int
    username: str
    display_name: str | None
    region_code: str | None


# --- enterprises ---


class RosterEntryOut(Out):
    name: str | None
    licence_no: str | None
    region_code: str | None
    licence_status: str | None
    licence_status_name: str | None
    valid_until: date | None


class EnterpriseReviewOut(Out):
    enterprise_id: int
    uscc: str
    name: str
    licence_no: str | None
    category: str | None
    region_code: str
    address: str | None
    contact_name: str | None
    contact_phone: str | None
    status: str
    status_name: str
    status_reason: str | None
    status_at: datetime | None
    created_at: datetime
    roster: RosterEntryOut | None = Field(description="道路运政许可名册中该统一社会信用代码的记录")


class EnterpriseDetailOut(Out):
    uscc: str
    name: str
    licence_no: str | None
    category: str | None
    business_scope: str | None
    region_code: str
    address: str | None
    status: str
    contact_name: str | None
    contact_phone: str | None


class EnterprisePublicOut(Out):
    """What anyone may see of an enterprise (no contacts: they are people's data)."""

    uscc: str
    name: str
    licence_no: str | None
    category: str | None
    category_name: str | None
    business_scope: str | None
    region_code: str
    region_name: str
    address: str | None
    status: str


class DirectoryItemOut(EnterprisePublicOut):
    rating_count: int
    rating_overall: float | None


class DirectoryPageOut(Out):
    total: int
    page: int
    page_size: int
    items: list[DirectoryItemOut]


class RatingSummaryOut(Out):
    count: int
    averages: dict[str, float | None] = Field(description="各评价维度的平均分")
    overall: float | None
    distribution: dict[str, dict[str, int]] = Field(description="各维度 1–5 分的评价数")


class StandingOut(Out):
    rank: int | None
    rated_peers: int
    peers: int
    region_name: str
    category_name: str | None


class RecentRatingOut(Out):
    created_at: datetime
    scores: dict[str, int]
    comment: str | None
    reply: str | None


class EnterpriseProfileOut(EnterprisePublicOut):
    ratings: RatingSummaryOut
    standing: StandingOut
    recent_ratings: list[RecentRatingOut]


# --- notices ---


class NoticeSummaryOut(Out):
    id: int
    kind: str
    kind_name: str
    title: str
    region_code: str | None
    published_at: datetime


class NoticePageOut(Out):
    total: int
    page: int
    page_size: int
    items: list[NoticeSummaryOut]


class NoticeAttachmentOut(Out):
    id: int
    filename: str
    content_type: str
    size_bytes: int


class NoticeOut(NoticeSummaryOut):
    body: str
    attachments: list[NoticeAttachmentOut]


# --- statistics ---


class ScopeOut(Out):
    region_code: str
    region_name: str


class PeriodOut(Out):
    start: date
    end: date


class LicenceCoverageOut(Out):
    licensed: int
    uploading: int
    coverage: str | None = Field(description="百分比，保留一位小数")


class StatisticsSummaryOut(Out):
    records: int
    amount: str
    enterprises_with_records: int
    ratings: int
    complaints: int
    complaints_overdue: int
    complaint_avg_handling_hours: float | None
    enterprises: int
    enterprises_uploading: int
    enterprises_stopped: int


Rows = list[dict[str, Any]]


class StatisticsTablesOut(Out):
    """Each table's rows; the columns are in docs/api.md (and app.services.statistics.TABLES)."""

    by_region: Rows
    by_enterprise: Rows
    by_brand: Rows
    by_repair_type: Rows
    parts: Rows
    ratings: Rows
    complaints: Rows
    coverage: Rows
    coverage_by_category: Rows
    coverage_by_region: Rows


class StatisticsOut(Out):
    scope: ScopeOut
    licence_coverage: LicenceCoverageOut
    period: PeriodOut
    summary: StatisticsSummaryOut
    tables: StatisticsTablesOut


# --- shops ---


class ShopUploadOut(Out):
    id: int
    settlement_no: str
    vin: str
    settle_date: date | None
    status: str
    current_version: int
    current_received_at: datetime
    created_at: datetime


class ShopRejectionOut(Out):
    at: datetime
    settlement_no: str | None
    source: str | None
    errors: Any


class ShopVersionOut(Out):
    version: int
    kind: str
    source: str
    received_at: datetime
    settle_date: date | None
    mileage_km: int | None
    fault_description: str | None
    total: Decimal | None
    withdraw_reason: str | None


class ShopRecordOut(Out):
    record_id: int
    settlement_no: str
    vin: str
    status: str
    versions: list[ShopVersionOut]


class CorrectionBodyOut(Out):
    """The record's latest content as an upload body (docs/api.md), ready to correct and send back."""

    settlement_no: Any
    repair_date: Any
    settle_date: Any
    mileage_km: Any
    fault_description: Any
    repair_type: Any
    vehicle: dict[str, Any]
    items: list[dict[str, Any]]
    parts: list[dict[str, Any]]
    totals: dict[str, Any]


class ShopRatingOut(Out):
    rating_id: int
    record_id: int
    created_at: datetime
    scores: dict[str, int]
    comment: str | None
    reply: str | None


class SharedVehicleOut(Out):
    vin: str
    expires_at: datetime
    plate_no: str | None
    brand: str | None
    model: str | None


# --- exchange (node to node, and its administration) ---


class MessageResultOut(Out):
    id: str
    status: str
    code: str | None = None


class MessageResultsOut(Out):
    results: list[MessageResultOut]


class DaySummaryOut(Out):
    day: str
    origin_region: str
    count: int
    digest: str


class ShippedSummaryOut(Out):
    days: list[DaySummaryOut]


class ShippedKeysOut(Out):
    keys: list[list[str]] = Field(description="[记录键, 摘要]")


class RerequestOut(Out):
    requeued: int
    dead: list[str]
    unknown: list[str]


class PeerConfigOut(Out):
    name: str
    role: str
    region_code: str
    url: str
    flows: list[str]


class PeerStateOut(Out):
    peer: str
    cursor_xid: str | None
    cursor_id: int | None
    shipped_at: datetime | None
    failures: int
    next_attempt_at: datetime | None
    last_error: str | None
    backlog: int
    oldest_pending_at: datetime | None
    dead_letters: int
    refused: int
    last_refused_at: datetime | None


class ExchangeStatusOut(Out):
    enabled: bool
    node: str | None = None
    role: str | None = None
    region_code: str | None = None
    peers: list[PeerConfigOut] | None = None
    peers_state: list[PeerStateOut]


class DeadLetterOut(Out):
    message_id: str
    peer: str
    kind: str
    msg_key: str | None
    error_code: str | None
    created_at: datetime
    dead_at: datetime | None


class RefusalOut(Out):
    message_id: str
    peer: str
    kind: str | None
    msg_key: str | None
    code: str
    detail: str | None
    enterprise_region: str | None
    origin_region: str | None
    origin_day: date | None
    received_at: datetime


class ReplayOut(Out):
    replayed: int
    message_ids: list[str]


class ReconcileRowOut(Out):
    peer: str
    day: str
    origin_region: str
    their_count: int | None
    their_digest: str | None
    our_count: int | None
    our_digest: str | None
    missing: int | None
    rerequested: int | None
    refused: int | None
    status: str
    checked_at: datetime | None


class ReconcileStateOut(Out):
    node: str
    days: list[ReconcileRowOut]


class PeerReconcileOut(Out):
    ok: bool
    days: Any = None
    error: str | None = None


# --- the national interface's envelope (answered as JSONResponse; the model documents it) ---


class NationalRespInfo(Out):
    code: str = Field(description="1 成功；0 失败")
    message: str
    errcode: str | None = None
    errors: list[dict[str, str]] | None = None
    retry_after: int | None = None
    companycode: str | None = None
    status: str | None = None
    statusname: str | None = None
    access_token: str | None = None
    expires_at: int | None = None
    recordid: str | None = None
    version: int | None = None
    querycode: str | None = None
    outcome: str | None = None
    warnings: list[dict[str, str]] | None = None


class NationalOut(Out):
    respInfo: NationalRespInfo  # the national format's field name


# --- probes ---


class HealthOut(Out):
    status: str


class ReadyOut(Out):
    status: str = Field(description="ok / unavailable（503）")
    checks: dict[str, bool]
