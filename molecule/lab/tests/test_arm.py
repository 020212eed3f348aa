"""The ARM nodes took the roles' ARM branches, as real Pis do (issue 18).

node1 is armhf (32-bit userland, as Raspberry Pi OS on a Pi Zero to Pi 4) and
node2 arm64; both run emulated (docs/lab.md) and neither the roles nor these
checks know it. converge.yml ran site.yml --tags base,docker,consul,swarm,overlay
on all three under Mitogen; the first test runs it again, which must change nothing.
This is the suite's run of the roles under Mitogen (docs/speed.md): cold and again.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from picluster_lab import Lab

LAB = Lab.from_env()
# dpkg's name, the kernel's (uname -m under the emulation), the userland's bits,
# the ELF machine of the installed Consul, Consul's release name, Docker's repository.
ARCHES = {
    "master": ("amd64", "x86_64", 64, 0x3E, "amd64", "amd64"),
    "node1": ("armhf", "armv7l", 32, 0x28, "arm", "armhf"),
    "node2": ("arm64", "aarch64", 64, 0xB7, "arm64", "arm64"),
}
# Only the files the roles' branches compute, on their own (as their unit tests include them).
BRANCHES_PLAYBOOK = """\
---
- name: What the roles choose from each host's architecture
  hosts: all
  gather_facts: true
  gather_subset: [min]
  tasks:
    - name: Consul's release archive
      ansible.builtin.include_role:
        name: picluster.swarm.consul
        tasks_from: release
    - name: Docker's repository
      ansible.builtin.include_role:
        name: picluster.swarm.docker
        tasks_from: repository
    - name: Say what was chosen
      ansible.builtin.debug:
        msg: >-
          BRANCHES {{ inventory_hostname }} {{ ansible_facts['architecture'] }}
          {{ ansible_facts['userspace_bits'] | default('?') }} {{ consul_download.archive | basename }}
          {{ docker_ce_repo.architecture }}
"""


PROJECT = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", Path(__file__).resolve().parents[3]))
SITE = PROJECT / "playbooks" / "site.yml"
CORE_TAGS = "base,docker,consul,swarm,overlay"


def test_second_run_changes_nothing(tmp_path):
    """The idempotence step, under Mitogen as the converge (one Python per host instead of one per task)."""
    run = LAB.ansible(["ansible-playbook", str(SITE), "--tags", CORE_TAGS], mitogen=True, logs=tmp_path,
                      timeout=1200)
    assert run.returncode == 0, run.output[-4000:]
    assert sorted(run.recap) == sorted(ARCHES), run.recap
    assert run.total("changed") == 0, run.recap
    assert run.total("failed") == run.total("unreachable") == 0, run.recap


def test_mitogen_took_over_the_connection(tmp_path):
    """Mitogen's own action plugin answers only under its strategy, with the transport it runs each host on."""
    run = LAB.ansible(["ansible", "all", "-m", "mitogen_get_stack"], mitogen=True, logs=tmp_path, timeout=600)
    assert run.returncode == 0, run.output[-4000:]
    # "method: docker" in YAML results, '"method": "docker"' in JSON ones.
    assert len(re.findall(r"\bmethod\W+docker\b", run.output)) == len(ARCHES), run.output[-4000:]


@pytest.fixture(scope="module")
def branches(tmp_path_factory) -> dict[str, list[str]]:
    logs = tmp_path_factory.mktemp("arm")
    book = logs / "branches.yml"
    book.write_text(BRANCHES_PLAYBOOK)
    run = LAB.playbook(book, logs=logs, timeout=900)
    assert run.returncode == 0, run.output[-4000:]
    found = {m[0]: list(m[1:]) for m in re.findall(r"BRANCHES (\S+) (\S+) (\S+) (\S+) (\S+)", run.output)}
    assert sorted(found) == sorted(ARCHES), run.output[-4000:]
    return found


@pytest.mark.parametrize("host", sorted(ARCHES))
def test_node_is_the_architecture_it_claims(host):
    dpkg, machine, bits, _elf, _consul, _docker = ARCHES[host]
    out = LAB.sh(host, ["sh", "-c", "dpkg --print-architecture; uname -m; "
                        "python3 -c 'import struct; print(struct.calcsize(\"P\") * 8)'"]).split()
    assert out == [dpkg, machine, str(bits)], out


@pytest.mark.parametrize("host", sorted(ARCHES))
def test_facts_and_release_choices_follow_the_userland(branches, host):
    _dpkg, machine, bits, _elf, consul, docker = ARCHES[host]
    version = os.environ.get("PICLUSTER_CONSUL_BIN", "consul-1.22.3").rsplit("-", 1)[-1]
    assert branches[host] == [machine, str(bits), f"consul_{version}_linux_{consul}.zip", docker], branches[host]


