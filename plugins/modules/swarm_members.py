#!/usr/bin/python
# Copyright (c) 2025 picluster.swarm developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: swarm_members
short_description: List swarm members registered in Consul with their TTL state
version_added: 0.1.0
description:
  - Reads the swarm membership that nodes announce in Consul (classic swarm's layout, C(<prefix>/<ip>:<port>) held by a
    session with a TTL) and tells, per node, how long ago it last sent a heartbeat, how many seconds it has left and
    whether it is V(alive), V(expiring) or V(expired).
  - A member is V(expired) as soon as its last heartbeat is older than its TTL, even while Consul still keeps the key
    (Consul only promises not to invalidate a session before its TTL and in practice removes it up to twice the TTL
    after the last renewal). It is also V(expired) when no live session holds its key.
  - A member is V(expiring) when less than O(expiring_fraction) of its TTL is left (by default under 25%, 5 s of a 20 s
    TTL). The heartbeat renews every TTL/4, so a healthy node never drops below three quarters.
  - Each poll costs two HTTP requests whatever the number of members (one recursive KV read, one session listing).
  - Keys and values under the prefix that are not well-formed members (left by other tools) are reported in RV(invalid)
    with the reason, not treated as errors.
  - Seconds are measured against the clock of the host that runs the module; keep the cluster's clocks in sync (NTP).
author:
  - picluster.swarm developers (@picluster)
extends_documentation_fragment:
  - picluster.swarm.consul
  - picluster.swarm.consul.module
  - picluster.swarm.membership
  - picluster.swarm.membership.read
attributes:
  check_mode:
    support: full
    description: The module only reads.
  diff_mode:
    support: none
    description: Nothing to compare.
options:
  include_expired:
    description:
      - Whether RV(members) lists expired members too. RV(counts) and RV(expired) always cover them.
    type: bool
    default: false
  states:
    description:
      - Only list members in these states in RV(members). Empty means all (subject to O(include_expired)).
      - Naming V(expired) here lists expired members even when O(include_expired=false).
    type: list
    elements: str
    choices: [alive, expiring, expired]
    default: []
  wait_for_alive:
    description:
      - Wait until at least this many members are alive (V(alive) or V(expiring)). V(0) does not wait.
    type: int
    default: 0
  expected:
    description:
      - Names (C(ip:port), IP or hostname) that must be alive. When set, the module waits for them like
        O(wait_for_alive) and fails naming the ones missing or expired.
    type: list
    elements: str
    default: []
  wait_timeout:
    description:
      - Seconds to wait for O(wait_for_alive) and O(expected) before failing. V(0) checks once.
    type: int
    default: 60
  wait_interval:
    description:
      - Seconds between polls while waiting.
    type: float
    default: 1
notes:
  - The member document is written by the C(picluster-heartbeat) service of the C(picluster.swarm.swarm_agent) role
    or by M(picluster.swarm.swarm_registration).
seealso:
  - module: picluster.swarm.swarm_registration
  - module: picluster.swarm.consul_cluster_info
"""

EXAMPLES = r"""
- name: Who is in the swarm right now?
  picluster.swarm.swarm_members:
    host: 10.0.0.10
  register: swarm

- name: Show members whose TTL is about to run out
  ansible.builtin.debug:
    msg: "{{ swarm.members | selectattr('state', 'equalto', 'expiring') | map(attribute='hostname') | list }}"

- name: Wait until the five nodes have announced themselves
  picluster.swarm.swarm_members:
    host: https://10.0.0.10:8501
    ca_path: /etc/picluster/ca.pem
    expected: [node1, node2, node3, node4, node5]
    wait_timeout: 120

- name: Wait for at least three live members, listing expired ones too
  picluster.swarm.swarm_members:
    wait_for_alive: 3
    include_expired: true
