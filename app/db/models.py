"""Tables. The DDL itself (partitioning, functions) lives in the migrations; these map onto it.

Schemas keep apart what the guide wants apart: `public` the repair data, `personal` owners'
data (read only through app.services.reads), `audit` the hash-chained security audit log.
"""

from datetime import date, datetime
from decimal import Decimal
from typing import Any, ClassVar

from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    Identity,
    LargeBinary,
    Numeric,
    String,
    Text,
    Uuid,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    type_annotation_map = {datetime: DateTime(timezone=True)}  # noqa: RUF012 - SQLAlchemy's own hook


class Region(Base):
    __tablename__ = "region"
    code: Mapped[str] = mapped_column(String(6), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    level: Mapped[str] = mapped_column(String(10))
    parent_code: Mapped[str | None] = mapped_column(String(6))


class CodeEntry(Base):
    __tablename__ = "code_entry"
    table_name: Mapped[str] = mapped_column(String(40), primary_key=True)
    code: Mapped[str] = mapped_column(String(20), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))


class PlatePrefix(Base):
    __tablename__ = "plate_prefix"
    prefix: Mapped[str] = mapped_column(String(2), primary_key=True)
    region_code: Mapped[str] = mapped_column(String(6))


class Enterprise(Base):
    __tablename__ = "enterprise"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    uscc: Mapped[str] = mapped_column(String(18), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    licence_no: Mapped[str | None] = mapped_column(String(50))
    category: Mapped[str | None] = mapped_column(String(4))
    business_scope: Mapped[str | None] = mapped_column(Text)
    region_code: Mapped[str] = mapped_column(String(6), ForeignKey("region.code"))
    address: Mapped[str | None] = mapped_column(String(200))
    contact_name: Mapped[str | None] = mapped_column(String(50))
    contact_phone: Mapped[str | None] = mapped_column(String(30))
    # pending | active | refused | suspended (app.services.enterprises); why, who and when it last changed
    status: Mapped[str] = mapped_column(String(16), server_default="active")
    status_reason: Mapped[str | None] = mapped_column(Text)
    status_source: Mapped[str | None] = mapped_column(String(12))  # register | regulator | roster | upgrade
    status_by: Mapped[int | None] = mapped_column(BigInteger)  # the regulator's staff id
    status_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class LicenceRoster(Base):
    """The province's roster of licensed repair shops (道路运政), imported by the operator."""

    __tablename__ = "licence_roster"
    uscc: Mapped[str] = mapped_column(String(18), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    licence_no: Mapped[str] = mapped_column(String(50))
    category: Mapped[str | None] = mapped_column(String(4))
    region_code: Mapped[str] = mapped_column(String(6), ForeignKey("region.code"))
    # valid | revoked | cancelled | suspended | expired
    licence_status: Mapped[str] = mapped_column(String(12))
    valid_until: Mapped[date | None]
    imported_at: Mapped[datetime] = mapped_column(server_default=func.now())


class ApiCredential(Base):
    """One per shop system of an enterprise; the secret is stored only as an argon2 hash."""

    __tablename__ = "api_credential"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprise.id"))
    key_id: Mapped[str] = mapped_column(String(40), unique=True)
    secret_hash: Mapped[str] = mapped_column(Text)
    label: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    revoked_at: Mapped[datetime | None]


class Vehicle(Base):
    """What is last known of a car; each record keeps its own snapshot of plate and mileage."""

    __tablename__ = "vehicle"
    vin: Mapped[str] = mapped_column(String(17), primary_key=True)
    plate_no: Mapped[str | None] = mapped_column(String(10))
    plate_colour: Mapped[str | None] = mapped_column(String(2))
    brand: Mapped[str | None] = mapped_column(String(50))
    model: Mapped[str | None] = mapped_column(String(80))
    use_nature: Mapped[str | None] = mapped_column(String(2))
    fuel_type: Mapped[str | None] = mapped_column(String(2))
    registration_date: Mapped[date | None]
    transport_cert_no: Mapped[str | None] = mapped_column(String(30))
    home_region: Mapped[str | None] = mapped_column(String(6))
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())


class RepairRecord(Base):
    """The identity of a repair (enterprise + settlement number) and a pointer to its latest version."""

    __tablename__ = "repair_record"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprise.id"))
    settlement_no: Mapped[str] = mapped_column(String(50))
    vin: Mapped[str] = mapped_column(String(17))
    settle_date: Mapped[date]
    mileage_km: Mapped[int | None]  # copied from the current version for the odometer check
    current_version: Mapped[int]
    current_received_at: Mapped[datetime]
    current_digest: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), server_default="active")
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class RecordVersion(Base):
    """Append-only, partitioned by month of receipt: every upload, correction and withdrawal."""

    __tablename__ = "record_version"
    record_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    version: Mapped[int] = mapped_column(primary_key=True)
    received_at: Mapped[datetime] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(12))  # upload | withdrawal
    source: Mapped[str] = mapped_column(String(12))  # api | national | exchange
    enterprise_id: Mapped[int] = mapped_column(BigInteger)
    settlement_no: Mapped[str] = mapped_column(String(50))
    vin: Mapped[str] = mapped_column(String(17))
    digest: Mapped[str] = mapped_column(String(64))
    plate_no: Mapped[str | None] = mapped_column(String(10))
    plate_colour: Mapped[str | None] = mapped_column(String(2))
    repair_date: Mapped[date | None]
    settle_date: Mapped[date | None]
    mileage_km: Mapped[int | None]
    fault_description: Mapped[str | None] = mapped_column(Text)
    repair_type: Mapped[str | None] = mapped_column(String(2))
    items: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONB)
    parts: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONB)
    labour_total: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    parts_total: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    other_total: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    total: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    withdraw_reason: Mapped[str | None] = mapped_column(Text)
    # set on versions received from another node (app.exchange): where and when first uploaded
    origin_region: Mapped[str | None] = mapped_column(String(6))
    origin_at: Mapped[datetime | None]


