"""Controller side of the app role: the application wheel and its dependencies' wheels, cached.

Prints one JSON line: release (hash of the sources), wheel (path), deps_dir, deps_key. The wheel is
built once per source hash under CACHE/app-<release>/; the dependency wheels are downloaded once per
requirements hash under CACHE/deps-<key>/ (for the hosts' Python, the controller's own version), so
hosts install with `pip --no-index --find-links` and never need an index.
"""

import fcntl
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path


def source_hash(repo: Path) -> str:
    h = hashlib.sha256(Path(__file__).read_bytes())  # a change in how it is built is a new release
    files = [repo / "pyproject.toml", *sorted(p for p in (repo / "app").rglob("*") if p.is_file()
                                             and "__pycache__" not in p.parts)]
    for f in files:
        h.update(str(f.relative_to(repo)).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def stage_sources(repo: Path, staging: Path) -> Path:
    """A clean copy of what the wheel is made of. Building in the checkout would reuse its build/
    directory, where setuptools keeps files deleted or renamed since (a stale migration there gave
    Alembic two heads on the hosts)."""
    src = staging / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(repo / name, src / name)
    for pkg in ("app", "pbox"):
        shutil.copytree(repo / pkg, src / pkg, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return src


def build_wheel(repo: Path, dest: Path) -> None:
    with tempfile.TemporaryDirectory() as staging:
        src = stage_sources(repo, Path(staging))
        subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                        "-w", str(dest), str(src)], check=True, stdout=sys.stderr, cwd=src)


def main() -> None:
    repo, cache = Path(sys.argv[1]).resolve(), Path(sys.argv[2])
    cache.mkdir(parents=True, exist_ok=True)
    # Two deploys at once (two labs, two profiles) must not build into each other's temp dirs.
    with (cache / ".build.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        build(repo, cache)


def build(repo: Path, cache: Path) -> None:
    deps = tomllib.loads((repo / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    key = hashlib.sha256("\n".join(sorted(deps)).encode()).hexdigest()[:16]
    deps_dir = cache / f"deps-{key}"
    if not (deps_dir / ".complete").exists():
        deps_dir.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:",
                        "-d", str(deps_dir), *deps], check=True, stdout=sys.stderr)
        (deps_dir / ".complete").write_text("\n".join(deps) + "\n", encoding="utf-8")
    release = source_hash(repo)
    rel_dir = cache / f"app-{release}"
    wheels = sorted(rel_dir.glob("*.whl"))
    if not wheels:
        tmp = cache / f".app-{release}.tmp"
        subprocess.run(["rm", "-rf", str(tmp)], check=True)
        build_wheel(repo, tmp)
        tmp.rename(rel_dir)
        wheels = sorted(rel_dir.glob("*.whl"))
    out = {"release": release, "wheel": str(wheels[0]), "deps_dir": str(deps_dir), "deps_key": key}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