"""

RETURN = r"""
members:
  description: Members, sorted by address.
  returned: success
  type: list
  elements: dict
  contains:
    key:
      description: The Consul key.
      type: str
      sample: docker/swarm/nodes/10.0.0.11:2375
    address:
      description: The member's C(ip:port).
      type: str
      sample: 10.0.0.11:2375
    ip:
      description: IP part of RV(members[].address).
      type: str
      sample: 10.0.0.11
    port:
      description: Port part of RV(members[].address).
      type: int
      sample: 2375
    hostname:
      description: Host name the node announced.
      type: str
      sample: node1
    role:
      description: Role the node announced (V(manager) or V(worker) by convention).
      type: str
      sample: worker
    engine_version:
      description: Docker engine version the node announced.
      type: str
      sample: 20.10.24
    labels:
      description: Labels the node announced.
      type: dict
      sample: {"arch": "armv7l"}
    session:
      description: ID of the Consul session holding the key, V(null) if none.
      type: str
    session_node:
      description: Consul node the session belongs to, V(null) when the session is gone.
      type: str
    ttl:
      description: TTL in seconds (the session's, else the one in the value).
      type: int
      sample: 20
    heartbeat:
      description: Time of the last heartbeat, epoch seconds (V(null) for classic swarm values that carry none).
      type: float
    heartbeat_iso:
      description: RV(members[].heartbeat) as ISO 8601 UTC.
      type: str
      sample: "2025-11-26T21:00:00Z"
    seconds_since_heartbeat:
      description: Seconds since the last heartbeat.
      type: float
      sample: 3.2
    seconds_left:
      description: Seconds until the member counts as expired (V(0) when it is).
      type: float
      sample: 16.8
    state:
      description: V(alive), V(expiring) or V(expired).
      type: str
      sample: alive
    format:
      description: V(json) for our document, V(classic) for a bare C(ip:port) value as classic swarm wrote.
      type: str
      sample: json
counts:
  description: Number of members per state, over all members (expired ones included).
  returned: success
  type: dict
  sample: {"total": 6, "alive": 4, "expiring": 1, "expired": 1}
expired:
  description: Addresses of the expired members (whether or not O(include_expired) is set).
  returned: success
  type: list
  elements: str
  sample: ["10.0.0.15:2375"]
missing:
  description: Entries of O(expected) that are not alive, with the reason.
  returned: success
  type: list
  elements: dict
  sample: [{"name": "node5", "reason": "not registered"}]
invalid:
  description: Keys under the prefix that are not well-formed members, with the reason.
  returned: success
  type: list
  elements: dict
  sample: [{"key": "docker/swarm/nodes/garbage", "reason": "'garbage' is not <ip>:<port>", "session": null}]
waited:
  description: Seconds spent waiting for O(wait_for_alive) or O(expected) before the poll that met them (V(0) when the
    first poll did).
  returned: success
  type: float
  sample: 4.1
http_requests:
  description: HTTP requests made to Consul (two per poll).
  returned: success
  type: int
  sample: 2
"""

import time

from ansible_collections.picluster.swarm.plugins.module_utils._consul import acl_hint
from ansible_collections.picluster.swarm.plugins.module_utils._consul_module import ConsulModule
from ansible_collections.picluster.swarm.plugins.module_utils._membership import (
    DEFAULT_PREFIX,
    PREFIX_ARGUMENT_SPEC,
    READ_ARGUMENT_SPEC,
    STATES,
    count_states,
    filter_states,
    missing_members,
    normalize_prefix,
    read_membership,
    unmet_wait,
)


ARGUMENT_SPEC = dict(
    **PREFIX_ARGUMENT_SPEC,
    **READ_ARGUMENT_SPEC,
    include_expired=dict(type="bool", default=False),
    states=dict(type="list", elements="str", choices=list(STATES), default=[]),
    wait_for_alive=dict(type="int", default=0),
    expected=dict(type="list", elements="str", default=[]),
    wait_timeout=dict(type="int", default=60),
    wait_interval=dict(type="float", default=1.0),
)


def check_params(module):
    params = module.params
    if not 0 < params["expiring_fraction"] < 1:
        module.fail("expiring_fraction must be between 0 and 1, got {}".format(params["expiring_fraction"]))
    for name in ("wait_for_alive", "wait_timeout"):
        if params[name] < 0:
            module.fail(f"{name} must be 0 or more, got {params[name]}")
    if params["wait_interval"] <= 0:
        module.fail("wait_interval must be a positive number of seconds")
    if not params["prefix"].strip().strip("/"):
        module.fail(f"the membership prefix must not be empty (default: {DEFAULT_PREFIX})")


def poll(module):
    """Poll until the wait is satisfied or times out; return (members, invalid, waited)."""
    params = module.params
    client = module.client
    wants_wait = params["wait_for_alive"] > 0 or bool(params["expected"])
    started = time.monotonic()
    deadline = started + params["wait_timeout"]
    while True:
        # Time waited before this poll: a wait met by the first poll waited 0 s.
        waited = round(time.monotonic() - started, 1)
        members, invalid = module.run(read_membership, client, params["prefix"], params["expiring_fraction"])
        if not wants_wait:
            return members, invalid, 0.0
        unmet = unmet_wait(members, params["wait_for_alive"], params["expected"])
        if unmet is None:
            return members, invalid, waited
        if time.monotonic() + params["wait_interval"] > deadline:
            hint = acl_hint(client, "seeing no members") if not members else None
            module.fail(
                f"swarm membership under {normalize_prefix(params['prefix'])} is not ready after {waited:.0f} s: "
                f"{unmet}" + (f"; {hint}" if hint else ""),
                members=members,
                counts=count_states(members),
                missing=missing_members(members, params["expected"]),
                invalid=invalid,
                http_requests=client.request_count,
            )
        time.sleep(params["wait_interval"])


def shown_members(members, params):
    listed = filter_states(members, params["states"])
    if not params["include_expired"] and "expired" not in params["states"]:
        listed = [m for m in listed if m["state"] != "expired"]
    return listed


def main():
    module = ConsulModule(ARGUMENT_SPEC)
    check_params(module)
    members, invalid, waited = poll(module)
    params = module.params
    client = module.client
    hint = acl_hint(client, f"an empty {normalize_prefix(params['prefix'])}") if not members and not invalid else None
    if hint:
        module.warn(hint)
    module.exit(
        changed=False,
        members=shown_members(members, params),
        counts=count_states(members),
        expired=[m["address"] for m in members if m["state"] == "expired"],
        missing=missing_members(members, params["expected"]),
        invalid=invalid,
        waited=waited,
        http_requests=client.request_count,
    )


if __name__ == "__main__":
    main()
