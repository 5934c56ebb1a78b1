"""Artifacts with no Debian package, built once on the controller and cached outside any clone.

The first is the MinIO server: the community edition ships no binaries any more, so it is built
from source with `go install -trimpath` at a pinned revision. The cache holds the binary and its
sha256 (in `sha256sum` format, so a host that fetches both can check with `sha256sum -c`); the
sum is verified on every reuse and a missing or wrong one means a rebuild. Builds happen in a
temporary directory and are renamed into place, under a lock, so a crash or two concurrent
callers never leave a half-written binary behind.
"""

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pbox import paths

Progress = Callable[[str], None]

MINIO_MODULE = "github.com/minio/minio"
# The newest commit the Go module proxy serves as @latest (2026-02-12): the community edition's
# maintenance commit, which carries security fixes made after the last release tag.
MINIO_VERSION = "v0.0.0-20260212201848-7aac2a2c5b7c"
MINIO_FILENAME = f"minio-{MINIO_VERSION.removeprefix('v0.0.0-')}"
GO_FALLBACK = Path("/usr/local/go/bin/go")
BUILD_TIMEOUT = 3600  # a cold build (module download + compile) takes minutes on 2 cores


class ArtifactError(RuntimeError):
    """An artifact could not be built (no Go toolchain, build failure)."""


@dataclass(frozen=True)
class Artifact:
    path: Path
    sha256: str

    @property
    def name(self) -> str:
        return self.path.name


def _quiet(_: str) -> None:
    pass


def artifacts_dir() -> Path:
    # Read at call time, so tests (and callers) can point pbox.paths.ARTIFACTS elsewhere.
    return paths.ARTIFACTS


def minio_path() -> Path:
    return artifacts_dir() / MINIO_FILENAME


def sha256_path(binary: Path) -> Path:
    return binary.with_name(binary.name + ".sha256")


def file_sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def write_sha256(binary: Path, digest: str | None = None) -> str:
    """Record the binary's sha256 beside it (atomically); return the digest."""
    digest = digest or file_sha256(binary)
    target = sha256_path(binary)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(f"{digest}  {binary.name}\n", encoding="utf-8")
    tmp.replace(target)
    return digest


def recorded_sha256(binary: Path) -> str | None:
    try:
        text = sha256_path(binary).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    fields = text.split()
    if len(fields) != 2 or fields[1] != binary.name or len(fields[0]) != 64:
        return None
    return fields[0].lower()


def verified(binary: Path) -> Artifact | None:
    """The cached artifact if it exists and matches its recorded sha256, else None."""
    want = recorded_sha256(binary)
    if want is None or not binary.is_file():
        return None
    got = file_sha256(binary)
    return Artifact(binary, got) if got == want else None


@contextlib.contextmanager
def _locked(directory: Path, name: str) -> Iterator[None]:
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / f".{name}.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def go_binary() -> Path:
    found = shutil.which("go")
    if found:
        return Path(found)
    if GO_FALLBACK.is_file():
        return GO_FALLBACK
    raise ArtifactError("no Go toolchain: `go` is not on PATH and /usr/local/go/bin/go is missing")


def _go_env(gobin: Path) -> dict[str, str]:
    env = dict(os.environ)
    flags = env.get("GOFLAGS", "")
    if "-buildvcs" not in flags:
        flags = f"{flags} -buildvcs=false".strip()  # module builds have no VCS checkout to stamp
    env.update(GOBIN=str(gobin), CGO_ENABLED="0", GOFLAGS=flags)
    return env


def _run_go(args: list[str], cwd: Path, env: dict[str, str], log: Path) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(go_binary()), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=BUILD_TIMEOUT, check=False)
    with log.open("a", encoding="utf-8") as f:
        f.write(f"$ go {' '.join(args)}\n{proc.stdout}{proc.stderr}\n")
    return proc


def build_minio_into(work: Path, progress: Progress = _quiet) -> Path:
    """Build the pinned MinIO server into `work`; return the binary's path."""
    gobin = work / "bin"
    gobin.mkdir()
    env = _go_env(gobin)
    log = work / "build.log"
    target = f"{MINIO_MODULE}@{MINIO_VERSION}"
    progress(f"building MinIO {MINIO_VERSION} with go install (several minutes the first time)")
    proc = _run_go(["install", "-trimpath", target], work, env, log)
    binary = gobin / "minio"
    if proc.returncode != 0:
        if "directives" not in proc.stderr:
            raise ArtifactError(f"go install {target} failed:\n{proc.stderr.strip()[-3000:]}")
        # `go install pkg@version` refuses modules whose go.mod has replace directives: build it
        # as a dependency of a throwaway module instead (its replaces are then ignored likewise).
        progress("go install refused the module; building from a temporary module instead")
        mod = work / "mod"
        mod.mkdir()
        for args in (["mod", "init", "pbox.local/minio-build"], ["get", target],
                     ["build", "-trimpath", "-o", str(binary), MINIO_MODULE]):
            proc = _run_go(args, mod, env, log)
            if proc.returncode != 0:
                raise ArtifactError(f"go {' '.join(args)} failed:\n{proc.stderr.strip()[-3000:]}")
    if not binary.is_file():
        raise ArtifactError(f"the MinIO build produced no binary; see {log}")
    return binary


def ensure_minio_artifact(progress: Progress | None = None) -> Artifact:
    """The cached MinIO server and its sha256, building it the first time."""
    progress = progress or _quiet
    dest = minio_path()
    cached = verified(dest)
    if cached:
        return cached
    directory = dest.parent
    with _locked(directory, "minio"):
        cached = verified(dest)  # another process may have built it while we waited for the lock
        if cached:
            return cached
        work = Path(tempfile.mkdtemp(prefix=".build-minio-", dir=directory))
        try:
            binary = build_minio_into(work, progress)
            digest = file_sha256(binary)
            binary.chmod(0o755)
            # Binary first, then its sum: a crash in between leaves no sum, so the next run rebuilds.
            sha256_path(dest).unlink(missing_ok=True)
            binary.replace(dest)
            write_sha256(dest, digest)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    progress(f"MinIO built: {dest} (sha256 {digest[:16]}…)")
    return Artifact(dest, digest)


def ensure_minio(progress: Progress | None = None) -> Path:
    """Path of the cached MinIO server binary, building it the first time."""
    return ensure_minio_artifact(progress).path


def minio_sha256() -> str:
    """sha256 of the cached MinIO server binary (building it if needed)."""
    return ensure_minio_artifact().sha256


def cli_build(progress: Progress | None = None) -> None:
    """What `pbox artifacts build` runs: every artifact, built or verified."""
    art = ensure_minio_artifact(progress or print)
    (progress or print)(f"{art.path}  sha256 {art.sha256}")
