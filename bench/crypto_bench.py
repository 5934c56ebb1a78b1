"""Exchange signatures and field encryption per second, national suite beside the standard one.

Run: `.venv/bin/python bench/crypto_bench.py [--pkcs11]`. The baseline printed beside each figure
is the same run's Ed25519 / AES-256-GCM (the standard suite), so a slow or loaded machine shows as
such. `--pkcs11` adds the SoftHSM2 key provider (a throwaway token in a tmp dir; needs softhsm2):
what the round trips into a module cost. A real 密码机 has other figures: measure it on site.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.security import signatures
from app.security.fieldcrypt import FieldCipher
from app.security.signing import Signer, load_public, verify
from app.settings import Settings

MESSAGE = {"id": "0", "kind": "record.version", "from": "a", "to": "b", "created_at": "x",
           "body": {"record": {"fault_description": "发动机异响" * 20, "amount": "1200.00"}}}


def rate(fn, seconds: float = 1.0) -> float:
    n = 1
    while (t := timeit.timeit(fn, number=n)) < seconds:
        n *= 2
    return n / t


def signature_rates(signer: Signer) -> tuple[float, float]:
    key, signed = load_public(signer.public_pem()), signer.sign(MESSAGE)
    return rate(lambda: signer.sign(MESSAGE)), rate(lambda: verify(key, signed))


def field_rates(cipher: FieldCipher) -> tuple[float, float]:
    blob = cipher.encrypt("owner.phone", "13800138000")
    enc = rate(lambda: cipher.encrypt("owner.phone", "13800138000"))
    return enc, rate(lambda: cipher.decrypt("owner.phone", blob))


def pkcs11_settings(base: Path) -> Settings:
    util = shutil.which("softhsm2-util")
    if util is None:
        raise SystemExit("softhsm2 is not installed: run make deps")
    (base / "tokens").mkdir()
    conf = base / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {base / 'tokens'}\nobjectstore.backend = file\n")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    subprocess.run([util, "--init-token", "--free", "--label", "bench", "--pin", "1234", "--so-pin", "12345"],
                   check=True, capture_output=True)
    return Settings(key_provider="pkcs11", pkcs11={"token_label": "bench", "pin": "1234"}, crypto_suite="sm")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pkcs11", action="store_true")
    args = parser.parse_args()
    rows = []
    base = {alg: signature_rates(Signer(signatures.load_private_pem(signatures.new_private_pem(alg))))
            for alg in signatures.ALGORITHMS}
    for alg in signatures.ALGORITHMS:
        rows.append((f"exchange message, {alg}", *base[alg], *base["ed25519"]))
    key = os.urandom(32)
    std = field_rates(FieldCipher(key, "standard"))
    rows.append(("field, standard (AES-256-GCM)", *std, *std))
    rows.append(("field, sm (SM4-GCM)", *field_rates(FieldCipher(key, "sm")), *std))
    if args.pkcs11:
        from app.security.keys import key_provider
        from app.security.pkcs11keys import create_keys

        with tempfile.TemporaryDirectory() as tmp:
            settings = pkcs11_settings(Path(tmp))
            create_keys(settings)
            keys = key_provider(settings)
            module_signer = Signer(keys.exchange_signer())
            rows.append(("exchange message, SoftHSM2 Ed25519", *signature_rates(module_signer),
                         *base["ed25519"]))
            rows.append(("field, SoftHSM2 AES-256-GCM", *field_rates(keys.field_cipher()), *std))
    print(f"{'what':40} {'sign/enc /s':>12} {'verify/dec /s':>14}   baseline (same run)")
    for what, a, b, ba, bb in rows:
        print(f"{what:40} {a:12.0f} {b:14.0f}   {ba:.0f} / {bb:.0f}")


if __name__ == "__main__":
    main()
