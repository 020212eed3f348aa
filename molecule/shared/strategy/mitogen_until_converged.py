# Copyright (c) 2025 picluster.swarm developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The role scenarios' strategy: Mitogen to build, Ansible's own to check.

Molecule runs converge.yml twice, for its converge step and for its
idempotence step, with the same environment. This strategy picks per run from
molecule's state file: until the scenario has converged (its prepare and
converge steps) it is Mitogen's `mitogen_linear`, on the lab's docker
transport; once it has (the idempotence step, and every run the verify step
starts), it is Ansible's own `linear`. So each role's cold converge costs one
`docker exec` per host instead of one per task, and "a second run changes
nothing" is still checked the way most users run it: without Mitogen.
The whole site's cold converge with Ansible's own strategy is the cluster
scenario's. Test-only: scenarios name it in their provisioner's env.
"""

from __future__ import annotations

import os

import yaml


def _converged() -> bool:
    try:
        with open(os.environ["MOLECULE_STATE_FILE"], encoding="utf-8") as state:
            return bool((yaml.safe_load(state) or {}).get("converged"))
    except (KeyError, OSError):
        return False


if _converged():
    from ansible.plugins.strategy.linear import StrategyModule
else:
    from ansible_mitogen.plugins.strategy.mitogen_linear import StrategyModule

__all__ = ["StrategyModule"]
