"""The artifact cache: sha256 recorded beside the binary, verified on reuse, rebuilt when wrong.

No Go build here: the builder is replaced by one that writes a small fake binary.
"""

import hashlib
from pathlib import Path

import pytest

from pbox import artifacts, paths


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "ARTIFACTS", tmp_path / "artifacts")
    return tmp_path / "artifacts"


@pytest.fixture
def builds(monkeypatch):
    """Count builds; each writes a fake binary whose content says which build made it."""
    calls: list[Path] = []

    def fake_build(work: Path, progress) -> Path:
        calls.append(work)
        out = work / "bin" / "minio"
        out.parent.mkdir()
        out.write_bytes(f"fake minio build {len(calls)}\n".encode())
        return out

    monkeypatch.setattr(artifacts, "build_minio_into", fake_build)
    return calls


def test_first_call_builds_and_records_sha256(cache, builds):
    path = artifacts.ensure_minio()
    assert path == cache / artifacts.MINIO_FILENAME
    assert len(builds) == 1
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    # sha256sum format, so a host can check the pair with `sha256sum -c`.
    assert artifacts.sha256_path(path).read_text() == f"{digest}  {path.name}\n"
    assert artifacts.minio_sha256() == digest
    assert path.stat().st_mode & 0o111
    # The temporary build directory is gone; only the binary, its sum and the lock remain.
    assert sorted(p.name for p in cache.iterdir()) == sorted(
        [path.name, f"{path.name}.sha256", ".minio.lock"])


def test_cache_hit_does_not_rebuild(cache, builds):
    first = artifacts.ensure_minio_artifact()
    second = artifacts.ensure_minio_artifact()
    assert first == second
    assert len(builds) == 1


def test_planted_binary_with_matching_sum_is_reused(cache, builds):
    cache.mkdir()
    binary = cache / artifacts.MINIO_FILENAME
    binary.write_bytes(b"planted")
    artifacts.write_sha256(binary)
    assert artifacts.ensure_minio() == binary
    assert binary.read_bytes() == b"planted"
    assert builds == []


@pytest.mark.parametrize("damage", ["no-sum", "wrong-sum", "tampered-binary", "garbled-sum"])
def test_damaged_cache_is_rebuilt(cache, builds, damage):
    binary = artifacts.ensure_minio()
    sums = artifacts.sha256_path(binary)
    if damage == "no-sum":
        sums.unlink()
    elif damage == "wrong-sum":
        sums.write_text(f"{'0' * 64}  {binary.name}\n")
    elif damage == "tampered-binary":
        binary.write_bytes(b"tampered")
    else:
        sums.write_text("not a sum\n")
    assert artifacts.verified(binary) is None
    art = artifacts.ensure_minio_artifact()
    assert len(builds) == 2
    assert art.path.read_bytes() == b"fake minio build 2\n"
    assert artifacts.verified(binary) == art


def test_failed_build_leaves_nothing_behind(cache, monkeypatch):
    def broken_build(work: Path, progress) -> Path:
        (work / "half-written").write_bytes(b"x")
        raise artifacts.ArtifactError("boom")

    monkeypatch.setattr(artifacts, "build_minio_into", broken_build)
    with pytest.raises(artifacts.ArtifactError):
        artifacts.ensure_minio()
    assert [p.name for p in cache.iterdir()] == [".minio.lock"]


def test_progress_is_reported(cache, builds):
    seen: list[str] = []
    artifacts.ensure_minio(seen.append)
    assert any("MinIO built" in m for m in seen)


def test_go_env_keeps_flags_and_disables_cgo(tmp_path, monkeypatch):
    monkeypatch.setenv("GOFLAGS", "-mod=mod")
    env = artifacts._go_env(tmp_path)
    assert env["CGO_ENABLED"] == "0"
    assert env["GOBIN"] == str(tmp_path)
    assert env["GOFLAGS"] == "-mod=mod -buildvcs=false"
