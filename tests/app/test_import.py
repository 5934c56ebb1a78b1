"""`app-admin import`: historical records from CSV and JSON Lines, as a real process with the node's
settings (as `pbox-admin import` runs it), through the API's validation and idempotency; resumed
after a SIGKILL with no line twice and none skipped."""

import csv
import io
import json
import signal
import subprocess
import sys
import time
import uuid

import sqlalchemy as sa

from tests.app.conftest import Shop
from tests.app.test_processes import env_for
from tests.support.samples import make_record, make_vin


def app_admin(settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "app.admin", *args], env=env_for(settings),
                          capture_output=True, text=True, timeout=600, check=False)  # fmt: skip


def versions(engine, enterprise_id: int, prefix: str) -> dict[str, list[tuple[int, str]]]:
    """settlement number → [(version, source)] of an enterprise's records under a prefix."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT settlement_no, version, source FROM record_version WHERE enterprise_id = :e"
                    " AND settlement_no LIKE :p ORDER BY settlement_no, version"),
            {"e": enterprise_id, "p": prefix + "%"},
        ).all()  # fmt: skip
    out: dict[str, list[tuple[int, str]]] = {}
    for no, v, src in rows:
        out.setdefault(no, []).append((v, src))
    return out


def rejects_of(path) -> dict[int, str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "行号\t原因"
    return {int(n): why for n, why in (x.split("\t", 1) for x in lines[1:])}


def to_csv(records: list[dict]) -> str:
    """The documented flattening: one row per record, columns named by field path, lists as JSON."""
    vehicle = ("vin", "plate_no", "plate_colour", "brand", "model", "use_nature", "fuel_type")
    cols = ["settlement_no", *(f"vehicle.{k}" for k in vehicle), "repair_date", "settle_date", "mileage_km",
            "fault_description", "repair_type", "items", "parts",
            *(f"totals.{k}" for k in ("labour", "parts", "other", "total"))]  # fmt: skip
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["enterprise_uscc", *cols])
    for r in records:
        flat = {"enterprise_uscc": r.get("enterprise_uscc", "")}
        for c in cols:
            *parents, leaf = c.split(".")
            node = r
            for p in parents:
                node = node.get(p, {})
            v = node.get(leaf)
            if c in ("items", "parts"):
                v = json.dumps(v, ensure_ascii=False)
            flat[c] = "" if v is None else v
        w.writerow([flat["enterprise_uscc"], *(flat[c] for c in cols)])
    return buf.getvalue()


def test_jsonl_import_validates_like_the_api_dedups_against_it_and_writes_rejects(
    client, settings, engine, tmp_path
):
    shop = Shop(client)
    p = "IMP-" + uuid.uuid4().hex[:6].upper() + "-"
    uploaded = make_record(p + "A", make_vin())
    assert shop.upload(uploaded).json()["outcome"] == "created"
    changed = make_record(p + "B", make_vin(), mileage=10)
    assert shop.upload(changed).json()["outcome"] == "created"
    bad_vin = make_record(p + "C", make_vin())
    bad_vin["vehicle"]["vin"] = "LSVAM4188C2184847"
    lines = [
        json.dumps(uploaded, ensure_ascii=False),  # 1: already uploaded through the API: unchanged
        json.dumps({**changed, "mileage_km": 20}, ensure_ascii=False),  # 2: a correction: version 2
        json.dumps(make_record(p + "D", make_vin()), ensure_ascii=False),  # 3: new
        json.dumps(bad_vin, ensure_ascii=False),  # 4: refused as the API refuses it
        "{not json",  # 5
        "",  # blank lines are skipped
        json.dumps(make_record(p + "E", make_vin(), items=3, parts=2), ensure_ascii=False),  # 7: new
    ]
    f = tmp_path / "old-platform.jsonl"
    f.write_text("\n".join(lines) + "\n", encoding="utf-8")
    r = app_admin(settings, "import", str(f), "--enterprise", shop.profile["uscc"])
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "新增 2，更新 1，未变 1，拒绝 2" in r.stdout, r.stdout
    bad = rejects_of(tmp_path / "old-platform.jsonl.rejects.tsv")
    assert sorted(bad) == [4, 5] and "VIN_CHECK_DIGIT" in bad[4] and "JSON" in bad[5], bad
    got = versions(engine, shop.enterprise_id, p)
    assert got == {
        p + "A": [(1, "api")],
        p + "B": [(1, "api"), (2, "import")],
        p + "D": [(1, "import")],
        p + "E": [(1, "import")],
    }, got
    with engine.connect() as conn:
        last = "SELECT actor_kind, outcome, detail FROM audit.event WHERE action = 'records.import'"
        events = conn.execute(sa.text(last + " ORDER BY seq DESC LIMIT 1")).one()
    assert events.actor_kind == "operator" and events.outcome == "failure", events
    assert events.detail["created"] == 2 and events.detail["rejected"] == 2 and events.detail["finished"]
    # the same file again: already done, nothing new
    again = app_admin(settings, "import", str(f), "--enterprise", shop.profile["uscc"])
    assert "已导入完毕" in again.stdout and versions(engine, shop.enterprise_id, p) == got, again.stdout


def test_csv_from_a_migration_source_names_each_lines_enterprise(client, settings, engine, tmp_path):
    one, two = Shop(client), Shop(client)
    p = "MIG-" + uuid.uuid4().hex[:6].upper() + "-"
    recs = [
        {**make_record(p + "1", make_vin(), items=2, parts=3), "enterprise_uscc": one.profile["uscc"]},
        {**make_record(p + "2", make_vin(), fault="异响，\n怠速抖动"), "enterprise_uscc": two.profile["uscc"]},  # noqa: E501
        {**make_record(p + "3", make_vin()), "enterprise_uscc": "91320000MA0000000X"},  # not on the platform
        {**make_record(p + "4", make_vin()), "enterprise_uscc": ""},
        {**make_record(p + "5", make_vin()), "enterprise_uscc": two.profile["uscc"]},
    ]
    f = tmp_path / "city.csv"
    f.write_text(to_csv(recs), encoding="utf-8-sig")  # as spreadsheet programs save it
    r = app_admin(settings, "import", str(f), "--source", "nanjing-old", "--batch", "2")
    assert r.returncode == 1 and "拒绝 2" in r.stdout, (r.stdout, r.stderr)
    # line 1 is the header; record 2's fault description spans two lines (a quoted cell)
    bad = rejects_of(tmp_path / "city.csv.rejects.tsv")
    assert sorted(bad) == [5, 6] and "未在本平台登记" in bad[5] and "缺少" in bad[6], bad
    assert versions(engine, one.enterprise_id, p) == {p + "1": [(1, "import")]}
    assert versions(engine, two.enterprise_id, p) == {p + "2": [(1, "import")], p + "5": [(1, "import")]}
    got = one.client.get("/api/v1/collection/records", params={"settlement_no": p + "1"}, headers=one.headers)
    assert len(got.json()["latest"]["parts"]) == 3, got.text


def test_an_import_killed_midway_resumes_with_no_duplicate_and_no_gap(client, settings, engine, tmp_path):
    shop = Shop(client)
    p = "KILL-" + uuid.uuid4().hex[:6].upper() + "-"
    n = 3000
    f = tmp_path / "big.jsonl"
    f.write_text("".join(json.dumps(make_record(f"{p}{i:05d}", make_vin())) + "\n" for i in range(n)))
    cmd = [sys.executable, "-m", "app.admin", "import", str(f), "--enterprise", shop.profile["uscc"],
           "--batch", "50"]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env_for(settings), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    query = sa.text("SELECT line, finished_at FROM import_progress WHERE filename = 'big.jsonl'"
                    " AND attributed_to = :a")  # fmt: skip
    deadline = time.monotonic() + 300
    state = None
    while time.monotonic() < deadline and proc.poll() is None:
        with engine.connect() as conn:
            state = conn.execute(query, {"a": f"enterprise:{shop.profile['uscc']}"}).first()
        if state is not None and state.line >= 300:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    assert state is not None and state.finished_at is None and state.line < n, state
    stored = versions(engine, shop.enterprise_id, p)
    assert 300 <= len(stored) < n
    r = app_admin(settings, "import", str(f), "--enterprise", shop.profile["uscc"], "--batch", "500")
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert "继续" in r.stdout, r.stdout
    stored = versions(engine, shop.enterprise_id, p)
    assert sorted(stored) == [f"{p}{i:05d}" for i in range(n)]  # no gap
    assert all(v == [(1, "import")] for v in stored.values())  # no duplicate, no second version
    assert f"新增 {n}，更新 0，未变 0，拒绝 0" in r.stdout, r.stdout
