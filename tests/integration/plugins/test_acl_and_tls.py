# Copyright (c) 2025 picluster.swarm developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Tokens and TLS: the connection options and their environment variables, and every way they go wrong."""

from __future__ import annotations

import socket
import time
import uuid

from ansible_runner import module_task

ADDRESS = "10.50.0.1:2375"


def read_only_token(agent):
    rules = ('key_prefix "" { policy = "read" }\nsession_prefix "" { policy = "read" }\n'
             'node_prefix "" { policy = "read" }')
    agent.api("PUT", "/v1/acl/policy", {"Name": f"read-only-{uuid.uuid4().hex[:6]}", "Rules": rules})
    policies = agent.api("GET", "/v1/acl/policies")
    name = sorted((p for p in policies if p["Name"].startswith("read-only-")), key=lambda p: p["CreateIndex"])[-1]
    return agent.api("PUT", "/v1/acl/token", {"Policies": [{"Name": name["Name"]}]})["SecretID"]


def test_acl_tokens(consul_acl_agent, kv_prefix, ansible):
    agent = consul_acl_agent
    reader = read_only_token(agent)
    wrong = str(uuid.uuid4())
    url = agent.url
    plain = {"host": url, "prefix": kv_prefix}
    register = dict(plain, address=ADDRESS, hostname="acl-node", ttl=120)
    run = ansible.run([
        module_task("swarm_members", plain),  # 0 anonymous, default deny
        module_task("swarm_members", dict(plain, token=wrong)),  # 1
        module_task("swarm_registration", dict(register, token=agent.token)),  # 2
        module_task("swarm_registration", dict(register, token=agent.token)),  # 3
        module_task("swarm_members", dict(plain, token=agent.token)),  # 4
        module_task("swarm_members", dict(plain, token=reader)),  # 5
        module_task("swarm_registration", dict(register, token=reader, hostname="other")),  # 6
        module_task("swarm_members", {"prefix": kv_prefix},  # 7 everything from the environment
                    environment={"CONSUL_HTTP_ADDR": agent.http_addr, "CONSUL_HTTP_TOKEN": agent.token}),
        module_task("swarm_members", dict(plain, token=agent.token),  # 8 the option wins over the environment
                    environment={"CONSUL_HTTP_ADDR": "127.0.0.1:1", "CONSUL_HTTP_TOKEN": wrong}),
        module_task("consul_cluster_info", {"host": url, "token": wrong}),  # 9
        module_task("consul_cluster_info", {"host": url, "token": reader}),  # 10
    ])
    run.assert_no_traceback()
    # Consul answers "nothing here" to the anonymous token: the module says why that may be.
    assert run[0]["counts"]["total"] == 0
    assert run[0]["warnings"] == [
        f"Consul at {url} denies by default (ACLs on) and no token was given, so an empty {kv_prefix} may only "
        "mean that the anonymous token may not read it; set token (CONSUL_HTTP_TOKEN)"]
    assert run[1]["msg"] == (f"Consul at {url} refused reading {kv_prefix}/: the ACL token is not known to Consul "
                             "(ACL not found); set token (CONSUL_HTTP_TOKEN) to a valid token")
    assert run[2]["changed"] is True and run[3]["changed"] is False
    assert [m["hostname"] for m in run[4]["members"]] == ["acl-node"]
    assert [m["hostname"] for m in run[5]["members"]] == ["acl-node"]
    assert run[6]["failed"] is True
    assert f"Consul at {url} refused " in run[6]["msg"] and "permission denied" in run[6]["msg"]
    assert "key_prefix write on the membership prefix" in run[6]["msg"]
    assert [m["hostname"] for m in run[7]["members"]] == ["acl-node"]
    assert [m["hostname"] for m in run[8]["members"]] == ["acl-node"]
    assert "the ACL token is not known to Consul" in run[9]["msg"]
    assert run[10]["has_leader"] is True and run[10]["members"][0]["name"] == "acl"
    # The token never appears in results.
    assert agent.token not in run.stdout and reader not in run.stdout