class Attachment(Base):
    """Metadata and checksum of a file kept in the object store (never in the database)."""

    __tablename__ = "attachment"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    record_id: Mapped[int] = mapped_column(ForeignKey("repair_record.id"))
    kind: Mapped[str] = mapped_column(String(12))
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(50))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    object_key: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class AuthFailure(Base):
    """Failed credential checks, shared by all web workers so the rate limit holds across them."""

    __tablename__ = "auth_failure"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    subject: Mapped[str] = mapped_column(String(120))
    at: Mapped[datetime] = mapped_column(server_default=func.now())


class OwnerAccount(Base):
    """Name, phone and ID number only as ciphertext (app.security.fieldcrypt); phone and ID number
    are found through their keyed hashes."""

    __tablename__ = "owner_account"
    __table_args__: ClassVar[dict[str, str]] = {"schema": "personal"}
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    phone_hash: Mapped[bytes | None] = mapped_column(LargeBinary, unique=True)  # NULL once closed
    phone_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    name_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    id_number_hash: Mapped[bytes | None] = mapped_column(LargeBinary)
    id_number_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    password_hash: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    # carried in every token; raised by logout and password change, ending all earlier tokens
    token_generation: Mapped[int] = mapped_column(server_default="0")
    closed_at: Mapped[datetime | None]


class OwnerVehicle(Base):
    """A car in an owner's account. Query codes give the records of the enterprises that printed them
    (OwnerVehicleScope); `full_via` says the whole history was proven (vehicle registration check or
    an approved 行驶证 claim); `ended_at` that another owner proved it since (the car was sold)."""

    __tablename__ = "owner_vehicle"
    __table_args__: ClassVar[dict[str, str]] = {"schema": "personal"}
    owner_id: Mapped[int] = mapped_column(ForeignKey("personal.owner_account.id"), primary_key=True)
    vin: Mapped[str] = mapped_column(String(17), primary_key=True)
    via_record_id: Mapped[int | None] = mapped_column(BigInteger)
    via_claim_id: Mapped[int | None] = mapped_column(BigInteger)
    verified_at: Mapped[datetime] = mapped_column(server_default=func.now())
    full_via: Mapped[str | None] = mapped_column(String(10))  # registry | claim
    full_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    ended_reason: Mapped[str | None] = mapped_column(String(20))


