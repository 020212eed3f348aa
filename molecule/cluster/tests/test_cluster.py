"""The whole cluster, built by site.yml, and the failure drill.

Runs on this host: it talks to the nodes with `docker exec`, to the proxy on
the master's lab address, and reads Consul through our own swarm_members
module (the lab network is a local bridge, so all of it is on this machine).
Tests run in file order; the drill comes last and leaves the cluster whole.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time

from labtools import REPORTS, address, container, members, sh, state_of, swarm_nodes, wait_until
from labtools import get as get_host

HOSTS = ["master", "node1", "node2", "node3", "node4", "node5"]
DEMO_HOST = "demo.picluster.lab"
SERVICE = "demo-web"
TTL = 10  # swarm_heartbeat_ttl in molecule.yml
REPORT = REPORTS / "drill.json"


def get(host_header: str = DEMO_HOST, timeout: float = 5) -> tuple[int, str]:
    return get_host(host_header, timeout=timeout)


def running_tasks() -> list[str]:
    """Nodes that hold a running demo task."""
    out = sh("master", "docker", "service", "ps", SERVICE, "--filter", "desired-state=running",
             "--format", "{{.Node}} {{.CurrentState}}")
    return [line.split()[0] for line in out.splitlines() if " Running " in f" {line} "]


def test_six_swarm_nodes_ready():
    nodes = swarm_nodes()
    assert sorted(n["Hostname"] for n in nodes) == sorted(HOSTS)
    assert all(n["Status"] == "Ready" and n["Availability"] == "Active" for n in nodes), nodes
    assert [n["Hostname"] for n in nodes if n["ManagerStatus"] == "Leader"] == ["master"]


def test_six_alive_members_agree_with_swarm():
    result = members()
    assert result["counts"]["alive"] == 6, result["members"]
    in_consul = {m["ip"] for m in result["members"] if m["state"] == "alive"}
    in_swarm = {sh("master", "docker", "node", "inspect", "-f", "{{.Status.Addr}}", h).strip() for h in HOSTS}
    assert in_consul == in_swarm == {address(h) for h in HOSTS}


def test_overlay_carries_traffic_between_nodes():
    sh("node1", "docker", "run", "-d", "--rm", "--name", "ov-server", "--hostname", "ov-server",
       "--network", "my-net", "picluster/demo-web:latest")
    try:
        fetch = ("import urllib.request, time\n"
                 "for _ in range(30):\n"
                 "    try:\n"
                 "        print(urllib.request.urlopen('http://ov-server:8080/', timeout=2).read().decode()); break\n"
                 "    except OSError:\n"
                 "        time.sleep(1)\n")
        out = sh("node2", "docker", "run", "--rm", "--network", "my-net", "picluster/demo-web:latest",
                 "python3", "-c", fetch, timeout=90)
        # Answered by the container on node1, reached by name from node2.
        assert json.loads(out)["container"] == "ov-server", out
    finally:
        sh("node1", "docker", "rm", "-f", "ov-server", check=False)


def test_proxy_serves_the_demo_from_several_nodes():
    seen = set()
    for _request in range(60):
        status, body = get()
        assert status == 200, body
        seen.add(json.loads(body)["node"])
        if len(seen) >= 2:
            break
    assert len(seen) >= 2, f"only {seen} answered"
    status, _body = get("nobody.picluster.lab")
    assert status == 404


def test_failure_drill():
    """Pull a node: it expires in Consul, its task moves, the proxy keeps
    serving, and it rejoins cleanly."""
    victim = next(n for n in running_tasks() if n != "master")
    victim_ip = address(victim)
    log: list[tuple[float, bool]] = []
    stop = threading.Event()

    def traffic() -> None:
        # Bounded: at most 600 requests / 300 s, stopped by the test.
        t_start = time.monotonic()
        for _request in range(600):
            if stop.is_set() or time.monotonic() - t_start > 300:
                return
            status, _body = get(timeout=3)
            log.append((time.monotonic(), status == 200))
            time.sleep(0.25)

    loader = threading.Thread(target=traffic, daemon=True)
    loader.start()
    time.sleep(2)
    t_kill = time.monotonic()
    subprocess.run(["docker", "kill", container(victim)], check=True, capture_output=True)
    try:
        detected = wait_until(f"{victim} expiring in Consul",
                              lambda: state_of(members(), victim_ip) in ("expired", None), limit=TTL + 20)
        rescheduled = wait_until(f"{SERVICE} back to 3 running tasks off {victim}",
                                 lambda: len(running_tasks()) == 3 and victim not in running_tasks(), limit=120)
        settled = time.monotonic()
        time.sleep(10)  # requests after the failover window must all succeed
    finally:
        subprocess.run(["docker", "start", container(victim)], check=True, capture_output=True)
    stop.set()
    loader.join(timeout=10)

    before = [ok for t, ok in log if t < t_kill]
    window = [ok for t, ok in log if t_kill <= t < settled]
    after = [ok for t, ok in log if settled + 2 <= t]
    rejoined = wait_until(f"{victim} alive in Consul and Ready in swarm again",
                          lambda: state_of(members(), victim_ip) == "alive"
                          and any(n["Hostname"] == victim and n["Status"] == "Ready" for n in swarm_nodes()),
                          limit=180, interval=2)
    result = members()
    report = {
        "ttl_s": TTL, "victim": victim,
        "detection_s": round(detected, 1), "reschedule_s": round(rescheduled, 1), "rejoin_s": round(rejoined, 1),
        "requests_total": len(log), "failed_before": before.count(False),
        "failed_during_failover": window.count(False), "requests_during_failover": len(window),
        "failed_after_failover": after.count(False), "requests_after_failover": len(after),
    }
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report))

    assert before and all(before), "the proxy failed before the drill began"
    assert after and all(after), f"requests failed after the failover window: {report}"
    assert detected <= TTL + 15, report
    # Rejoined cleanly: one registration per node, no stale swarm node.
    assert sorted(m["ip"] for m in result["members"]) == sorted(address(h) for h in HOSTS)
    assert sorted(n["Hostname"] for n in swarm_nodes()) == sorted(HOSTS)
