"""`pbox import`: which app host of a site runs the import, and how pbox reaches it (the inventory's
SSH settings). The copy and the remote run are the lab's (tests/lab)."""

import textwrap

import pytest

from pbox import importer

INVENTORY = textwrap.dedent("""
    all:
      vars:
        ansible_user: pboxadmin
        ansible_ssh_private_key_file: /keys/lab
        ansible_ssh_common_args: -o UserKnownHostsFile=/keys/known_hosts
      children:
        site_nanjing:
          hosts:
            nj-app2: {ansible_host: 10.0.1.12}
            nj-app1: {ansible_host: 10.0.1.11, ansible_port: 2222}
            nj-db1: {ansible_host: 10.0.1.21}
        site_suzhou:
          hosts:
            sz-db1: {ansible_host: 10.0.2.21}
        app:
          hosts:
            nj-app1:
            nj-app2:
    """)


@pytest.fixture
def inventory(tmp_path):
    path = tmp_path / "hosts.yml"
    path.write_text(INVENTORY)
    return path


def test_a_site_group_is_run_on_its_first_app_host_over_the_inventorys_ssh(inventory):
    t = importer.resolve(inventory, "site_nanjing")
    assert t.host == "nj-app1" and t.app_user == "pbox-app"
    assert t.ssh == ["ssh", "-o", "BatchMode=yes", "-i", "/keys/lab", "-p", "2222",
                     "-o", "UserKnownHostsFile=/keys/known_hosts", "pboxadmin@10.0.1.11"]
    assert importer.resolve(inventory, "nj-app2").ssh[-1] == "pboxadmin@10.0.1.12"


@pytest.mark.parametrize(("target", "why"), [("nj-db1", "neither"), ("site_suzhou", "no host of group"),
                                             ("site_nowhere", "neither")])
def test_targets_without_an_app_host_are_refused(inventory, target, why):
    with pytest.raises(importer.ImportTargetError, match=why):
        importer.resolve(inventory, target)


def test_the_remote_file_is_named_by_content(tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text("x\n")
    b.write_text("y\n")
    assert importer.remote_name(a) != importer.remote_name(b).replace("b.csv", "a.csv")
    assert importer.remote_name(a).startswith(importer.REMOTE_DIR + "/")
