"""Backups of the centralized (集中式) deployment: WAL archiving, full backups in both encrypted
repositories (the site's MinIO and the offsite host lb1), the freshness metric, the attachments
mirror, and restore drills — the latest point, a point in time between two uploads, and a drill
against a deliberately corrupted copy of the offsite repository, which must fail loudly. The real
repositories are never touched: test_9_convergence runs after this module."""

import json
import subprocess
import time
from pathlib import Path

import pytest

from pbox.paths import REPO
from tests.lab import deploy_checks as checks
from tests.lab.centralized.conftest import BIN, PROFILE
from tests.lab.conftest import host_run

STANZA = "pbox"
REPO2 = "/var/lib/pgbackrest"
TEXTFILE = "/var/lib/prometheus/node-exporter/pbox_backup.prom"


def psql(host, sql: str, db: str = "postgres") -> str:
    return host_run(host, "sudo", "-u", "postgres", "psql", "-d", db, "-Atc", sql)


def backup_info(host, *args: str) -> dict:
    """pgBackRest's view of the stanza from `host` (JSON of `info`)."""
    out = host_run(host, "sudo", "-u", "postgres", "pgbackrest", f"--stanza={STANZA}", *args, "--output=json",
                   "info")
    return json.loads(out)[0]


def drill(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], dict | None]:
    report = tmp_path / f"drill-{time.monotonic_ns()}.json"
    r = subprocess.run([str(BIN / "pbox"), "drill", "--report", str(report), *args], capture_output=True,
                       text=True, cwd=REPO, check=False, timeout=1800)
    return r, json.loads(report.read_text()) if report.is_file() else None


def test_wal_archiving_works(centralized):
    db1 = centralized.prof.host("db1")
    segment = psql(db1, "SELECT pg_walfile_name(pg_switch_wal())")
    archived = f"SELECT last_archived_wal >= '{segment}' FROM pg_stat_archiver"
    checks.wait_for(lambda: psql(db1, archived) == "t", 120, f"WAL segment {segment} archived")
    assert psql(db1, "SELECT archived_count > 0, failed_count FROM pg_stat_archiver") == "t|0"
    assert psql(db1, "SHOW archive_command") == f"pgbackrest --stanza={STANZA} archive-push %p"


def test_full_backup_in_both_encrypted_repositories(centralized):
    prof = centralized.prof
    db1, lb1 = prof.host("db1"), prof.host("lb1")
    info = backup_info(db1)
    assert info["status"]["code"] == 0, info["status"]
    assert {r["key"] for r in info["repo"] if r["status"]["code"] == 0} == {1, 2}, info["repo"]
    assert info["cipher"] == "aes-256-cbc"
    fulls = {b["database"]["repo-key"] for b in info["backup"] if b["type"] == "full" and not b.get("error")}
    assert fulls == {1, 2}, info["backup"]
    # repo2 lives on the offsite host, encrypted at rest (OpenSSL's salted header, no plain text).
    head = host_run(lb1, "sudo", "head", "-c", "8", f"{REPO2}/backup/{STANZA}/backup.info")
    assert head == "Salted__", head
    # Freshness for node_exporter: repo1 from the primary, repo2 from the offsite host.
    for host, repo in ((db1, 1), (lb1, 2)):
        prom = host_run(host, "cat", TEXTFILE)
        series = f'pbox_backup_last_success_timestamp_seconds{{stanza="{STANZA}",type="full",repo="{repo}"}}'
        line = next((ln for ln in prom.splitlines() if ln.startswith(series)), None)
        assert line, prom
        assert abs(float(line.split()[-1]) - time.time()) < 6 * 3600, line


def test_backup_timers_scheduled(centralized):
    prof = centralized.prof
    expected = {"db1": ["pbox-backup-repo1-full", "pbox-backup-repo1-diff", "pbox-backup-repo1-incr"],
                "lb1": ["pbox-backup-repo2-full", "pbox-backup-repo2-diff", "pbox-attachments-mirror",
                        "pbox-backup-metrics"]}
    for name, timers in expected.items():
        host = prof.host(name)
        for timer in timers:
            state = [host_run(host, "systemctl", verb, f"{timer}.timer", check=False)
                     for verb in ("is-active", "is-enabled")]
            assert state == ["active", "enabled"], (name, timer, state)


def test_attachments_mirrored_offsite(centralized):
    prof = centralized.prof
    db1, lb1 = prof.host("db1"), prof.host("lb1")
    rows = psql(db1, "SELECT object_key || ' ' || sha256 FROM attachment ORDER BY id", db="pbox").splitlines()
    assert rows, "test_1_site uploads an attachment before this module"
    host_run(lb1, "sudo", "systemctl", "start", "pbox-attachments-mirror.service")
    for row in rows:
        key, sha = row.split()
        got = host_run(lb1, "sudo", "sha256sum", f"/var/lib/pbox-mirror/{STANZA}/pbox-attachments/{key}")
        assert got.split()[0] == sha, (key, got)


