"""Role picluster.swarm.base: identity, hosts file, packages, time, and the Pi path on a fake boot dir."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import testinfra
from picluster_lab import Lab

LAB = Lab.from_env()
HOSTS = LAB.hosts()
testinfra_hosts = LAB.testinfra_hosts()
# node2..node4 are laid out as Raspberry Pi OS Bookworm, Bullseye and HypriotOS
# (prepare.yml): they have NetworkManager or dhcpcd, and HypriotOS (Buster) has
# no systemd-timesyncd package; test_layouts.py checks what the role does there.
LAYOUT_HOSTS = {"node2", "node3", "node4"}
PLAIN_HOSTS = [h for h in HOSTS if h not in LAYOUT_HOSTS]


def on_plain_hosts(test):
    """Run a check on every plain Debian host (not on the layout nodes): the
    test takes no `host` fixture, so testinfra does not run it everywhere."""

    def on_each():
        for name in PLAIN_HOSTS:
            test(testinfra.get_host(LAB.testinfra_spec(name)))

    on_each.__name__ = test.__name__
    on_each.__doc__ = test.__doc__
    return on_each
SCENARIO_DIR = Path(__file__).resolve().parents[1]
FLAGS = ["cgroup_enable=cpuset", "cgroup_enable=memory", "cgroup_memory=1"]


def _me(host) -> str:
    return host.check_output("hostname")


def test_hostname_is_the_inventory_name(host):
    assert _me(host) in HOSTS
    assert host.file("/etc/hostname").content_string.strip() == _me(host)


def test_hosts_file_lists_every_member_once(host):
    hosts = host.file("/etc/hosts").content_string
    assert hosts.count("# BEGIN picluster.swarm.base cluster members") == 1
    for name in HOSTS:
        line = f"{LAB.address(name)}\t{name}.lab.invalid {name}"
        assert hosts.count(line) == 1, f"{line!r} not once in /etc/hosts:\n{hosts}"
    for name in HOSTS:
        assert host.run(f"getent hosts {name}.lab.invalid").rc == 0


@on_plain_hosts
def test_packages_and_timezone(host):
    assert host.package("jq").is_installed
    assert host.package("systemd-timesyncd").is_installed
    assert host.file("/etc/localtime").linked_to == "/usr/share/zoneinfo/Europe/Amsterdam"


def test_time_sync_configured_not_started_in_a_container(host):
    conf = host.file("/etc/systemd/timesyncd.conf.d/picluster.conf")
    assert conf.content_string.startswith("#")
    assert "NTP=ntp1.lab.invalid ntp2.lab.invalid" in conf.content_string
    # The lab node is a container: the clock is the host's, nothing may set it.
    assert not host.service("systemd-timesyncd").is_running


@on_plain_hosts
def test_static_address_left_alone_when_not_asked(host):
    assert not host.file("/etc/dhcpcd.conf").exists
    assert host.run("command -v nmcli").rc != 0


def test_pi_path_only_on_the_pi(host):
    cmdline = host.file("/tmp/fakeboot/cmdline.txt")
    if _me(host) != "node1":
        assert not cmdline.exists
        return
    text = cmdline.content_string
    assert text.endswith("\n") and text.count("\n") == 1, "cmdline.txt must stay one line"
    words = text.split()
    for flag in FLAGS:
        assert words.count(flag) == 1, f"{flag} appears {words.count(flag)} times in {text!r}"
    # The original arguments stay, in order, before the added ones.
    assert words[:7] == ["console=serial0,115200", "console=tty1", "root=PARTUUID=6c586e13-02",
                         "rootfstype=ext4", "fsck.repair=yes", "cgroup_enable=cpuset", "rootwait"]


@pytest.fixture(scope="module")
def rendered_dhcpcd(tmp_path_factory) -> str:
    dest = tmp_path_factory.mktemp("render") / "dhcpcd.conf"
    proc = subprocess.run(
        ["ansible-playbook", "-i", "localhost,", str(SCENARIO_DIR / "render_static.yml"), "-e", f"render_dest={dest}",
         "-e", f"ansible_python_interpreter={sys.executable}"],
        check=False, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return dest.read_text()


def test_dhcpcd_template_renders(rendered_dhcpcd):
    lines = rendered_dhcpcd.splitlines()
    assert lines[0].startswith("#")
    assert lines[-4:] == [
        "interface eth0",
        "static ip_address=192.168.1.102/24",
        "static routers=192.168.1.1",
        "static domain_name_servers=192.168.1.1 9.9.9.9",
    ]
