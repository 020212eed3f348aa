# Copyright (c) 2025 picluster.swarm developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The consul_members inventory plugin (ansible-inventory) and the swarm_members lookup, against real Consul."""

from __future__ import annotations

import json

from ansible_runner import free_port
from membership_data import put_member, standard_cluster


def plain(value):
    """ansible-inventory marks strings from plugins as untrusted ({"__ansible_unsafe": ...}): Consul data is not
    templated. Unwrap for comparisons."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return value["__ansible_unsafe"]
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def inventory_config(agent, prefix, **options):
    config = {"plugin": "picluster.swarm.consul_members", "host": agent.url, "prefix": prefix}
    config.update(options)
    return config


def test_inventory_hosts_groups_and_constructed(consul_agent, kv_prefix, ansible):
    standard_cluster(consul_agent, kv_prefix)
    put_member(consul_agent, kv_prefix, "10.30.0.10:2375", hostname="a")  # a second "a": named by address
    proc = ansible.inventory(inventory_config(
        consul_agent, kv_prefix,
        compose={"swarm_is_arm": "swarm_labels.arch | default('') == 'armv7l'"},
        keyed_groups=[{"key": "swarm_labels.arch | default('none')", "prefix": "arch"}],
        groups={"swarm_managers": "swarm_role == 'manager'"},
    ))
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    inventory = plain(json.loads(proc.stdout))
    hostvars = inventory["_meta"]["hostvars"]
    assert sorted(hostvars) == ["10.30.0.10:2375", "10.30.0.5:2375", "a", "b", "c", "d"]
    assert hostvars["a"]["ansible_host"] == "10.30.0.1"
    assert hostvars["a"]["swarm_address"] == "10.30.0.1:2375"
    assert hostvars["a"]["swarm_port"] == 2375
    assert hostvars["a"]["swarm_role"] == "manager" and hostvars["a"]["swarm_state"] == "alive"
    assert hostvars["a"]["swarm_is_arm"] is True and hostvars["b"]["swarm_is_arm"] is False
    assert hostvars["a"]["swarm_seconds_left"] > 0 and hostvars["a"]["swarm_ttl"] == 600
    assert sorted(inventory["swarm_members"]["hosts"]) == sorted(hostvars)
    assert inventory["swarm_state_alive"]["hosts"] == ["a", "10.30.0.5:2375", "10.30.0.10:2375"]
    assert inventory["swarm_state_expiring"]["hosts"] == ["b"]
    assert inventory["swarm_state_expired"]["hosts"] == ["c", "d"]
    assert inventory["swarm_role_manager"]["hosts"] == ["a"]
    assert inventory["swarm_managers"]["hosts"] == ["a"]
    assert inventory["arch_armv7l"]["hosts"] == ["a"]
    assert "two members announce the host name a" in proc.stderr
    assert "ignoring" in proc.stderr and "junk" in proc.stderr  # invalid entries are warnings, not failures

    by_address = ansible.inventory(inventory_config(consul_agent, kv_prefix, include_expired=False,
                                                    hostnames="address"))
    assert by_address.returncode == 0, by_address.stderr
    hosts = plain(json.loads(by_address.stdout))["_meta"]["hostvars"]
    assert sorted(hosts) == sorted(["10.30.0.1:2375", "10.30.0.2:2375", "10.30.0.5:2375", "10.30.0.10:2375"])


def test_inventory_failures_are_messages(consul_agent, kv_prefix, ansible):
    dead_port = free_port()
    unreachable = ansible.inventory({"plugin": "picluster.swarm.consul_members", "host": f"127.0.0.1:{dead_port}"})
    assert unreachable.returncode != 0
    assert (f"picluster.swarm.consul_members: cannot reach Consul at http://127.0.0.1:{dead_port} while reading "
            "docker/swarm/nodes/: connection refused") in " ".join(unreachable.stderr.split())
    assert "Traceback" not in unreachable.stderr
    bad = ansible.inventory(inventory_config(consul_agent, kv_prefix, expiring_fraction=2))
    assert bad.returncode != 0 and "expiring_fraction must be between 0 and 1" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_lookup_filters_by_state(consul_agent, kv_prefix, ansible):
    standard_cluster(consul_agent, kv_prefix)
    dead_port = free_port()
    conn = f"host='{consul_agent.url}', prefix='{kv_prefix}'"
    run = ansible.run([
        {"ansible.builtin.set_fact": {"live": f"{{{{ query('picluster.swarm.swarm_members', {conn}) }}}}"}},
        {"ansible.builtin.set_fact": {
            "dead": f"{{{{ query('picluster.swarm.swarm_members', 'expired', {conn}) }}}}"}},
        {"ansible.builtin.set_fact": {
            "every": f"{{{{ query('picluster.swarm.swarm_members', 'alive', 'expiring', 'expired', {conn}) }}}}"}},
        {"ansible.builtin.debug": {"msg": f"{{{{ query('picluster.swarm.swarm_members', 'zombie', {conn}) }}}}"}},
        {"ansible.builtin.debug": {
            "msg": f"{{{{ query('picluster.swarm.swarm_members', host='127.0.0.1:{dead_port}') }}}}"}},
        {"ansible.builtin.debug": {"msg": "{{ query('picluster.swarm.swarm_members', prefix='x/nodes') }}"},
         "environment": {"CONSUL_HTTP_ADDR": consul_agent.http_addr}},
    ])
    run.assert_no_traceback()
    live = run[0]["ansible_facts"]["live"]
    assert [m["address"] for m in live] == ["10.30.0.1:2375", "10.30.0.2:2375", "10.30.0.5:2375"]
    assert [m["state"] for m in live] == ["alive", "expiring", "alive"]
    assert [m["address"] for m in run[1]["ansible_facts"]["dead"]] == ["10.30.0.3:2375", "10.30.0.4:2375"]
    assert len(run[2]["ansible_facts"]["every"]) == 5
    assert "swarm_members lookup: unknown state(s) zombie; use alive, expiring, expired" in run[3]["msg"]
    assert (f"swarm_members lookup: cannot reach Consul at http://127.0.0.1:{dead_port} while reading "
            "docker/swarm/nodes/: connection refused") in run[4]["msg"]
    # Lookups run on the controller: a task's environment does not reach them, so this asks the default address.
    assert run[5].get("failed") is True or run[5]["msg"] == []
