"""The lab nodes are usable "Pis": systemd, a Docker engine, reachable peers."""

import os

import testinfra

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
HOSTS = ["master", "node1", "node2"]
testinfra_hosts = [f"ansible://{h}?ansible_inventory={INVENTORY}" for h in HOSTS]


def _address(name: str) -> str:
    host = testinfra.get_host(f"ansible://{name}?ansible_inventory={INVENTORY}")
    return host.check_output("ip -4 -o addr show eth0 | awk '{print $4}' | cut -d/ -f1")


def test_systemd_booted(host):
    state = host.run("systemctl is-system-running").stdout.strip()
    assert state in ("running", "degraded"), state


def test_engine_answers(host):
    assert host.service("docker").is_running
    info = host.check_output("docker info -f '{{.Driver}} {{.ServerVersion}}'")
    driver, version = info.split()
    assert driver == "overlay2", f"inner engine fell back to {driver}; /var/lib/docker must be a host directory"
    assert int(version.split(".")[0]) >= 20


def test_engine_runs_containers(host):
    # No registry is reachable: build a tiny image from the node's own files.
    out = host.run(
        "tar -C / -c lib lib64 usr/bin/echo usr/lib/x86_64-linux-gnu/libc.so.6"
        " usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 usr/lib64/ld-linux-x86-64.so.2"
        " | docker import - lab-probe:1 >/dev/null && docker run --rm lab-probe:1 /usr/bin/echo ok"
    )
    assert out.rc == 0 and out.stdout.strip() == "ok", out.stderr


def test_reaches_every_other_node(host):
    me = host.check_output("hostname")
    for other in HOSTS:
        if other == me:
            continue
        assert host.run(f"ping -c1 -W2 {_address(other)}").rc == 0, f"{me} cannot reach {other}"
