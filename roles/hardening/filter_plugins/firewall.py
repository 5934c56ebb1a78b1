"""pbox_firewall_rules: resolve the firewall catalog into one host's rules.

The catalog maps an inventory group to the ports its hosts listen on and who may connect
(groups, `admin`, `any`, or addresses). The same function gives the nftables template its rules
and `pbox audit` its expected values, so both always agree.
"""

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any

ANY = "any"
ADMIN = "admin"


def _address(name: str, hostvars: Mapping[str, Any]) -> str:
    host = hostvars.get(name, {}) if hasattr(hostvars, "get") else {}
    return str(host.get("ansible_host", name) if hasattr(host, "get") else name)


def _is_address(word: str) -> bool:
    try:
        ipaddress.ip_network(word, strict=False)
    except ValueError:
        return False
    return True


def _sources(
    spec: Iterable[str],
    entry: Mapping[str, Any],
    groups: Mapping[str, list[str]],
    hostvars: Mapping[str, Any],
    admin_networks: list[str],
    site_hosts: list[str],
) -> list[str]:
    found: list[str] = []
    for word in spec:
        if word == ANY:
            return [ANY]
        if word == ADMIN:
            found += [str(n) for n in admin_networks]
        elif _is_address(word):
            found.append(word)
        elif word in groups:
            members = groups[word] if entry.get("any_site") else [h for h in groups[word] if h in site_hosts]
            found += [_address(h, hostvars) for h in members]
        # A group with no hosts in this inventory (e.g. backup in a small site) adds no source.
    return sorted(set(found), key=lambda a: (":" in a, a))


def firewall_rules(
    catalog: Mapping[str, list[Mapping[str, Any]]],
    group_names: list[str],
    groups: Mapping[str, list[str]],
    hostvars: Mapping[str, Any],
    admin_networks: list[str],
    site_hosts: list[str],
) -> list[dict[str, Any]]:
    """One rule per (name, port, proto) this host opens, with its allowed sources (or ['any'])."""
    rules: dict[tuple[str, int, str], dict[str, Any]] = {}
    for group in ["all", *group_names]:
        for entry in catalog.get(group) or []:
            key = (str(entry["name"]), int(entry["port"]), str(entry.get("proto", "tcp")))
            sources = _sources(entry.get("from") or [], entry, groups, hostvars, admin_networks, site_hosts)
            rule = rules.setdefault(key, {"name": key[0], "port": key[1], "proto": key[2], "from": []})
            if ANY in sources or ANY in rule["from"]:
                rule["from"] = [ANY]
            else:
                rule["from"] = sorted(set(rule["from"]) | set(sources), key=lambda a: (":" in a, a))
    return sorted(rules.values(), key=lambda r: (r["port"], r["proto"], r["name"]))


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"pbox_firewall_rules": firewall_rules}
