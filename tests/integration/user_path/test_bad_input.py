"""The user's run, given what users get wrong: each a message that names the fix.

A one-node lab with the user's way in (`up --ssh --sudo-password`: SSH to a
`pi` user whose sudo asks for its password) and the controller user's own run
(`Lab.controller()`: the collection from its tarball, a venv of
requirements.txt only, no sudo on the controller). Each case pins what Ansible
itself says and the line site.yml's preflight adds, and that nothing past the
checks ran. The whole cluster converges the same way in molecule/cluster.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from picluster_lab import Lab, down, loadavg, prefixed, up
from picluster_lab.controller import Controller, default_controller_user

pytestmark = pytest.mark.lab

LAB_NAME = prefixed("it-user-path")
FIRST_CHANGE = "PLAY [Prepare the Pis"
SITE = ["picluster.swarm.site"]


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    try:
        up(LAB_NAME, masters=1, nodes=0, ssh_user=default_controller_user(), sudo_password=True)
        yield Lab(LAB_NAME)
    finally:
        down(LAB_NAME)


@pytest.fixture(scope="module")
def user(lab: Lab) -> Controller:
    return lab.controller()


def refused(run, *fragments: str) -> str:
    """The run failed, said each fragment, showed no traceback, and changed no host."""
    out = run.stdout
    assert run.returncode != 0, out
    assert "Traceback" not in out, out
    for fragment in fragments:
        assert fragment in out, f"{fragment!r} not in:\n{out[-4000:]}"
    assert FIRST_CHANGE not in out, out[-4000:]
    return out


def timed(user: Controller, *args: str):
    t0 = time.monotonic()
    run = user.playbook(SITE, args)
    print(f"ansible-playbook {' '.join(args)}: {time.monotonic() - t0:.1f}s (load {loadavg():.1f})")
    return run


def test_a_user_the_pi_does_not_know(user: Controller, lab: Lab):
    address = lab.address("master")
    refused(timed(user, "-e", "ansible_user=pj"),
            f"Failed to connect to the host via ssh: pj@{address}: Permission denied",  # Ansible's words
            f"master: Ansible cannot log in to {address} as pj",
            "check ansible_user (the user made when the Pi was set up: pi on Raspberry Pi OS)",
            f"ssh-copy-id pj@{address}", "ansible_ssh_private_key_file")


def test_a_key_the_pi_does_not_know(user: Controller, lab: Lab):
    key = user.directory / "unknown_key"
    made = user.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], timeout=60)
    assert made.returncode == 0 and key.is_file(), made.stdout
    address = lab.address("master")
    # A control socket of its own: one an earlier run left would log in without the key.
    refused(timed(user, "-e", f"ansible_ssh_private_key_file={key}",
                  "-e", f"ansible_control_path_dir={user.directory}/cp-unknown-key"),
            f"pi@{address}: Permission denied (publickey",
            f"master: Ansible cannot log in to {address} as pi", "authorized_keys", "ansible_ssh_private_key_file")


def test_sudo_that_asks_for_a_password(user: Controller):
    refused(timed(user),
            "Missing sudo password",
            "master: Ansible logged in as pi but could not become root with sudo",
            "add --ask-become-pass (-K) to ansible-playbook", "ansible_become_password",
            "/etc/sudoers.d/010_pi-nopasswd")


def test_a_wrong_sudo_password(user: Controller):
    refused(timed(user, "-e", "ansible_become_password=not-the-password"),
            "Incorrect sudo password", "is not pi's password on this host")


def test_the_right_sudo_password_passes_the_checks(user: Controller, lab: Lab):
    """What the message says to do works: with pi's password, both check plays pass (only they run)."""
    password = lab.ssh.password_file.read_text().strip()
    run = timed(user, "--tags", "always", "-e", f"ansible_become_password={password}")
    assert run.returncode == 0, run.stdout[-4000:]
    assert "PLAY [Check Ansible can log in to every host and become root there]" in run.stdout


def test_a_missing_controller_library(lab: Lab):
    """The controller's venv without python-consul2: the first play says what to pip install."""
    short = lab.controller(leave_out=["python-consul2"])
    out = refused(timed(short),
                  "lacks python-consul2 (or py-consul)",
                  f"{short.venv}/bin/python",
                  "-m pip install python-consul2 requests cryptography` (or `pip install -r requirements.txt`")
    assert "PLAY [Check Ansible can log in" not in out  # it stops before touching any host


def test_become_on_the_controller_fails_the_run(user: Controller):
    """The controller user has no sudo: a task that would become root on the
    controller fails the run. This is what keeps `become: false` on every
    controller task honest at run time (tests/lint/controller_become.py checks the source)."""
    playbook = user.write("become-on-controller.yml", """\
- name: A task that wants root on the controller
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Become root on the controller
      ansible.builtin.command: id -u
      become: true
      changed_when: false
""")
    run = user.playbook([str(playbook)])
    assert run.returncode != 0, run.stdout
    assert "sudo" in run.stdout.lower(), run.stdout
