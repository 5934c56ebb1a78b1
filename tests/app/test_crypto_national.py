"""Commercial cryptography (issue 24, docs/crypto-plan.md): the national algorithms against their
standards' published examples, which signature algorithms a node accepts from its peers, the PKCS#11
key provider on a real SoftHSM2 token, and the GM/T 0021 SM3 staff one-time passwords.

The mixed federation (two nodes signing with SM2, two still with Ed25519, the `sm` suite) is the
shared one of tests/app/exchange_helpers.py, so every exchange test runs it; the attack of a peer
signing with another algorithm than it registered is in test_attack_peers.py."""

import base64
import os
import shutil
import subprocess
import uuid
from datetime import date, datetime, timedelta

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from pkcs11 import Attribute, ObjectClass
from pkcs11.exceptions import AttributeSensitive
from tongsuopy.crypto.asymciphers import ec as ts_ec

from app.exchange import inbox
from app.node import ExchangeNode
from app.runtime import field_cipher
from app.security import signatures
from app.security.fieldcrypt import FieldCipher
from app.security.keys import FileKeys, key_provider
from app.security.otp import Sm3Otp, sm3_otp, time_otp
from app.security.pkcs11keys import MODULE_SUITE_BYTE, ModuleFieldCipher, create_keys
from app.security.signatures import SM2_DEFAULT_ID
from app.security.signing import ALG_MISMATCH, ALG_NOT_ALLOWED, Signer, load_public, verify
from app.settings import Settings

# --- the standards' examples ------------------------------------------------------------------------

# GB/T 32918.2-2016 / GM/T 0003.5 Annex A: SM2 signature on the recommended curve, ID 1234567812345678
SM2_D = 0x3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8
SM2_PX = 0x09F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020
SM2_PY = 0xCCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13
SM2_R = 0xF5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3
SM2_S = 0xB1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA
SM2_MSG = b"message digest"


def _sm3(data: bytes) -> str:
    h = hashes.Hash(hashes.SM3())
    h.update(data)
    return h.finalize().hex()


def test_sm3_examples_of_gbt_32905():
    assert _sm3(b"abc") == "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"  # A.1
    assert _sm3(b"abcd" * 16) == "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"  # A.2


def test_sm4_examples_of_gbt_32907_and_sm4_gcm_of_rfc_8998():
    key = bytes.fromhex("0123456789abcdeffedcba9876543210")
    enc = Cipher(algorithms.SM4(key), modes.ECB()).encryptor()
    assert enc.update(key).hex() == "681edf34d206965e86b3e94f536e4246"  # A.1: plaintext = key
    block = key
    for _ in range(1_000_000):  # A.2: the same key, a million encryptions
        block = enc.update(block)
    assert block.hex() == "595298c7c6fd271f0402f804c33d3f66"
    # RFC 8998 A.1 (SM4-GCM, the mode personal fields use under the `sm` suite)
    iv = bytes.fromhex("00001234567800000000abcd")
    aad = bytes.fromhex("feedfacedeadbeeffeedfacedeadbeefabaddad2")
    plain = bytes.fromhex("".join(c * 16 for c in "ABCDEFEA"))
    gcm = Cipher(algorithms.SM4(key), modes.GCM(iv)).encryptor()
    gcm.authenticate_additional_data(aad)
    sealed = gcm.update(plain) + gcm.finalize()
    assert sealed.hex().upper() == (
        "17F399F08C67D5EE19D0DC9969C4BB7D5FD46FD3756489069157B282BB200735"
        "D82710CA5C22F0CCFA7CBF93D496AC15A56834CBCF98C397B4024A2691233B8D"
    )
    assert gcm.tag.hex().upper() == "83DE3541E4C2B58177E065A9BF7B62EC"


def test_sm2_example_of_gbt_32918_verifies_and_the_key_pair_matches():
    pub = signatures.sm2_public_pem(b"\x04" + SM2_PX.to_bytes(32) + SM2_PY.to_bytes(32))
    key = signatures.load_public_pem(pub)
    assert key.alg == "sm2" and SM2_DEFAULT_ID == b"1234567812345678"
    sig = encode_dss_signature(SM2_R, SM2_S)
    assert key.verify(sig, SM2_MSG)
    assert not key.verify(sig, b"message digesT")
    assert not key.verify(encode_dss_signature(SM2_R, SM2_S + 1), SM2_MSG)
    assert not key.verify(sig + b"\x00", SM2_MSG)  # a second encoding of the same signature
    # the published private key gives the published public key
    derived = ts_ec.derive_private_key(SM2_D, ts_ec.SM2()).public_key().public_numbers()
    assert (derived.x, derived.y) == (SM2_PX, SM2_PY)


