# Copyright (c) 2025 picluster.swarm developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The entry of the modules that read Consul and the swarm side by side (swarm_consistency, swarm_reconcile).

``SwarmModule`` is a ``ConsulModule`` that also takes the Docker connection
options (``DOCKER_ARGUMENT_SPEC``, documented by the ``picluster.swarm.docker``
doc fragment), makes the engine client, and reads both views into one report
with the shared rules of ``_consistency.py``. A ``DockerError`` becomes a plain
failure, as a ``ConsulError`` does.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from ansible_collections.picluster.swarm.plugins.module_utils._consistency import (
    COMPARE_ARGUMENT_SPEC,
    compare,
    swarm_node_record,
)
from ansible_collections.picluster.swarm.plugins.module_utils._consul import acl_hint
from ansible_collections.picluster.swarm.plugins.module_utils._consul_module import ConsulModule
from ansible_collections.picluster.swarm.plugins.module_utils._membership import (
    PREFIX_ARGUMENT_SPEC,
    READ_ARGUMENT_SPEC,
    normalize_prefix,
    read_membership,
)
from ansible_collections.picluster.swarm.plugins.module_utils._swarm_api import (
    DOCKER_ARGUMENT_SPEC,
    DockerClient,
    DockerError,
    client_from_params,
)

SWARM_ARGUMENT_SPEC: Dict[str, Dict[str, Any]] = dict(
    **DOCKER_ARGUMENT_SPEC, **PREFIX_ARGUMENT_SPEC, **READ_ARGUMENT_SPEC, **COMPARE_ARGUMENT_SPEC
)


class SwarmModule(ConsulModule):
    """A module that reads Consul's membership and a manager's node list."""

    def __init__(self, argument_spec: Optional[Mapping[str, Dict[str, Any]]] = None, **module_kwargs: Any) -> None:
        spec = dict(SWARM_ARGUMENT_SPEC)
        spec.update(argument_spec or {})
        super().__init__(spec, **module_kwargs)
        self.check_common_params()
        self.docker: DockerClient = self.run(client_from_params, self.params)

    def run(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """As ConsulModule.run, for Docker failures too."""
        try:
            return super().run(func, *args, **kwargs)
        except DockerError as exc:
            message = str(exc)
        self.fail(message)
        return None  # not reached: fail exits

    def check_common_params(self) -> None:
        params = self.params
        if not 0 < params["expiring_fraction"] < 1:
            self.fail("expiring_fraction must be between 0 and 1, got {}".format(params["expiring_fraction"]))
        if params["stale_after"] <= 0:
            self.fail("stale_after must be a positive number of seconds, got {}".format(params["stale_after"]))
        try:
            normalize_prefix(params["prefix"])
        except ValueError as exc:
            self.fail(str(exc))

    def read(self) -> Tuple[List[Dict[str, Any]], List[Dict[str, Any]], List[Dict[str, Any]], float]:
        """Consul's members (two requests), then the swarm's nodes (one): members, invalid, swarm records, now.

        The swarm is read first: a failing manager ends the run before Consul is asked anything.
        """
        nodes = self.run(self.docker.nodes)
        members, invalid = self.run(read_membership, self.client, self.params["prefix"],
                                    self.params["expiring_fraction"])
        now = time.time()
        return members, invalid, [swarm_node_record(n, now) for n in nodes], now

    def report(self) -> Tuple[Dict[str, Any], List[Dict[str, Any]], float]:
        """The comparison, with what the module returns beside it; the swarm records; the time of reading."""
        members, invalid, records, now = self.read()
        result = compare(members, records, stale_after=self.params["stale_after"])
        result["invalid"] = invalid
        result["http_requests"] = self.client.request_count
        result["docker_requests"] = self.docker.request_count
        if not members and not invalid:
            hint = acl_hint(self.client, f"an empty {normalize_prefix(self.params['prefix'])}")
            if hint:
                self.warn(hint)
        return result, records, now
