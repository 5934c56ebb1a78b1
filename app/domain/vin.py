"""车辆识别代号 (VIN): GB 16735 / ISO 3779, with the position-9 check character mandatory in China."""

import re

_VIN_RE = re.compile(r"^[0-9A-HJ-NPR-Z]{17}$")
_TRANSLIT = {
    **{str(d): d for d in range(10)},
    **dict(zip("ABCDEFGH", range(1, 9), strict=True)),
    **dict(zip("JKLMN", range(1, 6), strict=True)),
    "P": 7,
    "R": 9,
    **dict(zip("STUVWXYZ", range(2, 10), strict=True)),
}
_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)


def check_char(vin: str) -> str:
    """The check character position 9 must hold, computed from the other 16 characters."""
    total = sum(_TRANSLIT[c] * w for c, w in zip(vin, _WEIGHTS, strict=True))
    rem = total % 11
    return "X" if rem == 10 else str(rem)


def vin_error(vin: str) -> str | None:
    """None when valid, else the error code (see app.domain.errors)."""
    if len(vin) != 17:
        return "VIN_LENGTH"
    if not _VIN_RE.match(vin):
        return "VIN_CHARSET"
    if vin[8] != check_char(vin):
        return "VIN_CHECK_DIGIT"
    return None
