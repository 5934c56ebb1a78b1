import pytest

from app.domain.errors import AppError
from app.domain.idcard import valid_id_number
from app.security.rbac import (
    PERMISSIONS,
    SEPARATED,
    STAFF_ROLES,
    Perm,
    Principal,
    Role,
    can,
    check_role_change,
    in_region,
    region_prefix,
)
from app.security.staffauth import check_password_policy

SECURITY = Principal(Role.SECURITY_ADMIN, 10)


def test_administrator_duties_are_separated():
    for role, perms in PERMISSIONS.items():
        assert len(perms & set(SEPARATED)) <= 1, role
    assert PERMISSIONS[Role.AUDIT_ADMIN] == {Perm.AUDIT_READ}  # the audit log and nothing else
    # accounts, and operating the node-to-node exchange (state, dead letters, reconciliation)
    assert PERMISSIONS[Role.SYSTEM_ADMIN] == {Perm.STAFF_MANAGE, Perm.EXCHANGE_MANAGE}
    assert PERMISSIONS[Role.SECURITY_ADMIN] == {Perm.ROLE_ASSIGN, Perm.SESSION_REVOKE}


def test_who_reads_histories():
    readers = {r for r in Role if any(p.value.startswith("history.") for p in PERMISSIONS[r])}
    assert readers == {Role.OWNER, Role.ENTERPRISE_USER, Role.REGULATOR}
    assert PERMISSIONS[Role.PUBLIC] == {Perm.ENTERPRISE_PUBLIC}
    assert PERMISSIONS[Role.ENTERPRISE_CLIENT] == {Perm.RECORD_UPLOAD}
    assert not can(Principal(None, 1), Perm.ENTERPRISE_PUBLIC)  # a staff account without a role


@pytest.mark.parametrize(
    ("scope", "code", "inside"),
    [
        ("320000", "320102", True),
        ("320100", "320102", True),
        ("320100", "320202", False),
        ("320102", "320102", True),
        ("320102", "320104", False),
        ("330000", "320102", False),
    ],
)
def test_region_scope_follows_gb2260(scope, code, inside):
    assert in_region(scope, code) is inside


def test_region_prefix():
    assert [region_prefix(c) for c in ("320000", "320100", "320102")] == ["32", "3201", "320102"]


def test_nobody_grants_themselves_a_role():
    with pytest.raises(AppError) as e:
        check_role_change(SECURITY, 10, Role.AUDIT_ADMIN, None)
    assert e.value.code == "ROLE_SELF_ASSIGN"
    for role in Role:
        if role is Role.SECURITY_ADMIN:
            continue
        with pytest.raises(AppError) as e:
            check_role_change(Principal(role, 1), 2, Role.SECURITY_ADMIN, None)
        assert e.value.code == "FORBIDDEN", role


def test_role_changes_are_to_staff_roles_with_the_right_scope():
    check_role_change(SECURITY, 11, Role.REGULATOR, "320100")
    check_role_change(SECURITY, 11, Role.SYSTEM_ADMIN, None)
    for role, region, code in [
        (Role.OWNER, None, "ROLE_INVALID"),
        (Role.PUBLIC, None, "ROLE_INVALID"),
        (Role.REGULATOR, None, "REGION_SCOPE_REQUIRED"),
        (Role.AUDIT_ADMIN, "320100", "REGION_SCOPE_REQUIRED"),
    ]:
        with pytest.raises(AppError) as e:
            check_role_change(SECURITY, 11, role, region)
        assert e.value.code == code
    assert (
        frozenset({Role.REGULATOR, Role.SYSTEM_ADMIN, Role.SECURITY_ADMIN, Role.AUDIT_ADMIN}) == STAFF_ROLES
    )


@pytest.mark.parametrize(
    "password", ["Sh0rt!", "alllowercase-and-long", "ALLUPPER123456", "Has-Zhang.Wei-1", "zhang.wei-Pass1"]
)
def test_password_policy_refuses(password):
    with pytest.raises(AppError) as e:
        check_password_policy(password, "zhang.wei", 12)
    assert e.value.code == "PASSWORD_POLICY"


def test_password_policy_accepts_three_classes():
    check_password_policy("correct-horse-42", "zhang.wei", 12)
    check_password_policy("Correct Horse Battery", "zhang.wei", 12)


def test_id_numbers():
    assert valid_id_number("11010519491231002X")
    assert not valid_id_number("110105194912310021")
    assert not valid_id_number("1101051949123100")
