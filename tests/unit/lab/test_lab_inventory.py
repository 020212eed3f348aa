"""The lab's plan and inventory: what `up` writes is what `Lab` reads back."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import pytest
import yaml
from picluster_lab import LabError, inventory, molecule_lab_name


def test_plan_names_and_addresses_hosts_like_the_seed():
    hosts = inventory.plan("t", masters=1, nodes=3, subnet="10.213.50.0/24")
    assert [(h.name, h.group, h.address) for h in hosts] == [
        ("master", "masters", "10.213.50.101"),
        ("node1", "nodes", "10.213.50.102"),
        ("node2", "nodes", "10.213.50.103"),
        ("node3", "nodes", "10.213.50.104"),
    ]
    assert hosts[0].container == "picluster-t-master"


def test_several_masters_are_numbered():
    names = [h.name for h in inventory.plan("t", masters=3, nodes=1, subnet="10.213.50.0/24")]
    assert names == ["master1", "master2", "master3", "node1"]


@pytest.mark.parametrize(("masters", "nodes"), [(0, 2), (1, -1), (20, 21)])
def test_impossible_sizes_are_refused(masters: int, nodes: int):
    with pytest.raises(LabError, match="masters must be at least 1"):
        inventory.plan("t", masters, nodes, "10.213.50.0/24")


def test_small_subnets_are_refused():
    with pytest.raises(LabError, match="too small"):
        inventory.plan("t", 1, 1, "10.213.50.0/25")


def test_derived_subnets_stay_in_range_and_the_next_one_wraps():
    for name in ("lab", "mol-cluster", "h1-mol-proxy", "bench5"):
        net = ipaddress.ip_network(inventory.derived_subnet(name))
        assert net.prefixlen == 24 and str(net).startswith("10.213.")
        assert 20 <= int(str(net).split(".")[2]) < 220
    assert inventory.derived_subnet("lab") == inventory.derived_subnet("lab")
    assert inventory.next_subnet("10.213.20.0/24") == "10.213.21.0/24"
    assert inventory.next_subnet("10.213.219.0/24") == "10.213.20.0/24"


def test_molecule_lab_names_carry_the_prefix(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PICLUSTER_LAB_PREFIX", "h1-")
    assert molecule_lab_name("cluster") == "h1-mol-cluster"
    assert inventory.prefixed("bench3") == "h1-bench3"
    monkeypatch.delenv("PICLUSTER_LAB_PREFIX")
    assert molecule_lab_name("cluster") == "mol-cluster"


def test_the_inventory_reads_back_as_written(tmp_path: Path):
    hosts = inventory.plan("t", masters=1, nodes=2, subnet="10.213.60.0/24")
    path = inventory.write(tmp_path, "t", network="picluster-t", subnet="10.213.60.0/24", image="img:1", hosts=hosts)
    read = inventory.read(tmp_path, "t")
    assert read.hosts == tuple(hosts)
    assert (read.lab, read.network, read.subnet, read.image) == ("t", "picluster-t", "10.213.60.0/24", "img:1")
    assert read.connection == "community.docker.docker"
    assert read.path == path
    text = path.read_text()
    assert text.startswith("---\n#")
    assert '"masters"' in text and '"nodes"' in text  # the same groups as inventories/pi


def test_a_missing_or_foreign_inventory_says_what_to_do(tmp_path: Path):
    with pytest.raises(LabError, match="python3 lab up --name t"):
        inventory.read(tmp_path, "t")
    hosts = inventory.plan("other", 1, 0, "10.213.60.0/24")
    inventory.write(tmp_path, "other", network="n", subnet="10.213.60.0/24", image="i", hosts=hosts)
    with pytest.raises(LabError, match="describes lab 'other'"):
        inventory.read(tmp_path, "t")
    (tmp_path / "hosts.yml").write_text("all:\n  hosts: {}\n")
    with pytest.raises(LabError, match="not an inventory"):
        inventory.read(tmp_path, "t")


def test_the_mitogen_overlay_moves_every_host_and_only_the_connection():
    """Mitogen takes a host over only by the short name `docker`; the overlay says nothing else."""
    hosts = inventory.plan("t", masters=1, nodes=2, subnet="10.213.50.0/24")
    text = inventory.mitogen_overlay(list(hosts))
    body = json.loads(text.split("\n", 2)[2])  # after the YAML header and its comment
    assert body == {"all": {"hosts": {h.name: {"ansible_connection": "docker"} for h in hosts}}}


def test_emulated_hosts_get_their_architecture_and_consul_binary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PICLUSTER_CONSUL_BIN", "/cache/consul/consul-1.22.3")
    arches = {"node1": "armhf", "node2": "arm64"}
    hosts = inventory.plan("t", masters=1, nodes=2, subnet="10.213.61.0/24", arches=arches)
    assert [h.arch for h in hosts] == ["", "armhf", "arm64"]
    path = inventory.write(tmp_path, "t", network="picluster-t", subnet="10.213.61.0/24", image="img:1", hosts=hosts)
    doc = json.loads("\n".join(line for line in path.read_text().splitlines() if not line.startswith(("#", "---"))))
    nodes = doc["all"]["children"]["cluster"]["children"]["nodes"]["hosts"]
    assert nodes["node1"]["consul_binary_local_path"] == "/cache/consul/consul-1.22.3-armhf"
    assert nodes["node2"]["picluster_lab_arch"] == "arm64"
    assert "picluster_lab_arch" not in doc["all"]["children"]["cluster"]["children"]["masters"]["hosts"]["master"]
    assert doc["all"]["vars"]["consul_binary_local_path"] == "/cache/consul/consul-1.22.3"
    assert [h.arch for h in inventory.read(tmp_path, "t").hosts] == ["", "armhf", "arm64"]
    # Emulated nodes wait longer to be reached; the host's own keep Ansible's default.
    assert nodes["node1"]["ansible_timeout"] == nodes["node2"]["ansible_timeout"] == inventory.EMULATED_CONNECT_TIMEOUT
    assert "ansible_timeout" not in doc["all"]["children"]["cluster"]["children"]["masters"]["hosts"]["master"]


def test_the_arm_scenario_gives_its_emulated_nodes_what_the_lab_inventory_does():
    """molecule/lab writes its own host_vars (molecule's inventory, not the lab's): the same settings."""
    scenario = yaml.safe_load((Path(__file__).resolve().parents[3] / "molecule" / "lab" / "molecule.yml").read_text())
    host_vars = scenario["provisioner"]["inventory"]["host_vars"]
    for platform in scenario["platforms"]:
        if "picluster_arch" not in platform:
            continue
        settings = host_vars[platform["name"]]
        assert settings["ansible_timeout"] == inventory.EMULATED_CONNECT_TIMEOUT, platform
        assert settings["consul_binary_local_path"].endswith("}}-" + platform["picluster_arch"]), platform


def test_an_architecture_for_a_host_the_lab_lacks_is_refused():
    with pytest.raises(LabError, match="node7"):
        inventory.plan("t", masters=1, nodes=2, subnet="10.213.61.0/24", arches={"node7": "arm64"})


def test_molecule_reaches_instances_by_the_short_docker_name():
    # Mitogen takes over `docker`, not `community.docker.docker` (the role
    # scenarios' converge runs under it: molecule/shared/strategy).
    hosts = inventory.plan("t", masters=1, nodes=1, subnet="10.213.60.0/24")
    config = json.loads(inventory.instance_config(hosts))
    assert {c["connection"] for c in config} == {"docker"}
    assert [c["instance"] for c in config] == [h.name for h in hosts]
