# Copyright (c) 2025 picluster.swarm developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The one entry of every picluster.swarm module: options, library check, client, failures.

Modules hold only their resource's logic. ``ConsulModule`` builds the
``AnsibleModule`` from the Consul connection options (``CONSUL_ARGUMENT_SPEC``,
documented once by the ``picluster.swarm.consul`` doc fragment) plus the
module's own, fails with ``missing_required_lib`` when the Consul library is
absent, makes the client, and turns a ``ConsulError`` into a plain failure.

It lives apart from ``_consul.py`` because the dashboard ships ``_consul.py``
into an image without Ansible.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Mapping, Optional

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.picluster.swarm.plugins.module_utils._consul import (
    CONSUL_ARGUMENT_SPEC,
    CONSUL_IMPORT_ERROR,
    REQUIRED_LIB,
    ConsulClient,
    ConsulError,
    client_from_params,
)


class ConsulModule:
    """An AnsibleModule that talks to Consul."""

    def __init__(
        self,
        argument_spec: Optional[Mapping[str, Dict[str, Any]]] = None,
        supports_check_mode: bool = True,
        **module_kwargs: Any,
    ) -> None:
        spec = dict(CONSUL_ARGUMENT_SPEC)
        spec.update(argument_spec or {})
        self.module = AnsibleModule(argument_spec=spec, supports_check_mode=supports_check_mode, **module_kwargs)
        self.params: Dict[str, Any] = self.module.params
        if CONSUL_IMPORT_ERROR is not None:
            self.module.fail_json(msg=missing_required_lib(REQUIRED_LIB), exception=CONSUL_IMPORT_ERROR)
        self.client: ConsulClient = self.run(client_from_params, self.params)

    @property
    def check_mode(self) -> bool:
        return self.module.check_mode

    @property
    def diff_mode(self) -> bool:
        return self.module._diff

    def run(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Return func(*args, **kwargs); fail the module with the message of a ConsulError.

        fail_json is called outside the except block on purpose: ansible-core
        2.19 attaches the exception being handled to the result, and these
        failures are plain messages, not crashes.
        """
        try:
            return func(*args, **kwargs)
        except ConsulError as exc:
            message = str(exc)
        self.fail(message)
        return None  # not reached: fail exits

    def fail(self, msg: str, **result: Any) -> None:
        self.module.fail_json(msg=msg, **result)

    def warn(self, message: str) -> None:
        self.module.warn(message)

    def exit(self, **result: Any) -> None:
        self.module.exit_json(**result)
