"""The lab's inventory: planned by `up`, written once, read by everything else.

`up` plans the hosts (names, groups, addresses, container names) and writes
them as an Ansible inventory with the same groups as inventories/pi. That file
is the single source of truth: `Lab(name)` reads it back, and nothing else
works a node's address or container name out again.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._common import ROOT, STATE, LabError

GROUPS = ("masters", "nodes")
# Derived subnets come from 10.213.20.0/24 to 10.213.219.0/24.
SUBNET_FIRST, SUBNET_COUNT = 20, 200
HEADER = "---\n# Written by `python3 lab up` for lab '{name}'; rewritten on every `up`, removed by `down`.\n"


@dataclass(frozen=True)
class Host:
    name: str
    group: str  # "masters" or "nodes"
    address: str
    container: str
    arch: str = ""  # dpkg's name of an emulated node's architecture; "" for this host's


@dataclass(frozen=True)
class SshAccess:
    """The user's way into a lab (`up --ssh`): SSH to `user`, who may sudo, from
    a directory of `controller_user`'s (key pair, known_hosts, the SSH inventory)."""

    directory: Path
    controller_user: str
    user: str = "pi"
    sudo_password: bool = False  # sudo asks for the user's password (no NOPASSWD rule)

    @property
    def inventory(self) -> Path:
        return self.directory / "inventory" / "hosts.yml"

    @property
    def key(self) -> Path:
        return self.directory / "ssh" / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.directory / "ssh" / "known_hosts"

    @property
    def password_file(self) -> Path:
        """The user's password on every node (what sudo asks for with --sudo-password)."""
        return self.directory / "ssh" / f"{self.user}-password"

    def record(self) -> dict[str, Any]:
        return {"directory": str(self.directory), "controller_user": self.controller_user, "user": self.user,
                "sudo_password": self.sudo_password}


def controller_directory(lab: str) -> Path:
    """Where the controller user keeps what it needs for this lab; removed with the lab by `down`."""
    return STATE / lab / "controller"


@dataclass(frozen=True)
class Inventory:
    """What `up` wrote: the hosts in address order, and how to reach them."""

    lab: str
    network: str
    subnet: str
    image: str
    connection: str
    hosts: tuple[Host, ...]
    path: Path
    vip: str = ""  # the cluster's virtual IP (picluster_vip), with two masters or more
    ssh: SshAccess | None = None  # the user's way in, when `up --ssh` gave one


# The lab's virtual IP: an address of the lab network no node gets (nodes
# start at .101, 40 at most) and Docker does not hand out (it counts up from .2).
VIP_OFFSET = 250


def vip_for(subnet: str, masters: int) -> str:
    """The virtual IP a lab with several masters gets (the vip role moves it); none with one master."""
    if masters < 2:
        return ""
    return str(ipaddress.ip_address(int(ipaddress.ip_network(subnet).network_address) + VIP_OFFSET))


def container_name(lab: str, host: str) -> str:
    return f"picluster-{lab}-{host}"


def network_name(lab: str) -> str:
    return f"picluster-{lab}"


def prefixed(name: str) -> str:
    """A lab name made by a tool (molecule, the bench): PICLUSTER_LAB_PREFIX
    keeps several people's labs apart on one machine."""
    return f"{os.environ.get('PICLUSTER_LAB_PREFIX', '')}{name}"


def molecule_lab_name(scenario: str) -> str:
    return prefixed(f"mol-{scenario}")


def default_inventory_dir(lab: str) -> Path:
    """The main lab's inventory sits beside inventories/pi; throwaway labs
    (tests, experiments, the bench) keep theirs under build/."""
    return ROOT / "inventories" / "lab" if lab == "lab" else ROOT / "build" / "labs" / lab


def derived_subnet(lab: str) -> str:
    """A /24 per lab name, so several labs (molecule scenarios) coexist."""
    third = int(hashlib.sha256(lab.encode()).hexdigest(), 16) % SUBNET_COUNT + SUBNET_FIRST
    return f"10.213.{third}.0/24"


def next_subnet(subnet: str) -> str:
    """The derived /24 after this one, wrapping round (for a subnet another lab holds)."""
    third = (int(ipaddress.ip_network(subnet).network_address) >> 8 & 0xFF) - SUBNET_FIRST
    return f"10.213.{(third + 1) % SUBNET_COUNT + SUBNET_FIRST}.0/24"


def host_names(masters: int, nodes: int) -> list[tuple[str, str]]:
    """(name, group) as the seed named them: one `master`, or master1..N; node1..N."""
    if masters < 1 or nodes < 0 or masters + nodes > 40:
        raise LabError("masters must be at least 1, nodes at least 0, and 40 hosts at most in all")
    names = [("master" if masters == 1 else f"master{i}", "masters") for i in range(1, masters + 1)]
    return names + [(f"node{i}", "nodes") for i in range(1, nodes + 1)]


