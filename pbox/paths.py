"""Where pbox keeps things on the controller.

Caches (base image, built artifacts) outlive any clone of the repository, so CI and later runs
reuse them; the lab's runtime state is thrown away by `pbox lab down`.
"""

import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# inventory and report templates of pbox itself (roles/*/templates are the roles')
TEMPLATES = Path(__file__).resolve().parent / "templates"
CACHE = Path(os.environ.get("PBOX_CACHE", "/var/cache/pbox"))
ARTIFACTS = CACHE / "artifacts"
INVENTORIES = REPO / "inventories"
PLAYBOOKS = REPO / "playbooks"

# Several labs can run side by side (e.g. two engineers on one machine), one per slot 0–9; each
# has its own subnet, bridge, names and state. Slot 0 is the default and what the docs describe.
LAB_SLOT = int(os.environ.get("PBOX_LAB_SLOT", "0"))
if not 0 <= LAB_SLOT <= 9:
    raise SystemExit(f"PBOX_LAB_SLOT must be 0–9, not {LAB_SLOT}")
_SUFFIX = str(LAB_SLOT) if LAB_SLOT else ""
LAB_STATE = Path(os.environ.get("PBOX_LAB_STATE", f"/var/lib/pbox/lab{_SUFFIX}"))
LAB_INVENTORY = INVENTORIES / f"lab{_SUFFIX}"
