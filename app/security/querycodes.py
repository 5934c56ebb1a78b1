"""Per-record query codes printed on the settlement list; an owner proves possession of the car with one.

Derived from the record id with a keyed MAC rather than stored, so a retried upload gets the same
code back and a database dump alone does not reveal any code.
"""

import hashlib
import hmac

_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/1/I/O: read off paper by people
LENGTH = 10  # 50 bits


class QueryCodes:
    def __init__(self, key: bytes) -> None:
        self._key = hashlib.sha256(b"query-code:" + key).digest()

    def for_record(self, record_id: int) -> str:
        mac = int.from_bytes(hmac.new(self._key, str(record_id).encode(), hashlib.sha256).digest()[:8], "big")
        return "".join(_ALPHABET[(mac >> (5 * i)) & 31] for i in range(LENGTH))

    def matches(self, record_id: int, code: str) -> bool:
        given = code.replace("-", "").replace(" ", "").upper()
        return hmac.compare_digest(given, self.for_record(record_id))
