"""Staff one-time passwords: RFC 6238 (HMAC-SHA1, what authenticator apps do) or the SM3 dynamic
password of GM/T 0021-2012 / GB/T 38556-2020 (national-algorithm tokens), chosen per site by
`staff_otp_algorithm`. Both: 6 digits, a 30-second time factor counted from the Unix epoch, the
secret kept as base32 (at least 128 bits, as GM/T 0021 requires of the seed K).

GM/T 0021 with SM3 and the time factor only:
    T  = floor(unix_time / Tc), 8 bytes big-endian      (Tc = 30 s; the standard allows up to 60)
    ID = T, zero-padded to 128 bits                     (ID = T‖C‖Q, no event or challenge factor)
    S  = SM3(K ‖ ID)
    OD = (S1 + S2 + … + S8) mod 2^32                     (Si: S's eight 32-bit big-endian words)
    P  = OD mod 10^6, zero-padded to 6 digits
"""

import base64
from datetime import datetime
from typing import Literal, Protocol

import pyotp
from cryptography.hazmat.primitives import hashes

OtpAlgorithm = Literal["rfc6238", "sm3"]
PERIOD = 30
DIGITS = 6


class TimeOtp(Protocol):
    interval: int

    def timecode(self, moment: datetime) -> int: ...

    def at(self, moment: datetime) -> str: ...


def sm3_otp(key: bytes, t: int, digits: int = DIGITS) -> str:
    """The GM/T 0021 SM3 dynamic password for time factor `t` (see the module's docstring)."""
    ident = t.to_bytes(8, "big").ljust(16, b"\x00")
    h = hashes.Hash(hashes.SM3())
    h.update(key + ident)
    s = h.finalize()
    od = sum(int.from_bytes(s[i : i + 4], "big") for i in range(0, 32, 4)) % 2**32
    return str(od % 10**digits).zfill(digits)


class Sm3Otp:
    """The same face as pyotp.TOTP (interval, timecode, at), for the staff login check."""

    def __init__(self, secret_b32: str, interval: int = PERIOD) -> None:
        self.key = base64.b32decode(secret_b32.upper() + "=" * (-len(secret_b32) % 8))
        if len(self.key) < 16:
            raise ValueError("GM/T 0021 seed keys are at least 128 bits")
        self.interval = interval

    def timecode(self, moment: datetime) -> int:
        return int(moment.timestamp()) // self.interval

    def at(self, moment: datetime) -> str:
        return sm3_otp(self.key, self.timecode(moment))


def time_otp(secret_b32: str, algorithm: OtpAlgorithm) -> TimeOtp:
    return Sm3Otp(secret_b32) if algorithm == "sm3" else pyotp.TOTP(secret_b32, interval=PERIOD)


def provisioning_uri(secret_b32: str, username: str, issuer: str, algorithm: OtpAlgorithm) -> str:
    """The otpauth:// URI for enrolment; `algorithm=SM3` for national-algorithm token apps."""
    uri = pyotp.TOTP(secret_b32, interval=PERIOD).provisioning_uri(name=username, issuer_name=issuer)
    return uri + "&algorithm=SM3" if algorithm == "sm3" else uri
