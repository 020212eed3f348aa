"""Bringing a lab up and down: the nodes' containers, their network, their state.

Each node is a container that boots systemd and runs its own Docker engine,
with a fixed address on a bridge network of its own, as the seed's Pis had
static addresses. No --privileged (the sandbox refuses it): NODE_RUN_FLAGS is
the flag set LAB-FACTS.md records as working.
"""

from __future__ import annotations

import concurrent.futures
import ipaddress
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

from . import emulation, images, inventory, ssh
from ._common import LABEL, STATE, LabError, docker, say
from .inventory import Host
from .watch import end_running_watch

BOOT_TIMEOUT = 120
# An emulated node's systemd and engine start several times slower.
EMULATED_BOOT_TIMEOUT = 360
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
]


def stop_flags(arch: str) -> list[str]:
    """How `docker stop` asks the node's systemd to shut down: SIGRTMIN+3, which
    an emulated systemd receives as another number (emulation.run_flags)."""
    return (emulation.run_flags(arch) if arch else []) or ["--stop-signal", "SIGRTMIN+3"]


def existing_hosts(lab: str) -> set[str]:
    """Host names of the lab's containers, stopped ones included (by label: `up`
    must see what is there before it writes the inventory)."""
    out = docker("ps", "-a", "--filter", f"label={LABEL}={lab}", "--format", '{{.Label "io.picluster.hostname"}}')
    return set(out.stdout.split())


def ensure_network(lab: str, subnet: str, pinned: bool) -> tuple[str, str]:
    """The lab's bridge network and its subnet. A derived subnet that another
    lab already uses (two names can hash alike) moves to the next free /24;
    a subnet given with --subnet does not."""
    net = inventory.network_name(lab)
    probe = docker("network", "inspect", "-f", "{{(index .IPAM.Config 0).Subnet}}", net, check=False)
    if probe.returncode == 0:
        return net, probe.stdout.strip()
    candidate = subnet
    for _attempt in range(1 if pinned else inventory.SUBNET_COUNT):
        made = docker("network", "create", "--driver", "bridge", "--subnet", candidate,
                      "--label", f"{LABEL}={lab}", net, check=False)
        if made.returncode == 0:
            return net, str(ipaddress.ip_network(candidate))
        if "overlap" not in made.stderr.lower():
            raise LabError(f"`docker network create {net}` failed: {made.stderr.strip()}")
        candidate = inventory.next_subnet(candidate)
    raise LabError(
        f"no free /24 for lab '{lab}' (tried from {subnet}); remove old labs (`python3 lab down`) or pass --subnet"
    )


def start_node(lab: str, host: Host, image: str, network: str) -> None:
    state = docker("inspect", "-f", "{{.State.Running}}", host.container, check=False)
    if state.returncode == 0:
        if state.stdout.strip() != "true":
            docker("start", host.container)
        return
    data = STATE / lab / host.name / "docker"
    data.mkdir(parents=True, exist_ok=True)
    # The node's own /etc/hosts, as on a Pi's disk: Docker rewrites the file
    # it manages at every container start, which would undo what the base
    # role wrote each time a drill restarts a node.
    hosts_file = STATE / lab / host.name / "hosts"
    if not hosts_file.exists():
        hosts_file.write_text(f"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
                              f"{host.address}\t{host.name}\n")
    docker(
        "run", "-d", "--name", host.container, "--hostname", host.name,
        "--network", network, "--ip", host.address,
        "--label", f"{LABEL}={lab}", "--label", f"io.picluster.hostname={host.name}",
        "--label", f"io.picluster.group={host.group}",
        # A host directory, so the node's engine runs overlay2 (overlay on overlay fails).
        "-v", f"{data}:/var/lib/docker",
        "-v", f"{hosts_file}:/etc/hosts",
        *NODE_RUN_FLAGS, *stop_flags(host.arch), image,
    )


def boot_hint(host: Host) -> str:
    """What the node's console says about a boot that did not finish."""
    log = docker("logs", "--tail", "20", host.container, check=False, timeout=30)
    text = log.stdout + log.stderr
    if "Too many open files" in text or "inotify" in text.lower():
        return (": this host ran out of inotify instances (every lab node's systemd takes several); raise "
                "fs.inotify.max_user_instances (scripts/setup.sh engine does) or take other labs down")
    last = [line for line in text.splitlines() if line.strip()][-1:]
    return f"; its console ends: {last[0][:200]}" if last else ""


def wait_booted(host: Host, need_engine: bool) -> str:
    """Wait for systemd (and the engine); return systemd's state."""
    limit = EMULATED_BOOT_TIMEOUT if host.arch else BOOT_TIMEOUT  # plan() sets arch on emulated hosts only
    deadline = time.monotonic() + limit
    state = ""
    while time.monotonic() < deadline:
        state = docker("exec", host.container, "systemctl", "is-system-running", check=False, timeout=30).stdout.strip()
        if state in ("running", "degraded"):
            break
        time.sleep(1)
    else:
        raise LabError(
            f"{host.name}: systemd did not finish booting within {limit}s (state {state!r}){boot_hint(host)}; "
            f"see `docker logs {host.container}`"
        )
    if state == "degraded":
        failed = docker("exec", host.container, "systemctl", "--failed", "--no-legend", "--plain", check=False).stdout
        units = " ".join(line.split()[0] for line in failed.splitlines() if line)
        print(f"    {host.name}: systemd degraded; failed units: {units}")
    if need_engine:
        while time.monotonic() < deadline:
            if docker("exec", host.container, "docker", "info", check=False, timeout=30).returncode == 0:
                return state
            time.sleep(1)
        raise LabError(
            f"{host.name}: its Docker engine did not answer within {limit}s; "
            f"see `docker exec {host.container} journalctl -u docker`"
        )
    return state


