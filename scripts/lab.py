#!/usr/bin/env python3
"""The local Pi lab: Docker-in-Docker "Raspberry Pis" on this machine.

Each node is a container that boots systemd and runs its own Docker engine
(the node image from ``node_image.py``), with a fixed address on a lab
network of its own, as the seed's Pis had static addresses. The lab writes an
Ansible inventory with the same groups as ``inventories/pi`` (``masters`` and
``nodes``), so the same playbooks run against both.

    lab.py up     [--name lab] [--masters 1] [--nodes 5] [--bare] [--inventory DIR]
    lab.py check  [--name lab]   # each node answers `docker info` and reaches the others
    lab.py status [--name lab]
    lab.py down   [--name lab]

No --privileged (the sandbox refuses it): the flag set is the one LAB-FACTS.md
records as working.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import ipaddress
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STATE = Path(os.environ.get("PICLUSTER_LAB_STATE", "/var/lib/picluster-lab"))
LABEL = "io.picluster.lab"
BOOT_TIMEOUT = 120
NODE_RUN_FLAGS = [
    "--cap-add=ALL", "--cap-drop=SYS_RESOURCE",
    "--security-opt", "seccomp=unconfined",
    "--security-opt", "apparmor=unconfined",
    "--security-opt", "systempaths=unconfined",
    "--device-cgroup-rule=a *:* rwm",
    "--cgroupns=host",
    "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
    "--tmpfs", "/run", "--tmpfs", "/run/lock", "--tmpfs", "/tmp",
    "-v", "/lib/modules:/lib/modules:ro",
    "--stop-signal", "SIGRTMIN+3",
]


class LabError(Exception):
    """A failure with a message a person can act on."""


@dataclass
class Node:
    lab: str
    hostname: str
    group: str  # "masters" or "nodes"
    address: str

    @property
    def container(self) -> str:
        return f"picluster-{self.lab}-{self.hostname}"


def docker(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    try:
        proc = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError as err:
        raise LabError("the docker client is not installed; run scripts/setup.sh") from err
    except subprocess.TimeoutExpired as err:
        raise LabError(f"`docker {' '.join(args)}` did not finish within {timeout:.0f}s") from err
    if check and proc.returncode != 0:
        raise LabError(f"`docker {' '.join(args)}` failed: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc


def default_subnet(name: str) -> str:
    """A /24 per lab name, so several labs (molecule scenarios) coexist."""
    third = int(hashlib.sha256(name.encode()).hexdigest(), 16) % 200 + 20
    return f"10.213.{third}.0/24"


def plan(name: str, masters: int, nodes: int, subnet: str) -> list[Node]:
    net = ipaddress.ip_network(subnet)
    if net.num_addresses < 256:
        raise LabError(f"subnet {subnet} is too small; give a /24 or larger")
    base = int(net.network_address)
    hosts = [("master" if masters == 1 else f"master{i}", "masters") for i in range(1, masters + 1)]
    hosts += [(f"node{i}", "nodes") for i in range(1, nodes + 1)]
    # Like the seed: master at .101, the nodes after it.
    return [Node(name, h, g, str(ipaddress.ip_address(base + 101 + i))) for i, (h, g) in enumerate(hosts)]


def existing(name: str) -> list[Node]:
    out = docker("ps", "-a", "--filter", f"label={LABEL}={name}", "--format", "{{.Names}}").stdout.split()
    found = []
    for cname in out:
        info = json.loads(docker("inspect", cname).stdout)[0]
        labels = info["Config"]["Labels"]
        nets = info["NetworkSettings"]["Networks"]
        addr = next(iter(nets.values()))["IPAMConfig"]["IPv4Address"] if nets else ""
        found.append(Node(name, labels["io.picluster.hostname"], labels["io.picluster.group"], addr))
    return sorted(found, key=lambda n: n.address)


def ensure_network(name: str, subnet: str, pinned: bool) -> tuple[str, str]:
    """The lab's bridge network and its subnet. A derived subnet that another
    lab already uses (two names can hash alike) moves to the next free /24;
    a subnet given with --subnet does not."""
    net = f"picluster-{name}"
    probe = docker("network", "inspect", "-f", "{{(index .IPAM.Config 0).Subnet}}", net, check=False)
    if probe.returncode == 0:
        return net, probe.stdout.strip()
    candidate = ipaddress.ip_network(subnet)
    for _attempt in range(1 if pinned else 200):
        made = docker("network", "create", "--driver", "bridge", "--subnet", str(candidate),
                      "--label", f"{LABEL}={name}", net, check=False)
        if made.returncode == 0:
            return net, str(candidate)
        if "overlap" not in made.stderr.lower():
            raise LabError(f"`docker network create {net}` failed: {made.stderr.strip()}")
        third = (int(candidate.network_address) >> 8 & 0xFF) - 20
        candidate = ipaddress.ip_network(f"10.213.{(third + 1) % 200 + 20}.0/24")
    raise LabError(f"no free /24 for lab '{name}' (tried from {subnet}); "
                   "remove old labs (`lab.py down`) or pass --subnet")


def start_node(node: Node, image: str, network: str) -> None:
    state = docker("inspect", "-f", "{{.State.Running}}", node.container, check=False)
    if state.returncode == 0:
        if state.stdout.strip() != "true":
            docker("start", node.container)
        return
    data = STATE / node.lab / node.hostname / "docker"
    data.mkdir(parents=True, exist_ok=True)
    docker(
        "run", "-d", "--name", node.container, "--hostname", node.hostname,
        "--network", network, "--ip", node.address,
        "--label", f"{LABEL}={node.lab}", "--label", f"io.picluster.hostname={node.hostname}",
        "--label", f"io.picluster.group={node.group}",
        # A host directory, so the node's engine runs overlay2 (overlay on overlay fails).
        "-v", f"{data}:/var/lib/docker",
        *NODE_RUN_FLAGS, image,
    )


def wait_booted(node: Node, need_engine: bool) -> str:
    deadline = time.monotonic() + BOOT_TIMEOUT
    state = ""
    while time.monotonic() < deadline:
        proc = docker("exec", node.container, "systemctl", "is-system-running", check=False, timeout=30)
        state = proc.stdout.strip()
        if state in ("running", "degraded"):
            break
        time.sleep(1)
    else:
        raise LabError(f"{node.hostname}: systemd did not finish booting within {BOOT_TIMEOUT}s (state {state!r}); "
                       f"see `docker logs {node.container}`")
    if state == "degraded":
        failed = docker("exec", node.container, "systemctl", "--failed", "--no-legend", "--plain", check=False).stdout
        units = " ".join(line.split()[0] for line in failed.splitlines() if line)
        print(f"    {node.hostname}: systemd degraded; failed units: {units}")
    if need_engine:
        while time.monotonic() < deadline:
            if docker("exec", node.container, "docker", "info", check=False, timeout=30).returncode == 0:
                return state
            time.sleep(1)
        raise LabError(f"{node.hostname}: its Docker engine did not answer within {BOOT_TIMEOUT}s; "
                       f"see `docker exec {node.container} journalctl -u docker`")
    return state


def default_inventory(name: str) -> Path:
    """The main lab's inventory sits beside inventories/pi; throwaway labs
    (tests, experiments) keep theirs under build/."""
    return ROOT / "inventories" / "lab" if name == "lab" else ROOT / "build" / "labs" / name


def write_inventory(nodes: list[Node], directory: Path, lab: str) -> None:
    groups: dict[str, dict] = {"masters": {"hosts": {}}, "nodes": {"hosts": {}}}
    for n in nodes:
        groups[n.group]["hosts"][n.hostname] = {"ansible_host": n.container, "picluster_address": n.address}
    inventory = {
        "all": {
            "vars": {
                "ansible_connection": "community.docker.docker",
                "ansible_python_interpreter": "/usr/bin/python3",
                "picluster_lab": lab,
                # No download in the lab: the consul role copies the binary we build.
                "consul_binary_local_path": os.environ.get(
                    "PICLUSTER_CONSUL_BIN", "/var/cache/picluster/consul/consul-1.22.3"),
                # No registry either: the proxy and the dashboard build on the
                # base image that scripts/app_images.py loads into the masters.
                "reverse_proxy_base_image": "picluster/proxy-base:latest",
                "reverse_proxy_base_image_pull": False,
                "dashboard_base_image": "picluster/proxy-base:latest",
                "dashboard_base_image_pull": False,
            },
            "children": {"cluster": {"children": groups}},
        }
    }
    directory.mkdir(parents=True, exist_ok=True)
    header = f"---\n# Written by scripts/lab.py for lab '{lab}'; regenerated on every `lab.py up`.\n"
    # JSON is valid YAML, and keeps this script free of third-party imports.
    (directory / "hosts.yml").write_text(header + json.dumps(inventory, indent=2) + "\n")


def write_instance_config(nodes: list[Node], path: Path) -> None:
    """Molecule's delegated driver reads how to reach each instance from here."""
    config = [{"instance": n.hostname, "address": n.container, "user": "root",
               "connection": "community.docker.docker"} for n in nodes]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config, indent=2) + "\n")


