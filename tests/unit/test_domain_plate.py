import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain.plate import PROVINCE_CHARS, is_new_energy, normalize, plate_error
from app.domain.reference import home_region

LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"
ALNUM = "0123456789" + LETTERS


@pytest.mark.parametrize(
    "plate",
    [
        "苏A12345",
        "京N8P8F8",
        "粤B9Z9Z9",
        "苏AD12345",
        "苏AF1A2B3",
        "沪A12345D",
        "川A12345F",
        "苏A1234学",
        "粤Z1234港",
        "鲁B1234挂",
        "京A1234警",
        "沪A1234领",
        "使014578",
        "苏A1234应急",
    ],
)
def test_known_valid(plate):
    assert plate_error(plate) is None


@pytest.mark.parametrize(
    "plate",
    [
        "",
        "苏A1234",
        "苏A123456",
        "苏I12345",
        "苏O12345",
        "AA12345",
        "苏a12345",
        "苏AO1234",
        "苏AD1234I",
        "苏A1234DD",
        "台A12345",
        "苏A12345X",
        "苏AX12345",
    ],
)
def test_known_invalid(plate):
    assert plate_error(plate) == "PLATE_FORMAT"


def test_normalize_removes_separators():
    assert normalize(" 苏a·12345 ") == "苏A12345"
    assert normalize("苏A-D12345") == "苏AD12345"


province = st.sampled_from(PROVINCE_CHARS)
letter = st.sampled_from(LETTERS)


@settings(max_examples=150)
@given(province, letter, st.text(alphabet=ALNUM, min_size=5, max_size=5))
def test_ordinary_plates(p, c, tail):
    assert plate_error(p + c + tail) is None


@settings(max_examples=150)
@given(province, letter, st.sampled_from("DF"), st.text(alphabet=ALNUM, min_size=5, max_size=5))
def test_small_new_energy(p, c, kind, tail):
    plate = p + c + kind + tail
    assert plate_error(plate) is None
    assert is_new_energy(plate)


@settings(max_examples=150)
@given(province, letter, st.text(alphabet="0123456789", min_size=5, max_size=5), st.sampled_from("DF"))
def test_large_new_energy(p, c, digits, kind):
    plate = p + c + digits + kind
    assert plate_error(plate) is None
    assert is_new_energy(plate)


@settings(max_examples=150)
@given(province, letter, st.text(alphabet=ALNUM + "IO", min_size=5, max_size=5))
def test_i_and_o_never_appear(p, c, tail):
    if set(tail) & set("IO"):
        assert plate_error(p + c + tail) == "PLATE_FORMAT"


def test_home_region_from_plate():
    assert home_region("苏A12345") == "320100"  # 南京
    assert home_region("苏E12345") == "320500"  # 苏州
    assert home_region("浙A12345") == "330000"  # province when the city table has no entry
    assert home_region(None) is None
