# Copyright (c) 2025 picluster.swarm developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Docker's apt repository and the Consul release follow the userland (dpkg), not the kernel.

Each case is a host whose `dpkg --print-architecture` (a stand-in dpkg on PATH)
and /etc/os-release (a file) are those of the named system. Facts are gathered
on this machine, so ansible_facts.architecture says x86_64 for every case: a
decision that still came out armhf was not taken from the kernel.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from _render import render

OS_RELEASE = {
    "debian-bookworm": 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_CODENAME=bookworm\n',
    "raspbian-bookworm": ('PRETTY_NAME="Raspbian GNU/Linux 12 (bookworm)"\nNAME="Raspbian GNU/Linux"\n'
                          'ID=raspbian\nID_LIKE=debian\nVERSION_CODENAME=bookworm\n'),
    "raspbian-bullseye": 'NAME="Raspbian GNU/Linux"\nID=raspbian\nID_LIKE=debian\nVERSION_CODENAME=bullseye\n',
    "hypriot-buster": ('PRETTY_NAME="Raspbian GNU/Linux 10 (buster)"\nID=raspbian\nID_LIKE=debian\n'
                       'VERSION_CODENAME=buster\nHYPRIOT_OS="HypriotOS/armhf"\nHYPRIOT_IMAGE_VERSION="v1.12.0"\n'),
}
# case: (kernel it stands for, dpkg's answer, os-release) -> (repository, suite, package arch, Consul archive)
CASES = {
    "pc-x86_64-amd64": ("x86_64", "amd64", "debian-bookworm", ("debian", "bookworm", "amd64", "linux_amd64")),
    "pi4-aarch64-arm64": ("aarch64", "arm64", "debian-bookworm", ("debian", "bookworm", "arm64", "linux_arm64")),
    "pi4-aarch64-armhf": ("aarch64", "armhf", "raspbian-bookworm", ("raspbian", "bookworm", "armhf", "linux_arm")),
    "pi3-armv7l-armhf": ("armv7l", "armhf", "raspbian-bullseye", ("raspbian", "bullseye", "armhf", "linux_arm")),
    "pizero-armv6l-armhf": ("armv6l", "armhf", "hypriot-buster", ("raspbian", "buster", "armhf", "linux_arm")),
}
TASKS = [
    {"name": "Docker's repository", "ansible.builtin.include_role": {
        "name": "picluster.swarm.docker", "tasks_from": "repository.yml"},
     "vars": {"docker_os_release_path": "{{ os_release_file }}"}},
    {"name": "Consul's release", "ansible.builtin.include_role": {
        "name": "picluster.swarm.consul", "tasks_from": "release.yml"}},
]
RESULT = ("{'docker': docker_ce_repo, 'consul': consul_download.url, 'kernel': ansible_facts['architecture'],"
          " 'userland': consul_dpkg_architecture.stdout}")


def host_case(tmp_path: Path, name: str, dpkg_answer: str, os_release: str) -> dict:
    """A host whose dpkg says `dpkg_answer` and whose os-release is OS_RELEASE[os_release]."""
    bin_dir = tmp_path / name / "bin"
    bin_dir.mkdir(parents=True)
    dpkg = bin_dir / "dpkg"
    dpkg.write_text(f'#!/bin/sh\n[ "$1" = --print-architecture ] && echo {dpkg_answer} && exit 0\nexit 2\n')
    dpkg.chmod(0o755)
    release = tmp_path / name / "os-release"
    release.write_text(OS_RELEASE[os_release])
    return {"fake_bin": str(bin_dir), "os_release_file": str(release)}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("arch")
    cases = {name: host_case(tmp_path, name, dpkg, release) for name, (_kernel, dpkg, release, _want) in CASES.items()}
    cases["pi1-armv6l-armel"] = host_case(tmp_path, "pi1-armv6l-armel", "armel", "debian-bookworm")
    return render(tmp_path, cases, TASKS, RESULT, gather_facts=True,
                  environment={"PATH": "{{ fake_bin }}:{{ lookup('env', 'PATH') }}"})


@pytest.mark.parametrize("case", CASES)
def test_repository_and_release_follow_the_userland(rendered, case):
    kernel, dpkg_answer, _release, (distribution, suite, package_arch, consul_archive) = CASES[case]
    result = rendered.results.get(case)
    assert result is not None, rendered.output
    assert result["userland"] == dpkg_answer
    assert result["docker"]["distribution"] == distribution
    assert result["docker"]["suite"] == suite
    assert result["docker"]["architecture"] == package_arch
    assert result["consul"] == ("https://releases.hashicorp.com/consul/1.22.3/"
                                f"consul_1.22.3_{consul_archive}.zip"), f"{case} stands for a {kernel} kernel"


def test_the_kernel_is_not_what_decides(rendered):
    kernels = {r["kernel"] for r in rendered.results.values()}
    assert kernels == {"x86_64"}, "facts come from this machine; the armhf and arm64 answers came from dpkg"


def test_a_userland_docker_has_no_packages_for_is_refused(rendered):
    assert "pi1-armv6l-armel" not in rendered.results
    assert "Docker's apt repository has no packages for pi1-armv6l-armel: its userland is 'armel'" in rendered.output
    assert "Use docker_install_source: distribution" in rendered.output
    assert rendered.returncode != 0
