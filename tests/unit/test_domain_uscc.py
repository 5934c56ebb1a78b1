import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain.uscc import _ALPHABET, check_char, uscc_error


@pytest.mark.parametrize("code", ["91350100M000100Y43", "91110000600037341L"])
def test_known_valid(code):
    assert uscc_error(code) is None


@pytest.mark.parametrize(
    ("code", "err"),
    [
        ("91350100M000100Y44", "USCC_CHECK_CHAR"),
        ("91350100M000100Y4", "USCC_FORMAT"),
        ("91350100M000100YS3", "USCC_FORMAT"),  # S is not in the alphabet
        ("91350100m000100Y43", "USCC_FORMAT"),
    ],
)
def test_known_invalid(code, err):
    assert uscc_error(code) == err


@settings(max_examples=200)
@given(st.text(alphabet=_ALPHABET, min_size=17, max_size=17))
def test_generated_codes_validate(body):
    assert uscc_error(body + check_char(body)) is None