def test_tls_options_and_failures(consul_tls_agent, consul_agent, kv_prefix, ansible):
    agent = consul_tls_agent
    tls = agent.tls
    url = agent.url
    full = dict(agent.module_args(), prefix=kv_prefix)
    no_ca = {k: v for k, v in full.items() if k != "ca_path"}
    no_client = {k: v for k, v in full.items() if k not in ("client_cert", "client_key")}
    tasks = [
        module_task("swarm_registration", dict(full, address=ADDRESS, hostname="tls-node", ttl=120)),  # 0
        module_task("swarm_members", full),  # 1
        module_task("swarm_members", no_ca),  # 2 system CAs do not know ours
        module_task("swarm_members", dict(full, ca_path=tls["other_ca"])),  # 3
        module_task("swarm_members", dict(no_ca, validate_certs=False)),  # 4
        module_task("swarm_members", no_client),  # 5 the agent wants a client certificate
        module_task("swarm_members", dict(full, host=url.replace("https://", "http://"))),  # 6
        module_task("swarm_members", dict(full, host=consul_agent.http_addr, scheme="https")),  # 7
        module_task("swarm_members", dict(full, client_cert="/nonexistent/cert.pem")),  # 8
        module_task("swarm_members", {"prefix": kv_prefix}, environment=agent.env()),  # 9
        module_task("swarm_members", {"prefix": kv_prefix},  # 10
                    environment=dict({k: v for k, v in agent.env().items() if k != "CONSUL_CACERT"},
                                     CONSUL_HTTP_SSL_VERIFY="false")),
        module_task("swarm_members", {"prefix": kv_prefix, "host": agent.http_addr, "scheme": "https"},  # 11
                    environment=agent.env()),
    ]
    run = ansible.run(tasks)
    run.assert_no_traceback()
    assert run[0]["changed"] is True, run[0].get("msg")
    assert [m["hostname"] for m in run[1]["members"]] == ["tls-node"]
    assert run[2]["msg"].startswith(f"TLS with Consul at {url} failed while reading {kv_prefix}/: "
                                    "certificate verify failed (")
    assert "check scheme, ca_path (CONSUL_CACERT), client_cert/client_key, or validate_certs" in run[2]["msg"]
    assert run[3]["msg"].startswith(f"TLS with Consul at {url} failed while reading {kv_prefix}/: "
                                    "certificate verify failed")
    assert [m["hostname"] for m in run[4]["members"]] == ["tls-node"]
    assert run[5]["failed"] is True
    assert run[5]["msg"].startswith(f"TLS with Consul at {url} failed while reading {kv_prefix}/: Consul requires "
                                    "a client certificate (set client_cert and client_key")
    http_url = url.replace("https://", "http://")
    assert run[6]["msg"] == (f"Consul at {http_url} refused reading {kv_prefix}/: "
                             "Client sent an HTTP request to an HTTPS server.; set scheme https")
    assert run[7]["msg"].startswith(f"TLS with Consul at https://{consul_agent.http_addr} failed while reading")
    assert "the server does not speak TLS on this port (use scheme http?)" in run[7]["msg"]
    assert run[8]["msg"] == ("invalid Consul connection settings: client_cert /nonexistent/cert.pem does not exist "
                             "or is not a file")
    assert [m["hostname"] for m in run[9]["members"]] == ["tls-node"]
    assert [m["hostname"] for m in run[10]["members"]] == ["tls-node"]
    assert [m["hostname"] for m in run[11]["members"]] == ["tls-node"]


def wait_for_port(address: str, timeout: float = 60) -> None:
    """Until something accepts TCP at host:port (an agent whose certificate no client accepts has no other sign)."""
    host, port = address.rsplit(":", 1)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection((host, int(port)), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"nothing listens on {address} after {timeout:.0f} s")


def test_expired_certificates_name_the_fix(consul_tls_agent, consul_factory, tls_material, kv_prefix, ansible):
    expired_server = dict(tls_material, server_cert=tls_material["expired_server_cert"],
                          server_key=tls_material["expired_server_key"])
    old = consul_factory("expired", wait=False, tls=expired_server)
    wait_for_port(old.http_addr)
    expired_client = dict(consul_tls_agent.module_args(), client_cert=tls_material["expired_client_cert"],
                          client_key=tls_material["expired_client_key"])
    run = ansible.run([
        module_task("swarm_members", dict(old.module_args(), prefix=kv_prefix)),  # 0 the server's has expired
        module_task("swarm_members", dict(expired_client, prefix=kv_prefix)),  # 1 ours has
    ])
    run.assert_no_traceback()
    assert run[0]["msg"] == (
        f"TLS with Consul at {old.url} failed while reading {kv_prefix}/: certificate verify failed (certificate has "
        "expired); Consul's server certificate has expired (or this machine's clock is wrong): run the "
        "picluster.swarm.consul role again, which re-signs server certificates that expire within "
        "consul_tls_cert_renew_days, and check the clocks of both machines"), run[0]
    assert run[1]["failed"] is True
    assert "client certificate: it has expired; renew client_cert (CONSUL_CLIENT_CERT)" in run[1]["msg"], run[1]
