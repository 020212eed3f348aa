# Copyright (c) 2025 picluster.swarm developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""picluster.swarm.swarm_registration against a real Consul agent, through ansible-playbook.

community.docker's pattern: for each option, check mode, apply, apply again
(unchanged), and the failure message for bad input.
"""

from __future__ import annotations

import base64
import json

from ansible_runner import free_port, module_task

ADDRESS = "10.20.0.11:2375"


def reg(agent, prefix, **args):
    base = dict(agent.module_args(), prefix=prefix, address=ADDRESS, hostname="node1", ttl=60)
    base.update(args)
    return base


def members(agent, prefix, **keywords):
    return module_task("swarm_members", dict(agent.module_args(), prefix=prefix, include_expired=True), **keywords)


def test_register_check_apply_idempotent_remove(consul_agent, kv_prefix, ansible):
    key = f"{kv_prefix}/{ADDRESS}"
    run = ansible.run([
        module_task("swarm_registration", reg(consul_agent, kv_prefix), check_mode=True, diff=True),  # 0
        members(consul_agent, kv_prefix),  # 1
        module_task("swarm_registration", reg(consul_agent, kv_prefix), diff=True),  # 2
        module_task("swarm_registration", reg(consul_agent, kv_prefix), diff=True),  # 3
        members(consul_agent, kv_prefix),  # 4
        module_task("swarm_registration", reg(consul_agent, kv_prefix, state="absent"), check_mode=True),  # 5
        members(consul_agent, kv_prefix),  # 6
        module_task("swarm_registration", reg(consul_agent, kv_prefix, state="absent"), diff=True),  # 7
        module_task("swarm_registration", reg(consul_agent, kv_prefix, state="absent")),  # 8
        members(consul_agent, kv_prefix),  # 9
    ])
    run.assert_no_traceback()
    assert not any(r.get("failed") for r in run.results), [r.get("msg") for r in run.results]
    # check mode: would change, writes nothing
    assert run[0]["changed"] is True and run[0]["session"] is None
    assert run[0]["diff"]["before"] == {} and run[0]["diff"]["after"]["hostname"] == "node1"
    assert "heartbeat" not in run[0]["diff"]["after"]
    assert run[1]["counts"]["total"] == 0
    # apply
    assert run[2]["changed"] is True and run[2]["renewed"] is False and run[2]["key"] == key
    session = run[2]["session"]
    assert session
    # apply again: same data, session renewed, heartbeat refreshed, not changed
    assert run[3]["changed"] is False and run[3]["renewed"] is True and run[3]["session"] == session
    assert run[3]["diff"]["before"] == run[3]["diff"]["after"]
    assert run[3]["member"]["heartbeat"] >= run[2]["member"]["heartbeat"]
    member = run[4]["members"][0]
    assert (member["state"], member["session"], member["ttl"], member["hostname"]) == ("alive", session, 60, "node1")
    # absent in check mode: would change, the member stays
    assert run[5]["changed"] is True and run[6]["counts"]["alive"] == 1
    # absent, then absent again
    assert run[7]["changed"] is True and run[7]["diff"]["after"] == {}
    assert run[8]["changed"] is False
    assert run[9]["counts"]["total"] == 0
    assert consul_agent.kv_get(key) is None
    assert consul_agent.session_info(session) is None


OPTION_CHANGES = [
    ("hostname", "node1-renamed"),
    ("role", "manager"),
    ("engine_version", "20.10.24"),
    ("labels", {"arch": "armv7l", "zone": "shelf-2"}),
    ("ttl", 90),
]


def test_each_option_check_apply_unchanged(consul_agent, kv_prefix, ansible):
    tasks = [module_task("swarm_registration", reg(consul_agent, kv_prefix))]
    changes = {}
    for option, value in OPTION_CHANGES:
        changes[option] = value  # cumulative: each step changes one more option
        args = reg(consul_agent, kv_prefix, **changes)
        tasks += [module_task("swarm_registration", args, check_mode=True, diff=True),
                  module_task("swarm_registration", args, diff=True),
                  module_task("swarm_registration", args)]
    tasks.append(members(consul_agent, kv_prefix))
    run = ansible.run(tasks)
    run.assert_no_traceback()
    assert not any(r.get("failed") for r in run.results), [r.get("msg") for r in run.results]
    sessions = []
    for index, (option, value) in enumerate(OPTION_CHANGES):
        check, apply, again = run[1 + 3 * index], run[2 + 3 * index], run[3 + 3 * index]
        assert check["changed"] is True, option
        assert check["diff"]["after"][option] == value, option
        assert apply["changed"] is True, option
        assert apply["member"][option] == value, option
        assert again["changed"] is False, option
        sessions.append(apply["session"])
    # data changes keep the session; a new TTL needs a new one
    assert len(set(sessions[:-1])) == 1 and sessions[-1] != sessions[0]
    final = run[-1]["members"][0]
    assert final["ttl"] == 90 and final["labels"] == {"arch": "armv7l", "zone": "shelf-2"}
    assert final["role"] == "manager" and final["engine_version"] == "20.10.24"
    assert consul_agent.session_info(sessions[0]) is None  # the replaced session was destroyed


def test_prefix_option_and_value_format(consul_agent, kv_prefix, ansible):
    other = kv_prefix.replace("/nodes", "/other-nodes")
    run = ansible.run([
        module_task("swarm_registration", reg(consul_agent, other), check_mode=True),
        module_task("swarm_registration", reg(consul_agent, other)),
        module_task("swarm_registration", reg(consul_agent, other)),
    ])
    assert [r["changed"] for r in run.results] == [True, True, False]
    entry = consul_agent.kv_get(f"{other}/{ADDRESS}")
    stored = json.loads(base64.b64decode(entry["Value"]))
    assert sorted(stored) == sorted(["schema", "address", "hostname", "role", "engine_version", "labels", "ttl",
                                     "heartbeat", "heartbeat_iso"])
    session = consul_agent.session_info(entry["Session"])
    assert (session["TTL"], session["Behavior"], session["Name"]) == ("60s", "delete", f"swarm-member {ADDRESS}")
    assert consul_agent.kv_get(f"{kv_prefix}/{ADDRESS}") is None


def test_bad_input_and_unreachable_consul(consul_agent, kv_prefix, ansible):
    foreign_key = f"{kv_prefix}/10.20.0.99:2375"
    foreign = consul_agent.session_create(name="someone else", ttl="60s")
    assert consul_agent.kv_put(foreign_key, "10.20.0.99:2375", acquire=foreign)
    dead_port = free_port()
    run = ansible.run([
        module_task("swarm_registration", reg(consul_agent, kv_prefix, address="node1")),
        module_task("swarm_registration", reg(consul_agent, kv_prefix, address="10.20.0.11:99999")),
        module_task("swarm_registration", reg(consul_agent, kv_prefix, ttl=5)),
        module_task("swarm_registration", reg(consul_agent, "/")),
        module_task("swarm_registration", reg(consul_agent, kv_prefix, state="maybe")),
        module_task("swarm_registration", reg(consul_agent, kv_prefix, address="10.20.0.99:2375")),
        module_task("swarm_registration", dict(reg(consul_agent, kv_prefix), host=f"127.0.0.1:{dead_port}")),
        module_task("swarm_registration", dict(reg(consul_agent, kv_prefix), host="ftp://127.0.0.1")),
    ])
    run.assert_no_traceback()
    assert all(r.get("failed") for r in run.results)
    msgs = [r["msg"] for r in run.results]
    assert msgs[0] == "invalid address 'node1': 'node1' is not <ip>:<port>; give the node's <ip>:<port>"
    assert "has no valid port (1-65535)" in msgs[1]
    assert msgs[2] == "ttl must be between 10 and 86400 seconds (Consul's limits), got 5"
    assert "membership prefix must not be empty" in msgs[3]
    assert "value of state must be one of: present, absent" in msgs[4]
    assert f"{foreign_key} in Consul at http://{consul_agent.http_addr} is held by session {foreign}" in msgs[5]
    assert "remove the registration with state=absent first" in msgs[5]
    assert msgs[6] == (f"cannot reach Consul at http://127.0.0.1:{dead_port} while reading {kv_prefix}/{ADDRESS}: "
                       "connection refused; is the agent running? set host/port (CONSUL_HTTP_ADDR)")
    assert "unsupported scheme 'ftp'" in msgs[7]
    # the foreign registration is untouched; state=absent is the explicit way to clear it
    assert consul_agent.kv_get(foreign_key)["Session"] == foreign
    cleared = ansible.run([module_task("swarm_registration",
                                       reg(consul_agent, kv_prefix, address="10.20.0.99:2375", state="absent"))])
    assert cleared[0]["changed"] is True and consul_agent.kv_get(foreign_key) is None


def test_missing_python_library_is_named(consul_agent, kv_prefix, ansible):
    run = ansible.run([module_task("swarm_registration", reg(consul_agent, kv_prefix))],
                      interpreter="/usr/bin/python3")
    assert run[0]["failed"] is True
    assert "python-consul2" in run[0]["msg"]
    assert "Failed to import the required Python library" in run[0]["msg"]
