"""Lookup `pbox_site_hosts`: the hosts of inventory groups that belong to this host's site.

`query('pbox_site_hosts', 'app')` replaces the filter once pasted in every role,
`groups['app'] | select('in', groups[pbox_site_group | default('all')]) | list`.
"""

from typing import Any

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

DOCUMENTATION = """
name: pbox_site_hosts
short_description: the hosts of inventory groups that are in this host's site
description:
  - The hosts of the named groups, in inventory order and without repeats, that are also in the
    site group. The site group is the one named by C(pbox_site_group) (C(all) when it is unset,
    i.e. a profile with one site).
  - A group the inventory does not have counts as empty; a site group it does not have is an error
    (a misspelt site must not widen who is trusted, e.g. in pg_hba).
options:
  _terms:
    description: inventory group names
    required: true
  site:
    description: the site group, instead of the host's pbox_site_group
    type: str
"""

EXAMPLES = """
app_db_host: "{{ query('pbox_site_hosts', 'postgresql_primary') | first }}"
backup_pg_hosts: "{{ query('pbox_site_hosts', 'postgresql_primary', 'postgresql_replica') }}"
"""

RETURN = """
_raw:
  description: host names
  type: list
  elements: str
"""


def site_hosts(groups: dict[str, list[str]], names: list[str], site: str) -> list[str]:
    """The hosts of `names` (in that order, each once) that are in the group `site`."""
    if site not in groups:
        raise AnsibleLookupError(f"pbox_site_hosts: the site group {site!r} is not in the inventory")
    members = set(groups[site])
    hosts: list[str] = []
    for name in names:
        hosts.extend(h for h in groups.get(name, []) if h in members and h not in hosts)
    return hosts


class LookupModule(LookupBase):
    def run(self, terms: list[str], variables: dict[str, Any] | None = None, **kwargs: Any) -> list[str]:
        variables = variables or {}
        site = kwargs.get("site") or variables.get("pbox_site_group") or "all"
        if "{{" in str(site) and self._templar is not None:
            site = self._templar.template(site)
        return site_hosts(variables.get("groups", {}), [str(t) for t in terms], str(site))
