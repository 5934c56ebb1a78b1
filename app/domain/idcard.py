"""Resident identity card numbers (GB 11643): 18 characters, the last a mod 11-2 check character."""

import re

_FORMAT = re.compile(r"^\d{17}[\dX]$")
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"


def check_char(body: str) -> str:
    """The check character of the first 17 digits."""
    return _CHECK[sum(int(c) * w for c, w in zip(body[:17], _WEIGHTS, strict=True)) % 11]


def valid_id_number(value: str) -> bool:
    return bool(_FORMAT.match(value)) and check_char(value) == value[17]