def test_restore_drill_latest_passes(centralized, tmp_path):
    lb = centralized.prof.host("lb1")
    checks.smoke(str(lb.address), PROFILE)  # data written just before the drill must be restored too
    r, report = drill(tmp_path)
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-3000:]
    assert "restore drill passed" in r.stdout
    assert report and report["ok"], report
    assert report["target"] == "latest" and report["repo"] == 1
    assert report["restored"]["versions"] == report["source"]["versions"] > 0
    assert report["restored"]["days"] == report["source"]["days"]
    assert report["restore_seconds"] > 0 and report["rpo_seconds"] is not None
    assert "current" in report["app"]["schema"] and report["app"]["readyz"]["checks"]["database"] is True
    print(f"\nrestore drill (latest, repo1): restore {report['restore_seconds']} s, "
          f"RPO {report['rpo_seconds']} s")


def test_point_in_time_restore_from_offsite_restores_exactly_the_earlier_upload(centralized, tmp_path):
    prof = centralized.prof
    db1, lb = prof.host("db1"), prof.host("lb1")
    first = checks.smoke(str(lb.address), PROFILE)["record_id"]
    time.sleep(1.5)
    target = psql(db1, "SELECT now()::text")
    time.sleep(1.5)
    second = checks.smoke(str(lb.address), PROFILE)["record_id"]
    received = psql(db1, f"SELECT id, current_received_at <= '{target}'::timestamptz FROM repair_record "
                         f"WHERE id IN ({first}, {second}) ORDER BY id", db="pbox")
    assert received.splitlines() == [f"{first}|t", f"{second}|f"], received
    r, report = drill(tmp_path, "--repo", "2", "--target-time", target)
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-3000:]
    assert report and report["ok"], report
    assert report["repo"] == 2 and report["target"] == target
    # Restored: every version up to the target (the first upload), none after it (the second).
    assert report["restored"]["versions"] == report["source"]["versions"]
    assert report["restored"]["versions_after"] == 0
    newest_first = psql(db1, f"SELECT current_received_at::text FROM repair_record WHERE id = {first}",
                        db="pbox")
    assert report["restored"]["newest"] == newest_first
    print(f"\npoint-in-time drill (repo2): restore {report['restore_seconds']} s")


@pytest.fixture
def corrupted_repo_copy(centralized):
    """A copy of the offsite repository with one data file of the newest full backup damaged;
    the real repository is left as it was."""
    lb1 = centralized.prof.host("lb1")
    copy = "/var/lib/pgbackrest-drill-corrupt"
    host_run(lb1, "sudo", "rm", "-rf", copy)
    host_run(lb1, "sudo", "cp", "-a", REPO2, copy)
    latest = host_run(lb1, "sudo", "readlink", f"{copy}/backup/{STANZA}/latest")
    base = f"{copy}/backup/{STANZA}/{latest}/pg_data/base"
    biggest = f"find {base} -type f -size +16k -printf '%s %p\\n' | sort -n | tail -1 | cut -d' ' -f2"
    victim = host_run(lb1, "sudo", "sh", "-c", biggest)
    assert victim, "no data file to corrupt"
    before = host_run(lb1, "sudo", "sha256sum", victim).split()[0]
    flip = ("import sys; p = sys.argv[1]; b = bytearray(open(p, 'rb').read()); m = len(b) // 2; "
            "b[m:m + 64] = bytes(x ^ 0xFF for x in b[m:m + 64]); open(p, 'wb').write(b)")
    host_run(lb1, "sudo", "python3", "-c", flip, victim)
    assert host_run(lb1, "sudo", "sha256sum", victim).split()[0] != before
    yield copy
    host_run(lb1, "sudo", "rm", "-rf", copy)


def test_drill_against_a_corrupted_backup_fails_loudly(centralized, corrupted_repo_copy, tmp_path):
    r, report = drill(tmp_path, "--repo", "2", "--repo-path", corrupted_repo_copy)
    assert r.returncode != 0, r.stdout[-4000:]
    assert "RESTORE DRILL FAILED" in r.stderr, r.stderr[-3000:]
    assert "restore failed" in r.stderr and "ERROR: [" in r.stderr, r.stderr[-3000:]  # pgBackRest's own error
    assert report is not None and report["ok"] is False and report["restored"] == {}
    # The real offsite repository is intact.
    db1 = centralized.prof.host("db1")
    assert backup_info(db1, "--repo=2")["status"]["code"] == 0


def test_textfile_metric_is_well_formed(centralized):
    from prometheus_client.parser import text_string_to_metric_families

    prom = host_run(centralized.prof.host("lb1"), "cat", TEXTFILE)
    names = {f.name for f in text_string_to_metric_families(prom)}
    assert {"pbox_backup_last_success_timestamp_seconds", "pbox_backup_info_ok"} <= names, prom
