"""Roles, what each may do, and region scope: the only place these rules are written down.

Separation of duties (GB/T 22239 8.1.4.2 d, 8.1.5): the system administrator manages accounts, the
security administrator assigns roles and ends sessions, the audit administrator reads the audit log;
no role holds two of these, a staff account holds one role, and nobody can change their own role.
"""

from dataclasses import dataclass
from enum import StrEnum

from app.domain.errors import AppError


class Role(StrEnum):
    OWNER = "owner"
    ENTERPRISE_USER = "enterprise_user"  # a person at a repair shop (enterprise portal)
    ENTERPRISE_CLIENT = "enterprise_client"  # the shop software's upload credential
    REGULATOR = "regulator"
    PUBLIC = "public"
    SYSTEM_ADMIN = "system_admin"
    SECURITY_ADMIN = "security_admin"
    AUDIT_ADMIN = "audit_admin"


STAFF_ROLES = frozenset({Role.REGULATOR, Role.SYSTEM_ADMIN, Role.SECURITY_ADMIN, Role.AUDIT_ADMIN})


class Perm(StrEnum):
    HISTORY_OWN = "history.own"  # histories of the owner's verified cars
    HISTORY_GRANTED = "history.granted"  # histories an owner has authorized for the enterprise
    HISTORY_REGION = "history.region"  # records of enterprises in the regulator's region
    RECORD_UPLOAD = "record.upload"
    ENTERPRISE_PUBLIC = "enterprise.public"  # registration info shown to anyone
    ENTERPRISE_REGION = "enterprise.region"  # full profile, contacts included, within the region
    PERSONAL_SELF = "personal.self"  # an owner's own name, phone, ID number
    GRANT_MANAGE = "grant.manage"  # an owner authorizing enterprises
    STAFF_MANAGE = "staff.manage"  # create and disable staff accounts
    ROLE_ASSIGN = "role.assign"
    SESSION_REVOKE = "session.revoke"
    AUDIT_READ = "audit.read"
    REPAIR_RATE = "repair.rate"  # an owner rating a repair of their car
    COMPLAINT_FILE = "complaint.file"
    COMPLAINT_HANDLE = "complaint.handle"  # regulators, within their region
    COMPLAINT_ANSWER = "complaint.answer"  # the enterprise's answer to a complaint or rating
    STATS_REGION = "stats.region"
    NOTICE_PUBLISH = "notice.publish"
    CLAIM_REVIEW = "claim.review"  # approving a 行驶证 photo as proof of a car
    ENTERPRISE_REVIEW = "enterprise.review"  # approving or refusing a self-registered enterprise
    SHOP_PORTAL = "shop.portal"  # a shop's own uploads, ratings and complaints
    EXCHANGE_MANAGE = "exchange.manage"  # node-to-node exchange: state, dead letters, replay, reconcile


PERMISSIONS: dict[Role, frozenset[Perm]] = {
    Role.OWNER: frozenset(
        {
            Perm.HISTORY_OWN,
            Perm.PERSONAL_SELF,
            Perm.GRANT_MANAGE,
            Perm.ENTERPRISE_PUBLIC,
            Perm.REPAIR_RATE,
            Perm.COMPLAINT_FILE,
        }
    ),
    Role.ENTERPRISE_USER: frozenset(
        {Perm.HISTORY_GRANTED, Perm.ENTERPRISE_PUBLIC, Perm.SHOP_PORTAL, Perm.COMPLAINT_ANSWER}
    ),
    Role.ENTERPRISE_CLIENT: frozenset({Perm.RECORD_UPLOAD}),
    Role.REGULATOR: frozenset(
        {
            Perm.HISTORY_REGION,
            Perm.ENTERPRISE_REGION,
            Perm.ENTERPRISE_PUBLIC,
            Perm.COMPLAINT_HANDLE,
            Perm.STATS_REGION,
            Perm.NOTICE_PUBLISH,
            Perm.CLAIM_REVIEW,
            Perm.ENTERPRISE_REVIEW,
        }
    ),
    Role.PUBLIC: frozenset({Perm.ENTERPRISE_PUBLIC}),
    Role.SYSTEM_ADMIN: frozenset({Perm.STAFF_MANAGE, Perm.EXCHANGE_MANAGE}),
    Role.SECURITY_ADMIN: frozenset({Perm.ROLE_ASSIGN, Perm.SESSION_REVOKE}),
    Role.AUDIT_ADMIN: frozenset({Perm.AUDIT_READ}),
}

# Duties that must never meet in one role.
SEPARATED = (Perm.STAFF_MANAGE, Perm.ROLE_ASSIGN, Perm.AUDIT_READ)


@dataclass(frozen=True)
class Principal:
    """Who is asking. `role` is None for a staff account no role has been assigned to yet."""

    role: Role | None
    id: int
    request_id: str | None = None
    client_ip: str | None = None
    enterprise_id: int | None = None  # enterprise users and clients
    region_code: str | None = None  # regulators

    @property
    def actor_kind(self) -> str:
        return self.role.value if self.role else "staff"


PUBLIC = Principal(Role.PUBLIC, 0)


def can(who: Principal, perm: Perm) -> bool:
    return who.role is not None and perm in PERMISSIONS[who.role]


def require(who: Principal, perm: Perm) -> None:
    if not can(who, perm):
        raise AppError("FORBIDDEN", 403)


def region_prefix(code: str) -> str:
    """GB/T 2260: 320000 is a province, 320100 a city, 320102 a county; their data share the prefix."""
    if code.endswith("0000"):
        return code[:2]
    if code.endswith("00"):
        return code[:4]
    return code


def in_region(scope: str, code: str) -> bool:
    return code.startswith(region_prefix(scope))


def require_region(who: Principal, code: str) -> None:
    """Regulators act only on what lies in their region."""
    if not who.region_code or not in_region(who.region_code, code):
        raise AppError("REGION_FORBIDDEN", 403)


def check_role_change(actor: Principal, target_id: int, new_role: Role, region_code: str | None) -> None:
    """A role change is the security administrator's, on someone else's staff account, to a staff role."""
    require(actor, Perm.ROLE_ASSIGN)
    if target_id == actor.id:
        raise AppError("ROLE_SELF_ASSIGN", 403)
    if new_role not in STAFF_ROLES:
        raise AppError("ROLE_INVALID", 422)
    if (new_role == Role.REGULATOR) != (region_code is not None):
        raise AppError("REGION_SCOPE_REQUIRED", 422)
