"""The controller's own Debian package sources, read from its apt configuration.

Lab hosts (and the base image) use exactly the mirror the controller uses, never a hard-coded one.
Only the sources for the controller's own Debian release are taken: third-party repositories
(node, cloud SDKs, ...) are none of the lab's business.
"""

import re
from dataclasses import dataclass
from pathlib import Path

APT_DIR = Path("/etc/apt")


@dataclass(frozen=True)
class AptSource:
    uri: str
    suites: tuple[str, ...]
    components: tuple[str, ...]

    def deb822(self) -> str:
        return (f"Types: deb\nURIs: {self.uri}\nSuites: {' '.join(self.suites)}\n"
                f"Components: {' '.join(self.components)}\n"
                "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n")


def codename(os_release: Path = Path("/etc/os-release")) -> str:
    m = re.search(r"^VERSION_CODENAME=\"?(\w+)", os_release.read_text(encoding="utf-8"), re.M)
    if not m:
        raise RuntimeError(f"cannot tell the Debian release from {os_release}")
    return m.group(1)


def _deb822_entries(text: str) -> list[dict[str, str]]:
    entries = []
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if line.startswith("#") or ":" not in line or line[0].isspace():
                continue
            key, _, value = line.partition(":")
            fields[key.strip().lower()] = value.strip()
        if fields:
            entries.append(fields)
    return entries


def _one_line_entries(text: str) -> list[dict[str, str]]:
    entries = []
    for line in text.splitlines():
        # "deb [options] uri suite components…", comments and options dropped
        words = re.sub(r"\[[^\]]*\]", "", line.split("#", 1)[0]).split()
        if len(words) >= 3 and words[0] == "deb":
            entries.append({"types": "deb", "uris": words[1], "suites": words[2],
                            "components": " ".join(words[3:])})
    return entries


def debian_sources(apt_dir: Path = APT_DIR, release: str | None = None) -> list[AptSource]:
    """The `deb` sources of the controller for its own release (bookworm, bookworm-updates, ...)."""
    release = release or codename()
    raw: list[dict[str, str]] = []
    for f in sorted([apt_dir / "sources.list", *(apt_dir / "sources.list.d").glob("*")]):
        if not f.is_file():
            continue
        text = f.read_text(encoding="utf-8", errors="replace")
        raw += _deb822_entries(text) if f.suffix == ".sources" else _one_line_entries(text)
    out: list[AptSource] = []
    for e in raw:
        if "deb" not in e.get("types", "").split() or e.get("enabled", "yes").lower() == "no":
            continue
        suites = tuple(s for s in e.get("suites", "").split() if s == release or s.startswith(release + "-"))
        if not suites:
            continue
        for uri in e.get("uris", "").split():
            out.append(AptSource(uri.rstrip("/"), suites, tuple(e.get("components", "main").split())))
    if not out:
        raise RuntimeError(f"no Debian '{release}' source found in {apt_dir}: configure apt first")
    return out


def main_mirror(sources: list[AptSource], release: str) -> AptSource:
    """The source carrying the release itself (not -updates/-security): what debootstrap uses."""
    for s in sources:
        if release in s.suites:
            return s
    raise RuntimeError(f"no apt source carries the release {release!r} itself")
