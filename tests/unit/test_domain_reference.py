from app.domain.reference import code_tables, region_level, region_parent, regions


def test_regions_cover_every_province_and_know_their_levels():
    r = regions()
    assert len([c for c in r if c.endswith("0000")]) == 34
    assert r["320000"] == "江苏省" and r["320100"] == "南京市"
    assert region_level("320000") == "province" and region_level("320100") == "city"
    assert region_level("320102") == "county" and region_parent("320102") == "320100"
    assert region_parent("320100") == "320000"


def test_code_tables_hold_the_guide_tables_without_notes():
    t = code_tables()
    for name in (
        "repair_type",
        "enterprise_category",
        "plate_colour",
        "use_nature",
        "fuel_type",
        "part_kind",
    ):
        assert t[name], name
        assert not any(k.startswith("_") for k in t[name])
    assert t["repair_type"]["32"] == "二级维护"
    assert t["part_kind"]["3"] == "再制造"