def check_arches(masters: int, nodes: int, arches: dict[str, str]) -> None:
    """Refuse --arch-of for a host the lab will not have (before anything is made for it)."""
    check_hosts(masters, nodes, arches, "--arch-of")


def check_hosts(masters: int, nodes: int, asked: Iterable[str], option: str) -> None:
    """Refuse an option that names a host the lab will not have (before anything is made for it)."""
    names = [name for name, _group in host_names(masters, nodes)]
    unknown = sorted(set(asked) - set(names))
    if unknown:
        raise LabError(f"{option} names hosts this lab does not have: {', '.join(unknown)} "
                       f"(its hosts: {', '.join(names)})")


def plan(lab: str, masters: int, nodes: int, subnet: str, arches: dict[str, str] | None = None) -> list[Host]:
    """The lab's hosts; ``arches`` gives some of them an emulated architecture (name -> dpkg's name)."""
    arches = arches or {}
    check_arches(masters, nodes, arches)
    net = ipaddress.ip_network(subnet)
    if net.num_addresses < 256:
        raise LabError(f"subnet {subnet} is too small; give a /24 or larger")
    base = int(net.network_address)
    # Like the seed: the first master at .101, everyone after it.
    return [
        Host(name, group, str(ipaddress.ip_address(base + 101 + i)), container_name(lab, name), arches.get(name, ""))
        for i, (name, group) in enumerate(host_names(masters, nodes))
    ]


def consul_binary(arch: str = "") -> str:
    """The Consul binary the lab's consul role copies: the one built for this
    host, or for an emulated node the one cross-compiled beside it (-arm64, -armhf)."""
    host = os.environ.get("PICLUSTER_CONSUL_BIN", "/var/cache/picluster/consul/consul-1.22.3")
    return f"{host}-{arch}" if arch else host


# How long Ansible may take to reach an emulated node (ansible_timeout; Mitogen
# reads it as its connect timeout). Ansible's 10 s default is met natively, but
# an emulated Python (and Mitogen's bootstrap in it) started at load 10 took
# longer in CI: "Connection timed out" on the armhf node.
EMULATED_CONNECT_TIMEOUT = 120


def host_settings(h: Host) -> dict[str, Any]:
    """Per-host variables: an emulated node's architecture, its Consul binary and
    a connect timeout that an emulated Python can meet under load."""
    if not h.arch:
        return {}
    return {"picluster_lab_arch": h.arch, "consul_binary_local_path": consul_binary(h.arch),
            "ansible_timeout": EMULATED_CONNECT_TIMEOUT}


def lab_settings(subnet: str, hosts: list[Host]) -> dict[str, Any]:
    """What every lab's playbooks need, whichever way they reach the nodes."""
    vip = vip_for(subnet, sum(h.group == "masters" for h in hosts))
    return {
        # No download in the lab: the consul role copies the binary we build.
        "consul_binary_local_path": consul_binary(),
        # No registry either: the proxy and the dashboard build on the
        # base image that `python3 lab images load` puts on the masters.
        "reverse_proxy_base_image": "picluster/proxy-base:latest",
        "reverse_proxy_base_image_pull": False,
        "dashboard_base_image": "picluster/proxy-base:latest",
        "dashboard_base_image_pull": False,
        # Several masters: the entry point is a virtual IP (role vip).
        **({"picluster_vip": vip} if vip else {}),
    }


def _document(lab: str, top_vars: dict[str, Any], groups: dict[str, dict[str, Any]]) -> str:
    inventory = {"all": {"vars": top_vars, "children": {"cluster": {"children": groups}}}}
    # JSON is valid YAML, and keeps the package free of third-party imports.
    return HEADER.format(name=lab) + json.dumps(inventory, indent=2) + "\n"


def render(
    lab: str, network: str, subnet: str, image: str, hosts: list[Host], *, ssh: SshAccess | None = None
) -> str:
    groups: dict[str, dict[str, Any]] = {g: {"hosts": {}} for g in GROUPS}
    for h in hosts:
        groups[h.group]["hosts"][h.name] = {
            "ansible_host": h.container,
            "picluster_address": h.address,
            "picluster_lab_container": h.container,
            **host_settings(h),
        }
    record: dict[str, Any] = {"name": lab, "network": network, "subnet": subnet, "image": image}
    if ssh:
        record["ssh"] = ssh.record()
    top_vars = {
        "ansible_connection": "community.docker.docker",
        "ansible_python_interpreter": "/usr/bin/python3",
        "picluster_lab": record,
        **lab_settings(subnet, hosts),
    }
    return _document(lab, top_vars, groups)