class OwnerVehicleScope(Base):
    """One enterprise whose records of the car an owner sees, proven by a query code it printed."""

    __tablename__ = "owner_vehicle_scope"
    __table_args__: ClassVar[dict[str, str]] = {"schema": "personal"}
    owner_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    vin: Mapped[str] = mapped_column(String(17), primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprise.id"), primary_key=True)
    via_record_id: Mapped[int] = mapped_column(BigInteger)
    bound_at: Mapped[datetime] = mapped_column(server_default=func.now())


class OwnerNotification(Base):
    """Something the owner is told in their account, e.g. that a sold car's binding ended."""

    __tablename__ = "owner_notification"
    __table_args__: ClassVar[dict[str, str]] = {"schema": "personal"}
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("personal.owner_account.id"))
    kind: Mapped[str] = mapped_column(String(20))
    vin: Mapped[str | None] = mapped_column(String(17))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    read_at: Mapped[datetime | None]


class HistoryGrant(Base):
    """An owner's time-limited authorization for one enterprise to read one car's history."""

    __tablename__ = "history_grant"
    __table_args__: ClassVar[dict[str, str]] = {"schema": "personal"}
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("personal.owner_account.id"))
    vin: Mapped[str] = mapped_column(String(17))
    enterprise_id: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class StaffAccount(Base):
    """Regulators and the three administrators; one role each, so duties stay separated."""

    __tablename__ = "staff_account"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    username: Mapped[str] = mapped_column(String(40), unique=True)
    display_name: Mapped[str | None] = mapped_column(String(50))
    password_hash: Mapped[str] = mapped_column(Text)
    password_changed_at: Mapped[datetime] = mapped_column(server_default=func.now())
    totp_enc: Mapped[bytes | None] = mapped_column(LargeBinary)  # NULL until the owner enrols it
    totp_last_step: Mapped[int] = mapped_column(BigInteger, server_default="0")
    role: Mapped[str | None] = mapped_column(String(20))
    region_code: Mapped[str | None] = mapped_column(String(6))
    failed_logins: Mapped[int] = mapped_column(server_default="0")
    locked_until: Mapped[datetime | None]
    disabled_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    # First login (app.security.staffauth): made or reset by an administrator, the account holds only
    # a one-time enrolment secret (its SHA-256) until its owner sets the password and the TOTP.
    enrol_secret_hash: Mapped[bytes | None] = mapped_column(LargeBinary)
    enrol_expires_at: Mapped[datetime | None]
    enrolled_at: Mapped[datetime | None]


class StaffSession(Base):
    """A staff login; the token itself is never stored, only its SHA-256."""

    __tablename__ = "staff_session"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary, unique=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff_account.id"))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    last_seen_at: Mapped[datetime] = mapped_column(server_default=func.now())
    revoked_at: Mapped[datetime | None]


class AuditEvent(Base):
    """Append-only, hash-chained with a key (app.security.auditlog); the database refuses UPDATE and
    DELETE, and the runtime role appends only through audit.append_event (migration 0011)."""

    __tablename__ = "event"
    __table_args__: ClassVar[dict[str, str]] = {"schema": "audit"}
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[datetime]
    actor_kind: Mapped[str] = mapped_column(String(20))
    actor_id: Mapped[str] = mapped_column(String(60))
    action: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(String(60))
    outcome: Mapped[str] = mapped_column(String(10))
    detail: Mapped[dict[str, Any]] = mapped_column(JSONB)
    request_id: Mapped[str | None] = mapped_column(String(40))
    client_ip: Mapped[str | None] = mapped_column(String(45))
    alg: Mapped[str] = mapped_column(String(16))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class Rating(Base):
    """An owner's rating of one repair, on the guide's five dimensions; the shop may answer it once."""

    __tablename__ = "rating"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    record_id: Mapped[int] = mapped_column(ForeignKey("repair_record.id"), unique=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprise.id"))
    owner_id: Mapped[int] = mapped_column(BigInteger)
    attitude: Mapped[int]
    quality: Mapped[int]
    efficiency: Mapped[int]
    transparency: Mapped[int]
    environment: Mapped[int]
    comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    reply: Mapped[str | None] = mapped_column(Text)
    replied_at: Mapped[datetime | None]


class Complaint(Base):
    """An owner's complaint about a repair, handled by the regulators of the enterprise's region."""

    __tablename__ = "complaint"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    record_id: Mapped[int] = mapped_column(ForeignKey("repair_record.id"))
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprise.id"))
    owner_id: Mapped[int] = mapped_column(BigInteger)
    region_code: Mapped[str] = mapped_column(String(6))
    title: Mapped[str] = mapped_column(String(100))
    content: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(12), server_default="submitted")
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    deadline_at: Mapped[datetime]
    accepted_at: Mapped[datetime | None]
    accepted_by: Mapped[int | None] = mapped_column(BigInteger)
    assignee_id: Mapped[int | None] = mapped_column(BigInteger)
    assigned_at: Mapped[datetime | None]
    response: Mapped[str | None] = mapped_column(Text)
    responded_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    closed_by: Mapped[int | None] = mapped_column(BigInteger)
    close_note: Mapped[str | None] = mapped_column(Text)
    enterprise_reply: Mapped[str | None] = mapped_column(Text)
    enterprise_replied_at: Mapped[datetime | None]


