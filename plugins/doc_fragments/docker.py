# Copyright (c) 2025 picluster.swarm developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    # The Docker engine connection of the modules that read the swarm, written once
    # (module_utils/_swarm_api.py DOCKER_ARGUMENT_SPEC; resolve_docker_settings reads the environment).
    # Named docker_*: the Consul options of every picluster.swarm module already hold ca_path, client_cert,
    # client_key, validate_certs and timeout.
    DOCUMENTATION = r"""
options:
  docker_host:
    description:
      - The Docker engine API of a swarm manager. V(unix:///var/run/docker.sock), V(tcp://host:port) or
        V(https://host:port) (a bare V(host) or V(host:port) is TCP).
      - If not set, E(DOCKER_HOST) is used, and if that is not set either, V(unix:///var/run/docker.sock).
      - The port defaults to V(2376) with TLS (the C(picluster.swarm.docker) role's default) and V(2375) without.
    type: str
  docker_cert_path:
    description:
      - A directory with C(ca.pem), C(cert.pem) and C(key.pem), as the docker CLI's E(DOCKER_CERT_PATH). The
        C(picluster.swarm.docker) role keeps the cluster's in C(<inventory>/pki/docker).
      - If not set, E(DOCKER_CERT_PATH) is used. Setting it turns TLS on for TCP.
    type: path
  docker_ca_path:
    description:
      - CA bundle that signed the engine's certificate. Defaults to C(ca.pem) in O(docker_cert_path), else the
        system's CAs.
    type: path
  docker_client_cert:
    description:
      - Client certificate the engine asks for. Defaults to C(cert.pem) in O(docker_cert_path).
    type: path
  docker_client_key:
    description:
      - Key of O(docker_client_cert). Defaults to C(key.pem) in O(docker_cert_path).
    type: path
  docker_tls:
    description:
      - Whether to speak TLS to a TCP O(docker_host).
      - Defaults to V(true) when O(docker_host) is V(https://...), E(DOCKER_TLS_VERIFY) is set, or any certificate
        option (or O(docker_cert_path)) is given; else V(false).
    type: bool
  docker_validate_certs:
    description:
      - Whether to verify the engine's certificate (against O(docker_ca_path), and its name against the address or
        O(docker_tls_hostname)).
    type: bool
    default: true
  docker_tls_hostname:
    description:
      - The name to check the engine's certificate against, when it differs from the address in O(docker_host).
    type: str
  docker_timeout:
    description:
      - Seconds to wait for each answer from the engine.
    type: float
    default: 10
"""
