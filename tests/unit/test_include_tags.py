"""What tests/static/test_role_tags.py relies on, shown with Ansible itself: under `--tags configure` the
tasks of a dynamic include whose tags are its own (not inherited from an import around it: the playbooks'
include_role steps, monitoring's components) run only when the include applies a tag to them."""

import subprocess
import sys
from pathlib import Path

import pytest

TASKS = {
    "main.yml": (
        "- name: Included with apply\n  ansible.builtin.include_tasks:\n    file: inner.yml\n"
        "    apply:\n      tags: [always]\n  tags: [configure]\n"
        "- name: Included without apply\n  ansible.builtin.include_tasks: bare.yml\n  tags: [configure]\n"
    ),
    "inner.yml": "- name: MARK-APPLIED\n  ansible.builtin.debug:\n    msg: applied\n",
    "bare.yml": "- name: MARK-BARE\n  ansible.builtin.debug:\n    msg: bare\n",
}


@pytest.fixture
def playbook(tmp_path: Path) -> Path:
    tasks = tmp_path / "roles/demo/tasks"
    tasks.mkdir(parents=True)
    for name, text in TASKS.items():
        (tasks / name).write_text("---\n" + text, encoding="utf-8")
    play = tmp_path / "play.yml"
    play.write_text("---\n- name: Demo\n  hosts: localhost\n  gather_facts: false\n  roles: [demo]\n")
    return play


def test_only_an_applied_tag_reaches_a_dynamic_include_under_tags(playbook: Path):
    ansible = Path(sys.executable).with_name("ansible-playbook")
    r = subprocess.run(
        [str(ansible), "-i", "localhost,", "-c", "local", str(playbook), "--tags", "configure"],
        capture_output=True, text=True, check=False, cwd=playbook.parent, timeout=300,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "MARK-APPLIED" in r.stdout, r.stdout
    assert "MARK-BARE" not in r.stdout, r.stdout  # the silent skip the static test prevents
