"""Staff authentication (GB/T 22239 8.1.4.1): password + TOTP, lockout, idle timeout, revocable sessions,
and the first login by which the account's owner sets both (separation of duties, 8.1.4.2).

Login and password-change outcomes are returned rather than raised, so a failure (the counter that
leads to the lockout, and its audit event) is committed before the caller refuses the request.

Unknown, disabled and locked accounts are answered exactly as a wrong password is (same status,
code and message, and the same argon2 work), so login does not tell which usernames exist; the
audit log and the metrics keep the real reason.

First login: an account made or reset by an administrator holds only a one-time activation code
(random, ~140 bits, stored as its SHA-256, expiring). With it, its owner sets a password and gets a
fresh TOTP secret (the code is used up then, replaced by a short-lived enrolment token only that
caller holds), then confirms with a TOTP code. The administrator hands over the code but never
sees the password or the TOTP secret; until the confirmation the account gets no session.
"""

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyotp
from prometheus_client import Counter
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.db.models import StaffAccount, StaffSession
from app.domain.clock import now
from app.domain.errors import AppError
from app.security.auditlog import AuditLog, Event
from app.security.fieldcrypt import FieldCipher
from app.security.otp import provisioning_uri, time_otp
from app.security.passwords import hash_secret, verify_secret
from app.security.rbac import Principal, Role
from app.settings import Settings

TOTP_FIELD = "staff.totp"
LOGIN_FAILURES = Counter(
    "pbox_staff_login_failures_total", "Failed staff logins, by reason (alert FailedLoginBurst)", ["reason"]
)
for _reason in ("STAFF_INVALID_CREDENTIALS", "ACCOUNT_LOCKED", "PASSWORD_EXPIRED"):
    LOGIN_FAILURES.labels(_reason)  # present from the start, so the first failures count in increase()
_CLASSES = (r"[a-z]", r"[A-Z]", r"[0-9]", r"[^a-zA-Z0-9]")


def check_password_policy(password: str, username: str, min_length: int) -> None:
    classes = sum(bool(re.search(c, password)) for c in _CLASSES)
    if len(password) < min_length or classes < 3 or username.lower() in password.lower():
        raise AppError("PASSWORD_POLICY", 422)


def new_totp_secret() -> str:
    return pyotp.random_base32()


def _token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def new_enrolment_secret() -> tuple[str, bytes]:
    """A one-time secret (activation code or enrolment token) and what is stored of it. High entropy,
    so a plain SHA-256 is enough: there is nothing to guess."""
    secret = secrets.token_urlsafe(18)
    return secret, _token_hash(secret)


def _matches(stored: bytes | None, secret: str) -> bool:
    return stored is not None and secrets.compare_digest(bytes(stored), _token_hash(secret.strip()))


ISSUER = "汽车维修电子健康档案"
# Answered for unknown, disabled and locked accounts as for a wrong password (see the module doc).
_INVALID = "STAFF_INVALID_CREDENTIALS"
_HIDDEN = {"ACCOUNT_LOCKED"}


@dataclass(frozen=True)
class LoginResult:
    token: str | None = None
    error: AppError | None = None


@dataclass(frozen=True)
class Enrolment:
    """Step one of the first login: shown only to the account's owner, once."""

    totp_secret: str
    totp_uri: str
    enrolment_token: str
    expires_at: datetime


