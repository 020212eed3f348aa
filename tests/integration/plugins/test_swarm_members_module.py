# Copyright (c) 2025 picluster.swarm developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""picluster.swarm.swarm_members against a real Consul agent, through ansible-playbook."""

from __future__ import annotations

import re
import socket
import threading
import time

from ansible_runner import free_port, module_task
from membership_data import put_member, standard_cluster


def members(agent, prefix, **args):
    base = dict(agent.module_args(), prefix=prefix)
    base.update(args)
    return base


def addresses(result):
    return [m["address"] for m in result["members"]]


def test_states_options_and_failures(consul_agent, kv_prefix, ansible):
    standard_cluster(consul_agent, kv_prefix)
    many = kv_prefix.replace("/nodes", "/many")
    for i in range(60):
        put_member(consul_agent, many, f"10.31.{i // 250}.{i % 250 + 1}:2375", hostname=f"n{i}")
    blackhole = socket.socket()
    blackhole.bind(("127.0.0.1", 0))
    blackhole.listen(1)  # accepts connections, never answers
    dead_port = free_port()

    def task(**overrides):
        return module_task("swarm_members", {**members(consul_agent, kv_prefix), **overrides})

    try:
        run = ansible.run([
            task(),  # 0
            dict(task(), check_mode=True),  # 1
            task(include_expired=True),  # 2
            task(states=["expiring"]),  # 3
            task(states=["expired"]),  # 4
            task(expiring_fraction=0.1),  # 5
            task(wait_for_alive=3),  # 6
            task(wait_for_alive=4, wait_timeout=2, wait_interval=0.5),  # 7
            task(expected=["a", "10.30.0.5", "ghost", "10.30.0.3:2375"], wait_timeout=0),  # 8
            task(expected=["a", "10.30.0.2"]),  # 9
            task(expiring_fraction=1.5),  # 10
            task(wait_interval=0),  # 11
            task(prefix="/"),  # 12
            task(states=["dead"]),  # 13
            task(wait_for_alive=-1),  # 14
            task(host=f"127.0.0.1:{dead_port}"),  # 15
            task(host=f"127.0.0.1:{blackhole.getsockname()[1]}", timeout=1),  # 16
            module_task("swarm_members", members(consul_agent, many)),  # 17
        ])
    finally:
        blackhole.close()
    run.assert_no_traceback()
    ok = run.results[:10] + run.results[17:]
    assert [r.get("failed", False) for r in ok] == [False] * 6 + [False, True, True, False] + [False]
    assert all(r["changed"] is False for r in run.results[:10])

    default = run[0]
    assert addresses(default) == ["10.30.0.1:2375", "10.30.0.2:2375", "10.30.0.5:2375"]
    assert default["counts"] == {"total": 5, "alive": 2, "expiring": 1, "expired": 2}
    assert default["expired"] == ["10.30.0.3:2375", "10.30.0.4:2375"]
    assert default["http_requests"] == 2 and default["waited"] == 0
    first = default["members"][0]
    assert (first["hostname"], first["role"], first["labels"], first["state"], first["ttl"], first["format"]) == (
        "a", "manager", {"arch": "armv7l"}, "alive", 600, "json")
    assert 0 <= first["seconds_since_heartbeat"] < 120 and first["seconds_left"] > 480
    assert first["session"] and first["session_node"] == "plain"
    assert default["members"][2]["format"] == "classic" and default["members"][2]["heartbeat"] is None
    invalid = {i["key"].rsplit("/", 1)[-1] if "extra" not in i["key"] else "extra": i["reason"]
               for i in default["invalid"]}
    assert invalid == {
        "junk": "'junk' is not <ip>:<port>",
        "10.30.0.6:2375": "value is not valid JSON (Expecting property name enclosed in double quotes: line 1 "
        "column 2 (char 1)): '{not json'",
        "10.30.0.7:2375": "address 10.30.0.8:2375 in the value does not match the key's address 10.30.0.7:2375",
        "extra": "key is nested below the prefix; members are <prefix>/<ip>:<port>",
    }
    assert run[1]["members"] == default["members"] or addresses(run[1]) == addresses(default)  # check mode
    assert len(run[2]["members"]) == 5
    assert [m["state"] for m in run[2]["members"]] == ["alive", "expiring", "expired", "expired", "alive"]
    assert run[2]["members"][3]["session"] is None
    assert addresses(run[3]) == ["10.30.0.2:2375"]
    assert addresses(run[4]) == ["10.30.0.3:2375", "10.30.0.4:2375"]
    assert run[5]["counts"]["expiring"] == 0 and run[5]["counts"]["alive"] == 3
    assert run[6]["waited"] == 0 and run[6]["http_requests"] == 2

    waited = run[7]
    assert waited["msg"].startswith(f"swarm membership under {kv_prefix} is not ready after ")
    assert "3 of the 4 wanted members are alive" in waited["msg"]
    assert re.search(r"expired: 10\.30\.0\.3:2375 expired \(last heartbeat \d+ s ago, TTL 600 s\), "
                     r"10\.30\.0\.4:2375 expired \(no session holds its key\)", waited["msg"])
    assert "alive: a (10.30.0.1:2375, alive), b (10.30.0.2:2375, expiring), 10.30.0.5:2375" in waited["msg"]
    assert waited["http_requests"] == 2 * round(waited["http_requests"] / 2) >= 4  # two per poll, several polls

    expected = run[8]
    assert [m["name"] for m in expected["missing"]] == ["ghost", "10.30.0.3:2375"]
    assert "missing: ghost (not registered), 10.30.0.3:2375 (expired (last heartbeat" in expected["msg"]
    assert run[9]["missing"] == []

    assert run[10]["msg"] == "expiring_fraction must be between 0 and 1, got 1.5"
    assert run[11]["msg"] == "wait_interval must be a positive number of seconds"
    assert run[12]["msg"] == "the membership prefix must not be empty (default: docker/swarm/nodes)"
    assert "value of states must be one or more of: alive, expiring, expired. Got no match for: dead" in run[13]["msg"]
    assert run[14]["msg"] == "wait_for_alive must be 0 or more, got -1"
    assert run[15]["msg"] == (f"cannot reach Consul at http://127.0.0.1:{dead_port} while reading {kv_prefix}/: "
                              "connection refused; is the agent running? set host/port (CONSUL_HTTP_ADDR)")
    assert run[16]["msg"].startswith("Consul at http://127.0.0.1:")
    assert "did not answer within 1 s while reading" in run[16]["msg"]

    many_result = run[17]
    assert many_result["counts"]["total"] == 60 and many_result["http_requests"] == 2


def test_waits_until_a_heartbeat_arrives(consul_agent, kv_prefix, ansible, heartbeat, tmp_path):
    marker = tmp_path / "module-started"
    started = {}

    def start_heartbeat_after_marker():
        deadline = time.monotonic() + 120
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(8)  # the module task starts well within this, even on a loaded machine
        started["at"] = time.monotonic()
        started["process"] = heartbeat("--consul", consul_agent.http_addr, "--prefix", kv_prefix,
                                       "--address", "10.32.0.1:2375", "--hostname", "late", "--ttl", "10")

    thread = threading.Thread(target=start_heartbeat_after_marker, daemon=True)
    thread.start()
    run = ansible.run([
        {"ansible.builtin.file": {"path": str(marker), "state": "touch"}},
        module_task("swarm_members", members(consul_agent, kv_prefix, expected=["late"], wait_for_alive=1,
                                             wait_timeout=90, wait_interval=0.5)),
    ])
    thread.join(timeout=30)
    result = run[1]
    assert not result.get("failed"), result.get("msg")
    assert addresses(result) == ["10.32.0.1:2375"] and result["missing"] == []
    assert result["waited"] > 0
    assert result["http_requests"] >= 4