@pytest.mark.parametrize("alg", signatures.ALGORITHMS)
def test_keys_of_each_algorithm_sign_and_name_their_algorithm(alg):
    signer = signatures.load_private_pem(signatures.new_private_pem(alg))
    key = signatures.load_public_pem(signer.public_pem())
    assert signer.alg == key.alg == alg
    assert key.verify(signer.sign(b"x"), b"x") and not key.verify(signer.sign(b"x"), b"y")


# --- which algorithms a node accepts -----------------------------------------------------------------


def _pem_file(tmp_path, alg: str) -> tuple[str, Signer]:
    path = tmp_path / f"{alg}-{uuid.uuid4().hex[:6]}.pem"
    path.write_bytes(signatures.new_private_pem(alg))
    signer = Signer.from_file(path)
    return str(path), signer


def _province(tmp_path, suite="sm", own="sm2", **exchange) -> tuple[ExchangeNode, dict[str, Signer]]:
    """A province with an SM2 ministry and an Ed25519 city as peers."""
    own_file, _ = _pem_file(tmp_path, own)
    peers = {"ministry": _pem_file(tmp_path, "sm2")[1], "city-320100": _pem_file(tmp_path, "ed25519")[1]}
    settings = Settings(
        crypto_suite=suite,
        exchange={
            "enabled": True,
            "node_name": "province-320000",
            "signing_key_file": own_file,
            "peers": [
                {"name": "ministry", "role": "ministry", "region_code": "100000", "url": "https://m",
                 "signing_public_key": peers["ministry"].public_pem(), "signing_algorithm": "sm2"},
                {"name": "city-320100", "role": "city", "region_code": "320100", "url": "https://c",
                 "signing_public_key": peers["city-320100"].public_pem()},
            ],
            **exchange,
        },
    )
    node = ExchangeNode.from_settings(settings)
    assert node is not None
    return node, peers


def _message(sender: str) -> dict:
    return {"id": str(uuid.uuid4()), "kind": "record.version", "from": sender, "to": "province-320000",
            "created_at": "2026-12-07T08:00:00+08:00", "body": {"amount": "12.50"}}


def _refused(node, sender, message) -> str | None:
    try:
        inbox.authenticate(node, sender, message)
    except inbox.Rejected as err:
        return err.code
    return None


def test_during_the_window_sm2_and_ed25519_peers_are_both_accepted(tmp_path):
    node, peers = _province(tmp_path)
    assert node.signer.alg == "sm2" and node.peers["ministry"].key.alg == "sm2"
    assert node.peers["city-320100"].key.alg == "ed25519"  # announced by its key alone
    for name, signer in peers.items():
        assert _refused(node, name, signer.sign(_message(name))) is None


def test_after_the_window_ed25519_peers_are_refused(tmp_path):
    ended = date.today() - timedelta(days=1)
    node, peers = _province(tmp_path, ed25519_refused_from=ended.isoformat())
    assert _refused(node, "ministry", peers["ministry"].sign(_message("ministry"))) is None
    city = peers["city-320100"]
    assert _refused(node, "city-320100", city.sign(_message("city-320100"))) == ALG_NOT_ALLOWED
    ahead = date.today() + timedelta(days=30)  # a window that has not ended yet
    node, peers = _province(tmp_path, ed25519_refused_from=ahead.isoformat())
    assert _refused(node, "city-320100", peers["city-320100"].sign(_message("city-320100"))) is None


def test_an_algorithm_not_in_the_list_is_refused_and_a_node_cannot_sign_with_one(tmp_path):
    node, peers = _province(tmp_path, signature_algorithms=["sm2"])
    city = peers["city-320100"]
    assert _refused(node, "city-320100", city.sign(_message("city-320100"))) == ALG_NOT_ALLOWED
    with pytest.raises(ValueError, match="own signing key"):
        _province(tmp_path, own="ed25519", signature_algorithms=["sm2"])


