#!/usr/bin/python
# Copyright (c) 2025 picluster.swarm developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: swarm_registration
short_description: Register or remove one swarm node in Consul under a TTL
version_added: 0.1.0
description:
  - Announces a node in Consul the way classic swarm did. The key C(<prefix>/<ip>:<port>) is held by a Consul session
    with a TTL (behaviour C(delete), lock delay 0) and holds a small JSON document (address, hostname, role, engine
    version, labels, TTL and the time of the last heartbeat).
  - With O(state=present) the module creates the session and acquires the key, or, when a live registration exists,
    renews its session and refreshes the heartbeat time. A live registration with the same data (ignoring the heartbeat
    time) is reported unchanged.
  - The session lives only as long as something renews it. On a node that is the C(picluster-heartbeat) service of the
    C(picluster.swarm.swarm_agent) role, which takes over the session this module created (same session name).
  - With O(state=absent) the module destroys the session holding the key and deletes the key. Stop the node's heartbeat
    service first, or it registers the node again.
author:
  - picluster.swarm developers (@picluster)
extends_documentation_fragment:
  - picluster.swarm.consul
  - picluster.swarm.consul.module
  - picluster.swarm.membership
attributes:
  check_mode:
    support: full
    description: Reports what would change; renews and writes nothing.
  diff_mode:
    support: full
    description: Shows the member document before and after, without the heartbeat time.
options:
  address:
    description:
      - The node's C(ip:port) (Docker engine address), as in classic swarm's C(--advertise). IPv6 as C([addr]:port).
    type: str
    required: true
  state:
    description:
      - V(present) registers the node, V(absent) removes it.
    type: str
    choices: [present, absent]
    default: present
  hostname:
    description:
      - Host name to announce, typically C({{ inventory_hostname }}).
    type: str
    default: ""
  role:
    description:
      - Role to announce; V(manager) and V(worker) by convention.
    type: str
    default: worker
  engine_version:
    description:
      - Docker engine version to announce.
    type: str
    default: ""
  labels:
    description:
      - Labels to announce; values are turned into strings.
    type: dict
    default: {}
  ttl:
    description:
      - Session TTL in seconds (Consul accepts 10 to 86400). Changing it replaces the session.
    type: int
    default: 20
"""

EXAMPLES = r"""
- name: Announce this node in Consul
  picluster.swarm.swarm_registration:
    host: 10.0.0.10
    address: "{{ ansible_default_ipv4.address }}:2376"
    hostname: "{{ inventory_hostname }}"
    role: worker
    engine_version: "{{ ansible_facts.docker_version | default('') }}"
    labels:
      arch: "{{ ansible_architecture }}"
  delegate_to: localhost

- name: Remove a decommissioned node
  picluster.swarm.swarm_registration:
    address: 10.0.0.15:2376
    state: absent
"""

RETURN = r"""
key:
  description: The member's Consul key.
  returned: always
  type: str
  sample: docker/swarm/nodes/10.0.0.11:2376
session:
  description: ID of the session holding the key after the run (V(null) when absent, or in check mode before creation).
  returned: always
  type: str
  sample: 9f1c0c5e-7a5a-2d5e-0c43-8d8f4d0e3a11
member:
  description: The document stored as the key's value (after the run; V(null) when absent).
  returned: always
  type: dict
  sample:
    schema: 1
    address: 10.0.0.11:2376
    hostname: node1
    role: worker
    engine_version: 20.10.24
    labels: {"arch": "armv7l"}
    ttl: 20
    heartbeat: 1764190800.123
    heartbeat_iso: "2025-11-26T21:00:00Z"
renewed:
  description: Whether an existing live session was renewed instead of replaced.
  returned: always
  type: bool
  sample: true