def render_ssh(lab: str, subnet: str, hosts: list[Host], ssh: SshAccess) -> str:
    """The inventory a user writes for their Pis (inventories/pi's shape), reaching
    the nodes as a user does: SSH to their lab addresses as `pi`, become by sudo,
    host keys checked against the known_hosts file `up` wrote."""
    groups: dict[str, dict[str, Any]] = {g: {"hosts": {}} for g in GROUPS}
    for h in hosts:
        groups[h.group]["hosts"][h.name] = {"ansible_host": h.address, "picluster_address": h.address,
                                            **host_settings(h)}
    top_vars = {
        "ansible_connection": "ssh",
        "ansible_user": ssh.user,
        "ansible_ssh_private_key_file": str(ssh.key),
        "ansible_ssh_common_args": f"-o UserKnownHostsFile={ssh.known_hosts} -o StrictHostKeyChecking=yes",
        "ansible_become_method": "sudo",
        **lab_settings(subnet, hosts),
    }
    return _document(lab, top_vars, groups)


def write_file(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return path


def write(
    directory: Path, lab: str, *, network: str, subnet: str, image: str, hosts: list[Host],
    ssh: SshAccess | None = None,
) -> Path:
    return write_file(directory / "hosts.yml", render(lab, network, subnet, image, hosts, ssh=ssh))


def _walk(group: dict[str, Any], name: str, found: dict[str, tuple[str, dict[str, Any]]]) -> None:
    for host, hostvars in (group.get("hosts") or {}).items():
        found[host] = (name, hostvars or {})
    for child, sub in (group.get("children") or {}).items():
        _walk(sub or {}, child, found)


def parse(text: str, path: Path) -> Inventory:
    body = "\n".join(line for line in text.splitlines() if not line.startswith(("#", "---")))
    try:
        data = json.loads(body)
        top = data["all"]
        labvars = top["vars"]["picluster_lab"]
    except (ValueError, KeyError, TypeError) as err:
        raise LabError(f"{path} is not an inventory `python3 lab up` wrote ({err}); run `up` again") from err
    found: dict[str, tuple[str, dict[str, Any]]] = {}
    _walk(top, "all", found)
    hosts = tuple(
        sorted(
            (
                Host(name, group, hv["picluster_address"], hv["picluster_lab_container"],
                     hv.get("picluster_lab_arch", ""))
                for name, (group, hv) in found.items()
            ),
            key=lambda h: ipaddress.ip_address(h.address),
        )
    )
    ssh = labvars.get("ssh")
    return Inventory(
        lab=labvars["name"],
        network=labvars["network"],
        subnet=labvars["subnet"],
        image=labvars["image"],
        connection=top["vars"]["ansible_connection"],
        hosts=hosts,
        path=path,
        vip=str(top["vars"].get("picluster_vip", "")),
        ssh=SshAccess(Path(ssh["directory"]), ssh["controller_user"], ssh["user"], bool(ssh["sudo_password"]))
        if ssh else None,
    )


def read(directory: Path, lab: str) -> Inventory:
    path = directory / "hosts.yml"
    if not path.is_file():
        raise LabError(f"lab '{lab}' has no inventory at {path}; bring it up with `python3 lab up --name {lab}`")
    inventory = parse(path.read_text(), path)
    if inventory.lab != lab:
        raise LabError(f"{path} describes lab '{inventory.lab}', not '{lab}'")
    return inventory


# Mitogen takes over a connection only by its short name: `docker` becomes its
# own transport, `community.docker.docker` stays on Ansible's. Without Mitogen,
# Ansible redirects `docker` to community.docker.docker, so either works then.
MITOGEN_CONNECTION = "docker"


def mitogen_overlay(hosts: list[Host]) -> str:
    """A second inventory source, after the lab's (or molecule's, which sets the
    connection per host), that puts every host on Mitogen's docker transport."""
    overlay = {"all": {"hosts": {h.name: {"ansible_connection": MITOGEN_CONNECTION} for h in hosts}}}
    return "---\n# For runs under Mitogen (docs/speed.md); written by the lab package.\n" + json.dumps(
        overlay, indent=2) + "\n"


def instance_config(hosts: list[Host]) -> str:
    """Molecule's delegated driver reads how to reach each instance from this.
    The connection's short name, so that the role scenarios' converge can run
    under Mitogen (molecule/shared/strategy); otherwise it is the same plugin."""
    config = [
        {"instance": h.name, "address": h.container, "user": "root", "connection": MITOGEN_CONNECTION}
        for h in hosts
    ]
    return json.dumps(config, indent=2) + "\n"
