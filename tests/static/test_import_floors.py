"""The application's floors (issue 23): every module of app/ lives on one floor and imports only from
its own floor or the ones below it, never back up. docs/architecture.md echoes this order.

Read with ast from the source (the editable install may point at another checkout), every import
counted, those inside functions too.
"""

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
APP = REPO / "app"

# Lowest first. A module belongs to the floor of the longest prefix that names it.
FLOORS: list[tuple[str, ...]] = [
    ("app.domain", "app.settings", "app.logs"),  # value types and validators, configuration, logging
    ("app.db", "app.storage"),  # PostgreSQL models and sessions, the object store
    ("app.security",),  # passwords, tokens, RBAC, the audit log, field and message crypto
    ("app.node",),  # this node in the exchange: peers and routes (value types and ports)
    ("app.runtime",),  # what a process holds: settings, db, object store, keys, the node
    ("app.services",),  # the business rules, the outbox written in the change's transaction, reads
    ("app.exchange",),  # relay, inbox, reconciliation, exchange statistics and admin, the worker loop
    ("app.api", "app.web"),  # the two doors: JSON API and portal pages
    # entry points: one module per systemd unit or command; migrations are run by app-migrate
    ("app.main", "app.server", "app.worker", "app.admin", "app.db.migrations", "app"),
]


def floor_of(module: str) -> int:
    best, floor = -1, None
    for i, prefixes in enumerate(FLOORS):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and len(p) > best:
                best, floor = len(p), i
    assert floor is not None, f"{module} is on no floor: add it to FLOORS"
    return floor


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_module(name: str) -> bool:
    path = REPO / name.replace(".", "/")
    return path.with_suffix(".py").exists() or path.is_dir()


def imports(path: Path) -> list[tuple[str, list[str], int]]:
    """(module imported, names imported from it, line) for every import in the file."""
    me = module_name(path)
    package = me.split(".") if path.name == "__init__.py" else me.split(".")[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(a.name, [], node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package[: len(package) - (node.level - 1)]
                base = ".".join([*up, base] if base else up)
            names = [a.name for a in node.names]
            found.append((base, names, node.lineno))
            # `from app.services import reads` imports the module app.services.reads
            found += [(f"{base}.{n}", [], node.lineno) for n in names if is_module(f"{base}.{n}")]
    return found


def app_modules() -> list[Path]:
    return sorted(APP.rglob("*.py"))


def test_every_module_is_on_a_floor():
    for path in app_modules():
        floor_of(module_name(path))


def test_no_import_runs_back_up_the_floors():
    upward = []
    for path in app_modules():
        me = module_name(path)
        for target, _, line in imports(path):
            if target == "app" or not target.startswith("app."):
                continue
            if floor_of(target) > floor_of(me):
                upward.append(f"{path.relative_to(REPO)}:{line} {me} → {target}")
    assert not upward, "imports running back up the floors:\n" + "\n".join(upward)


def test_no_private_name_is_imported_from_another_module():
    private = []
    for path in app_modules():
        for target, names, line in imports(path):
            if target.startswith("app"):
                where = f"{path.relative_to(REPO)}:{line} {target}"
                private += [f"{where}.{n}" for n in names if n.startswith("_")]
    assert not private, "private names used outside their module:\n" + "\n".join(private)


def test_the_app_imports_nothing_of_pbox_or_the_tests():
    """The operator CLI and the test helpers are not part of what an app server installs."""
    found = [
        f"{path.relative_to(REPO)}:{line} {target}"
        for path in app_modules()
        for target, _, line in imports(path)
        if target.split(".")[0] in {"pbox", "tests", "bench"}
    ]
    assert not found, "\n".join(found)


def defines_a_router(module: str) -> bool:
    path = REPO / (module.replace(".", "/") + ".py")
    if not path.exists():
        return False
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return any(
        isinstance(n, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "router" for t in n.targets)
        for n in tree.body
    )


def test_the_portal_imports_no_api_router():
    """One service call per user action: what both doors need is in services or app.api.deps /
    app.api.http, never in the other door's endpoints."""
    found = [
        f"{path.relative_to(REPO)}:{line} {target}"
        for path in sorted((APP / "web").rglob("*.py"))
        for target, _, line in imports(path)
        if target.startswith("app.api") and defines_a_router(target)
    ]
    assert not found, "\n".join(found)


def test_the_architecture_doc_names_the_floors_in_this_order():
    text = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    positions = [text.find(f"`{prefixes[0]}`") for prefixes in FLOORS]
    assert all(p >= 0 for p in positions), "docs/architecture.md names every floor by its first module"
    assert positions == sorted(positions), "docs/architecture.md lists the floors in FLOORS' order"
