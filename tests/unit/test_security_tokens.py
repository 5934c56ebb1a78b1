import time

import pytest

from app.domain.errors import AppError
from app.security.passwords import hash_secret, verify_secret
from app.security.querycodes import LENGTH, QueryCodes
from app.security.tokens import TokenSigner

KEY = b"k" * 32


def test_token_round_trip():
    signer = TokenSigner(KEY)
    tok, exp = signer.issue("enterprise", 7, 60, credential=3)
    claims = signer.verify(tok, "enterprise")
    assert (claims.subject, claims.credential, claims.expires) == (7, 3, exp)


def test_token_of_another_kind_is_refused():
    signer = TokenSigner(KEY)
    tok, _ = signer.issue("owner", 7, 60)
    with pytest.raises(AppError) as e:
        signer.verify(tok, "enterprise")
    assert e.value.code == "TOKEN_INVALID"


def test_tampered_and_foreign_tokens_are_refused():
    signer = TokenSigner(KEY)
    tok, _ = signer.issue("enterprise", 7, 60, credential=3)
    version, body, mac = tok.split(".")
    forged = TokenSigner(b"other-key-other-key").issue("enterprise", 8, 60, credential=3)[0]
    for bad in (f"{version}.{body}x.{mac}", forged, "garbage", ""):
        with pytest.raises(AppError) as e:
            signer.verify(bad, "enterprise")
        assert e.value.code == "TOKEN_INVALID"


def test_expired_token():
    signer = TokenSigner(KEY)
    tok, _ = signer.issue("enterprise", 7, -1, credential=3)
    with pytest.raises(AppError) as e:
        signer.verify(tok, "enterprise")
    assert e.value.code == "TOKEN_EXPIRED"
    assert time.time() > 0


def test_short_keys_are_refused():
    with pytest.raises(ValueError, match="secret_key"):
        TokenSigner(b"short")


def test_argon2_secrets():
    h = hash_secret("s3cret-value")
    assert h.startswith("$argon2id$")
    assert verify_secret(h, "s3cret-value")
    assert not verify_secret(h, "wrong")
    assert not verify_secret(None, "anything")
    assert not verify_secret("not-a-hash", "anything")


def test_query_codes_are_stable_distinct_and_forgiving_about_format():
    codes = QueryCodes(KEY)
    a = codes.for_record(1)
    assert len(a) == LENGTH and a == codes.for_record(1)
    assert len({codes.for_record(i) for i in range(1, 2000)}) == 1999
    assert codes.matches(1, a.lower()[:5] + "-" + a[5:])
    assert not codes.matches(2, a)
    assert QueryCodes(b"x" * 32).for_record(1) != a
