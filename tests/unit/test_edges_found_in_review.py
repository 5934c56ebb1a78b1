"""Edges found by reviewing the trust-model work: the login pages' "next" link must stay on this
site, and a statistics period at the calendar's ends is refused (422), not a 500."""

from datetime import date

import pytest

from app.domain.errors import AppError
from app.services.statistics import Period
from app.web.session import safe_next


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example/",
        "/\\evil.example",
        "/\\/evil.example",
        "https://evil.example",
        "evil.example",
        "",
        None,
    ],
)
def test_login_next_link_never_leaves_the_site(target):
    assert safe_next(target, "/owner") == "/owner"


@pytest.mark.parametrize("target", ["/owner/vehicles/LSVAM4187C2184847", "/regulator?status=submitted"])
def test_login_next_link_keeps_local_paths(target):
    assert safe_next(target, "/owner") == target


@pytest.mark.parametrize(
    ("start", "end"), [(date(1, 1, 1), date(1, 1, 2)), (date(9999, 12, 30), date(9999, 12, 31))]
)
def test_statistics_period_at_the_calendars_ends_is_refused(start, end):
    with pytest.raises(AppError) as err:
        Period(start, end).check()
    assert (err.value.status, err.value.code) == (422, "PERIOD_INVALID")
