"""Consul and swarm mode on three lab nodes: membership, agreement, the TTL drill, the gossip key."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from typing import Any, Dict, List

import pytest
import testinfra

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
HOSTS = ["master", "node1", "node2"]
TTL = 10  # swarm_heartbeat_ttl in molecule.yml
ENGINE_PORT = 2376
testinfra_hosts = [f"ansible://{h}?ansible_inventory={INVENTORY}" for h in HOSTS]


def node(name: str) -> Any:
    return testinfra.get_host(f"ansible://{name}?ansible_inventory={INVENTORY}")


def address(name: str) -> str:
    return node(name).check_output("ip -4 -o addr show eth0 | awk '{print $4}' | cut -d/ -f1")


def swarm_members(**options: Any) -> Dict[str, Any]:
    """Run picluster.swarm.swarm_members on the controller against the master's Consul."""
    args = {"host": address("master"), "include_expired": True, **options}
    env = dict(os.environ, ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="ansible.posix.json")
    ansible = os.path.join(os.path.dirname(sys.executable), "ansible")
    out = subprocess.run([ansible, "localhost", "-m", "picluster.swarm.swarm_members", "-a", json.dumps(args),
                          "-e", f"ansible_python_interpreter={sys.executable}"],
                         capture_output=True, text=True, env=env, timeout=120, check=False)
    result = json.loads(out.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]
    assert not result.get("failed"), result.get("msg")
    return result


def state_of(result: Dict[str, Any], ip: str) -> str:
    for member in result["members"]:
        if member["ip"] == ip:
            return member["state"]
    return "absent"


def wait_for_state(ip: str, wanted: List[str], timeout: float) -> str:
    deadline = time.monotonic() + timeout
    state = ""
    while time.monotonic() < deadline:
        state = state_of(swarm_members(), ip)
        if state in wanted:
            return state
        time.sleep(1)
    pytest.fail(f"{ip} stayed {state!r}, wanted {wanted} within {timeout:.0f} s")


def test_consul_runs(host):
    assert host.service("consul").is_running
    assert host.service("consul").is_enabled
    config = host.file("/etc/consul.d/consul.hcl")
    assert config.contains("Ansible managed")
    assert host.file("/etc/consul.d/secrets.hcl").mode == 0o640


def test_consul_members_shows_servers_and_clients():
    members = node("master").check_output("consul members")
    rows = {line.split()[0]: line.split() for line in members.splitlines()[1:]}
    assert rows["master"][2:4] == ["alive", "server"], members
    for name in ("node1", "node2"):
        assert rows[name][2:4] == ["alive", "client"], members


def test_gossip_key_shared_and_in_use():
    keys = set()
    for name in HOSTS:
        text = node(name).check_output("cat /etc/consul.d/secrets.hcl")
        keys.add(re.search(r'encrypt\s*=\s*"([^"]+)"', text).group(1))
    assert len(keys) == 1, "hosts disagree on the gossip key"
    keyring = node("master").check_output("consul keyring -list")
    assert keys.pop() in keyring


def test_every_node_ready_in_swarm():
    lines = node("master").check_output("docker node ls --format '{{json .}}'").splitlines()
    nodes = [json.loads(line) for line in lines]
    by_name = {n["Hostname"]: n for n in nodes}
    assert sorted(by_name) == sorted(HOSTS)
    assert all(n["Status"] == "Ready" for n in nodes), nodes
    assert by_name["master"]["ManagerStatus"] == "Leader"


def test_labels_set():
    labels = json.loads(node("master").check_output("docker node inspect node1 -f '{{json .Spec.Labels}}'"))
    assert labels == {"zone": "a", "disk": "ssd"}


def test_heartbeat_unit(host):
    assert host.service("picluster-heartbeat").is_running
    unit = host.file("/etc/systemd/system/picluster-heartbeat.service")
    assert unit.contains("Ansible managed")
    assert unit.contains(f"--ttl {TTL}")
    assert host.file("/etc/default/picluster-heartbeat").mode == 0o600


def test_consul_and_swarm_agree():
    result = swarm_members(wait_for_alive=3, wait_timeout=30)
    assert result["counts"]["alive"] + result["counts"].get("expiring", 0) == 3, result["counts"]
    in_consul = {m["address"] for m in result["members"] if m["state"] != "expired"}
    swarm_ips = node("master").check_output(
        "docker node ls -q | xargs docker node inspect -f '{{.Status.Addr}}'").split()
    assert in_consul == {f"{ip}:{ENGINE_PORT}" for ip in swarm_ips}
    roles = {m["hostname"]: m["role"] for m in result["members"]}
    assert roles == {"master": "manager", "node1": "worker", "node2": "worker"}
    assert all(m["ttl"] == TTL for m in result["members"])


def test_frozen_heartbeat_expires_within_ttl_and_recovers():
    ip = address("node2")
    worker = node("node2")
    worker.check_output("systemctl kill --signal=SIGSTOP picluster-heartbeat")
    try:
        # swarm_members calls a member expired once its last heartbeat is older
        # than the TTL; the margin covers polling (one ansible run per poll,
        # several seconds each on a loaded 2-core CI machine).
        wait_for_state(ip, ["expired", "absent"], TTL + 20)
    finally:
        worker.check_output("systemctl kill --signal=SIGCONT picluster-heartbeat")
    wait_for_state(ip, ["alive"], TTL + 10)


def test_stopped_heartbeat_leaves_and_restart_rejoins():
    ip = address("node1")
    worker = node("node1")
    worker.check_output("systemctl stop picluster-heartbeat")
    try:
        # A clean stop deregisters at once; never later than the TTL.
        wait_for_state(ip, ["expired", "absent"], TTL + 20)
    finally:
        worker.check_output("systemctl start picluster-heartbeat")
    wait_for_state(ip, ["alive"], 15)