class Notice(Base):
    """Published notices, policies, standards and technical information (public, no personal data)."""

    __tablename__ = "notice"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    kind: Mapped[str] = mapped_column(String(12))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    region_code: Mapped[str] = mapped_column(String(6))
    published_by: Mapped[int] = mapped_column(BigInteger)
    published_at: Mapped[datetime] = mapped_column(server_default=func.now())


class NoticeAttachment(Base):
    __tablename__ = "notice_attachment"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    notice_id: Mapped[int] = mapped_column(ForeignKey("notice.id"))
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(50))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    object_key: Mapped[str] = mapped_column(String(300))


class VehicleClaim(Base):
    """An owner's claim on a car by a 行驶证 photo, for a regulator of the car's home region to review."""

    __tablename__ = "vehicle_claim"
    __table_args__: ClassVar[dict[str, str]] = {"schema": "personal"}
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("personal.owner_account.id"))
    vin: Mapped[str] = mapped_column(String(17))
    plate_no: Mapped[str | None] = mapped_column(String(10))
    region_code: Mapped[str] = mapped_column(String(6))
    object_key: Mapped[str] = mapped_column(String(300))
    sha256: Mapped[str] = mapped_column(String(64))
    content_type: Mapped[str] = mapped_column(String(50))
    status: Mapped[str] = mapped_column(String(10), server_default="pending")
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    reviewed_by: Mapped[int | None] = mapped_column(BigInteger)
    reviewed_at: Mapped[datetime | None]
    review_note: Mapped[str | None] = mapped_column(Text)


class EnterpriseUser(Base):
    """A person at a repair shop who uses the shop portal; created by the shop's software credential."""

    __tablename__ = "enterprise_user"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprise.id"))
    username: Mapped[str] = mapped_column(String(40), unique=True)
    display_name: Mapped[str | None] = mapped_column(String(50))
    password_hash: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    disabled_at: Mapped[datetime | None]
    token_generation: Mapped[int] = mapped_column(server_default="0")  # see OwnerAccount


class UploadRejection(Base):
    __tablename__ = "upload_rejection"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprise.id"))
    settlement_no: Mapped[str | None] = mapped_column(String(50))
    source: Mapped[str] = mapped_column(String(12))
    errors: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    at: Mapped[datetime] = mapped_column(server_default=func.now())


class ExchangeOutbox(Base):
    """A message to one peer, written in the transaction of the change (app.services.outbox). The
    `xid` column (xid8, the writing transaction) is set by the database and used in raw SQL only."""

    __tablename__ = "exchange_outbox"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    peer: Mapped[str] = mapped_column(String(63))
    message_id: Mapped[str] = mapped_column(Uuid(as_uuid=False), unique=True)
    kind: Mapped[str] = mapped_column(String(30))
    body: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    msg_key: Mapped[str | None] = mapped_column(String(120))
    digest: Mapped[str | None] = mapped_column(String(64))
    origin_region: Mapped[str | None] = mapped_column(String(6))
    origin_day: Mapped[date | None]
    status: Mapped[str] = mapped_column(String(10), server_default="pending")  # pending | dead | replayed
    error_code: Mapped[str | None] = mapped_column(String(40))
    error: Mapped[str | None] = mapped_column(Text)
    dead_at: Mapped[datetime | None]
    replayed_as: Mapped[str | None] = mapped_column(Uuid(as_uuid=False))


