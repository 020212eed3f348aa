#!/usr/bin/python
# Copyright (c) 2025 picluster.swarm developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: swarm_reconcile
short_description: Bring the swarm's scheduling in line with Consul's membership
version_added: 0.1.0
description:
  - Reads both views as M(picluster.swarm.swarm_consistency) does and acts on what Consul says about each node, as
    the seed's cluster did ("a node whose TTL lapses is removed from the cluster").
  - Drains a node (availability V(drain), so the swarm moves its tasks and schedules nothing new there) once it has
    been gone longer than O(grace_period) by the evidence - a registration Consul holds that expired, or a node both
    Consul and the swarm call gone - and labels it C(io.picluster.reconcile.drained) with the time.
  - Sets a node it drained active again (and removes the label) once it is alive in Consul and Ready in the swarm.
    A node drained by anyone else (no label) is left as it is.
  - With O(remove_after), removes swarm nodes gone from both for longer than that. A manager is demoted first, and
    never removed when it is the last manager, when raft still reaches it, or when the managers that stay would lose
    their quorum.
  - Never acts on a node the swarm calls Ready that has no registration at all (a node without a heartbeat looks
    exactly like that), and drains none of the Ready nodes when Consul calls half or more of them expired (Consul or
    the network is the likelier culprit then).
  - The diff shows every change before it is made; in check mode nothing is changed.
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
    description: Works out and returns the actions (and the diff) without changing anything.
  diff_mode:
    support: full
    description: Availability and reconciler label of every node an action touches, before and after; removed nodes
      are absent from after.
options:
  grace_period:
    description:
      - Seconds a node must have been gone before it is drained. Must be positive.
      - A registration Consul holds dates its expiry from its last heartbeat and TTL; Consul deletes it up to one TTL
        later. After that, or when the node's own Consul agent failed, the clock is the swarm's (how long it has seen
        the node not Ready). So keep this below the TTL (V(20) s by default) to drain a node whose heartbeat stopped
        while its engine kept running; the module warns when it is not.
    type: float
    default: 10
  remove_after:
    description:
      - Seconds after which a node gone from both (not Ready in the swarm, expired or not registered in Consul) is
        removed from the swarm. V(0) never removes. Must be longer than O(grace_period).
    type: float
    default: 0
notes:
  - Run it against one manager; two reconcilers at once do no harm (each re-reads a node before changing it, and the
    swarm refuses an update based on an old version), but one is enough. The C(picluster.swarm.swarm_manager) role can
    install a service that runs the same logic on the swarm leader (C(swarm_manager_reconcile_enabled)).
  - A node removed from the swarm that is started again has to join again (run the swarm_agent role for it).
seealso:
  - module: picluster.swarm.swarm_consistency
  - module: picluster.swarm.swarm_members
"""

EXAMPLES = r"""
- name: Drain nodes that expired in Consul more than 10 s ago, reactivate those that came back (from the controller)
  picluster.swarm.swarm_reconcile:
    host: 10.0.0.10
    docker_host: tcp://10.0.0.10:2376
    docker_cert_path: "{{ inventory_dir }}/pki/docker"
    grace_period: 10
  register: reconcile

- name: What it would do, without doing it
  picluster.swarm.swarm_reconcile:
    docker_host: unix:///var/run/docker.sock
    remove_after: 3600
  delegate_to: "{{ groups['masters'][0] }}"
  become: true
  check_mode: true
  diff: true
"""

RETURN = r"""
actions:
  description: The changes, in the order made (drains, then reactivations, then removals); in check mode, the ones
    that would be made.
  returned: success
  type: list
  elements: dict
  contains:
    action:
      description: V(drain), V(activate) or V(remove).
      type: str
    node:
      description: The node's name.
      type: str
    address:
      description: Its IP address.
      type: str
    id:
      description: Its swarm node ID.
      type: str
    role:
      description: Its swarm role.
      type: str
    category:
      description: Its category (see M(picluster.swarm.swarm_consistency)).
      type: str
    reason:
      description: Why, in a few words.
      type: str
    change:
      description: The availability and label it gets, or V(present=false) for a removal.
      type: dict
    result:
      description: V(done), V(already so) (someone got there first) or why it was skipped; absent in check mode.
      type: str
  sample:
    - {"action": "drain", "node": "node2", "address": "10.0.0.12", "id": "igr3ho4gv77u4v7c4zf8c9qbk", "role": "worker",
       "category": "down", "reason": "down: gone for 12 s, grace period 10 s",
       "change": {"availability": "drain", "label": "2026-11-28T15:30:00Z"}, "result": "done"}
held:
  description: What it would do but does not yet or will not, and why (a grace period not over, the quorum guard,
    too many Ready nodes expired at once).
  returned: success
  type: list
  elements: dict
  sample: [{"node": "node3", "address": "10.0.0.13", "would": "drain", "reason": "gone for 4 s, grace period 10 s"}]
report:
  description: What it read, as M(picluster.swarm.swarm_consistency) returns it (C(nodes), C(counts), C(problems),
    C(duplicates), C(stale), C(in_sync), C(all_healthy), C(managers), C(invalid), C(http_requests), C(docker_requests)).
  returned: success
  type: dict
diff:
  description: With C(--diff), the availability and reconciler label of every node an action touches, before and after.
  returned: when diff mode is on
  type: dict
"""

from ansible_collections.picluster.swarm.plugins.module_utils._consistency import (
    apply_change,
    check_periods,
    diff,
    plan,
)
from ansible_collections.picluster.swarm.plugins.module_utils._swarm_api import DockerError, perform
from ansible_collections.picluster.swarm.plugins.module_utils._swarm_module import SwarmModule

ARGUMENT_SPEC = dict(
    grace_period=dict(type="float", default=10.0),
    remove_after=dict(type="float", default=0.0),
)


def shortest_ttl(report):
    ttls = [e["consul"]["ttl"] for e in report["nodes"] if e.get("consul") and e["consul"].get("ttl")]
    return min(ttls) if ttls else None


def main():
    module = SwarmModule(ARGUMENT_SPEC)
    params = module.params
    problem = check_periods(params["grace_period"], params["remove_after"])
    if problem:
        module.fail(problem)
    report, records, now = module.report()
    ttl = shortest_ttl(report)
    if ttl is not None and params["grace_period"] >= ttl:
        module.warn(
            f"grace_period {params['grace_period']:g} s is not shorter than the members' TTL ({ttl} s): Consul deletes "
            "an expired registration within one more TTL, so a node whose heartbeat stops while its engine keeps "
            "running is never drained (the swarm's Down still counts for nodes that stop altogether)"
        )
    decided = plan(report, grace_period=params["grace_period"], remove_after=params["remove_after"], now=now)
    actions = decided["actions"]
    result = dict(changed=bool(actions), actions=actions, held=decided["held"], report=report)
    if module.diff_mode:
        result["diff"] = diff(actions, records)
    if module.check_mode or not actions:
        module.exit(**result)
    for action in actions:
        message = None
        try:
            action["result"] = perform(module.docker, action, apply_change)
        except DockerError as exc:
            message = str(exc)
        if message is not None:  # failed outside the except block: a plain message, no traceback attached
            done = [f"{a['action']} {a['node']}" for a in actions if a.get("result") == "done"]
            module.fail(f"{message} (done before it: {', '.join(done) or 'nothing'})",
                        changed=bool(done), actions=actions, held=decided["held"])
    result["changed"] = any(a["result"] == "done" for a in actions)
    report["docker_requests"] = module.docker.request_count
    module.exit(**result)


if __name__ == "__main__":
    main()
