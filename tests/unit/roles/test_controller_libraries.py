# Copyright (c) 2025 picluster.swarm developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A controller Python without the libraries the roles use there is refused up front, naming the fix.

The controller here is localhost with a bare virtualenv as its interpreter
(no consul, requests or cryptography), as on a laptop where only ansible-core
was installed; with the Python running these tests, which has them, the same
checks pass.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
CHECKS = {
    "consul": {"name": "picluster.swarm.consul", "tasks_from": "controller.yml"},
    "docker": {"name": "picluster.swarm.docker", "tasks_from": "controller.yml"},
}


@pytest.fixture(scope="module")
def bare_python(tmp_path_factory) -> str:
    venv = tmp_path_factory.mktemp("bare") / "venv"
    subprocess.run(["/usr/bin/python3", "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    return str(venv / "bin" / "python")


def run(tmp_path: Path, controller_python: str, role: str) -> tuple[int, str]:
    inventory = {"all": {"hosts": {
        "localhost": {"ansible_connection": "local", "ansible_python_interpreter": controller_python},
        "m1": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}},
        "children": {"masters": {"hosts": {"m1": {}}}}}}
    play = [{"name": "Controller check", "hosts": "masters", "gather_facts": False,
             "tasks": [{"name": "Check", "ansible.builtin.include_role": CHECKS[role]}]}]
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(inventory))
    (tmp_path / "play.yml").write_text(yaml.safe_dump(play, sort_keys=False))
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    done = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(tmp_path / "hosts.yml"),
                           str(tmp_path / "play.yml")], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    return done.returncode, " ".join((done.stdout + done.stderr).split())


@pytest.mark.parametrize(("role", "missing", "fix"), [
    ("consul", "lacks python-consul2 (or py-consul), requests, cryptography.",
     "-m pip install python-consul2 requests cryptography"),
    ("docker", "lacks cryptography.", "-m pip install cryptography"),
])
def test_missing_controller_library_names_the_fix(tmp_path, bare_python, role, missing, fix):
    rc, out = run(tmp_path, bare_python, role)
    assert rc != 0, out
    assert f"the controller's Python ({bare_python}) {missing}" in out
    assert f"`{bare_python} {fix}`" in out
    assert "pip install -r requirements.txt" in out
    assert "Traceback" not in out


@pytest.mark.parametrize("role", CHECKS)
def test_controller_with_the_libraries_passes(tmp_path, role):
    rc, out = run(tmp_path, sys.executable, role)
    assert rc == 0, out


@pytest.mark.parametrize("role", CHECKS)
def test_controller_python_that_does_not_run_is_named(tmp_path, role):
    """An interpreter path that is wrong (a typo in the inventory's localhost) is named as such, not a traceback."""
    rc, out = run(tmp_path, str(tmp_path / "no-such-python"), role)
    assert rc != 0, out
    assert f"the controller's Python ({tmp_path / 'no-such-python'}) lacks a working interpreter: " in out, out
    assert "not found" in out or "No such file" in out, out
    assert "Traceback" not in out