def cmd_up(args: argparse.Namespace) -> None:
    t0 = time.monotonic()
    if args.masters < 1 or args.nodes < 0 or args.masters + args.nodes > 40:
        raise LabError("--masters must be at least 1, --nodes at least 0, and 40 hosts at most in all")
    name_cmd = [sys.executable, str(ROOT / "scripts/node_image.py"), "name", *(["--bare"] if args.bare else [])]
    image = subprocess.run(name_cmd, capture_output=True, text=True, check=True).stdout.strip()
    if docker("image", "inspect", image, check=False).returncode != 0:
        raise LabError(f"node image {image} is not built; run scripts/setup.sh images")
    have = {n.hostname for n in existing(args.name)}
    wanted = {n.hostname for n in plan(args.name, args.masters, args.nodes, args.subnet or default_subnet(args.name))}
    extra = have - wanted
    if extra:
        raise LabError(f"lab '{args.name}' already has hosts {sorted(extra)} not in this plan; "
                       f"run `lab.py down --name {args.name}` first")
    network, subnet = ensure_network(args.name, args.subnet or default_subnet(args.name), bool(args.subnet))
    nodes = plan(args.name, args.masters, args.nodes, subnet)
    print(f"==> lab {args.name}: {len(nodes)} nodes on {network} ({subnet}) from {image}")
    for n in nodes:
        start_node(n, image, network)
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(nodes)) as pool:
        states = list(pool.map(lambda n: wait_booted(n, not args.bare), nodes))
    inv = Path(args.inventory) if args.inventory else default_inventory(args.name)
    write_inventory(nodes, inv, args.name)
    if args.instance_config:
        write_instance_config(nodes, Path(args.instance_config))
    for n, s in zip(nodes, states):
        print(f"    {n.hostname:<8} {n.group:<8} {n.address:<15} systemd {s}")
    print(f"==> lab {args.name}: up in {time.monotonic() - t0:.0f}s; inventory {inv}/hosts.yml")