def up(
    lab: str,
    masters: int = 1,
    nodes: int = 5,
    *,
    subnet: str | None = None,
    bare: bool = False,
    bare_hosts: Sequence[str] = (),
    arch: str = images.HOST_ARCH,
    arches: dict[str, str] | None = None,
    instance_config: Path | None = None,
    ssh_user: str | None = None,
    sudo_password: bool = False,
) -> Path:
    """Start (or complete) the lab and write its inventory; return the inventory's path.
    With ssh_user (the controller user who will run Ansible), also the user's
    way in: a `pi` user on every node and an SSH inventory (see ssh.py).
    ``arches`` gives single hosts another architecture than ``arch`` (emulated
    ARM nodes: host name -> arm64 or armhf); ``bare_hosts`` are single hosts
    without an engine (``bare``: all of them)."""
    t0 = time.monotonic()
    inventory.check_arches(masters, nodes, arches or {})  # before a network or node is made
    inventory.check_hosts(masters, nodes, bare_hosts, "--bare-of")
    names = [name for name, _group in inventory.host_names(masters, nodes)]
    wanted_arches = dict.fromkeys(names, arch)
    wanted_arches.update(arches or {})
    bare_of = {name: bare or name in bare_hosts for name in names}
    node_images: dict[tuple[str, bool], str] = {}
    for a, engineless in sorted(set(zip(wanted_arches.values(), bare_of.values()))):
        node_images[a, engineless] = image_of = images.node_image(bare=engineless, arch=a)
        if not images.present(image_of):
            flag = "" if a == images.HOST_ARCH else f" --arch {a}"
            raise LabError(f"node image {image_of} is not built; run `python3 lab images build{flag}` "
                           "(or scripts/setup.sh images)")
        if a != images.HOST_ARCH and not Path(inventory.consul_binary(a)).is_file():
            raise LabError(f"no Consul binary for {a} at {inventory.consul_binary(a)}; run "
                           f"`python3 lab images build --arch {a}` (or scripts/setup.sh arm)")
    foreign_arches = {n: a for n, a in wanted_arches.items() if a != images.HOST_ARCH}
    if foreign_arches:  # one check of the host's set-up for all of them
        emulation.ensure_interpreters(tuple(sorted(set(foreign_arches.values()))))
    image = node_images[wanted_arches[names[0]], bare_of[names[0]]]  # the first master's, for the record
    extra = existing_hosts(lab) - set(names)
    if extra:
        raise LabError(
            f"lab '{lab}' already has hosts {sorted(extra)} not in this plan; run `python3 lab down --name {lab}` first"
        )
    network, taken = ensure_network(lab, subnet or inventory.derived_subnet(lab), pinned=bool(subnet))
    hosts = inventory.plan(lab, masters, nodes, taken, foreign_arches)
    say(f"lab {lab}: {len(hosts)} nodes on {network} ({taken}) from {', '.join(sorted(set(node_images.values())))}")
    for h in hosts:
        start_node(lab, h, node_images[wanted_arches[h.name], bare_of[h.name]], network)
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(hosts)) as pool:
        states = list(pool.map(lambda h: wait_booted(h, not bare_of[h.name]), hosts))
    access = ssh.setup(lab, taken, hosts, controller_user=ssh_user, sudo_password=sudo_password) if ssh_user else None
    path = inventory.write(inventory.default_inventory_dir(lab), lab, network=network, subnet=taken, image=image,
                           hosts=hosts, ssh=access)
    if instance_config:
        instance_config.parent.mkdir(parents=True, exist_ok=True)
        instance_config.write_text(inventory.instance_config(hosts))
    for h, s in zip(hosts, states):
        print(f"    {h.name:<8} {h.group:<8} {h.address:<15} {h.arch or images.HOST_ARCH:<6} systemd {s}")
    say(f"lab {lab}: up in {time.monotonic() - t0:.0f}s; inventory {path}")
    return path


def down(lab: str) -> int:
    """Remove the lab's containers, network, node state and inventory file
    (the PKI beside the inventory stays); return how many nodes were removed."""
    t0 = time.monotonic()
    end_running_watch(lab)  # a membership watch of this lab, if one runs, ends with it
    ids = docker("ps", "-aq", "--filter", f"label={LABEL}={lab}").stdout.split()
    if ids:
        docker("rm", "-f", "-v", *ids, timeout=180)
    net = inventory.network_name(lab)
    if docker("network", "inspect", net, check=False).returncode == 0:
        docker("network", "rm", net)
    shutil.rmtree(STATE / lab, ignore_errors=True)
    if (STATE / lab).exists():
        raise LabError(f"could not remove {STATE / lab}; remove it by hand")
    (inventory.default_inventory_dir(lab) / "hosts.yml").unlink(missing_ok=True)
    say(f"lab {lab}: down ({len(ids)} nodes removed) in {time.monotonic() - t0:.0f}s")
    return len(ids)


def container_status(container: str) -> str:
    """`running`, `exited`... or `absent`."""
    proc = docker("inspect", "-f", "{{.State.Status}}", container, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else "absent"

