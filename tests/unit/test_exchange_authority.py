"""Which records a peer may speak for (app.exchange.authority), on the message alone."""

from app.exchange.authority import ORIGIN_HERE, OUT_OF_SCOPE, check_record, check_statistics, outside
from tests.unit.test_exchange_signing_routes import _node


def _code(node, peer: str, enterprise: str, origin: str) -> str | None:
    r = check_record(node, node.peers[peer], enterprise, origin)
    return None if r is None else r.code


def test_a_province_takes_from_its_city_only_the_citys_own_records(tmp_path):
    p = _node(
        tmp_path,
        "province",
        "320000",
        [("ministry", "ministry", "100000"), ("nanjing", "city", "320100")],
    )
    assert _code(p, "nanjing", "320102", "320100") is None
    assert _code(p, "nanjing", "320500", "320100") == OUT_OF_SCOPE  # a Suzhou enterprise
    assert _code(p, "nanjing", "320500", "320500") == OUT_OF_SCOPE  # claims Suzhou's origin
    assert _code(p, "nanjing", "320102", "320000") == ORIGIN_HERE  # claims the province's own upload
    # from the ministry: other provinces' repairs (and uploads made at the ministry itself)
    assert _code(p, "ministry", "330100", "330000") is None
    assert _code(p, "ministry", "320102", "100000") is None
    assert _code(p, "ministry", "320102", "330000") == OUT_OF_SCOPE  # enterprise not of its origin
    assert _code(p, "ministry", "320102", "320100") == ORIGIN_HERE  # the city's own, sent back down
    assert _code(p, "ministry", "330100", "320000") == ORIGIN_HERE


def test_a_city_takes_from_its_province_only_what_was_uploaded_elsewhere(tmp_path):
    c = _node(tmp_path, "city", "320100", [("js", "province", "320000")])
    assert _code(c, "js", "320500", "320000") is None  # a Suzhou shop on the provincial system
    assert _code(c, "js", "330100", "330000") is None  # relayed from the ministry
    assert _code(c, "js", "320500", "320500") is None  # from a Suzhou city node, through the province
    assert _code(c, "js", "320102", "320100") == ORIGIN_HERE
    assert _code(c, "js", "320102", "320000") is None  # a Nanjing shop on the provincial system
    assert _code(c, "js", "320102", "330000") == OUT_OF_SCOPE  # not an enterprise of its origin


def test_the_ministry_takes_from_a_province_only_that_provinces_records(tmp_path):
    m = _node(tmp_path, "ministry", "100000", [("js", "province", "320000"), ("zj", "province", "330000")])
    assert _code(m, "js", "320102", "320100") is None
    assert _code(m, "js", "320102", "320000") is None
    assert _code(m, "js", "330100", "330000") == OUT_OF_SCOPE
    assert _code(m, "zj", "330100", "100000") == ORIGIN_HERE


def test_statistics_come_from_below_about_the_senders_region(tmp_path):
    p = _node(
        tmp_path, "province", "320000", [("ministry", "ministry", "100000"), ("nanjing", "city", "320100")]
    )
    assert check_statistics(p, p.peers["nanjing"]) is None
    assert check_statistics(p, p.peers["ministry"]).code == OUT_OF_SCOPE  # type: ignore[union-attr]
    # rows of other regions in a city's report are dropped, not the whole report
    assert outside(p.peers["nanjing"], ["320102", "320100"]) is None
    assert "320502" in outside(p.peers["nanjing"], ["320102", "320502"]).detail  # type: ignore[union-attr]