def cmd_check(args: argparse.Namespace) -> None:
    nodes = existing(args.name)
    if not nodes:
        raise LabError(f"lab '{args.name}' has no nodes; run `lab.py up --name {args.name}`")
    problems = []
    peers = len(nodes) - 1
    for n in nodes:
        engine = docker("exec", n.container, "docker", "info", "-f", "{{.ServerVersion}}", check=False)
        if engine.returncode != 0:
            problems.append(f"{n.hostname}: `docker info` failed: {engine.stderr.strip()}")
        others = " ".join(o.address for o in nodes if o is not n)
        unreachable: list[str] = []
        if others:
            ping = docker("exec", n.container, "sh", "-c",
                          f"for ip in {others}; do ping -c1 -W2 $ip >/dev/null || echo $ip; done", check=False)
            unreachable = ping.stdout.split() if ping.returncode == 0 else others.split()
            if unreachable:
                problems.append(f"{n.hostname}: cannot reach {' '.join(unreachable)}")
        version = engine.stdout.strip() or "DOWN"
        print(f"    {n.hostname:<8} engine {version:<16} reaches {peers - len(unreachable)}/{peers} others")
    if problems:
        raise LabError("lab check failed:\n  " + "\n  ".join(problems))
    print(f"==> lab {args.name}: {len(nodes)} nodes answer `docker info` and reach each other")


def cmd_status(args: argparse.Namespace) -> None:
    nodes = existing(args.name)
    if not nodes:
        print(f"lab '{args.name}': no nodes")
        return
    print(f"{'HOST':<9}{'GROUP':<9}{'ADDRESS':<16}{'CONTAINER':<10}ENGINE")
    for n in nodes:
        running = docker("inspect", "-f", "{{.State.Status}}", n.container).stdout.strip()
        engine = docker("exec", n.container, "docker", "version", "-f", "{{.Server.Version}}",
                        check=False).stdout.strip()
        print(f"{n.hostname:<9}{n.group:<9}{n.address:<16}{running:<10}{engine or '-'}")


def cmd_down(args: argparse.Namespace) -> None:
    t0 = time.monotonic()
    names = docker("ps", "-aq", "--filter", f"label={LABEL}={args.name}").stdout.split()
    if names:
        docker("rm", "-f", "-v", *names, timeout=180)
    if docker("network", "inspect", f"picluster-{args.name}", check=False).returncode == 0:
        docker("network", "rm", f"picluster-{args.name}")
    shutil.rmtree(STATE / args.name, ignore_errors=True)
    if (STATE / args.name).exists():
        raise LabError(f"could not remove {STATE / args.name}; remove it by hand")
    print(f"==> lab {args.name}: down ({len(names)} nodes removed) in {time.monotonic() - t0:.0f}s")


def main() -> int:
    parser = argparse.ArgumentParser(description="The local Pi lab on Docker-in-Docker.")
    parser.add_argument("command", choices=["up", "down", "status", "check"])
    parser.add_argument("--name", default=os.environ.get("PICLUSTER_LAB", "lab"), help="lab name (default: lab)")
    parser.add_argument("--masters", type=int, default=1, help="masters (default 1)")
    parser.add_argument("--nodes", type=int, default=5, help="nodes besides the masters (default 5)")
    parser.add_argument("--subnet", help="lab network, a /24 (default: derived from the name)")
    parser.add_argument("--bare", action="store_true", help="nodes without a Docker engine")
    parser.add_argument("--inventory",
                        help="where to write hosts.yml (default: inventories/lab for 'lab', else build/labs/NAME)")
    parser.add_argument("--instance-config", help="also write molecule's instance config to this file")
    args = parser.parse_args()
    try:
        {"up": cmd_up, "down": cmd_down, "status": cmd_status, "check": cmd_check}[args.command](args)
    except LabError as err:
        print(f"ERROR: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
