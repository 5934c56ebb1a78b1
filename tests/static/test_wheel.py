"""What an app server installs (issue 23): the wheel holds the application and the operator CLI, never
the test and benchmark helpers (tests/support: throwaway PostgreSQL, MinIO, federation, samples).

Built for real from a copy of the sources (a build in the tree would leave build/lib behind, whose
stale modules a later wheel could pick up)."""

import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

from setuptools import find_packages

REPO = Path(__file__).resolve().parents[2]


def discovered() -> list[str]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    find = config["tool"]["setuptools"]["packages"]["find"]
    return find_packages(str(REPO), include=find["include"], exclude=find.get("exclude", ()))


def test_package_discovery_finds_only_the_app_and_pbox():
    packages = discovered()
    assert "app" in packages and "pbox" in packages
    assert all(p.split(".")[0] in {"app", "pbox"} for p in packages), packages
    assert not [p for p in packages if "devtools" in p or "support" in p.split(".")], packages


def test_the_built_wheel_holds_no_test_helpers(tmp_path: Path):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("app", "pbox"):
        shutil.copytree(REPO / name, src / name, ignore=ignore)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"), str(src)],
        check=True,
        timeout=300,
    )
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"app", "pbox"}, tops
    assert not [n for n in names if n.startswith(("app/devtools/", "tests/", "bench/"))]
    assert "app/main.py" in names and "pbox/cli.py" in names
