# Copyright (c) 2025 picluster.swarm developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The lint check that no task on the controller runs with become."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "tests" / "lint" / "controller_become.py"
_SPEC = importlib.util.spec_from_file_location("controller_become", SCRIPT)
checker = importlib.util.module_from_spec(_SPEC)
sys.modules[_SPEC.name] = checker  # dataclasses look their module up there
_SPEC.loader.exec_module(checker)


def make_role(tmp_path: Path, tasks: list, defaults: dict | None = None) -> Path:
    role = tmp_path / "roles" / "demo"
    (role / "tasks").mkdir(parents=True)
    (role / "tasks" / "main.yml").write_text(yaml.safe_dump(tasks, sort_keys=False))
    if defaults is not None:
        (role / "defaults").mkdir()
        (role / "defaults" / "main.yml").write_text(yaml.safe_dump(defaults))
    return role


def names(findings) -> list[str]:
    return [f.name for f in findings]


def test_flags_each_way_of_reaching_the_controller(tmp_path):
    role = make_role(tmp_path, [
        {"name": "literal", "ansible.builtin.command": "true", "delegate_to": "localhost"},
        {"name": "loopback", "ansible.builtin.command": "true", "delegate_to": "127.0.0.1"},
        {"name": "templated", "ansible.builtin.command": "true", "delegate_to": "{{ demo_where }}"},
        {"name": "local action", "local_action": {"module": "ansible.builtin.command", "cmd": "true"}},
        {"name": "become true", "ansible.builtin.command": "true", "delegate_to": "localhost", "become": True},
    ], defaults={"demo_where": "localhost"})
    assert names(checker.check([role])) == ["literal", "loopback", "templated", "local action", "become true"]


def test_accepts_become_false_on_the_task_or_its_block(tmp_path):
    role = make_role(tmp_path, [
        {"name": "task", "ansible.builtin.command": "true", "delegate_to": "localhost", "become": False},
        {"name": "outer", "delegate_to": "localhost", "become": False, "block": [
            {"name": "inner", "ansible.builtin.command": "true"}]},
        {"name": "outer2", "become": "no", "block": [
            {"name": "inner2", "ansible.builtin.command": "true", "delegate_to": "localhost"}]},
    ])
    assert checker.check([role]) == []


def test_block_delegation_reaches_its_tasks_and_a_task_may_turn_become_back_on(tmp_path):
    role = make_role(tmp_path, [
        {"name": "outer", "delegate_to": "localhost", "block": [{"name": "inner", "ansible.builtin.command": "true"}],
         "rescue": [{"name": "rescued", "ansible.builtin.command": "true", "become": False}]},
        {"name": "outer2", "delegate_to": "localhost", "become": False, "block": [
            {"name": "root again", "ansible.builtin.command": "true", "become": True}]},
    ])
    assert names(checker.check([role])) == ["inner", "root again"]


def test_other_hosts_and_unresolved_templates_are_not_the_controller(tmp_path):
    role = make_role(tmp_path, [
        {"name": "a node", "ansible.builtin.command": "true", "delegate_to": "master"},
        {"name": "the leader", "ansible.builtin.command": "true", "delegate_to": "{{ demo_leader }}"},
        {"name": "expression", "ansible.builtin.command": "true", "delegate_to": "{{ groups['masters'][0] }}"},
    ], defaults={"demo_leader": "{{ groups['masters'] | first }}"})
    assert checker.check([role]) == []


def test_a_play_on_localhost_with_become(tmp_path):
    playbook = tmp_path / "play.yml"
    playbook.write_text(yaml.safe_dump([
        {"name": "root on the laptop", "hosts": "localhost", "become": True,
         "tasks": [{"name": "t1", "ansible.builtin.command": "true"},
                   {"name": "t2", "ansible.builtin.command": "true", "become": False}]},
        {"name": "nodes", "hosts": "masters:nodes", "become": True,
         "tasks": [{"name": "t3", "ansible.builtin.command": "true"},
                   {"name": "t4", "ansible.builtin.command": "true", "delegate_to": "localhost"}]},
    ], sort_keys=False))
    assert names(checker.check([playbook])) == ["t1", "t4"]


def test_the_collection_passes_and_the_command_fails_on_a_finding(tmp_path):
    clean = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, check=False)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    role = make_role(tmp_path, [{"name": "keygen", "ansible.builtin.command": "true", "delegate_to": "localhost"}])
    bad = subprocess.run([sys.executable, str(SCRIPT), str(role)], capture_output=True, text=True, check=False)
    assert bad.returncode == 1
    assert "task 'keygen' is delegated to localhost without `become: false`" in bad.stdout
    assert "add `become: false`" in bad.stderr
