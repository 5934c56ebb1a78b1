"""`make test-lab` runs tests/lab in two lanes named in the Makefile: each lab test file must be in
exactly one lane, or it would silently not run (or run twice, deploying its profile twice)."""

import re

from pbox.paths import REPO


def lanes() -> dict[str, list[str]]:
    text = (REPO / "Makefile").read_text(encoding="utf-8")
    return {m[1]: m[2].split() for m in re.finditer(r"^(LAB_LANE_\d+) := (.+)$", text, re.MULTILINE)}


def files_of(entry: str) -> set[str]:
    path = REPO / entry
    found = path.rglob("test_*.py") if path.is_dir() else [path]
    return {str(p.relative_to(REPO)) for p in found}


def test_every_lab_test_file_is_in_exactly_one_lane():
    named = lanes()
    assert len(named) == 2, named
    per_lane = [set().union(*(files_of(e) for e in entries)) for entries in named.values()]
    every = {str(p.relative_to(REPO)) for p in (REPO / "tests/lab").rglob("test_*.py")}
    assert per_lane[0] | per_lane[1] == every
    assert not per_lane[0] & per_lane[1]
    for entries in named.values():
        assert all((REPO / e).exists() for e in entries), entries
