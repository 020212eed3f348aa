# Copyright (c) 2025 picluster.swarm developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: swarm_members
short_description: The swarm members registered in Consul
version_added: 0.1.0
description:
  - Returns the swarm members that nodes announce in Consul, one dictionary per member with the same fields as
    RV(picluster.swarm.swarm_members#module:members).
  - Runs on the controller, with two HTTP requests to Consul per call.
author:
  - picluster.swarm developers (@picluster)
extends_documentation_fragment:
  - picluster.swarm.consul
  - picluster.swarm.consul.plugin
  - picluster.swarm.membership
  - picluster.swarm.membership.read
options:
  _terms:
    description:
      - States to return (V(alive), V(expiring), V(expired)).
      - Without terms, the live members (V(alive) and V(expiring)).
    type: list
    elements: str
    required: false
"""

EXAMPLES = r"""
- name: Addresses of the live members
  ansible.builtin.debug:
    msg: "{{ query('picluster.swarm.swarm_members', host='10.0.0.10') | map(attribute='address') | list }}"

- name: Every member, expired ones included
  ansible.builtin.debug:
    msg: "{{ query('picluster.swarm.swarm_members', 'alive', 'expiring', 'expired') }}"
"""

RETURN = r"""
_list:
  description: Members, sorted by address (see M(picluster.swarm.swarm_members) for the fields).
  type: list
  elements: dict
"""

from ansible.errors import AnsibleError, AnsibleOptionsError
from ansible.plugins.lookup import LookupBase
from ansible_collections.picluster.swarm.plugins.module_utils._consul import ConsulError, client_from_options
from ansible_collections.picluster.swarm.plugins.module_utils._membership import (
    STATES,
    filter_states,
    read_membership,
)

DEFAULT_STATES = ["alive", "expiring"]


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        states = [str(t) for t in terms or []] or DEFAULT_STATES
        unknown = sorted(set(states) - set(STATES))
        if unknown:
            raise AnsibleOptionsError(
                f"swarm_members lookup: unknown state(s) {', '.join(unknown)}; use {', '.join(STATES)}"
            )
        try:
            client = client_from_options(self.get_option)
            members, _invalid = read_membership(client, self.get_option("prefix"), self.get_option("expiring_fraction"))
        except (ConsulError, ValueError) as exc:
            raise AnsibleError(f"swarm_members lookup: {exc}") from None
        return filter_states(members, states)
