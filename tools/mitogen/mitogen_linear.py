# Copyright (c) 2025 picluster.swarm developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Mitogen's `mitogen_linear` strategy, found by name from the checkout.

Mitogen keeps its strategies inside its Python package, so Ansible finds them
only through a path that depends on the venv. ansible.cfg points
`strategy_plugins` here instead, and `ANSIBLE_STRATEGY=mitogen_linear` turns
Mitogen on for a run (docs/speed.md). Nothing is loaded unless a run asks for
this strategy.
"""

from __future__ import annotations

from ansible.errors import AnsibleError

try:
    # Importing Mitogen's own proxy module keeps its one canonical copy of
    # ansible_mitogen.strategy (see the comment in that module).
    from ansible_mitogen.plugins.strategy.mitogen_linear import StrategyModule
except ImportError as err:
    raise AnsibleError(
        f"strategy mitogen_linear needs the mitogen package in ansible-playbook's Python ({err}); "
        "install it with `pip install mitogen==0.3.54`, or unset ANSIBLE_STRATEGY to run without it"
    ) from err

__all__ = ["StrategyModule"]
