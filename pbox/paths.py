"""Where pbox keeps things on the controller.

Caches (base image, built artifacts) outlive any clone of the repository, so CI and later runs
reuse them; the lab's runtime state is thrown away by `pbox lab down`.
"""

import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("PBOX_CACHE", "/var/cache/pbox"))
LAB_STATE = Path(os.environ.get("PBOX_LAB_STATE", "/var/lib/pbox/lab"))
ARTIFACTS = CACHE / "artifacts"
INVENTORIES = REPO / "inventories"
LAB_INVENTORY = INVENTORIES / "lab"
PLAYBOOKS = REPO / "playbooks"
