import os
import re
from pathlib import Path

import pytest

from app.security.fieldcrypt import FieldCipher, FieldKeyError, load_master_key

KEY = bytes(range(32))
APP = Path(__file__).resolve().parents[2] / "app"


@pytest.mark.parametrize("suite", ["standard", "sm"])
def test_round_trip_randomised_and_bound_to_the_field(suite):
    c = FieldCipher(KEY, suite)
    a, b = c.encrypt("owner.phone", "13800138000"), c.encrypt("owner.phone", "13800138000")
    assert a != b and b"13800138000" not in a
    assert c.decrypt("owner.phone", a) == "13800138000"
    with pytest.raises(ValueError, match="authenticate"):
        c.decrypt("owner.name", a)  # moved to another column
    flipped = a[:-1] + bytes([a[-1] ^ 1])
    with pytest.raises(ValueError, match="authenticate"):
        c.decrypt("owner.phone", flipped)
    with pytest.raises(ValueError, match="authenticate"):
        FieldCipher(os.urandom(32), suite).decrypt("owner.phone", a)


def test_the_suites_use_their_own_ciphers_and_read_each_other():
    std, sm = FieldCipher(KEY, "standard"), FieldCipher(KEY, "sm")
    assert std.encrypt("f", "x")[0] == 1 and sm.encrypt("f", "x")[0] == 2
    assert std.decrypt("f", sm.encrypt("f", "张三")) == "张三"
    assert sm.decrypt("f", std.encrypt("f", "张三")) == "张三"


@pytest.mark.parametrize("suite", ["standard", "sm"])
def test_search_hash_is_keyed_per_field_and_per_suite(suite):
    c = FieldCipher(KEY, suite)
    h = c.search_hash("owner.phone", "13800138000")
    assert h == c.search_hash("owner.phone", "13800138000") and len(h) == 32
    assert h != c.search_hash("owner.id_number", "13800138000")
    assert h != FieldCipher(os.urandom(32), suite).search_hash("owner.phone", "13800138000")
    other = "sm" if suite == "standard" else "standard"
    assert h != FieldCipher(KEY, other).search_hash("owner.phone", "13800138000")


def test_master_key_from_env_or_file(tmp_path):
    assert load_master_key(KEY.hex(), None) == KEY
    f = tmp_path / "field.key"
    f.write_text(KEY.hex() + "\n")
    assert load_master_key(None, f) == KEY
    for bad in ("", "zz" * 32, "ab" * 16):
        with pytest.raises(FieldKeyError):
            load_master_key(bad, None)


def test_only_the_read_service_decrypts_personal_fields():
    calls = {
        p.relative_to(APP).as_posix(): re.findall(r"\.decrypt\(([^,]*),", p.read_text())
        for p in APP.rglob("*.py")
        if p.name not in {"fieldcrypt.py", "pkcs11keys.py"}  # the implementations themselves
    }
    assert {f for f, found in calls.items() if found} == {"services/reads.py", "security/staffauth.py"}
    assert calls["security/staffauth.py"] == ["TOTP_FIELD"]  # staff TOTP secrets, not personal data
