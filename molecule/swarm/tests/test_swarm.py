"""Consul and swarm mode on three lab nodes: membership, agreement, the TTL drill, the gossip key."""

from __future__ import annotations

import json
import re
from typing import Any

import testinfra
from picluster_lab import Lab

LAB = Lab.from_env()
HOSTS = ["master", "node1", "node2"]
TTL = 10  # swarm_heartbeat_ttl in molecule.yml
ENGINE_PORT = 2376
testinfra_hosts = LAB.testinfra_hosts()
GONE = ("expired", "absent")


def node(name: str) -> Any:
    return testinfra.get_host(LAB.testinfra_spec(name))


def wait_for_state(host: str, wanted: tuple[str, ...], timeout: float) -> float:
    """Until swarm_members reports the host in one of the wanted states."""
    return LAB.wait_until(f"{host} {' or '.join(wanted)} in Consul", lambda: LAB.member_state(host) in wanted,
                          limit=timeout)


def test_consul_runs(host):
    assert host.service("consul").is_running
    assert host.service("consul").is_enabled
    config = host.file("/etc/consul.d/consul.hcl")
    assert config.contains("Ansible managed")
    assert host.file("/etc/consul.d/secrets.hcl").mode == 0o640


def test_consul_members_shows_servers_and_clients():
    # The CLI talks to the master's own agent on 127.0.0.1; ACLs deny it without a token.
    members = LAB.sh_consul("master", ("members",))
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
    keyring = LAB.sh_consul("master", ["keyring", "-list"])
    assert keys.pop() in keyring


def test_every_node_ready_in_swarm():
    nodes = LAB.swarm_nodes()
    by_name = {n.hostname: n for n in nodes}
    assert sorted(by_name) == sorted(HOSTS)
    assert all(n.status == "Ready" for n in nodes), nodes
    assert by_name["master"].manager_status == "Leader"


def test_labels_set():
    labels = json.loads(node("master").check_output("docker node inspect node1 -f '{{json .Spec.Labels}}'"))
    assert labels == {"zone": "a", "disk": "ssd"}


def test_heartbeat_unit(host):
    assert host.service("picluster-heartbeat").is_running
    unit = host.file("/etc/systemd/system/picluster-heartbeat.service")
    assert unit.contains("Ansible managed")
    assert unit.contains(f"--ttl {TTL}")
    assert host.file("/etc/default/picluster-heartbeat").mode == 0o600


def test_heartbeat_runs_with_least_privilege(host):
    """A user of its own, no capabilities, no way back to root, a read-only system: a compromised heartbeat holds
    its own token (which writes only its own key) and cannot reach the Docker socket or Consul's secrets."""
    pid = host.check_output("systemctl show -p MainPID --value picluster-heartbeat")
    status = host.check_output(f"cat /proc/{pid}/status")
    fields = dict(re.findall(r"^(Uid|CapEff|NoNewPrivs):\s+(\S+)", status, re.M))
    uid = fields["Uid"]
    assert uid != "0" and int(fields["CapEff"], 16) == 0 and fields["NoNewPrivs"] == "1", fields
    as_it = f"setpriv --reuid {uid} --regid {uid} --clear-groups"
    refused = host.run(f"{as_it} cat /etc/consul.d/secrets.hcl")
    assert refused.rc != 0 and "Permission denied" in refused.stderr, refused
    connect = "import socket; socket.socket(socket.AF_UNIX).connect('/var/run/docker.sock')"
    docker = host.run(f'{as_it} python3 -c "{connect}"')
    assert docker.rc != 0 and "Permission denied" in docker.stderr, docker
    mounts = [line.split() for line in host.check_output(f"cat /proc/{pid}/mounts").splitlines()]
    root = [fields for fields in mounts if fields[1:2] == ["/"]]
    assert root and "ro" in root[-1][3].split(","), root  # the system read-only, as the heartbeat sees it


def test_consul_and_swarm_agree():
    result = LAB.members(wait_for_alive=3, wait_timeout=30)
    assert result.counts["alive"] + result.counts.get("expiring", 0) == 3, result.counts
    in_consul = {m.address for m in result.members if m.state != "expired"}
    swarm_ips = node("master").check_output(
        "docker node ls -q | xargs docker node inspect -f '{{.Status.Addr}}'").split()
    assert in_consul == {f"{ip}:{ENGINE_PORT}" for ip in swarm_ips}
    roles = {m.hostname: m.role for m in result.members}
    assert roles == {"master": "manager", "node1": "worker", "node2": "worker"}
    assert all(m.ttl == TTL for m in result.members)


def interrupt_heartbeat(host: str, stop: str, resume: str, back_within: float) -> None:
    """Stop the host's heartbeat: Consul must report it gone within the TTL (the
    margin covers polling: one ansible run per poll, several seconds each on a
    loaded 2-core CI machine), and alive again once the heartbeat resumes."""
    worker = node(host)
    worker.check_output(stop)
    try:
        wait_for_state(host, GONE, TTL + 20)
    finally:
        worker.check_output(resume)
    wait_for_state(host, ("alive",), back_within)


def test_frozen_heartbeat_expires_within_ttl_and_recovers():
    # swarm_members calls a member expired once its last heartbeat is older than the TTL.
    interrupt_heartbeat("node2", "systemctl kill --signal=SIGSTOP picluster-heartbeat",
                        "systemctl kill --signal=SIGCONT picluster-heartbeat", back_within=TTL + 10)


def test_stopped_heartbeat_leaves_and_restart_rejoins():
    # A clean stop deregisters at once; never later than the TTL.
    interrupt_heartbeat("node1", "systemctl stop picluster-heartbeat", "systemctl start picluster-heartbeat",
                        back_within=15)
