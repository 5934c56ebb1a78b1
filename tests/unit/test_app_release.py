"""The app role's controller-side build (roles/app/files/build_release.py): the wheel holds exactly
the sources of the checkout, whatever an earlier build left in it."""

import importlib.util
import shutil
import zipfile

from pbox.paths import REPO

MIGRATIONS = "app/db/migrations/versions"


def load_build_release():
    spec = importlib.util.spec_from_file_location("build_release", REPO / "roles/app/files/build_release.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_wheel_ignores_a_stale_build_directory(tmp_path):
    repo = tmp_path / "checkout"
    repo.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, repo / name)
    for pkg in ("app", "pbox"):
        shutil.copytree(REPO / pkg, repo / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    # What setuptools leaves behind after a migration was renamed: the old file under build/lib.
    stale = repo / "build/lib" / MIGRATIONS / "0003_renamed_since.py"
    stale.parent.mkdir(parents=True)
    stale.write_text('revision = "0003"\ndown_revision = "0002"\n', encoding="utf-8")
    load_build_release().build_wheel(repo, tmp_path / "out")
    (wheel,) = (tmp_path / "out").glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    shipped = {n.rsplit("/", 1)[1] for n in names if n.startswith(MIGRATIONS + "/") and n.endswith(".py")}
    assert shipped == {p.name for p in (REPO / MIGRATIONS).glob("*.py")}
    assert not (repo / "build/lib" / MIGRATIONS / "0001_core.py").exists()  # the checkout is untouched
