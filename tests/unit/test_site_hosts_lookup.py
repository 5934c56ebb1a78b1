"""The `pbox_site_hosts` lookup (plugins/lookup): a group's hosts within this host's site."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
from ansible.errors import AnsibleLookupError

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("pbox_site_hosts", REPO / "plugins/lookup/pbox_site_hosts.py")
plugin = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(plugin)

GROUPS = {
    "all": ["db1", "db2", "app1", "app2", "gw-zj", "db-js", "app-js"],
    "site_zhejiang": ["db1", "db2", "app1", "app2", "gw-zj"],
    "site_jiangsu": ["db-js", "app-js"],
    "app": ["app-js", "app1", "app2"],
    "postgresql_primary": ["db-js", "db1"],
    "postgresql_replica": ["db2"],
}


def lookup(*terms, **kwargs):
    return plugin.LookupModule().run(list(terms), variables=kwargs.pop("variables"), **kwargs)


def test_the_groups_hosts_in_this_hosts_site_in_inventory_order():
    zj = {"groups": GROUPS, "pbox_site_group": "site_zhejiang"}
    assert lookup("app", variables=zj) == ["app1", "app2"]
    assert lookup("postgresql_primary", "postgresql_replica", variables=zj) == ["db1", "db2"]
    assert lookup("app", variables={"groups": GROUPS, "pbox_site_group": "site_jiangsu"}) == ["app-js"]


def test_one_site_is_every_host():
    assert lookup("app", variables={"groups": GROUPS}) == ["app-js", "app1", "app2"]
    one_site = {"groups": GROUPS, "pbox_site_group": "all"}
    assert lookup("app", "app", variables=one_site) == ["app-js", "app1", "app2"]


def test_an_explicit_site_wins_and_a_missing_group_is_empty():
    zj = {"groups": GROUPS, "pbox_site_group": "site_zhejiang"}
    assert lookup("app", variables=zj, site="site_jiangsu") == ["app-js"]
    assert lookup("vpn_gateway", variables=zj) == []


def test_a_site_the_inventory_lacks_is_an_error_not_every_host():
    with pytest.raises(AnsibleLookupError, match="site_shanghai"):
        lookup("app", variables={"groups": GROUPS, "pbox_site_group": "site_shanghai"})


def test_ansible_finds_it_through_ansible_cfg(tmp_path):
    """Roles and playbooks reach it by name: ansible.cfg points at plugins/lookup."""
    inv = tmp_path / "hosts.yml"
    inv.write_text("all:\n  vars: {pbox_site_group: site_a, ansible_connection: local}\n  children:\n"
                   "    site_a: {hosts: {h1: {}, h2: {}}}\n    site_b: {hosts: {h3: {}}}\n"
                   "    app: {hosts: {h3: {}, h2: {}}}\n")
    r = subprocess.run([str(Path(sys.executable).parent / "ansible"), "h1", "-i", str(inv), "-m", "debug",
                        "-a", "msg={{ query('pbox_site_hosts', 'app') }}"], cwd=REPO, capture_output=True,
                       text=True, check=False, timeout=120,
                       env={"ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stdout + r.stderr
    assert "msg:\n    - h2\n" in r.stdout, r.stdout  # h2 only: h3 is an app server of the other site
