"""argon2id for owner passwords and enterprise API secrets."""

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# RFC 9106's second recommended option (64 MiB, 3 passes) would cost ~100 ms per login on the
# two-core app servers; 19 MiB / 2 passes is OWASP's minimum for argon2id and keeps logins cheap.
_HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
# Compared against when the account does not exist, so timing does not reveal which accounts do.
_DUMMY = _HASHER.hash("not-a-real-secret")


def hash_secret(secret: str) -> str:
    return _HASHER.hash(secret)


def verify_secret(stored_hash: str | None, secret: str) -> bool:
    try:
        return _HASHER.verify(stored_hash or _DUMMY, secret) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False
