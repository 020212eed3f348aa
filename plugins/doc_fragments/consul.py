# Copyright (c) 2025 picluster.swarm developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    # The Consul connection options of every picluster.swarm module and plugin, written once
    # (module_utils/_consul.py CONSUL_ARGUMENT_SPEC; resolve_settings reads the environment for all of them).
    DOCUMENTATION = r"""
options:
  host:
    description:
      - The Consul agent's HTTP API. A host name or IP, V(host:port), or a URL V(https://host:port).
      - If not set, the environment variable E(CONSUL_HTTP_ADDR) is used (V(host:port) or an V(http://) or
        V(https://) URL), and if that is not set either, V(127.0.0.1).
    type: str
  port:
    description:
      - The HTTP(S) port. Overrides a port given in O(host) or E(CONSUL_HTTP_ADDR).
      - Defaults to the port in O(host) or E(CONSUL_HTTP_ADDR), else V(8500).
    type: int
  scheme:
    description:
      - V(http) or V(https).
      - Defaults to the scheme in O(host) or E(CONSUL_HTTP_ADDR), else V(https) when E(CONSUL_HTTP_SSL=true),
        else V(http).
    type: str
    choices: [http, https]
  token:
    description:
      - ACL token sent as C(X-Consul-Token).
      - If not set, E(CONSUL_HTTP_TOKEN) is used, or the contents of the file named by E(CONSUL_HTTP_TOKEN_FILE).
    type: str
  ca_path:
    description:
      - CA bundle used to verify Consul's certificate. If not set, E(CONSUL_CACERT) is used.
    type: path
  client_cert:
    description:
      - Client certificate for Consul's C(verify_incoming). If not set, E(CONSUL_CLIENT_CERT) is used.
    type: path
  client_key:
    description:
      - Key of O(client_cert). If not set, E(CONSUL_CLIENT_KEY) is used.
    type: path
  validate_certs:
    description:
      - Whether to verify Consul's TLS certificate.
      - If not set, E(CONSUL_HTTP_SSL_VERIFY) is used (V(false) turns verification off), else V(true).
    type: bool
  timeout:
    description:
      - Seconds to wait for each answer from Consul.
    type: float
    default: 10
"""

    # Add-on for modules: where they need the library (ansible-doc wants an options key in every fragment).
    MODULE = r"""
options: {}
requirements:
  - python-consul2 (or its maintained fork py-consul; both are C(import consul)) on the host that runs the module
"""

    # Add-on for the inventory and lookup plugins, which run on the controller.
    PLUGIN = r"""
options: {}
requirements:
  - python-consul2 (or its maintained fork py-consul; both are C(import consul)) on the controller
notes:
  - The environment variables named above are read from the controller's environment; a task's C(environment)
    does not reach the plugin.
"""
