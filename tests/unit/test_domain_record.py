from datetime import date, timedelta

import pytest

from app.domain.record import digest, parse_record
from tests.support.samples import make_record


def codes(raw, complete=True):
    rec, errors = parse_record(raw, complete)
    return rec, {(e.field, e.code) for e in errors}


def test_a_complete_record_is_valid():
    rec, errs = codes(make_record(items=8, parts=8))
    assert errs == set() and rec is not None


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda r: r["vehicle"].update(vin="LSVAM4188C2184847"), ("vehicle.vin", "VIN_CHECK_DIGIT")),
        (lambda r: r["vehicle"].update(vin="LSVAM4187C21848"), ("vehicle.vin", "TOO_SHORT")),
        (lambda r: r["vehicle"].update(plate_no="苏I12345"), ("vehicle.plate_no", "PLATE_FORMAT")),
        (
            lambda r: r.update(settle_date=(date.today() + timedelta(days=2)).isoformat()),
            ("settle_date", "DATE_IN_FUTURE"),
        ),
        (lambda r: r.update(repair_date="2024-13-01"), ("repair_date", "DATE_FORMAT")),
        (lambda r: r.update(mileage_km=-5), ("mileage_km", "MILEAGE_INVALID")),
        (lambda r: r.update(mileage_km="lots"), ("mileage_km", "MILEAGE_INVALID")),
        (lambda r: r.update(repair_type="99"), ("repair_type", "CODE_UNKNOWN")),
        (lambda r: r["parts"][0].update(kind="7"), ("parts.0.kind", "CODE_UNKNOWN")),
        (lambda r: r["vehicle"].update(fuel_type="Q"), ("vehicle.fuel_type", "CODE_UNKNOWN")),
        (lambda r: r.update(fault_description="x" * 1001), ("fault_description", "TOO_LONG")),
        (lambda r: r.pop("settlement_no"), ("settlement_no", "REQUIRED")),
        (lambda r: r.update(surprise=1), ("surprise", "EXTRA_FIELD")),
        (lambda r: r["items"][0].update(fee="12.345"), ("items.0.fee", "AMOUNT_INVALID")),
        (lambda r: r["parts"][0].update(unit_price="-1"), ("parts.0.unit_price", "AMOUNT_INVALID")),
        (lambda r: r["totals"].update(total="1.00"), ("totals.total", "AMOUNT_MISMATCH")),
        (lambda r: r["totals"].update(labour="0.00"), ("totals.labour", "AMOUNT_MISMATCH")),
        (lambda r: r["totals"].update(parts="1.00"), ("totals.parts", "AMOUNT_MISMATCH")),
        (lambda r: r.update(items=[r["items"][0]] * 201), ("items", "TOO_MANY_ITEMS")),
        (lambda r: r.pop("totals"), ("totals", "REQUIRED")),
        (lambda r: r["items"][0].pop("fee"), ("items.0.fee", "REQUIRED")),
        (lambda r: r.update(fault_description="a\x00b"), ("fault_description", "TEXT_INVALID")),
        (lambda r: r["parts"][1].update(name="\x00"), ("parts.1.name", "TEXT_INVALID")),
    ],
)
def test_each_rule_reports_its_code_on_its_field(mutate, expected):
    raw = make_record()
    mutate(raw)
    rec, errs = codes(raw)
    assert rec is None
    assert expected in errs


def test_settle_before_repair():
    raw = make_record()
    raw["repair_date"], raw["settle_date"] = raw["settle_date"], raw["repair_date"]
    assert ("settle_date", "SETTLE_BEFORE_REPAIR") in codes(raw)[1]


def test_national_profile_allows_missing_amounts_but_not_bad_ones():
    raw = make_record()
    for item in raw["items"]:
        item.pop("fee")
    for part in raw["parts"]:
        part.pop("unit_price")
        part.pop("kind")
    raw.pop("totals")
    raw.pop("repair_type")
    assert codes(raw, complete=False)[1] == set()
    assert ("totals", "REQUIRED") in codes(raw, complete=True)[1]


def test_parts_total_tolerates_rounding_once():
    raw = make_record(parts=0, items=0)
    raw["parts"] = [{"name": "螺丝", "quantity": "3", "unit_price": "0.33", "kind": "2"}] * 3  # 0.99 each
    raw["totals"] = {"labour": "0", "parts": "2.97", "other": "0", "total": "2.97"}
    assert codes(raw)[1] == set()
    raw["totals"] = {"labour": "0", "parts": "2.98", "other": "0", "total": "2.98"}
    assert codes(raw)[1] == set()  # within half a cent per line
    raw["totals"] = {"labour": "0", "parts": "3.10", "other": "0", "total": "3.10"}
    assert ("totals.parts", "AMOUNT_MISMATCH") in codes(raw)[1]


def test_digest_ignores_number_formatting_but_not_content():
    a = make_record()
    b = make_record()
    b["items"][0]["fee"] = b["items"][0]["fee"].removesuffix(".00")
    b["mileage_km"] = a["mileage_km"]
    ra, rb = parse_record(a)[0], parse_record(b)[0]
    assert ra and rb and digest(ra) == digest(rb)
    c = make_record(mileage=1)
    rc = parse_record(c)[0]
    assert rc and digest(rc) != digest(ra)


def test_plate_is_normalized_and_optional():
    raw = make_record(plate=" 苏a·d12345 ")
    rec = parse_record(raw)[0]
    assert rec and rec.vehicle.plate_no == "苏AD12345"
    raw = make_record(plate=None)
    rec = parse_record(raw)[0]
    assert rec and rec.vehicle.plate_no is None
