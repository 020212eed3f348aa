#!/usr/bin/python
# Copyright (c) 2025 picluster.swarm developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: swarm_consistency
short_description: Find where Consul's swarm membership and the swarm's own node list disagree
version_added: 0.1.0
description:
  - Reads the membership nodes announce in Consul (as M(picluster.swarm.swarm_members) does, two HTTP requests) and
    the swarm's node list from a manager's Docker engine API (one request), matches them by IP address and puts every
    node in one category (RV(nodes[].category)), with a one-line summary of what is wrong and what to do.
  - Also reports duplicates (two registrations for one address or host name, in Consul or in the swarm) and stale
    swarm nodes (not Ready for longer than O(stale_after)).
  - Read-only. To act on what it finds, use M(picluster.swarm.swarm_reconcile).
author:
  - picluster.swarm developers (@picluster)
extends_documentation_fragment:
  - picluster.swarm.consul
  - picluster.swarm.consul.module
  - picluster.swarm.docker
  - picluster.swarm.membership
  - picluster.swarm.membership.read
  - picluster.swarm.consistency
attributes:
  check_mode:
    support: full
    description: The module only reads.
  diff_mode:
    support: none
    description: Nothing to compare.
options: {}
seealso:
  - module: picluster.swarm.swarm_reconcile
  - module: picluster.swarm.swarm_members
"""

EXAMPLES = r"""
- name: Does Consul agree with the swarm? (from the controller, TLS as the docker role set it up)
  picluster.swarm.swarm_consistency:
    host: 10.0.0.10
    docker_host: tcp://10.0.0.10:2376
    docker_cert_path: "{{ inventory_dir }}/pki/docker"
  register: consistency

- name: Say what is wrong
  ansible.builtin.debug:
    var: consistency.problems
  when: consistency.problems | length > 0

- name: Fail a health check when the two views disagree
  picluster.swarm.swarm_consistency:
    docker_host: unix:///var/run/docker.sock
  delegate_to: "{{ groups['masters'][0] }}"
  become: true
  register: consistency
  failed_when: not consistency.in_sync

- name: Nodes down for more than ten minutes
  picluster.swarm.swarm_consistency:
    host: https://10.0.0.10:8501
    ca_path: /etc/picluster/consul-ca.pem
    token: "{{ consul_token }}"
    docker_host: tcp://10.0.0.10:2376
    docker_cert_path: "{{ inventory_dir }}/pki/docker"
    stale_after: 600
  register: consistency
  failed_when: consistency.counts.stale > 0
