#!/usr/bin/python
# Copyright (c) 2025 picluster.swarm developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: consul_cluster_info
short_description: Consul's raft leader, raft peers and serf members
version_added: 0.1.0
description:
  - Reports the raft leader (C(/v1/status/leader)), the raft peers (C(/v1/status/peers)) and the serf members the agent
    sees (C(/v1/agent/members)) with their status.
  - Can wait until the cluster has a leader, so that a play waits before it writes to the KV store.
author:
  - picluster.swarm developers (@picluster)
extends_documentation_fragment:
  - picluster.swarm.consul
  - picluster.swarm.consul.module
attributes:
  check_mode:
    support: full
    description: The module only reads.
  diff_mode:
    support: none
    description: Nothing to compare.
options:
  wait_for_leader:
    description:
      - Wait until the cluster has a leader; fail after O(wait_timeout) seconds without one.
    type: bool
    default: false
  wait_timeout:
    description:
      - Seconds to wait for a leader (and for the agent to answer at all) with O(wait_for_leader).
    type: int
    default: 60
  wait_interval:
    description:
      - Seconds between attempts while waiting.
    type: float
    default: 1
"""

EXAMPLES = r"""
- name: Wait for a Consul leader before registering anything
  picluster.swarm.consul_cluster_info:
    host: 10.0.0.10
    wait_for_leader: true
    wait_timeout: 120

- name: Check that all three servers are raft peers
  picluster.swarm.consul_cluster_info:
  register: consul_cluster
  failed_when: consul_cluster.peers | length != 3
"""

RETURN = r"""
leader:
  description: Raft address (C(ip:port)) of the leader; empty when there is none.
  returned: success
  type: str
  sample: 10.0.0.10:8300
has_leader:
  description: Whether the cluster has a leader.
  returned: success
  type: bool
  sample: true
peers:
  description: Raft addresses of the voting servers.
  returned: success
  type: list
  elements: str
  sample: ["10.0.0.10:8300"]
members:
  description: Serf LAN members the agent sees.
  returned: success
  type: list
  elements: dict
  contains:
    name:
      description: Node name.
      type: str
      sample: master
    address:
      description: Serf address.
      type: str
      sample: 10.0.0.10
    port:
      description: Serf LAN port.
      type: int
      sample: 8301
    status:
      description: V(none), V(alive), V(leaving), V(left) or V(failed).
      type: str
      sample: alive
    role:
      description: C(consul) for servers, C(node) for client agents.
      type: str
      sample: consul
    datacenter:
      description: Datacenter of the member.
      type: str
      sample: dc1
    version:
      description: Consul version of the member.
      type: str
      sample: 1.22.3
counts:
  description: Number of serf members per status, plus C(total).
  returned: success
  type: dict
  sample: {"total": 3, "alive": 3, "failed": 0, "left": 0, "leaving": 0, "none": 0}
waited:
  description: Seconds spent waiting for a leader.
  returned: success
  type: float
  sample: 0.0
"""

import time

from ansible_collections.picluster.swarm.plugins.module_utils._consul import ConsulError
from ansible_collections.picluster.swarm.plugins.module_utils._consul_module import ConsulModule

SERF_STATUS = {0: "none", 1: "alive", 2: "leaving", 3: "left", 4: "failed"}


ARGUMENT_SPEC = dict(
    wait_for_leader=dict(type="bool", default=False),
    wait_timeout=dict(type="int", default=60),
    wait_interval=dict(type="float", default=1.0),
)


def serf_member(raw):
    tags = raw.get("Tags") or {}
    return {
        "name": raw.get("Name", ""),
        "address": raw.get("Addr", ""),
        "port": raw.get("Port"),
        "status": SERF_STATUS.get(raw.get("Status"), "unknown"),
        "role": tags.get("role", ""),
        "datacenter": tags.get("dc", ""),
        "version": tags.get("build", "").split(":")[0],
    }


def wait_for_leader(module):
    """Return (leader, seconds waited); fail when none appears in time."""
    client = module.client
    started = time.monotonic()
    deadline = started + module.params["wait_timeout"]
    last_error = None
    while True:
        try:
            leader = client.leader()
            if leader:
                return leader, round(time.monotonic() - started, 1)
            last_error = None
        except ConsulError as exc:
            # Starting agents refuse connections or answer 500 for a while.
            last_error = exc
        if time.monotonic() + module.params["wait_interval"] > deadline:
            reason = str(last_error) if last_error else "the agent answers but reports no raft leader"
            module.fail(
                f"no Consul leader after {module.params['wait_timeout']} s: {reason}; "
                "check that bootstrap_expect servers are up and can reach each other on port 8300"
            )
        time.sleep(module.params["wait_interval"])


def main():
    module = ConsulModule(ARGUMENT_SPEC)
    if module.params["wait_timeout"] < 0 or module.params["wait_interval"] <= 0:
        module.fail("wait_timeout must be 0 or more and wait_interval more than 0")
    client = module.client
    waited = 0.0
    if module.params["wait_for_leader"]:
        leader, waited = wait_for_leader(module)
    else:
        leader = module.run(client.leader)
    peers = module.run(client.peers)
    raw_members = module.run(client.agent_members)
    members = sorted((serf_member(m) for m in raw_members), key=lambda m: m["name"])
    counts = {"total": len(members)}
    for status in SERF_STATUS.values():
        counts[status] = sum(1 for m in members if m["status"] == status)
    module.exit(changed=False, leader=leader, has_leader=bool(leader), peers=peers, members=members,
                counts=counts, waited=waited)


if __name__ == "__main__":
    main()
