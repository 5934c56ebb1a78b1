#!/usr/bin/python3
"""Backup freshness for node_exporter's textfile collector, from `pgbackrest info`.

Writes, for each repository given and each backup type found there:
    pbox_backup_last_success_timestamp_seconds{stanza, type, repo}  stop time of the newest good backup
plus pbox_backup_info_ok{stanza, repo} (0 when pgBackRest could not read the repository). The file
is replaced atomically, so the collector never reads half of it. Runs pgBackRest as postgres.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def info(config: str, stanza: str, repo: str) -> list[dict] | None:
    argv = ["/usr/bin/pgbackrest", f"--config={config}", f"--stanza={stanza}", f"--repo={repo}",
            "--log-level-file=off", "--log-level-console=off", "--output=json", "info"]
    if os.geteuid() == 0:
        argv = ["/usr/sbin/runuser", "-u", "postgres", "--", *argv]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
    if r.returncode != 0:
        return None
    stanzas = json.loads(r.stdout)
    if not stanzas or stanzas[0].get("status", {}).get("code") not in (0, 2):  # 2: no backups yet
        return None
    return [b for b in stanzas[0].get("backup", []) if not b.get("error")]


def render(stanza: str, sources: list[tuple[str, str]]) -> str:
    lines = [
        "# HELP pbox_backup_last_success_timestamp_seconds Stop time of the newest good pgBackRest backup.",
        "# TYPE pbox_backup_last_success_timestamp_seconds gauge",
    ]
    ok_lines = [
        "# HELP pbox_backup_info_ok Whether pgBackRest could read the repository (1) or not (0).",
        "# TYPE pbox_backup_info_ok gauge",
    ]
    for repo, config in sources:
        backups = info(config, stanza, repo)
        labels = f'stanza="{stanza}",repo="{repo}"'
        ok_lines.append(f"pbox_backup_info_ok{{{labels}}} {0 if backups is None else 1}")
        newest: dict[str, int] = {}
        for b in backups or []:
            newest[b["type"]] = max(newest.get(b["type"], 0), int(b["timestamp"]["stop"]))
        for kind, stop in sorted(newest.items()):
            lines.append(f'pbox_backup_last_success_timestamp_seconds{{stanza="{stanza}",type="{kind}",'
                         f'repo="{repo}"}} {stop}')
    ok_lines.append(f"pbox_backup_metrics_updated_timestamp_seconds {int(time.time())}")
    return "\n".join(lines + ok_lines) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--stanza", required=True)
    p.add_argument("--source", action="append", default=[], metavar="REPO=CONFIG",
                   help="a repository number and the pgBackRest configuration that reaches it")
    p.add_argument("--out", required=True)
    args = p.parse_args()
    sources = [tuple(s.split("=", 1)) for s in args.source]
    text = render(args.stanza, sources)  # type: ignore[arg-type]
    out = Path(args.out)
    fd, name = tempfile.mkstemp(dir=out.parent, prefix=".pbox_backup.")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    tmp = Path(name)
    tmp.chmod(0o644)
    tmp.replace(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
