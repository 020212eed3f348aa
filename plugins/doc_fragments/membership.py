# Copyright (c) 2025 picluster.swarm developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    # The membership layout's options, written once for the modules, the lookup and the inventory plugin
    # (module_utils/_membership.py DEFAULT_PREFIX and DEFAULT_EXPIRING_FRACTION).
    DOCUMENTATION = r"""
options:
  prefix:
    description:
      - KV prefix under which members are registered (C(<prefix>/<ip>:<port>)).
    type: str
    default: docker/swarm/nodes
"""

    # Add-on for what reads the membership and tells alive from expiring.
    READ = r"""
options:
  expiring_fraction:
    description:
      - A member is V(expiring) when less than this share of its TTL is left (between 0 and 1).
    type: float
    default: 0.25
"""