def test_a_message_signed_with_another_algorithm_than_the_peer_registered_is_refused(tmp_path):
    node, _ = _province(tmp_path)
    intruder = _pem_file(tmp_path, "ed25519")[1]  # the ministry registered SM2
    assert _refused(node, "ministry", intruder.sign(_message("ministry"))) == ALG_MISMATCH
    forged = intruder.sign(_message("ministry"))
    forged["sig"]["alg"] = "sm2"  # claims the registered algorithm: the value is no SM2 signature
    assert _refused(node, "ministry", forged) == "SIGNATURE_INVALID"
    assert not verify(node.peers["ministry"].key, forged)


def test_an_announced_algorithm_must_be_the_keys(tmp_path):
    _, signer = _pem_file(tmp_path, "ed25519")
    with pytest.raises(ValueError, match="registered as signing with sm2"):
        load_public(signer.public_pem(), "sm2")


# --- the PKCS#11 key provider on SoftHSM2 -----------------------------------------------------------


@pytest.fixture(scope="module")
def token(tmp_path_factory):
    """A throwaway SoftHSM2 token with the app's keys made in it (as `create_keys` at install)."""
    util = shutil.which("softhsm2-util")
    if util is None:
        pytest.fail("softhsm2 is not installed: run `make deps` (scripts/bootstrap-controller.sh)")
    base = tmp_path_factory.mktemp("softhsm")
    (base / "tokens").mkdir()
    conf = base / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {base / 'tokens'}\nobjectstore.backend = file\n")
    os.environ["SOFTHSM2_CONF"] = str(conf)  # read by the library when the module is first loaded
    label = "pbox-" + uuid.uuid4().hex[:8]
    pin = uuid.uuid4().hex[:12]
    init = [util, "--init-token", "--free", "--label", label, "--pin", pin, "--so-pin", pin + "so"]
    subprocess.run(init, check=True, capture_output=True)
    pin_file = base / "pin"
    pin_file.write_text(pin + "\n")
    pin_file.chmod(0o600)
    return {"token_label": label, "pin_file": str(pin_file)}


def _pkcs11_settings(token, tmp_path, **kw) -> Settings:
    own = tmp_path / "unused-signing.pem"  # a file key too: the module's must be the one used
    own.write_bytes(signatures.new_private_pem("ed25519"))
    return Settings(key_provider="pkcs11", pkcs11=token, crypto_suite="sm",
                    exchange={"enabled": True, "node_name": "province-320000", "signing_key_file": str(own)},
                    **kw)


@pytest.fixture(scope="module")
def module_public_pem(token, tmp_path_factory):
    return create_keys(_pkcs11_settings(token, tmp_path_factory.mktemp("mk")))


def test_the_module_encrypts_fields_and_its_keys_never_leave_it(token, module_public_pem, tmp_path):
    settings = _pkcs11_settings(token, tmp_path)
    cipher = field_cipher(settings)  # what the app, the admin CLI and migrations use
    assert isinstance(cipher, ModuleFieldCipher)
    blob = cipher.encrypt("owner.phone", "13800138000")
    assert blob[0] == MODULE_SUITE_BYTE and b"13800138000" not in blob
    assert cipher.decrypt("owner.phone", blob) == "13800138000"
    with pytest.raises(ValueError):
        cipher.decrypt("owner.name", blob)  # bound to its field
    with pytest.raises(ValueError):
        cipher.decrypt("owner.phone", blob[:-1] + bytes([blob[-1] ^ 1]))
    assert cipher.search_hash("owner.phone", "1") == cipher.search_hash("owner.phone", "1")
    assert cipher.search_hash("owner.phone", "1") != cipher.search_hash("owner.phone", "2")
    keys = key_provider(settings)
    for label, cls in (("pbox-field", ObjectClass.SECRET_KEY), ("pbox-field-search", ObjectClass.SECRET_KEY),
                       ("pbox-exchange-signing", ObjectClass.PRIVATE_KEY)):
        obj = keys.module.key(label, cls)
        assert obj[Attribute.SENSITIVE] and not obj[Attribute.EXTRACTABLE]
        with pytest.raises(AttributeSensitive):
            obj[Attribute.VALUE]


def test_module_mode_reads_what_the_file_key_wrote_before(token, module_public_pem, tmp_path):
    key = os.urandom(32)
    before = FieldCipher(key, "sm").encrypt("owner.name", "张三")
    settings = _pkcs11_settings(token, tmp_path, field_key=key.hex())
    assert field_cipher(settings).decrypt("owner.name", before) == "张三"
    without = field_cipher(_pkcs11_settings(token, tmp_path))
    with pytest.raises(ValueError, match="file field key"):
        without.decrypt("owner.name", before)


