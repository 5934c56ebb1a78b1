import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain.vin import _TRANSLIT, _WEIGHTS, check_char, vin_error

VIN_CHARS = "0123456789ABCDEFGHJKLMNPRSTUVWXYZ"
vin_body = st.text(alphabet=VIN_CHARS, min_size=17, max_size=17)


def with_check(v: str) -> str:
    return v[:8] + check_char(v) + v[9:]


@pytest.mark.parametrize(
    "vin",
    [
        "1M8GDM9AXKP042788",  # the ISO 3779 textbook example, check char X
        "LSVAM4187C2184847",  # SAIC-Volkswagen
        "11111111111111111",  # all ones: check digit happens to be 1
        "1HGCM82633A004352",  # Honda Accord
    ],
)
def test_known_valid(vin):
    assert vin_error(vin) is None


@pytest.mark.parametrize(
    ("vin", "code"),
    [
        ("1M8GDM9A1KP042788", "VIN_CHECK_DIGIT"),
        ("LSVAM4188C2184847", "VIN_CHECK_DIGIT"),
        ("LSVAM4187C218484", "VIN_LENGTH"),
        ("LSVAM4187C21848477", "VIN_LENGTH"),
        ("LSVAM4187C218484O", "VIN_CHARSET"),  # O is never used
        ("ISVAM4187C2184847", "VIN_CHARSET"),
        ("QSVAM4187C2184847", "VIN_CHARSET"),
        ("lsvam4187c2184847", "VIN_CHARSET"),  # the validator sees normalized input only
    ],
)
def test_known_invalid(vin, code):
    assert vin_error(vin) == code


@settings(max_examples=200)
@given(vin_body)
def test_any_vin_with_its_check_char_is_valid(body):
    assert vin_error(with_check(body)) is None


@settings(max_examples=200)
@given(vin_body, st.sampled_from("0123456789X"))
def test_a_wrong_check_char_is_caught(body, c):
    vin = with_check(body)
    wrong = vin[:8] + c + vin[9:]
    assert (vin_error(wrong) is None) == (c == vin[8])


@settings(max_examples=200)
@given(vin_body, st.integers(0, 16), st.sampled_from(VIN_CHARS))
def test_single_substitution_outside_pos9_is_caught_when_weighted(body, pos, c):
    """Weights are coprime with 11, so changing one weighted character always changes the check."""
    vin = with_check(body)
    if pos == 8:
        return
    changed = vin[:pos] + c + vin[pos + 1 :]
    same_value = _TRANSLIT[c] == _TRANSLIT[vin[pos]]
    assert (vin_error(changed) is None) == (same_value or _WEIGHTS[pos] == 0)


@given(st.text(alphabet=string.ascii_uppercase + string.digits, min_size=17, max_size=17))
@settings(max_examples=100)
def test_forbidden_letters_never_pass(vin):
    if set(vin) & set("IOQ"):
        assert vin_error(vin) == "VIN_CHARSET"