@pytest.mark.parametrize("host", sorted(ARCHES))
def test_installed_consul_is_built_for_the_node(host):
    """The file the consul role wrote is the node's own architecture, and runs there."""
    head = LAB.sh(host, ["od", "-An", "-tx1", "-N20", "/usr/local/bin/consul"]).split()
    assert int(head[18], 16) == ARCHES[host][3], head
    assert LAB.sh(host, ["systemctl", "is-active", "consul"]).strip() == "active"


def test_every_node_ready_in_the_swarm_and_alive_in_consul():
    nodes = {n.hostname: n for n in LAB.swarm_nodes()}
    assert sorted(nodes) == sorted(ARCHES)
    assert all(n.status == "Ready" for n in nodes.values()), nodes
    members = LAB.members(wait_for_alive=3, wait_timeout=60)
    assert {m.hostname: m.state for m in members.members} == dict.fromkeys(ARCHES, "alive"), members.members


def test_swarm_knows_each_nodes_platform():
    """What the swarm schedules by (a service's platform constraint): the engines' own report."""
    arches = LAB.sh(LAB.first_master, ["sh", "-c", "docker node ls -q | xargs docker node inspect -f "
                                         "'{{.Description.Hostname}} {{.Description.Platform.Architecture}}'"])
    assert dict(line.split() for line in arches.splitlines()) == {
        "master": "x86_64", "node1": "armv7l", "node2": "aarch64"}


def test_overlay_network_spans_the_arm_nodes():
    net = LAB.sh(LAB.first_master, ["docker", "network", "inspect", "-f", "{{.Driver}} {{.Scope}}", "my-net"])
    assert net.split() == ["overlay", "swarm"]


def test_no_emulation_trace_in_the_roles():
    """The emulation lives in the lab's image recipe only (docs/lab.md)."""
    roots = [Path(__file__).resolve().parents[3] / d for d in ("roles", "plugins", "playbooks")]
    words = re.compile(r"qemu|binfmt|emulat", re.IGNORECASE)
    hits = [str(p) for root in roots for p in root.rglob("*")
            if p.is_file() and words.search(p.read_text(errors="ignore"))]
    assert not hits, hits


OVERLAY_PROBED = ("node1", "node2")


@pytest.fixture(scope="module")
def overlay_probes():
    """One swarm task of its own architecture per ARM node on my-net, both created at once.

    A service pinned to the node, not `docker run --network my-net` there: a worker's own attachment to an
    overlay must come back within docker's deadline, which an emulated engine missed three times in a row
    at load 12 to 14 ("attaching to network failed ... context deadline exceeded"). A task has no such
    deadline. Each task takes a minute or more to start under emulation; created together, they start
    side by side (one after the other, the two probes took 103 s and 50 s in the suite's lanes). The image
    is named by its ID, so the node runs it from its own store without trying a registry (none is reachable).
    """
    master = LAB.first_master
    probes = {}  # host: (service, the image ID its task runs)
    try:
        for host in OVERLAY_PROBED:
            service = f"arm-overlay-probe-{host}"
            image_id = LAB.sh(host, ["docker", "image", "inspect", "-f", "{{.Id}}",
                                     LAB.program_image(host, "sleep")]).strip()
            LAB.sh(master, ["docker", "service", "create", "--detach", "--no-resolve-image", "--name", service,
                            "--network", "my-net", "--constraint", f"node.hostname=={host}",
                            "--restart-condition", "none", image_id, "/usr/bin/sleep", "600"])
            probes[host] = (service, image_id)
        yield probes
    finally:
        for service, _image in probes.values():
            LAB.run(master, ["docker", "service", "rm", service], timeout=120)


@pytest.mark.parametrize("host", OVERLAY_PROBED)
def test_containers_on_arm_nodes_talk_over_the_overlay(overlay_probes, host):
    """A swarm task of the node's own architecture on my-net answers a container on the master across the
    overlay (VXLAN)."""
    service, image_id = overlay_probes[host]
    assert LAB.sh(host, ["docker", "image", "inspect", "-f", "{{.Architecture}}", image_id]).strip() == {
        "node1": "arm", "node2": "arm64"}[host]

    def task_container() -> str:
        return LAB.sh(host, ["docker", "ps", "-q", "--filter", f"label=com.docker.swarm.service.name={service}"],
                      check=False).strip()

    LAB.wait_until(f"{service}'s task running on {host}", task_container, limit=300, interval=3)
    ip = LAB.container_address(host, task_container(), "my-net")
    master = LAB.first_master
    pinger = LAB.program_image(master, "ping")
    out = LAB.run(master, ["docker", "run", "--rm", "--network", "my-net", pinger, "/usr/bin/ping",
                           "-c", "2", "-W", "5", ip], timeout=120)
    assert out.returncode == 0 and " 0% packet loss" in out.stdout, out.stdout + out.stderr
