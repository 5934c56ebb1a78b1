"""`pbox deploy --tags configure` must run every configuration task (issue 23 item 5). A role's parts are
imported with their tags (install, configure, service), which imported tasks inherit; a dynamic include
(include_tasks, include_role) does not pass its own tags to the tasks inside it (tests/unit/
test_include_tags.py shows it), so under --tags those tasks would be skipped silently. Every include
therefore applies `always` to what it includes (whether the include runs is decided by its own or
inherited tags; once it runs, all of its tasks do), or applies its component's tag to a file whose
every task carries its own part's tag (the monitoring role)."""

from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
INCLUDES = ("ansible.builtin.include_tasks", "ansible.builtin.include_role")


def _tasks(items: list[dict]) -> list[dict]:
    found = []
    for task in items or []:
        found.append(task)
        for key in ("block", "rescue", "always"):
            found += _tasks(task.get(key))
    return found


def _task_lists(path: Path) -> list[list[dict]]:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    if path.parent.name == "tasks":
        return [data]
    return [play.get(section) or [] for play in data for section in ("pre_tasks", "tasks", "post_tasks")]


def _every_task_tagged(path: Path) -> bool:
    parts = {"install", "configure", "service", "always"}
    return all(parts & set(t.get("tags") or []) for t in _tasks(_task_lists(path)[0]))


def test_every_dynamic_include_applies_its_tasks_always():
    files = sorted(REPO.glob("roles/*/tasks/*.yml")) + sorted(REPO.glob("playbooks/*.yml"))
    missing = []
    for path in files:
        for tasks in _task_lists(path):
            for task in _tasks(tasks):
                for module in INCLUDES:
                    if module not in task:
                        continue
                    args = task[module]
                    tags = (args.get("apply") or {}).get("tags") if isinstance(args, dict) else None
                    if "always" in (tags or []):
                        continue
                    target = path.parent / args.get("file", "") if module.endswith("include_tasks") else None
                    if not tags or target is None or not _every_task_tagged(target):
                        missing.append(f"{path.relative_to(REPO)}: {task.get('name')}")
    assert len(files) > 40 and not missing, missing


def test_every_role_imports_its_parts_with_tags():
    for main in sorted(REPO.glob("roles/*/tasks/main.yml")):
        role = main.parent.parent.name
        for task in yaml.safe_load(main.read_text(encoding="utf-8")):
            tags = task.get("tags") or []
            assert tags == ["always"] or any(t.startswith(f"{role}_") for t in tags), (role, task.get("name"))
