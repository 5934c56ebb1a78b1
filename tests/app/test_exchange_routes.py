"""Exchange between real nodes (ministry, provinces A and B, a city of A): each a uvicorn app-web over
HTTPS with mutual TLS and an app-worker relay, on its own database. The routes of DESIGN.md §3."""

from tests.app.exchange_helpers import (
    CITY_A,
    MINISTRY,
    PROV_A,
    PROV_B,
    Shop,
    arrives,
    outbox_peers,
    query,
    versions_of,
)
from tests.support.federation import wait_until
from tests.support.samples import make_vin


def test_city_upload_appears_at_its_province_and_the_ministry_only(fed):
    shop = Shop(fed, CITY_A, "320102")
    no = shop.upload("苏A12345")["settlement_no"]
    city = versions_of(fed, CITY_A, shop.uscc, no)
    assert arrives(fed, PROV_A, shop.uscc, no) == city
    assert arrives(fed, MINISTRY, shop.uscc, no) == city
    # a Nanjing car repaired in Nanjing: nothing for province B, nor back to the city
    assert outbox_peers(fed, MINISTRY, shop.uscc, no) == []
    assert outbox_peers(fed, PROV_A, shop.uscc, no) == [MINISTRY]


def test_province_records_of_the_citys_cars_appear_in_the_city(fed):
    shop = Shop(fed, PROV_A, "320500")  # a Suzhou shop, on the provincial system
    nanjing_car = shop.upload("苏A8K123")["settlement_no"]
    suzhou_car = shop.upload("苏E12345")["settlement_no"]
    assert arrives(fed, CITY_A, shop.uscc, nanjing_car) == versions_of(fed, PROV_A, shop.uscc, nanjing_car)
    assert outbox_peers(fed, PROV_A, shop.uscc, suzhou_car) == [MINISTRY]
    assert versions_of(fed, CITY_A, shop.uscc, suzhou_car) == []


def test_a_repair_in_province_b_reaches_the_home_province_through_the_ministry(fed):
    shop = Shop(fed, PROV_B, "330100")  # Hangzhou
    vin = make_vin()
    no = shop.upload("苏A5B678", vin=vin)["settlement_no"]
    origin = versions_of(fed, PROV_B, shop.uscc, no)
    assert arrives(fed, MINISTRY, shop.uscc, no) == origin
    assert arrives(fed, PROV_A, shop.uscc, no) == origin
    assert arrives(fed, CITY_A, shop.uscc, no) == origin  # 苏A: Nanjing's car, so on to the city too
    # in province A's file of the car, as a live record with where it was first uploaded
    rows = query(
        fed,
        PROV_A,
        """SELECT r.status, v.origin_region, v.source FROM repair_record r
                 JOIN record_version v ON v.record_id = r.id AND v.version = r.current_version
                 WHERE r.vin = :vin""",
        vin=vin,
    )
    assert [tuple(r) for r in rows] == [("active", "330000", "exchange")]


def test_an_unplated_car_goes_home_to_the_province_that_first_reported_it(fed):
    vin = make_vin()
    home = Shop(fed, PROV_A, "320500")
    first = home.upload(None, vin=vin)["settlement_no"]
    arrives(fed, MINISTRY, home.uscc, first)
    away = Shop(fed, PROV_B, "330100")
    no = away.upload(None, vin=vin)["settlement_no"]
    assert arrives(fed, PROV_A, away.uscc, no) == versions_of(fed, PROV_B, away.uscc, no)
    assert (
        query(fed, MINISTRY, "SELECT region_code FROM exchange_vin_home WHERE vin = :v", v=vin)[0][0]
        == "320000"
    )


def test_corrections_and_withdrawals_follow_the_record(fed):
    shop = Shop(fed, CITY_A, "320102")
    rec = shop.upload("苏A0C001")
    no = rec["settlement_no"]
    rec["fault_description"] = "发动机异响，更换正时皮带"
    shop.batch([rec])
    shop.withdraw(no)
    city = versions_of(fed, CITY_A, shop.uscc, no)
    assert [v for v, _ in city] == [1, 2, 3] and city[2][1] == "withdrawn:3"
    assert arrives(fed, MINISTRY, shop.uscc, no, versions=3) == city
    status = query(
        fed,
        MINISTRY,
        "SELECT r.status, r.current_version FROM repair_record r JOIN enterprise e"
        " ON e.id = r.enterprise_id WHERE e.uscc = :u AND r.settlement_no = :s",
        u=shop.uscc,
        s=no,
    )
    assert [tuple(r) for r in status] == [("withdrawn", 3)]


def test_statistics_are_reported_upward_on_schedule(fed):
    shop = Shop(fed, CITY_A, "320102")
    shop.upload("苏A0S001")

    def reported(node, sender):
        return query(
            fed,
            node,
            "SELECT sum(records) FROM exchange_statistics WHERE sender = :s AND region_code = '320102'",
            s=sender,
        )[0][0]

    wait_until(lambda: reported(PROV_A, CITY_A), 180, "city statistics at the province")
    # the province reports its jurisdiction, the city's uploads included
    wait_until(lambda: reported(MINISTRY, PROV_A), 180, "province statistics at the ministry")
    assert not query(fed, PROV_B, "SELECT 1 FROM exchange_statistics")


def test_an_upload_in_the_national_format_travels_like_any_other(fed):
    import uuid

    from tests.app.test_api_national import call, record_info, register

    vin, costlist = make_vin(), "CL-" + uuid.uuid4().hex[:10].upper()
    with fed.client() as c:
        c.base_url = fed.nodes[CITY_A].url
        _, token = register(c, licence=lambda row: fed.nodes[CITY_A].import_roster([row]))
        assert call(c, "carhealth/record", record_info(token, vin, costlist=costlist))["code"] == "1"
    uscc = query(
        fed,
        CITY_A,
        "SELECT e.uscc FROM repair_record r JOIN enterprise e ON e.id = r.enterprise_id WHERE r.vin = :v",
        v=vin,
    )[0][0]
    # no amounts in this format: the receiving province validates it as the national door does
    assert arrives(fed, PROV_A, uscc, costlist) == versions_of(fed, CITY_A, uscc, costlist)