def test_the_exchange_signs_in_the_module(token, module_public_pem, tmp_path):
    settings = _pkcs11_settings(token, tmp_path)
    node = ExchangeNode.from_settings(settings)
    assert node is not None and node.signer.public_pem() == module_public_pem
    assert module_public_pem != FileKeys(settings).exchange_signer().public_pem()  # not the file's key
    msg = node.signer.sign(_message("province-320000"))
    assert msg["sig"]["alg"] == "ed25519"  # SoftHSM2 has no SM2: a 密码机 gives it by its mechanism
    assert verify(load_public(module_public_pem), msg)


# --- staff one-time passwords --------------------------------------------------------------------


def test_sm3_dynamic_passwords_of_gmt_0021():
    # Computed independently with gmssl 3.2.2's pure-Python SM3 by the construction of GM/T 0021
    # (S = SM3(K‖ID), ID = T zero-padded to 128 bits, OD = sum of S's 32-bit words mod 2^32),
    # docs/crypto-plan.md §5: the standard's own examples are not public.
    key = bytes.fromhex("1234567890abcdef1234567890abcdef")
    assert [sm3_otp(key, t) for t in (0, 1, 59458020, 58907520)] == ["607999", "288968", "783282", "729211"]
    secret = base64.b32encode(key).decode()
    otp = Sm3Otp(secret)
    moment = datetime.fromtimestamp(58907520 * 30 + 7).astimezone()
    assert otp.timecode(moment) == 58907520 and otp.at(moment) == "729211"
    assert time_otp(secret, "rfc6238").at(moment) != otp.at(moment)  # RFC 6238 stays as it was
    with pytest.raises(ValueError):
        Sm3Otp(base64.b32encode(b"short").decode())


def test_staff_log_in_with_sm3_codes_where_the_site_chose_them(client):
    """An account enrolled at a site with `staff_otp_algorithm = sm3`: its SM3 code logs in, the
    RFC 6238 code of the same secret does not."""
    from app.db.models import StaffAccount
    from app.security.otp import provisioning_uri
    from app.security.passwords import hash_secret
    from app.security.staffauth import TOTP_FIELD, StaffAuth, new_totp_secret
    from tests.app.conftest import STAFF_PASSWORD

    rt = client.app.state.runtime
    auth = StaffAuth(rt.settings.model_copy(update={"staff_otp_algorithm": "sm3"}), rt.crypto, rt.audit)
    name, secret = "sm3-" + uuid.uuid4().hex[:8], new_totp_secret()
    assert provisioning_uri(secret, name, "pbox", "sm3").endswith("&algorithm=SM3")
    with rt.db.transaction() as s:
        # no role: the session's administrators are bootstrapped by other tests, once per role
        s.add(StaffAccount(username=name, password_hash=hash_secret(STAFF_PASSWORD),
                           totp_enc=rt.crypto.encrypt(TOTP_FIELD, secret),
                           enrolled_at=datetime.now().astimezone()))
    at = datetime.now().astimezone()
    rfc_code, sm3_code = time_otp(secret, "rfc6238").at(at), Sm3Otp(secret).at(at)
    assert rfc_code != sm3_code
    with rt.db.transaction() as s:
        assert auth.login(s, name, STAFF_PASSWORD, rfc_code, "192.0.2.77", None).token is None
    with rt.db.transaction() as s:
        assert auth.login(s, name, STAFF_PASSWORD, sm3_code, "192.0.2.77", None).token is not None


def test_app_admin_makes_the_module_keys_and_prints_the_public_key(token, tmp_path, monkeypatch, capsys):
    from app import admin

    labels = {"field_key_label": "cli-field", "search_key_label": "cli-search",
              "signing_key_label": "cli-sign"}
    settings = _pkcs11_settings({**token, **labels}, tmp_path)
    monkeypatch.setattr(admin, "get_settings", lambda: settings)
    with pytest.raises(SystemExit) as done:
        admin.main(["keys", "init-module"])
    assert done.value.code == 0
    printed = capsys.readouterr().out
    assert load_public(printed).alg == "ed25519"
    assert ExchangeNode.from_settings(settings).signer.public_pem() == printed