class ExchangeInbox(Base):
    """Every message applied here, by id: a second delivery of the same id changes nothing."""

    __tablename__ = "exchange_inbox"
    message_id: Mapped[str] = mapped_column(Uuid(as_uuid=False), primary_key=True)
    sender: Mapped[str] = mapped_column(String(63))
    kind: Mapped[str] = mapped_column(String(30))
    msg_key: Mapped[str | None] = mapped_column(String(120))
    outcome: Mapped[str] = mapped_column(String(12))  # applied | duplicate
    received_at: Mapped[datetime] = mapped_column(server_default=func.now())


class ExchangeRefusal(Base):
    """A message from a configured, authenticated peer that lay outside its authority: not applied."""

    __tablename__ = "exchange_refusal"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    message_id: Mapped[str] = mapped_column(Uuid(as_uuid=False), unique=True)
    sender: Mapped[str] = mapped_column(String(63))
    kind: Mapped[str] = mapped_column(String(30))
    msg_key: Mapped[str | None] = mapped_column(String(120))
    code: Mapped[str] = mapped_column(String(40))
    detail: Mapped[str] = mapped_column(Text, server_default="")
    enterprise_region: Mapped[str | None] = mapped_column(String(6))
    origin_region: Mapped[str | None] = mapped_column(String(6))
    origin_day: Mapped[date | None]
    received_at: Mapped[datetime] = mapped_column(server_default=func.now())


class ExchangeVinHome(Base):
    __tablename__ = "exchange_vin_home"
    vin: Mapped[str] = mapped_column(String(17), primary_key=True)
    region_code: Mapped[str] = mapped_column(String(6))
    first_seen_at: Mapped[datetime] = mapped_column(server_default=func.now())


class ExchangeReconcile(Base):
    """The last comparison with a peer of one day's records of one origin region."""

    __tablename__ = "exchange_reconcile"
    peer: Mapped[str] = mapped_column(String(63), primary_key=True)
    day: Mapped[date] = mapped_column(primary_key=True)
    origin_region: Mapped[str] = mapped_column(String(6), primary_key=True)
    their_count: Mapped[int]
    their_digest: Mapped[str] = mapped_column(String(64))
    our_count: Mapped[int]
    our_digest: Mapped[str] = mapped_column(String(64))
    missing: Mapped[int] = mapped_column(server_default="0")
    rerequested: Mapped[int] = mapped_column(server_default="0")
    refused: Mapped[int] = mapped_column(server_default="0")  # missing keys this node refused
    status: Mapped[str] = mapped_column(String(10))  # ok | gap | extra | refused
    checked_at: Mapped[datetime] = mapped_column(server_default=func.now())


class ExchangeStatistics(Base):
    __tablename__ = "exchange_statistics"
    sender: Mapped[str] = mapped_column(String(63), primary_key=True)
    day: Mapped[date] = mapped_column(primary_key=True)
    region_code: Mapped[str] = mapped_column(String(6), primary_key=True)
    records: Mapped[int]
    detail: Mapped[dict[str, Any]] = mapped_column(JSONB)
    generated_at: Mapped[datetime]
    received_at: Mapped[datetime] = mapped_column(server_default=func.now())


class ImportProgress(Base):
    """A bulk import of records (app.services.imports), keyed by the file's SHA-256: where it stands."""

    __tablename__ = "import_progress"
    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    filename: Mapped[str] = mapped_column(String(200))
    actor: Mapped[str] = mapped_column(String(60))
    attributed_to: Mapped[str] = mapped_column(String(60))  # enterprise:<uscc> or source:<name>
    byte_offset: Mapped[int] = mapped_column(BigInteger)  # just after the last stored line
    line: Mapped[int] = mapped_column(BigInteger)  # the last line stored (1 = the first line)
    created: Mapped[int] = mapped_column(BigInteger, server_default="0")
    updated: Mapped[int] = mapped_column(BigInteger, server_default="0")
    unchanged: Mapped[int] = mapped_column(BigInteger, server_default="0")
    rejected: Mapped[int] = mapped_column(BigInteger, server_default="0")
    started_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())
    finished_at: Mapped[datetime | None]
