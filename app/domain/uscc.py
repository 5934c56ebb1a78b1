"""统一社会信用代码 (GB 32100): 18 characters with a mod-31 check character."""

_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_VALUE = {c: i for i, c in enumerate(_ALPHABET)}
_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def check_char(code17: str) -> str:
    total = sum(_VALUE[c] * w for c, w in zip(code17, _WEIGHTS, strict=True))
    return _ALPHABET[(31 - total % 31) % 31]


def uscc_error(code: str) -> str | None:
    """None when valid, else the error code."""
    if len(code) != 18 or any(c not in _VALUE for c in code):
        return "USCC_FORMAT"
    if code[17] != check_char(code[:17]):
        return "USCC_CHECK_CHAR"
    return None
