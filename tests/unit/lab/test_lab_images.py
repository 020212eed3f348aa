"""Image recipes: tags follow the recipe; foreign architectures get the emulation's steps and names."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from picluster_lab import LabError, cli, emulation, images, provision


def test_node_images_carry_sshd_and_keepalived_where_later_issues_need_them():
    bare, node = images.NODE.layers
    assert "openssh-server" in bare.packages  # like Raspberry Pi OS
    assert "keepalived" in node.packages and "docker.io" in node.packages
    assert "keepalived" not in bare.packages  # the bare node stays a fresh OS: roles install what they need
    assert images.own_ssh_host_keys in bare.steps and images.keepalived_off in node.steps


def test_tags_follow_the_recipe():
    bare, node = images.NODE.layers
    h = images.recipe(images.NODE, images.HOST_ARCH)
    assert images.node_image() == f"picluster/node:{h}"
    assert images.node_image(bare=True) == f"picluster/node-bare:{h}"
    assert images.tags(images.APP.layers[0], images.APP)[1] == "picluster/debian:bookworm"
    more = dataclasses.replace(node, packages=(*node.packages, "jq"))
    changed = dataclasses.replace(images.NODE, layers=(bare, more))
    assert images.recipe(changed, images.HOST_ARCH) != h
    assert images.recipe(images.NODE, "arm64") != h


def test_foreign_architectures_have_their_own_names_and_the_emulations_steps():
    other = "arm64" if images.HOST_ARCH != "arm64" else "armhf"
    assert images.tags(images.NODE.layers[1], images.NODE, other)[1] == f"picluster/node-{other}:latest"
    assert images.node_image(arch=other).startswith(f"picluster/node-{other}:")
    bare, node = images.NODE.layers
    assert emulation.steps_for(images.HOST_ARCH, node.packages) == ()
    assert emulation.steps_for(other, bare.packages) == (emulation.systemd_under_emulation,)
    assert emulation.steps_for(other, node.packages) == (emulation.systemd_under_emulation,
                                                         emulation.native_engine_helpers)
    with pytest.raises(LabError, match="unknown architecture"):
        images.check_arch("mips")
    with pytest.raises(LabError, match="only the node images"):
        images.check_arch(other, images.APP)


def test_the_hosts_recipe_does_not_depend_on_the_emulation(monkeypatch: pytest.MonkeyPatch):
    """Editing the emulation rebuilds the emulated images only, never the host's."""
    other = "arm64" if images.HOST_ARCH != "arm64" else "armhf"
    host, foreign = images.recipe(images.NODE, images.HOST_ARCH), images.recipe(images.NODE, other)
    monkeypatch.setattr(emulation, "recipe_parts", lambda: ["something else"])
    assert images.recipe(images.NODE, images.HOST_ARCH) == host
    assert images.recipe(images.NODE, other) != foreign


def test_emulated_nodes_stop_on_the_signal_their_systemd_sees():
    other = "arm64" if images.HOST_ARCH != "arm64" else "armhf"
    assert provision.stop_flags("") == ["--stop-signal", "SIGRTMIN+3"]
    assert provision.stop_flags(images.HOST_ARCH) == ["--stop-signal", "SIGRTMIN+3"]
    assert provision.stop_flags(other) == ["--stop-signal", "39"]


def test_binfmt_entries_are_read_as_the_kernel_writes_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "picluster-arm").write_text("enabled\ninterpreter /cache/qemu/arm-binfmt-P\nflags: PF\n"
                                            "offset 0\nmagic 7f454c46\nmask ffffffff\n")
    monkeypatch.setattr(emulation, "BINFMT", tmp_path)
    entry = emulation.binfmt_entry("picluster-arm")
    assert entry["state"] == "enabled" and entry["interpreter"] == "/cache/qemu/arm-binfmt-P"
    assert entry["flags"] == "PF"
    assert emulation.binfmt_entry("absent") == {}


def test_unknown_architectures_are_named_with_the_choices():
    with pytest.raises(LabError, match="arm64, armhf"):
        emulation.arch_info("mips")


@pytest.mark.parametrize(("asked", "message"), [
    ({"arches": {"node7": "arm64"}},
     r"--arch-of names hosts this lab does not have: node7 \(its hosts: master, node1, node2\)"),
    ({"bare_hosts": ["bare"]},
     r"--bare-of names hosts this lab does not have: bare \(its hosts: master, node1, node2\)"),
], ids=["arch-of", "bare-of"])
def test_up_refuses_a_host_the_lab_will_not_have_before_making_anything(monkeypatch: pytest.MonkeyPatch, asked,
                                                                         message):
    """`up --arch-of node7=arm64` (or `--bare-of bare`) on a lab of two nodes: refused before a network or node
    exists."""
    def made(*_args, **_kwargs):
        raise AssertionError("up went on to make the lab's network")

    monkeypatch.setattr(provision, "ensure_network", made)
    monkeypatch.setattr(images, "present", lambda _image: True)
    with pytest.raises(LabError, match=message):
        provision.up("t", masters=1, nodes=2, **asked)


def test_up_starts_only_the_bare_hosts_from_the_engineless_image(monkeypatch: pytest.MonkeyPatch, tmp_path):
    started, waited = {}, {}
    monkeypatch.setattr(images, "present", lambda _image: True)
    monkeypatch.setattr(provision, "existing_hosts", lambda _lab: set())
    monkeypatch.setattr(provision, "ensure_network", lambda *_a, **_k: ("net", "10.9.8.0/24"))
    monkeypatch.setattr(provision, "start_node", lambda _lab, host, image, _net: started.update({host.name: image}))
    monkeypatch.setattr(provision, "wait_booted", lambda host, engine: waited.update({host.name: engine}) or "running")
    monkeypatch.setattr(provision.inventory, "default_inventory_dir", lambda _lab: tmp_path)
    provision.up("t", masters=1, nodes=2, bare_hosts=["node2"])
    assert started == {"master": images.node_image(), "node1": images.node_image(),
                       "node2": images.node_image(bare=True)}
    assert waited == {"master": True, "node1": True, "node2": False}


@pytest.mark.parametrize(("argv", "built", "compiled"), [
    (["images", "build", "--arch", "armhf"], ["armhf"], ["armhf"]),
    (["images", "build", "--arch", "arm64", "--no-consul"], ["arm64"], []),
    (["images", "consul", "--arch", "arm64"], [], ["arm64"]),
])
def test_images_and_consul_can_be_built_apart(monkeypatch: pytest.MonkeyPatch, argv, built, compiled):
    """scripts/setup.sh arm cross-compiles Consul (`images consul`) beside the emulated image builds (--no-consul)."""
    seen: dict[str, list[str]] = {"built": [], "compiled": []}
    monkeypatch.setattr(images, "build", seen["built"].append)
    monkeypatch.setattr(emulation, "build_consul", lambda dest, arch, tools: seen["compiled"].append(arch))
    assert cli.run(cli.parser().parse_args(argv)) == 0
    assert seen == {"built": built, "compiled": compiled}


def test_consul_is_cross_compiled_for_arm_only():
    with pytest.raises(SystemExit):
        cli.parser().parse_args(["images", "consul", "--arch", images.HOST_ARCH])