"""

import time

from ansible_collections.picluster.swarm.plugins.module_utils._consul_module import ConsulModule
from ansible_collections.picluster.swarm.plugins.module_utils._membership import (
    DEFAULT_TTL,
    MAX_TTL,
    MIN_TTL,
    PREFIX_ARGUMENT_SPEC,
    SESSION_NAME_FORMAT,
    InvalidEntry,
    build_document,
    comparable,
    decode_kv_value,
    encode_document,
    member_key,
    parse_duration,
    parse_value,
    validate_address,
)


ARGUMENT_SPEC = dict(
    address=dict(type="str", required=True),
    state=dict(type="str", choices=["present", "absent"], default="present"),
    **PREFIX_ARGUMENT_SPEC,
    hostname=dict(type="str", default=""),
    role=dict(type="str", default="worker"),
    engine_version=dict(type="str", default=""),
    labels=dict(type="dict", default={}),
    ttl=dict(type="int", default=DEFAULT_TTL),
)


class Registration:
    """The wanted registration of one node, compared with what Consul holds."""

    def __init__(self, module):
        self.module = module
        self.client = module.client
        params = module.params
        self.address = self._checked(validate_address, params["address"])
        self.key = self._checked(member_key, params["prefix"], self.address)
        self.ttl = params["ttl"]
        if not MIN_TTL <= self.ttl <= MAX_TTL:
            module.fail(f"ttl must be between {MIN_TTL} and {MAX_TTL} seconds (Consul's limits), got {self.ttl}")
        self.session_name = SESSION_NAME_FORMAT.format(address=self.address)
        self.entry = self.client.kv_get(self.key)
        self.current = self._current_document()
        holder = self.entry.get("Session") if self.entry else None
        self.session = self.client.session_info(holder) if holder else None

    def _checked(self, func, *args):
        """Return func(*args); fail with its message when it raises ValueError (outside the except block)."""
        try:
            return func(*args)
        except InvalidEntry as exc:
            message = f"invalid address {self.module.params['address']!r}: {exc}; give the node's <ip>:<port>"
        except ValueError as exc:
            message = str(exc)
        self.module.fail(message)
        return None

    def _current_document(self):
        if not self.entry:
            return None
        try:
            return parse_value(self.address, decode_kv_value(self.entry))
        except InvalidEntry as exc:
            # Whatever another tool left here is replaced; show it in the diff.
            return {"invalid": str(exc)}

    def wanted(self):
        params = self.module.params
        return build_document(
            self.address,
            hostname=params["hostname"],
            role=params["role"],
            engine_version=params["engine_version"],
            labels=params["labels"],
            ttl=self.ttl,
            heartbeat=time.time(),
        )

    def session_reusable(self):
        """A live session with our TTL and delete behaviour can simply be renewed."""
        if not self.session:
            return False
        return parse_duration(self.session.get("TTL")) == self.ttl and self.session.get("Behavior") == "delete"

    def refuse_foreign_holder(self):
        """Never take over a session that another tool or node created for this key."""
        if self.session and self.session.get("Name") != self.session_name:
            self.module.fail(
                f"{self.key} in Consul at {self.client.settings.url} is held by session {self.session['ID']} "
                f"({self.session.get('Name') or 'unnamed'!r} on node {self.session.get('Node')}), not by a "
                f"{self.session_name!r} session; is another node announcing this address? "
                "remove the registration with state=absent first"
            )

    def present(self):
        self.refuse_foreign_holder()
        wanted = self.wanted()
        reusable = self.session_reusable()
        changed = not reusable or comparable(self.current) != comparable(wanted)
        result = dict(changed=changed, key=self.key, member=wanted, renewed=reusable,
                      session=self.session["ID"] if reusable else None)
        if self.module.check_mode:
            return result
        if reusable and self.client.session_renew(self.session["ID"]) is None:
            reusable = False  # it expired between the read and the renewal
            result.update(changed=True, renewed=False)
        if not reusable:
            if self.session:
                self.client.session_destroy(self.session["ID"])
            result["session"] = self.client.session_create(self.session_name, self.ttl)
        if not self.client.kv_put(self.key, encode_document(wanted), acquire=result["session"]):
            if not reusable:
                self.client.session_destroy(result["session"])
            self.module.fail(
                f"could not acquire {self.key} in Consul at {self.client.settings.url}: another session holds it "
                "(a second node announcing "
                "the same address?); remove it with state=absent or wait for its TTL to run out")
        return result

    def absent(self):
        result = dict(changed=self.entry is not None, key=self.key, member=None, renewed=False, session=None)
        if self.module.check_mode or self.entry is None:
            return result
        if self.session:
            self.client.session_destroy(self.session["ID"])
        if self.client.kv_get(self.key) is not None:
            self.client.kv_delete(self.key)
        return result

    def diff(self, result):
        before = comparable(self.current) or {}
        after = comparable(result["member"]) or {}
        return {"before": before, "after": after, "before_header": self.key, "after_header": self.key}


def main():
    module = ConsulModule(ARGUMENT_SPEC)
    registration = module.run(Registration, module)
    if module.params["state"] == "present":
        result = module.run(registration.present)
    else:
        result = module.run(registration.absent)
    if module.diff_mode:
        result["diff"] = registration.diff(result)
    module.exit(**result)


if __name__ == "__main__":
    main()
