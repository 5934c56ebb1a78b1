import json
import logging

from app.logs import JsonFormatter, request_id
from app.settings import Settings


def test_json_log_lines_carry_the_request_id_and_extras():
    token = request_id.set("req-42")
    try:
        rec = logging.makeLogRecord(
            {"msg": "上传 %s", "args": ("ok",), "levelname": "INFO", "name": "t", "status": 200}
        )
        line = json.loads(JsonFormatter().format(rec))
    finally:
        request_id.reset(token)
    assert line["msg"] == "上传 ok" and line["request_id"] == "req-42" and line["status"] == 200
    assert line["level"] == "INFO" and line["ts"].endswith("+00:00")


def test_settings_from_env_and_toml(monkeypatch, tmp_path):
    cfg = tmp_path / "pbox.toml"
    cfg.write_text('node_role = "city"\nregion_code = "320100"\ns3_bucket = "from-file"\n', encoding="utf-8")
    monkeypatch.setenv("PBOX_CONFIG", str(cfg))
    monkeypatch.setenv("PBOX_S3_BUCKET", "from-env")
    s = Settings()
    assert (s.node_role, s.region_code, s.s3_bucket) == ("city", "320100", "from-env")  # env wins over file