class StaffAuth:
    def __init__(self, settings: Settings, cipher: FieldCipher, audit: AuditLog) -> None:
        self.s = settings
        self.cipher = cipher
        self.audit = audit

    def _totp_step(self, acct: StaffAccount, code: str) -> int | None:
        """The time step the code belongs to (one step of clock drift allowed), if it is valid and new."""
        totp = time_otp(self.cipher.decrypt(TOTP_FIELD, acct.totp_enc), self.s.staff_otp_algorithm)
        at = now()
        for drift in (-1, 0, 1):
            moment = at + timedelta(seconds=drift * totp.interval)
            step = totp.timecode(moment)
            # a code already used (or older) is refused: a watched code cannot be replayed
            if step > acct.totp_last_step and secrets.compare_digest(totp.at(moment), code.strip()):
                return step
        return None

    def _credentials(self, session: Session, username: str, password: str, code: str) -> StaffAccount | None:
        """The account if password and code are right; the account's lockout counter is kept here."""
        acct = session.scalar(select(StaffAccount).where(StaffAccount.username == username).with_for_update())
        password_ok = verify_secret(acct.password_hash if acct else None, password)
        if acct is None or acct.disabled_at is not None:
            return None
        if acct.locked_until is not None and acct.locked_until > now():
            raise AppError("ACCOUNT_LOCKED", 403)
        if acct.enrolled_at is None:
            # only who holds the activation code (or has done step one) learns the account waits for it
            if password_ok or _matches(acct.enrol_secret_hash, password):
                raise AppError("ENROLMENT_REQUIRED", 403)
            step = None
        else:
            step = self._totp_step(acct, code) if password_ok else None
        if step is None:
            acct.failed_logins += 1
            if acct.failed_logins >= self.s.staff_lockout_threshold:
                acct.failed_logins = 0
                acct.locked_until = now() + timedelta(seconds=self.s.staff_lockout_seconds)
            return None
        acct.failed_logins, acct.locked_until, acct.totp_last_step = 0, None, step
        return acct

    def login(
        self, session: Session, username: str, password: str, code: str, ip: str, request_id: str | None
    ) -> LoginResult:
        def event(outcome: str, reason: str, actor: str = username) -> Event:
            return Event(
                "staff",
                actor,
                "staff.login",
                username[:60],
                outcome,
                {"reason": reason},  # type: ignore[arg-type]
                request_id,
                ip,
            )

        def failed(error: AppError, actor: str = username) -> LoginResult:
            self.audit.record(session, event("failure", error.code, actor))
            LOGIN_FAILURES.labels(error.code).inc()
            return LoginResult(error=AppError(_INVALID, 401) if error.code in _HIDDEN else error)

        try:
            acct = self._credentials(session, username, password, code)
        except AppError as exc:
            return failed(exc)
        if acct is None:
            return failed(AppError("STAFF_INVALID_CREDENTIALS", 401))
        if acct.password_changed_at < now() - timedelta(days=self.s.staff_password_max_age_days):
            return failed(AppError("PASSWORD_EXPIRED", 403), str(acct.id))
        token = "st_" + secrets.token_urlsafe(32)
        session.add(StaffSession(token_hash=_token_hash(token), staff_id=acct.id))
        self.audit.record(session, event("success", "ok", str(acct.id)))
        return LoginResult(token=token)

    def change_password(
        self, session: Session, username: str, old: str, code: str, new: str, ip: str, request_id: str | None
    ) -> AppError | None:
        """Also the way out of an expired password, so it takes the full credentials, not a session."""
        try:
            acct = self._credentials(session, username, old, code)
        except AppError as exc:
            acct, error = None, exc
            reason = exc.code
            if exc.code in _HIDDEN:
                error = AppError(_INVALID, 401)
        else:
            error = None if acct else AppError(_INVALID, 401)
            reason = error.code if error else "ok"
        if acct is not None:
            try:
                check_password_policy(new, username, self.s.staff_password_min_length)
                if verify_secret(acct.password_hash, new):
                    raise AppError("PASSWORD_REUSED", 422)
            except AppError as exc:
                error, reason = exc, exc.code
            else:
                acct.password_hash, acct.password_changed_at = hash_secret(new), now()
                revoke_all(session, acct.id)
        self.audit.record(
            session,
            Event(
                "staff",
                str(acct.id) if acct else username[:60],
                "staff.password_change",
                username[:60],
                "failure" if error else "success",
                {"reason": reason},
                request_id,
                ip,
            ),
        )
        return error

    def _enrol_event(
        self,
        action: str,
        subject: str,
        outcome: str,
        reason: str,
        ip: str,
        request_id: str | None,
        actor: str | None = None,
    ) -> Event:
        return Event(
            "staff", actor or subject[:60], action, subject[:60], outcome, {"reason": reason}, request_id, ip
        )

    def begin_enrolment(
        self,
        session: Session,
        username: str,
        activation_code: str,
        new_password: str,
        ip: str,
        request_id: str | None,
    ) -> tuple[Enrolment | None, AppError | None]:
        """First login, step one: the activation code and the owner's own password give a new TOTP
        secret. The code is used up here, so whoever else knows it (the administrator) cannot redo this."""
        acct = session.scalar(select(StaffAccount).where(StaffAccount.username == username).with_for_update())
        t = now()
        valid = (
            acct is not None
            and acct.enrolled_at is None
            and acct.totp_enc is None
            and acct.disabled_at is None
            and acct.enrol_expires_at is not None
            and acct.enrol_expires_at > t
            and _matches(acct.enrol_secret_hash, activation_code)
        )
        error: AppError | None = None
        if not valid:
            error = AppError("ENROLMENT_INVALID", 401)
        else:
            assert acct is not None
            try:
                check_password_policy(new_password, username, self.s.staff_password_min_length)
            except AppError as exc:
                error = exc  # the code is not used up by a refused password
        if error is not None or acct is None:
            assert error is not None
            self.audit.record(
                session,
                self._enrol_event(
                    "staff.enrol",
                    username,
                    "failure",
                    error.code,
                    ip,
                    request_id,
                    str(acct.id) if acct and valid else None,
                ),
            )
            LOGIN_FAILURES.labels(error.code).inc()
            return None, error
        totp_secret = new_totp_secret()
        token, token_hash = new_enrolment_secret()
        expires = t + timedelta(seconds=self.s.staff_enrolment_step_seconds)
        acct.password_hash, acct.password_changed_at = hash_secret(new_password), t
        acct.totp_enc = self.cipher.encrypt(TOTP_FIELD, totp_secret)
        acct.enrol_secret_hash, acct.enrol_expires_at = token_hash, expires
        self.audit.record(
            session,
            self._enrol_event(
                "staff.enrol", username, "success", "password_set", ip, request_id, str(acct.id)
            ),
        )
        uri = provisioning_uri(totp_secret, username, ISSUER, self.s.staff_otp_algorithm)
        return Enrolment(totp_secret, uri, token, expires), None

    def finish_enrolment(
        self, session: Session, enrolment_token: str, code: str, ip: str, request_id: str | None
    ) -> LoginResult:
        """First login, step two: a code from the new authenticator ends the enrolment and signs in."""
        acct = session.scalar(
            select(StaffAccount)
            .where(StaffAccount.enrol_secret_hash == _token_hash(enrolment_token.strip()))
            .with_for_update()
        )
        t = now()
        ok = (
            acct is not None
            and acct.enrolled_at is None
            and acct.totp_enc is not None
            and acct.disabled_at is None
            and acct.enrol_expires_at is not None
            and acct.enrol_expires_at > t
        )
        step = self._totp_step(acct, code) if ok and acct is not None else None
        subject = acct.username if acct else "-"
        if acct is None or step is None:
            reason = "ENROLMENT_INVALID" if not ok else "TOTP_WRONG"
            self.audit.record(
                session,
                self._enrol_event(
                    "staff.enrol_confirm",
                    subject,
                    "failure",
                    reason,
                    ip,
                    request_id,
                    str(acct.id) if acct else None,
                ),
            )
            LOGIN_FAILURES.labels("ENROLMENT_INVALID").inc()
            detail = "动态口令错误，请核对手机时间后重试" if ok else None
            return LoginResult(error=AppError("ENROLMENT_INVALID", 401, detail))
        acct.enrolled_at, acct.totp_last_step = t, step
        acct.enrol_secret_hash = acct.enrol_expires_at = None
        acct.failed_logins, acct.locked_until = 0, None
        token = "st_" + secrets.token_urlsafe(32)
        session.add(StaffSession(token_hash=_token_hash(token), staff_id=acct.id))
        self.audit.record(
            session,
            self._enrol_event("staff.enrol_confirm", subject, "success", "ok", ip, request_id, str(acct.id)),
        )
        return LoginResult(token=token)

    def principal(self, session: Session, token: str, ip: str, request_id: str | None) -> Principal:
        """The staff member behind a session token; refreshes the session's idle clock."""
        row = session.execute(
            select(StaffSession, StaffAccount)
            .join(StaffAccount, StaffAccount.id == StaffSession.staff_id)
            .where(StaffSession.token_hash == _token_hash(token))
        ).first()
        if row is None:
            raise AppError("TOKEN_INVALID", 401)
        sess, acct = row
        t = now()
        if sess.revoked_at is not None or acct.disabled_at is not None:
            raise AppError("SESSION_REVOKED", 401)
        if t - sess.last_seen_at > timedelta(
            seconds=self.s.staff_idle_timeout_seconds
        ) or t - sess.created_at > timedelta(seconds=self.s.staff_session_max_seconds):
            raise AppError("SESSION_EXPIRED", 401)
        sess.last_seen_at = t
        role = Role(acct.role) if acct.role else None
        return Principal(role, acct.id, request_id, ip, region_code=acct.region_code)

    def logout(self, session: Session, token: str, who: Principal | None = None) -> None:
        """End the session; a staff member's own logout (who) is audited, from either door."""
        session.execute(
            update(StaffSession)
            .where(StaffSession.token_hash == _token_hash(token), StaffSession.revoked_at.is_(None))
            .values(revoked_at=now())
        )
        if who is not None:
            ended = Event(who.actor_kind, str(who.id), "staff.logout", f"staff:{who.id}",
                          request_id=who.request_id, client_ip=who.client_ip)  # fmt: skip
            self.audit.record(session, ended)


def revoke_all(session: Session, staff_id: int) -> int:
    done = session.execute(
        update(StaffSession)
        .where(StaffSession.staff_id == staff_id, StaffSession.revoked_at.is_(None))
        .values(revoked_at=now())
    )
    return int(done.rowcount)  # type: ignore[attr-defined]
