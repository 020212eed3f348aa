"""Image recipes: tags follow the recipe, foreign architectures are named but not built yet."""

from __future__ import annotations

import dataclasses

import pytest
from picluster_lab import LabError, images


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


def test_foreign_architectures_have_their_own_names_but_are_not_built_yet():
    other = "arm64" if images.HOST_ARCH != "arm64" else "armhf"
    assert images.tags(images.NODE.layers[1], images.NODE, other)[1] == f"picluster/node-{other}:latest"
    with pytest.raises(LabError, match="qemu-user"):
        images.node_image(arch=other)
    with pytest.raises(LabError, match="unknown architecture"):
        images.check_arch("mips")
