# Copyright (c) 2025 picluster.swarm developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""picluster.swarm.consul_cluster_info against real agents, including one still electing its leader."""

from __future__ import annotations

from ansible_runner import free_port, module_task


def info(args):
    return module_task("consul_cluster_info", args)


def test_leader_peers_members_and_waiting(consul_agent, consul_factory, ansible):
    # A single server with a data dir, started without waiting: the module has to wait for its election.
    electing = consul_factory("electing", wait=False, dev=False)
    dead_port = free_port()
    run = ansible.run([
        info(consul_agent.module_args()),  # 0
        dict(info(consul_agent.module_args()), check_mode=True),  # 1
        info(dict(consul_agent.module_args(), wait_for_leader=True)),  # 2
        info(dict(electing.module_args(), wait_for_leader=True, wait_timeout=60, wait_interval=0.5)),  # 3
        info(dict(host=f"127.0.0.1:{dead_port}", wait_for_leader=True, wait_timeout=2, wait_interval=0.5)),  # 4
        info(dict(host=f"127.0.0.1:{dead_port}")),  # 5
        info(dict(consul_agent.module_args(), wait_interval=0)),  # 6
    ])
    run.assert_no_traceback()
    server = f"127.0.0.1:{consul_agent.ports['server']}"
    plain = run[0]
    assert not plain.get("failed"), plain.get("msg")
    assert plain["changed"] is False
    assert (plain["leader"], plain["has_leader"], plain["peers"]) == (server, True, [server])
    assert plain["members"] == [{"name": "plain", "address": "127.0.0.1", "port": consul_agent.ports["serf_lan"],
                                 "status": "alive", "role": "consul", "datacenter": "dc1", "version": "1.22.3"}]
    assert plain["counts"] == {"total": 1, "alive": 1, "none": 0, "leaving": 0, "left": 0, "failed": 0}
    assert run[1]["leader"] == server  # check mode reads the same
    assert run[2]["has_leader"] is True and run[2]["waited"] == 0
    assert run[3]["has_leader"] is True, run[3].get("msg")
    assert run[3]["leader"] == f"127.0.0.1:{electing.ports['server']}"
    assert run[4]["msg"].startswith(f"no Consul leader after 2 s: cannot reach Consul at http://127.0.0.1:{dead_port} "
                                    "while asking for the raft leader: connection refused")
    assert "check that bootstrap_expect servers are up" in run[4]["msg"]
    assert run[5]["msg"] == (f"cannot reach Consul at http://127.0.0.1:{dead_port} while asking for the raft leader: "
                             "connection refused; is the agent running? set host/port (CONSUL_HTTP_ADDR)")
    assert run[6]["msg"] == "wait_timeout must be 0 or more and wait_interval more than 0"
