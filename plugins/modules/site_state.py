#!/usr/bin/python
# Copyright (c) 2025 picluster.swarm developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: site_state
short_description: Record what a host looked like after a full run of site.yml, and tell whether it still does
version_added: 0.1.0
description:
  - The fast path of C(picluster.swarm.site) (role M(picluster.swarm.site_state) drives it). After a run that
    converged every role, O(state=present) records on the host the digest of the run's inputs and a snapshot of
    what the roles manage there. The next run calls it with O(state=check) first; when the inputs are the same and
    nothing recorded differs, every role can be skipped on that host.
  - The snapshot is read, not trusted. Files are the entries under O(paths) (type, mode, owner, group, size,
    modification and change times, so any write, C(chmod) or C(chown) shows, with no checksum to compute), the
    systemd units in O(units) (loaded, active, enabled), and with O(docker) the engine's swarm state, its
    containers (not the swarm's task containers), and on a manager the swarm's services and networks, those whose
    names match O(docker_names).
  - A check compares only. It never changes the host, in check mode or not.
author:
  - picluster.swarm developers (@picluster)
attributes:
  check_mode:
    support: full
    description: V(check) only reads; V(present) and V(absent) report what they would change and write nothing.
  diff_mode:
    support: none
    description: The differences are in RV(reasons).
options:
  state:
    description:
      - V(check) compares the host with its record (RV(converged), RV(reasons)).
      - V(present) writes the record (reported as changed only when the digest or the snapshot differ from the
        record's; the time of the run is always refreshed).
      - V(absent) removes the record, so that the next run converges in full.
    type: str
    choices: [check, present, absent]
    default: check
  digest:
    description:
      - The digest of the run's inputs, computed on the controller (the lookup
        P(picluster.swarm.site_digest#lookup)). Required with O(state=check) and O(state=present).
    type: str
  paths:
    description:
      - Files and directories (walked) whose state is recorded. The last component may be a shell pattern
        (V(/etc/systemd/system/picluster-*)).
      - Only with O(state=present); a check reads again what the record names.
    type: list
    elements: str
    default: []
  units:
    description:
      - systemd units whose state is recorded; patterns match the units systemd has loaded.
      - Only with O(state=present).
    type: list
    elements: str
    default: []
  docker:
    description:
      - Whether to record the Docker engine's swarm state, containers, and a manager's services and networks.
      - Only with O(state=present); a check reads the engine when the record has its state.
    type: bool
    default: true
  docker_names:
    description:
      - Shell patterns of the container, service and network names recorded (the roles' own; a user's services and
        networks come and go without making the next run a full one).
      - Only with O(state=present).
    type: list
    elements: str
    default: ["picluster-*"]
  max_age:
    description:
      - Seconds after which a record no longer counts (a full run then reads everything again, renewing what
        ages, such as certificates). V(0) for no limit.
    type: int
    default: 86400
  path:
    description:
      - Where the record is kept on the host (root's alone).
    type: path
    default: /var/lib/picluster/site-state.json
notes:
  - The record describes the host as the last full run left it; what the roles keep elsewhere (Consul's ACL
    policies and tokens, the swarm's join tokens) is not in it. A full run (C(-e site_state_fast_path=false))
    checks those too.
seealso:
  - plugin: picluster.swarm.site_digest
    plugin_type: lookup
"""

EXAMPLES = r"""
- name: Has anything changed since the last full run?
  picluster.swarm.site_state:
    digest: "{{ lookup('picluster.swarm.site_digest') }}"
  register: state

- name: Say what
  ansible.builtin.debug:
    var: state.reasons
  when: not state.converged

- name: Record this host after a full run
  picluster.swarm.site_state:
    state: present
    digest: "{{ lookup('picluster.swarm.site_digest') }}"
    paths: [/etc/consul.d, /usr/local/bin/consul, "/etc/systemd/system/picluster-*"]
    units: [consul.service, "picluster-*"]
  become: true
"""

RETURN = r"""
converged:
  description: Whether the host is as the last full run left it, with the same inputs (O(state=check)).
  returned: success
  type: bool
reasons:
  description: What differs, one line each (at most 20); empty when RV(converged).
  returned: success
  type: list
  elements: str
  sample: ["file /etc/consul.d/consul.hcl: file 640 998 998 1203 ..., was file 640 998 998 1187 ...",
           "unit picluster-heartbeat.service: loaded inactive enabled, was loaded active enabled"]
recorded_at:
  description: When the record was written (seconds since the epoch, the host's clock); V(null) without one.
  returned: success
  type: float
counts:
  description: How many files, units and Docker objects the record covers.
  returned: success
  type: dict
  sample: {files: 96, units: 7, docker: 4}
"""

import json
import os
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.picluster.swarm.plugins.module_utils import _site_state as site


def read_record(path):
    try:
        with open(path) as handle:
            return json.load(handle)
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {"version": "unreadable"}


def counts(snap):
    docker = snap.get("docker", {})
    return {
        "files": len(snap.get("files", {})),
        "units": len(snap.get("units", {})),
        "docker": sum(len(docker.get(part, {})) for part in ("containers", "services", "networks")),
    }


def check(module, record):
    record = record or {}
    docker_bin = module.get_bin_path("docker") or "docker"
    current = site.snapshot(record.get("paths", []), record.get("units", []), bool(record.get("docker")), docker_bin,
                            record.get("docker_names", []))
    converged, reasons = site.verdict(record or None, module.params["digest"], current, time.time(),
                                      module.params["max_age"])
    return dict(changed=False, converged=converged, reasons=reasons, counts=counts(record.get("snapshot", {})))


def present(module, record):
    docker_bin = module.get_bin_path("docker") if module.params["docker"] else None
    if module.params["docker"] and not docker_bin:
        module.fail_json(msg="docker: true, but this host has no docker command in its PATH; install the engine "
                             "(the picluster.swarm.docker role) or pass docker: false")
    snap = site.snapshot(module.params["paths"], module.params["units"], bool(docker_bin), docker_bin or "docker",
                         module.params["docker_names"])
    new = {"version": site.RECORD_VERSION, "digest": module.params["digest"], "time": time.time(),
           "paths": module.params["paths"], "units": module.params["units"], "docker": bool(docker_bin),
           "docker_names": module.params["docker_names"],
           "snapshot": snap}
    same = bool(record) and all(record.get(k) == new[k] for k in new if k != "time")
    if not module.check_mode:
        directory = os.path.dirname(module.params["path"])
        if not os.path.isdir(directory):
            os.makedirs(directory, mode=0o700)
        temporary = module.params["path"] + ".tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(new, handle, sort_keys=True)
        os.replace(temporary, module.params["path"])
    return dict(changed=not same, converged=True, reasons=[], counts=counts(snap), recorded_at=new["time"])


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", choices=["check", "present", "absent"], default="check"),
            digest=dict(type="str"),
            paths=dict(type="list", elements="str", default=[]),
            units=dict(type="list", elements="str", default=[]),
            docker=dict(type="bool", default=True),
            docker_names=dict(type="list", elements="str", default=["picluster-*"]),
            max_age=dict(type="int", default=86400),
            path=dict(type="path", default="/var/lib/picluster/site-state.json"),
        ),
        required_if=[("state", "check", ["digest"]), ("state", "present", ["digest"])],
        supports_check_mode=True,
    )
    path = module.params["path"]
    record = read_record(path)
    if module.params["state"] == "absent":
        if record is not None and not module.check_mode:
            os.remove(path)
        module.exit_json(changed=record is not None, converged=False, reasons=["record removed"], counts={},
                         recorded_at=None)
    if module.params["state"] == "check":
        result = check(module, record)
    else:
        result = present(module, record)
    result.setdefault("recorded_at", (record or {}).get("time"))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
