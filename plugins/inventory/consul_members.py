# Copyright (c) 2025 picluster.swarm developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: consul_members
short_description: Inventory of the swarm members registered in Consul
version_added: 0.1.0
description:
  - Builds hosts from the swarm membership that nodes announce in Consul (C(<prefix>/<ip>:<port>), see
    M(picluster.swarm.swarm_members)), with C(ansible_host) set to the member's IP.
  - Every host is in C(swarm_members), in C(swarm_role_<role>) and in C(swarm_state_<state>) (V(alive), V(expiring) or
    V(expired)).
  - Host variables C(swarm_address), C(swarm_port), C(swarm_hostname), C(swarm_role), C(swarm_state),
    C(swarm_engine_version), C(swarm_labels), C(swarm_ttl), C(swarm_seconds_left), C(swarm_seconds_since_heartbeat),
    C(swarm_session) and C(swarm_key) can be used in O(compose), O(groups) and O(keyed_groups).
  - The inventory file name must end in C(consul_members.yml) or C(consul_members.yaml).
author:
  - picluster.swarm developers (@picluster)
extends_documentation_fragment:
  - constructed
  - picluster.swarm.consul
  - picluster.swarm.consul.plugin
  - picluster.swarm.membership
  - picluster.swarm.membership.read
options:
  plugin:
    description: The name of this plugin; must be V(picluster.swarm.consul_members).
    type: str
    required: true
    choices: [picluster.swarm.consul_members]
  include_expired:
    description:
      - Whether expired members become hosts (in C(swarm_state_expired)). They are kept by default so that a play can
        go and repair them; set V(false) to drop them.
    type: bool
    default: true
  hostnames:
    description:
      - What names the hosts. V(hostname) uses the host name the node announced (its address when it announced none, or
        when two members announced the same name); V(address) uses C(ip:port).
    type: str
    choices: [hostname, address]
    default: hostname
"""

EXAMPLES = r"""
# swarm.consul_members.yml
plugin: picluster.swarm.consul_members
host: 10.0.0.10
include_expired: false
keyed_groups:
  - key: swarm_labels.arch | default('unknown')
    prefix: arch
groups:
  swarm_managers: swarm_role == 'manager'
compose:
  ansible_user: "'pirate'"
"""

from ansible.errors import AnsibleError, AnsibleParserError
from ansible.inventory.group import to_safe_group_name
from ansible.plugins.inventory import BaseInventoryPlugin, Constructable
from ansible.utils.display import Display
from ansible_collections.picluster.swarm.plugins.module_utils._consul import ConsulError, client_from_options
from ansible_collections.picluster.swarm.plugins.module_utils._membership import read_membership

display = Display()

HOST_VARIABLES = (
    "address", "port", "hostname", "role", "state", "engine_version", "labels", "ttl", "seconds_left",
    "seconds_since_heartbeat", "session", "key",
)


class InventoryModule(BaseInventoryPlugin, Constructable):
    NAME = "picluster.swarm.consul_members"

    def verify_file(self, path):
        return super().verify_file(path) and path.endswith(("consul_members.yml", "consul_members.yaml"))

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path, cache)
        self._read_config_data(path)
        if not 0 < self.get_option("expiring_fraction") < 1:
            raise AnsibleParserError("expiring_fraction must be between 0 and 1")
        try:
            client = client_from_options(self.get_option)
            members, invalid = read_membership(client, self.get_option("prefix"), self.get_option("expiring_fraction"))
        except (ConsulError, ValueError) as exc:
            raise AnsibleError(f"{self.NAME}: {exc}") from None
        for entry in invalid:
            display.warning("{}: ignoring {}: {}".format(self.NAME, entry["key"], entry["reason"]))
        if not self.get_option("include_expired"):
            members = [m for m in members if m["state"] != "expired"]
        self._populate(members)

    def _host_names(self, members):
        if self.get_option("hostnames") == "address":
            return [m["address"] for m in members]
        taken = set()
        names = []
        for member in members:
            name = member["hostname"] or member["address"]
            if name in taken:
                display.warning(
                    f"{self.NAME}: two members announce the host name {name}; "
                    f"naming {member['address']} by its address"
                )
                name = member["address"]
            taken.add(name)
            names.append(name)
        return names

    def _populate(self, members):
        strict = self.get_option("strict")
        self.inventory.add_group("swarm_members")
        for name, member in zip(self._host_names(members), members):
            self.inventory.add_host(name, group="swarm_members")
            for raw_group in (f"swarm_role_{member['role'] or 'unknown'}", f"swarm_state_{member['state']}"):
                group = to_safe_group_name(raw_group)
                self.inventory.add_group(group)
                self.inventory.add_child(group, name)
            self.inventory.set_variable(name, "ansible_host", member["ip"])
            for field in HOST_VARIABLES:
                self.inventory.set_variable(name, f"swarm_{field}", member[field])
            hostvars = self.inventory.get_host(name).get_vars()
            self._set_composite_vars(self.get_option("compose"), hostvars, name, strict=strict)
            self._add_host_to_composed_groups(self.get_option("groups"), hostvars, name, strict=strict)
            self._add_host_to_keyed_groups(self.get_option("keyed_groups"), hostvars, name, strict=strict)
