"""号牌号码: ordinary 7-character plates, 8-character new-energy plates, and special suffixes."""

import re

PROVINCE_CHARS = "京津冀晋蒙辽吉黑沪苏浙皖闽赣鲁豫鄂湘粤桂琼渝川贵云藏陕甘青宁新"
# Letters on plates never use I or O (confusable with 1 and 0).
_L = "A-HJ-NP-Z"
_A = f"0-9{_L}"
_P = f"[{PROVINCE_CHARS}]"
_PATTERNS = (
    re.compile(rf"^{_P}[{_L}][{_A}]{{5}}$"),  # ordinary: 苏A12345
    re.compile(rf"^{_P}[{_L}][DF][{_A}]{{5}}$"),  # new energy, small: 苏AD12345
    re.compile(rf"^{_P}[{_L}][0-9]{{5}}[DF]$"),  # new energy, large: 苏A12345D
    re.compile(rf"^{_P}[{_L}][{_A}]{{4}}[学挂警港澳领]$"),  # 苏A1234学, 粤Z1234港
    re.compile(rf"^{_P}[{_L}][{_A}]{{4}}应急$"),  # emergency-service plates
    re.compile(r"^使[0-9]{6}$"),  # embassy: 使014578
)


def normalize(plate: str) -> str:
    return plate.strip().upper().replace(" ", "").replace("·", "").replace("-", "")


def plate_error(plate: str) -> str | None:
    """None when `plate` (already normalized) is a valid plate number, else the error code."""
    if any(p.match(plate) for p in _PATTERNS):
        return None
    return "PLATE_FORMAT"


def is_new_energy(plate: str) -> bool:
    return len(plate) == 8 and plate[0] in PROVINCE_CHARS and (plate[2] in "DF" or plate[7] in "DF")