"""

RETURN = r"""
nodes:
  description: Every node either side knows, in address order; a second record for one address is an entry of its own.
  returned: success
  type: list
  elements: dict
  contains:
    name:
      description: The swarm's host name, else the one announced in Consul, else the address.
      type: str
      sample: node2
    address:
      description: The node's IP address (what the two sides are matched by).
      type: str
      sample: 10.0.0.12
    category:
      description:
        - V(healthy) alive (or expiring) in Consul and Ready in the swarm.
        - V(swarm_down) alive in Consul, not Ready in the swarm (Down, Unknown, Disconnected).
        - V(consul_expired) Ready in the swarm, but the registration Consul holds for it expired.
        - V(consul_only) registered in Consul (alive or expired), unknown to the swarm.
        - V(swarm_only) Ready in the swarm, not registered in Consul at all.
        - V(down) not Ready in the swarm and expired or not registered in Consul (both agree it is gone).
      type: str
      sample: consul_expired
    summary:
      description: One line, what is wrong and what to do about it.
      type: str
      sample: "node2 (10.0.0.12): Ready in the swarm but its registration in Consul expired (last heartbeat 14 s ago,
        TTL 10 s): its heartbeat does not get through; check `systemctl status picluster-heartbeat` and the Consul
        agent on it (swarm_reconcile drains it once the grace period is over)"
    problem:
      description: Whether the node needs attention (any category but V(healthy), a duplicate or stale).
      type: bool
    duplicate:
      description: Whether another registration or swarm record shares this node's address or host name.
      type: bool
    stale:
      description: Whether the swarm has not seen it Ready for longer than O(stale_after).
      type: bool
    gone_for:
      description:
        - Seconds the node has been gone by the evidence, V(null) when there is none. A registration Consul holds
          counts from its expiry (last heartbeat plus TTL); a node not Ready in the swarm from when the swarm last
          changed it. The larger of the two.
      type: float
      sample: 4.2
    consul:
      description: The Consul side (as M(picluster.swarm.swarm_members) reports a member), V(null) when not registered.
      type: dict
      contains:
        address: {description: "C(ip:port) it announced.", type: str}
        hostname: {description: Host name it announced., type: str}
        role: {description: Role it announced., type: str}
        state: {description: "V(alive), V(expiring) or V(expired).", type: str}
        seconds_since_heartbeat: {description: Seconds since its last heartbeat., type: float}
        seconds_left: {description: Seconds until it counts as expired., type: float}
        ttl: {description: Its TTL in seconds., type: int}
        session: {description: The Consul session holding its key., type: str}
        key: {description: Its Consul key., type: str}
    swarm:
      description: The swarm side, V(null) when the swarm does not know the address.
      type: dict
      contains:
        id: {description: Swarm node ID., type: str}
        version: {description: The node object's version (what an update must name)., type: int}
        hostname: {description: Host name the engine reports., type: str}
        role: {description: "V(manager) or V(worker).", type: str}
        status: {description: "V(ready), V(down), V(unknown) or V(disconnected).", type: str}
        availability: {description: "V(active), V(pause) or V(drain).", type: str}
        message: {description: The swarm's status message., type: str}
        leader: {description: Whether it is the raft leader., type: bool}
        reachability: {description: "For a manager, V(reachable) or V(unreachable) in raft.", type: str}
        engine_version: {description: Docker engine version., type: str}
        updated_at: {description: When the swarm last changed the node (ISO 8601 UTC)., type: str}
        down_for: {description: "Seconds since then when it is not Ready, else V(null).", type: float}
        drained_by_reconcile:
          description: Whether it carries the label M(picluster.swarm.swarm_reconcile) puts on a node it drains.
          type: bool
counts:
  description: Entries per category, plus duplicates (findings), stale nodes and problems (lines in RV(problems)).
  returned: success
  type: dict
  sample: {"total": 4, "healthy": 2, "swarm_down": 0, "consul_expired": 1, "consul_only": 0, "swarm_only": 1,
           "down": 0, "duplicates": 0, "stale": 0, "problems": 2}
problems:
  description: One line per node that needs attention and per duplicate finding; empty when all is well.
  returned: success
  type: list
  elements: str
duplicates:
  description: Addresses or host names with more than one registration in Consul or more than one swarm record.
  returned: success
  type: list
  elements: dict
  contains:
    kind:
      description: V(consul_address), V(consul_hostname), V(swarm_address) or V(swarm_hostname).
      type: str
    value:
      description: The shared address or host name.
      type: str
    records:
      description: The registrations (C(ip:port)) or swarm node IDs that share it.
      type: list
      elements: str
    summary:
      description: One line, what happened and what to do.
      type: str
stale:
  description: Names of the stale swarm nodes.
  returned: success
  type: list
  elements: str
in_sync:
  description:
    - Whether Consul and the swarm agree about every node (each V(healthy) or V(down)) and nothing is registered
      twice. A node both sides call gone keeps this V(true); use RV(all_healthy) to catch it too.
  returned: success
  type: bool
all_healthy:
  description: Whether every node is V(healthy), with no duplicates (false when there are no nodes at all).
  returned: success
  type: bool
managers:
  description: The swarm's managers; V(total), V(reachable) in raft, and the V(leader)'s host name.
  returned: success
  type: dict
  sample: {"total": 3, "reachable": 3, "leader": "master1"}
invalid:
  description: Keys under the prefix that are not well-formed members, with the reason (as
    M(picluster.swarm.swarm_members) reports them).
  returned: success
  type: list
  elements: dict
http_requests:
  description: HTTP requests made to Consul (two).
  returned: success
  type: int
  sample: 2
docker_requests:
  description: Requests made to the Docker engine (one).
  returned: success
  type: int
  sample: 1
"""

from ansible_collections.picluster.swarm.plugins.module_utils._swarm_module import SwarmModule


def main():
    module = SwarmModule()
    report, _records, _now = module.report()
    module.exit(changed=False, **report)


if __name__ == "__main__":
    main()
