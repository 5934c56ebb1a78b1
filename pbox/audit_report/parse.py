"""Pure parsers of what hosts print: configuration files, `sshd -T`, the nftables ruleset."""

import ipaddress
import re

_NFT_RULE = re.compile(r"^\s*(?:(ip6?) saddr (\{[^}]*\}|\S+)\s+)?(tcp|udp) dport (\d+) accept\b")
_NFT_POLICY = re.compile(r"type filter hook input priority \S+; policy (\w+);")


def key_values(text: str, sep: str | None = None) -> dict[str, str]:
    """`key = value`, `key value` or a bare `flag` per line; comments and blanks skipped; the first
    occurrence wins (as sshd reads its configuration). Keys are lower-cased."""
    found: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if sep and sep in line:
            key, value = (p.strip() for p in line.split(sep, 1))
        else:
            key, value = ([*line.split(None, 1), ""])[:2]
            value = value.strip()
        found.setdefault(key.lower(), value)
    return found


def nft_input(ruleset: str) -> tuple[str, dict[tuple[int, str], set[str]]]:
    """The input chain's policy and, per (port, proto), the sources it accepts ('any' if any).
    Reads `nft list ruleset` text; only the input chain of our table is considered."""
    policy = ""
    accepted: dict[tuple[int, str], set[str]] = {}
    in_input = False
    for line in ruleset.splitlines():
        stripped = line.strip()
        if stripped.startswith("chain "):
            in_input = stripped.split()[1] == "input"
            continue
        if not in_input:
            continue
        m = _NFT_POLICY.search(stripped)
        if m:
            policy = m.group(1)
            continue
        m = _NFT_RULE.match(stripped)
        if m:
            _family, saddr, proto, port = m.groups()
            key = (int(port), proto)
            if saddr is None:
                accepted.setdefault(key, set()).add("any")
            else:
                accepted.setdefault(key, set()).update(
                    a.strip() for a in saddr.strip("{} ").split(",") if a.strip()
                )
    return policy, accepted


def normalize_source(address: str) -> str:
    """nft prints a /32 (or /128) network as the bare address."""
    return re.sub(r"/(32|128)$", "", address.strip())


def canonical_sources(sources: set[str]) -> set[str]:
    """The addresses a set of sources covers, as the fewest networks: nft merges neighbouring
    addresses of a set into ranges (`10.0.0.10-10.0.0.12`), the catalog lists them one by one.
    `any` and anything that is not an address stay as they are."""
    nets: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    other = set()
    for raw in sources:
        s = raw.strip()
        try:
            if "-" in s:
                first, last = (ipaddress.ip_address(a.strip()) for a in s.split("-", 1))
                nets.extend(ipaddress.summarize_address_range(first, last))
            else:
                nets.append(ipaddress.ip_network(s, strict=False))
        except ValueError:
            other.add(s)
    merged = [*ipaddress.collapse_addresses(n for n in nets if n.version == 4),
              *ipaddress.collapse_addresses(n for n in nets if n.version == 6)]
    return other | {normalize_source(str(n)) for n in merged}


def logrotate_days(text: str) -> int:
    """Days a logrotate block keeps: rotate count × period (the first block's)."""
    period = {"daily": 1, "weekly": 7, "monthly": 30, "yearly": 365}
    days, count = 7, 0
    for raw in text.splitlines():
        words = raw.split()
        if not words:
            continue
        if words[0] in period:
            days = period[words[0]]
        elif words[0] == "rotate" and len(words) > 1 and words[1].isdigit():
            count = int(words[1])
    return days * count


def pam_module_args(text: str, module: str) -> dict[str, str] | None:
    """The arguments of the first line using a PAM module (`remember=5` → {'remember': '5'})."""
    for raw in text.splitlines():
        line = raw.split("#", 1)[0]
        if module in line.split():
            args = line.split(module, 1)[1].split()
            return {a.split("=", 1)[0]: (a.split("=", 1)[1] if "=" in a else "") for a in args}
    return None
