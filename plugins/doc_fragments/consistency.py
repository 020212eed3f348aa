# Copyright (c) 2025 picluster.swarm developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    # What swarm_consistency and swarm_reconcile share: the comparison's option
    # (module_utils/_consistency.py COMPARE_ARGUMENT_SPEC) and its report, written once.
    DOCUMENTATION = r"""
options:
  stale_after:
    description:
      - A swarm node that has not been Ready for longer than this many seconds is reported V(stale).
      - Counted from the node's last change in the swarm (when it went Down, or a later drain), so never more than
        the truth.
    type: float
    default: 3600
notes:
  - Consul and the swarm are matched by IP address (the swarm node's C(Status.Addr), or for a manager that reports
    V(0.0.0.0), its raft address). Every node is in exactly one category (C(nodes[].category) in the report of
    M(picluster.swarm.swarm_consistency)).
  - Seconds are measured against the clock of the host that runs the module; keep the cluster's clocks in sync (NTP).
"""
