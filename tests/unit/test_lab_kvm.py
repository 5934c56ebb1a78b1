"""KVM lab hosts, the parts that need no root and no qemu: MACs, networkd config, qemu's argv."""

import ipaddress
import os
import subprocess
from pathlib import Path

import pytest

from pbox import paths
from pbox.lab import kvm
from pbox.lab.profile import LabHost


def host(name="k1", addr="10.213.0.104", mem=1024):
    return LabHost(name, ipaddress.IPv4Address(addr), ("kvm",), "kvm", mem)


@pytest.fixture
def image(tmp_path):
    return kvm.KvmImage(tmp_path / "vmlinuz", tmp_path / "initrd.img", tmp_path / "disk.raw", "6.1.0-1-amd64")


def test_mac_is_stable_local_and_unique_per_address():
    assert kvm.mac_address(host()) == "52:54:00:d5:00:68"
    assert kvm.mac_address(host()) == kvm.mac_address(host(name="other"))
    macs = {kvm.mac_address(host(addr=f"10.213.0.{i}")) for i in range(2, 255)}
    assert len(macs) == 253


def test_network_unit_matches_mac_and_sets_only_the_lab_address():
    unit = kvm.network_unit(host())
    assert "MACAddress=52:54:00:d5:00:68" in unit
    assert "Address=10.213.0.104/24" in unit
    assert "Gateway" not in unit and "DNS" not in unit  # nothing leaves the lab


def arg_after(argv, flag):
    return argv[argv.index(flag) + 1]


def test_qemu_argv_with_kvm(image, tmp_path):
    state = tmp_path / "state"
    argv = kvm.qemu_argv(host(mem=1536), image, state, kvm=True, cpus=2)
    assert argv[0] == "qemu-system-x86_64"
    assert arg_after(argv, "-accel") == "kvm"
    assert arg_after(argv, "-cpu") == "host,-arch-capabilities"
    assert arg_after(argv, "-m") == "1536"
    assert arg_after(argv, "-smp") == "2"
    assert arg_after(argv, "-kernel") == str(image.kernel)
    assert arg_after(argv, "-initrd") == str(image.initrd)
    append = arg_after(argv, "-append")
    assert "root=/dev/vda" in append and "console=ttyS0,115200" in append
    drive = arg_after(argv, "-drive")
    assert drive.startswith(f"file={state / 'disk.raw'},format=raw,if=virtio")
    assert arg_after(argv, "-netdev") == f"tap,id=lab,ifname={host().link},script=no,downscript=no"
    assert "mac=52:54:00:d5:00:68" in argv[argv.index("-netdev") + 3]
    assert arg_after(argv, "-serial") == f"file:{state / 'console.log'}"
    assert arg_after(argv, "-display") == "none"
    assert "-daemonize" in argv
    assert arg_after(argv, "-pidfile") == str(state / "qemu.pid")
    # No image path is read from the base: the guest never writes to the shared base disk.
    assert str(image.disk) not in " ".join(argv)


def test_qemu_argv_without_kvm_uses_tcg(image, tmp_path):
    argv = kvm.qemu_argv(host(), image, tmp_path, kvm=False)
    assert arg_after(argv, "-accel").startswith("tcg")
    assert arg_after(argv, "-cpu") == "max"


def test_kvm_usable_needs_hardware_kvm(tmp_path):
    assert not kvm.kvm_usable(dev=tmp_path / "no-such-kvm")
    mods = tmp_path / "modules"
    (mods / "kvm_pvm").mkdir(parents=True)  # pagetable-based KVM emulates a stock kernel: too slow
    assert not kvm.kvm_usable(modules=mods)


@pytest.mark.parametrize(("env", "usable", "want"), [
    ("auto", True, True), ("auto", False, False), ("kvm", False, True), ("tcg", True, False)])
def test_choose_accel(monkeypatch, env, usable, want):
    monkeypatch.setenv("PBOX_KVM_ACCEL", env)
    monkeypatch.setattr(kvm, "kvm_usable", lambda: usable)
    assert kvm.choose_accel() is want


def test_choose_accel_rejects_nonsense(monkeypatch):
    monkeypatch.setenv("PBOX_KVM_ACCEL", "xen")
    with pytest.raises(kvm.KvmError):
        kvm.choose_accel()


def test_image_dir_is_keyed_by_base_and_cached_outside_the_clone(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "CACHE", tmp_path / "cache")
    a = kvm.image_dir(tmp_path / "base-a" / "rootfs")
    b = kvm.image_dir(tmp_path / "base-b" / "rootfs")
    assert a != b and a.parent == b.parent == tmp_path / "cache" / "lab"
    assert a == kvm.image_dir(tmp_path / "base-a" / "rootfs")


def test_cached_image_is_used_only_when_complete(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "CACHE", tmp_path / "cache")
    base = tmp_path / "base"
    d = kvm.image_dir(base)
    d.mkdir(parents=True)
    for name in ("vmlinuz", "initrd.img", "disk.raw"):
        (d / name).write_bytes(b"x")
    assert kvm._load_image(d) is None  # no .complete: a build that did not finish
    (d / ".complete").write_text("6.1.0-1-amd64\n")
    img = kvm.prepare_kvm_image(base)  # a cache hit: nothing is built
    assert img == kvm.KvmImage(d / "vmlinuz", d / "initrd.img", d / "disk.raw", "6.1.0-1-amd64")
    (d / "disk.raw").unlink()
    assert kvm._load_image(d) is None


def test_stop_guest_never_signals_a_pid_that_is_not_qemu(tmp_path):
    other = subprocess.Popen(["sleep", "30"])
    try:
        (tmp_path / "qemu.pid").write_text(str(other.pid))
        kvm.stop_guest(other.pid, tmp_path, timeout=1)
        assert other.poll() is None
        assert not (tmp_path / "qemu.pid").exists()
    finally:
        other.kill()
        other.wait()


def test_prepare_disk_keeps_an_existing_disk(tmp_path, image):
    (tmp_path / "disk.raw").write_bytes(b"already personalised")
    called: list[Path] = []
    assert kvm.prepare_disk(host(), image, tmp_path, called.append) == tmp_path / "disk.raw"
    assert called == []


def test_base_rebuilt_in_place_gets_a_new_image(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "CACHE", tmp_path / "cache")
    base = tmp_path / "base-x"
    (base / "rootfs").mkdir(parents=True)
    (base / ".complete").write_text("bookworm\n")
    first = kvm.image_dir(base / "rootfs")
    stamp = base / ".complete"
    st = stamp.stat()
    os.utime(stamp, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert kvm.image_dir(base / "rootfs") != first
