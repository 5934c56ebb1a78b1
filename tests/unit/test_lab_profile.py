"""Lab profiles: parsing, validation, and the inventory they become."""

import ipaddress
import os
import subprocess
from pathlib import Path

import pytest

from pbox.lab import container, inventory
from pbox.lab.network_plan import place
from pbox.lab.profile import ProfileError, load_profile, parse_profile


def host(addr: str, **kw):
    return {"address": addr, "groups": ["app"], **kw}


def test_centralized_keeps_the_production_topology():
    prof = load_profile("centralized")
    groups = {g for h in prof.hosts for g in h.groups}
    assert {"loadbalancer", "app", "postgresql_primary", "postgresql_replica", "object_storage",
            "monitoring", "backup"} <= groups
    by_group = {g: [h.name for h in prof.hosts if g in h.groups] for g in groups}
    assert len(by_group["app"]) >= 2
    # DB primary and replica on different hosts; the load balancer is not an app server.
    assert set(by_group["postgresql_primary"]).isdisjoint(by_group["postgresql_replica"])
    assert set(by_group["loadbalancer"]).isdisjoint(by_group["app"])


@pytest.mark.parametrize("data, message", [
    (None, "non-empty mapping"),
    ({"hosts": {}}, "non-empty mapping"),
    ({"hosts": {"a": "x"}}, "must be a mapping"),
    ({"hosts": {"Bad_Name!": host("10.213.0.5")}}, "bad host name"),
    ({"hosts": {"averyverylonghostname": host("10.213.0.5")}}, "bad host name"),
    ({"hosts": {"a": {"groups": []}}}, "valid 'address'"),
    ({"hosts": {"a": host("192.168.1.5")}}, "outside"),
    ({"hosts": {"a": host("10.213.0.1")}}, "taken"),  # the controller's address
    ({"hosts": {"a": host("10.213.0.5"), "b": host("10.213.0.5")}}, "taken"),
    ({"hosts": {"a": host("10.213.0.5", kind="vm")}}, "kind"),
    ({"hosts": {"a": {"address": "10.213.0.5", "groups": "app"}}}, "list of names"),
    ({"hosts": {"a": host("10.213.0.5", data_dirs="/srv/minio")}}, "list of paths"),
    ({"hosts": {"a": host("10.213.0.5", data_dirs=["srv/minio"])}}, "clean absolute path"),
    ({"hosts": {"a": host("10.213.0.5", data_dirs=["/srv/../etc"])}}, "clean absolute path"),
    ({"hosts": {"a": host("10.213.0.5", data_dirs=["/"])}}, "clean absolute path"),
    ({"hosts": {"a": host("10.213.0.5", data_dirs=["/etc/minio"])}}, "clean absolute path"),
    ({"hosts": {"a": host("10.213.0.5", data_dirs=["/srv/a-b", "/srv/a/b"])}}, "duplicate"),
    ({"hosts": {"a": host("10.213.0.5", kind="kvm", data_dirs=["/srv/minio"])}}, "only containers"),
    ({"hosts": {"a": host("10.213.0.5", data_dirs=[{"path": "/srv/x", "size": "1T"}])}}, "like 512M or 2G"),
    ({"hosts": {"a": host("10.213.0.5", data_dirs=[{"path": "/srv/x", "size": "0M"}])}}, "like 512M or 2G"),
    ({"hosts": {"a": host("10.213.0.5", data_dirs=[{"path": "/srv/x"}])}}, "{path, size}"),
    ({"hosts": {"a": host("10.213.0.5", data_dirs=[{"path": "/etc/x", "size": "1G"}])}}, "clean absolute"),
])
def test_bad_profiles_are_refused(data, message):
    with pytest.raises(ProfileError, match=message):
        parse_profile("t", data)


def test_unknown_profile_names_the_known_ones():
    with pytest.raises(ProfileError, match=r"known: .*centralized"):
        load_profile("nope")


def test_inventory_has_groups_hosts_and_ssh_settings(tmp_path):
    prof = parse_profile("t", {"hosts": {"a": host("10.213.0.5"), "b": {**host("10.213.0.6"), "kind": "kvm",
                                                                         "groups": ["app", "db"]}}})
    inv = inventory.render(prof, Path("/k/id"), Path("/k/known"))["all"]
    # Profiles are written for slot 0; a lab in another slot (PBOX_LAB_SLOT) moves them.
    assert inv["hosts"]["a"]["ansible_host"] == str(place(ipaddress.IPv4Address("10.213.0.5")))
    assert inv["hosts"]["b"]["pbox_lab_kind"] == "kvm"
    assert set(inv["children"]["app"]["hosts"]) == {"a", "b"}
    assert set(inv["children"]["db"]["hosts"]) == {"b"}
    assert inv["vars"]["ansible_ssh_private_key_file"] == "/k/id"
    assert "StrictHostKeyChecking=yes" in inv["vars"]["ansible_ssh_common_args"]
    assert ipaddress.IPv4Address(inv["vars"]["pbox_apt_proxy"].split("//")[1].split(":")[0])


def test_data_dirs_are_bind_mounts_of_per_host_controller_directories(tmp_path):
    prof = parse_profile("t", {"hosts": {"a": host("10.213.0.5", data_dirs=["/srv/minio", "/var/lib/x"]),
                                         "b": host("10.213.0.6")}})
    a, b = prof.host("a"), prof.host("b")
    assert a.data_dirs == ("/srv/minio", "/var/lib/x") and b.data_dirs == ()
    argv = container.nspawn_argv(a, tmp_path / "root", tmp_path / "hosts/a")
    assert f"--bind={tmp_path}/hosts/a/data/srv-minio:/srv/minio" in argv
    assert f"--bind={tmp_path}/hosts/a/data/var-lib-x:/var/lib/x" in argv
    assert not [x for x in container.nspawn_argv(b, tmp_path / "root", tmp_path / "hosts/b")
                if x.startswith("--bind")]


def test_a_sized_data_dir_is_a_loop_mounted_disk_that_fills_up(tmp_path):
    disk = {"path": "/srv/d", "size": "64M"}
    prof = parse_profile("t", {"hosts": {"a": host("10.213.0.5", data_dirs=[disk])}})
    a = prof.host("a")
    assert a.data_dirs == ("/srv/d",) and a.disk_sizes == {"/srv/d": 64 << 20}
    src = container.data_dir_sources(a, tmp_path)["/srv/d"]
    src.mkdir(parents=True)
    container.mount_disk(tmp_path / "d.img", 64 << 20, src)
    try:
        assert container.is_mounted(src)
        st = os.statvfs(src)
        assert 50 << 20 < st.f_blocks * st.f_frsize <= 64 << 20
        with pytest.raises(OSError, match="No space left"):
            (src / "fill").write_bytes(b"\0" * (65 << 20))
    finally:
        subprocess.run(["umount", str(src)], check=True)
    assert (tmp_path / "d.img").stat().st_blocks * 512 < 64 << 20  # sparse on the controller


def test_centralized_object_storage_hosts_have_a_data_disk():
    """The distributed MinIO pool of the centralized lab: four hosts, each with its data mount."""
    prof = load_profile("centralized")
    storage = [h for h in prof.hosts if "object_storage" in h.groups]
    assert len(storage) == 4
    assert all("/srv/minio" in h.data_dirs for h in storage)
