"""What the CLI prints about a lab: `status`, `check` and `state` (the end of `make lab`)."""

from __future__ import annotations

from collections import Counter

from ._common import LabError
from .lab import Lab
from .provision import container_status

DEMO_HOST = "demo.picluster.lab"
DASHBOARD_HOST = "dashboard.picluster.lab"


def status(lab: Lab) -> None:
    print(f"{'HOST':<9}{'GROUP':<9}{'ADDRESS':<16}{'CONTAINER':<10}ENGINE")
    for host in lab.hosts():
        running = container_status(lab.container(host))
        engine = lab.sh(host, ["docker", "version", "-f", "{{.Server.Version}}"], check=False).strip()
        print(f"{host:<9}{lab.group(host):<9}{lab.address(host):<16}{running:<10}{engine or '-'}")


def check(lab: Lab) -> None:
    """Each node answers `docker info` and reaches every other node."""
    problems = []
    hosts = lab.hosts()
    for host in hosts:
        engine = lab.run(host, ["docker", "info", "-f", "{{.ServerVersion}}"])
        if engine.returncode != 0:
            problems.append(f"{host}: `docker info` failed: {engine.stderr.strip()}")
        others = [lab.address(o) for o in hosts if o != host]
        unreachable: list[str] = []
        if others:
            ping = lab.run(host, f"for ip in {' '.join(others)}; do ping -c1 -W2 $ip >/dev/null || echo $ip; done")
            unreachable = ping.stdout.split() if ping.returncode == 0 else others
            if unreachable:
                problems.append(f"{host}: cannot reach {' '.join(unreachable)}")
        version = engine.stdout.strip() or "DOWN"
        print(f"    {host:<8} engine {version:<16} reaches {len(others) - len(unreachable)}/{len(others)} others")
    if problems:
        raise LabError("lab check failed:\n  " + "\n  ".join(problems))
    print(f"==> lab {lab.name}: {len(hosts)} nodes answer `docker info` and reach each other")


def _exists(lab: Lab, host: str, *inspect: str) -> bool:
    return lab.run(host, ["docker", *inspect]).returncode == 0


def membership(lab: Lab) -> None:
    print("\n== Consul membership (picluster.swarm.swarm_members)")
    try:
        members = lab.members()
    except LabError as err:
        print(f"   Consul did not answer: {err}")
        return
    print(f"{'HOST':<8} {'ADDRESS':<22} {'ROLE':<8} {'STATE':<9} TTL LEFT")
    for m in members.members:
        print(f"{m.hostname:<8} {m.address:<22} {m.role:<8} {m.state:<9} {m.seconds_left:.1f}s of {m.ttl}s")
    c = members.counts
    print(f"{c.get('total', 0)} members: {c.get('alive', 0)} alive, {c.get('expiring', 0)} expiring, "
          f"{c.get('expired', 0)} expired")


def state(lab: Lab) -> None:
    """The nodes and, once the roles have built them, the swarm, the Consul
    membership, the proxy and who answers behind it, and the dashboard."""
    status(lab)
    try:
        master = lab.live_master()
    except LabError:
        return
    swarm = lab.sh(master, ["docker", "info", "-f", "{{.Swarm.LocalNodeState}}"], check=False).strip()
    if swarm != "active":
        return
    print(f"\n== swarm nodes (docker node ls on {lab.container(master)})")
    print(lab.sh(master, ["docker", "node", "ls"]), end="")
    print("\n== overlay networks")
    print(lab.sh(master, ["docker", "network", "ls", "--filter", "driver=overlay"]), end="")
    print("\n== services")
    print(lab.sh(master, ["docker", "service", "ls"]), end="")
    membership(lab)
    # Users send requests to the virtual IP when the lab has one (several masters).
    address = lab.entry_point
    ca = lab.pki_dir("edge") / "ca.pem"
    if _exists(lab, master, "inspect", "picluster-proxy"):
        where = (f"the virtual IP, held by {lab.vip_holder() or 'no master'}, moves between "
                 f"{', '.join(lab.hosts('masters'))}") if lab.vip else "the master"
        print(f"\n== reverse proxy: https://{address}/ (route by name; {where}; certificate from the edge CA {ca})")
        if _exists(lab, master, "service", "inspect", "demo-web"):
            print(f"   demo: curl --cacert {ca} --resolve {DEMO_HOST}:443:{address} https://{DEMO_HOST}/"
                  "   answered, 9 requests, by:")
            answers = Counter(lab.http(DEMO_HOST, via=address).body.strip() or "(no answer)" for _request in range(9))
            for body, count in sorted(answers.items()):
                print(f"   {count:>7} {body}")
    if _exists(lab, master, "service", "inspect", "picluster-dashboard"):
        password = lab.pki_dir("dashboard") / "admin"
        health = lab.http(DASHBOARD_HOST, "/api/health", via=address).status
        print(f"\n== dashboard: https://{DASHBOARD_HOST}/ (through the proxy at {address})")
        print(f"   health: HTTP {health}; user admin, password in {password}")
        print(f"   in a browser on this machine: chromium --host-resolver-rules='MAP {DASHBOARD_HOST} {address}'"
              f" https://{DASHBOARD_HOST}/   (trust {ca} first: docs/edge-tls.md)")
        print(f"   or: curl -u admin:$(cat {password}) --cacert {ca} --resolve {DASHBOARD_HOST}:443:{address}"
              f" https://{DASHBOARD_HOST}/api/cluster")
