"""The user's path through the lab, the parts that need no node: the SSH
inventory `up --ssh` writes, the record `Lab` reads back, and what the
controller installs (controller.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from picluster_lab import LabError, controller, inventory
from picluster_lab.inventory import SshAccess

SUBNET = "10.213.61.0/24"


def access(tmp_path: Path, **kw: object) -> SshAccess:
    return SshAccess(tmp_path / "controller", "picluster-ctl", **kw)


def body(text: str) -> dict:
    return json.loads("\n".join(line for line in text.splitlines() if not line.startswith(("#", "---"))))


def test_the_ssh_inventory_reaches_nodes_as_a_user_does(tmp_path: Path):
    hosts = inventory.plan("t", masters=3, nodes=1, subnet=SUBNET)
    ssh = access(tmp_path)
    doc = body(inventory.render_ssh("t", SUBNET, hosts, ssh))
    top = doc["all"]["vars"]
    assert top["ansible_connection"] == "ssh" and top["ansible_user"] == "pi"
    assert top["ansible_become_method"] == "sudo"
    assert top["ansible_ssh_private_key_file"] == str(ssh.key)
    # Host keys checked against the file `up` wrote, never switched off.
    assert f"UserKnownHostsFile={ssh.known_hosts}" in top["ansible_ssh_common_args"]
    assert "StrictHostKeyChecking=yes" in top["ansible_ssh_common_args"]
    assert top["picluster_vip"] == "10.213.61.250" and "consul_binary_local_path" in top
    groups = doc["all"]["children"]["cluster"]["children"]
    master = groups["masters"]["hosts"]["master1"]
    assert master == {"ansible_host": "10.213.61.101", "picluster_address": "10.213.61.101"}
    assert "picluster_lab_container" not in json.dumps(doc)  # nothing of the lab's back door


def test_the_lab_inventory_records_the_ssh_access(tmp_path: Path):
    hosts = inventory.plan("t", masters=1, nodes=1, subnet=SUBNET)
    ssh = access(tmp_path, sudo_password=True)
    inventory.write(tmp_path, "t", network="n", subnet=SUBNET, image="i", hosts=hosts, ssh=ssh)
    read = inventory.read(tmp_path, "t")
    assert read.ssh == ssh and read.ssh.inventory == tmp_path / "controller/inventory/hosts.yml"
    assert read.connection == "community.docker.docker"  # tests keep their docker exec
    inventory.write(tmp_path, "t", network="n", subnet=SUBNET, image="i", hosts=hosts)
    assert inventory.read(tmp_path, "t").ssh is None


def test_the_controller_directory_goes_with_the_lab():
    assert inventory.controller_directory("h1-mol-cluster").parts[-2:] == ("h1-mol-cluster", "controller")


def test_a_library_can_be_left_out_of_the_venv():
    text = ("# comment\nansible-core>=2.16,<2.20\npython-consul2>=0.1.5\nrequests>=2.25\n\n"
            "Py-Consul ; python_version>'3'\n")
    left = controller.without(text, ["python-consul2", "py-consul"])
    assert "python-consul2" not in left and "Py-Consul" not in left
    assert "ansible-core>=2.16,<2.20" in left and "requests>=2.25" in left and "# comment" in left
    assert controller.without(text, []) == text


def test_mitogen_joins_the_venv_at_the_checkout_s_pin_and_docs_name_the_same():
    pin = controller.mitogen_requirement()
    assert pin.startswith("mitogen==") and pin.count(".") == 2
    venv = controller.with_mitogen("ansible-core>=2.16,<2.20\nrequests>=2.25\n")
    assert venv.splitlines()[:2] == ["ansible-core>=2.16,<2.20", "requests>=2.25"] and venv.endswith(f"\n{pin}\n")
    assert f"pip install {pin}" in (controller.ROOT / "docs" / "speed.md").read_text()


def test_mitogen_env_points_into_the_venv_and_names_a_broken_one(tmp_path: Path):
    access = SshAccess(tmp_path, "picluster-ctl")
    strategy = tmp_path / "lib" / "python3.11" / "site-packages" / "ansible_mitogen" / "plugins" / "strategy"
    user = controller.Controller(access, tmp_path, tmp_path / "c.tar.gz", mitogen=True)
    with pytest.raises(LabError, match=r"0 ansible_mitogen strategy directories.*remove the venv"):
        user.mitogen_env()
    strategy.mkdir(parents=True)
    assert user.mitogen_env() == {"ANSIBLE_STRATEGY": "mitogen_linear", "ANSIBLE_STRATEGY_PLUGINS": str(strategy)}


def test_offline_sources_follow_dependencies(tmp_path: Path):
    def bundled(name: str, deps: dict[str, str]) -> Path:
        path = tmp_path / name.replace(".", "/")
        path.mkdir(parents=True)
        (path / "MANIFEST.json").write_text(json.dumps({"collection_info": {"dependencies": deps}}))
        return path

    found = {"community.docker": bundled("community.docker", {"community.library_inventory_filtering_v1": ">=1"}),
             "community.library_inventory_filtering_v1": bundled("community.library_inventory_filtering_v1", {}),
             "community.crypto": bundled("community.crypto", {})}
    sources = controller.offline_sources(["community.docker", "community.crypto"], found)
    assert sorted(sources) == sorted(found.values())
    with pytest.raises(LabError, match=r"community\.general is not bundled"):
        controller.offline_sources(["community.general"], found)


def test_recap_reads_every_host():
    out = ("PLAY RECAP *****\n"
           "master1                    : ok=120  changed=0    unreachable=0    failed=0    skipped=40   rescued=0\n"
           "node1                      : ok=90   changed=2    unreachable=1    failed=0    skipped=30   rescued=0\n")
    counts = controller.recap(out)
    assert counts["master1"]["ok"] == 120 and counts["node1"]["changed"] == 2 and counts["node1"]["unreachable"] == 1


def test_root_runs_ansible_as_the_controller_user(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(controller.os, "getuid", lambda: 0)
    assert controller.default_controller_user() == controller.CONTROLLER_USER
