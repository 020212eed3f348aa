# Copyright (c) 2025 picluster.swarm developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The lint check that keeps defaults/main.yml and meta/argument_specs.yml in step: it passes here, and says
what is wrong, where, on a tree built to be wrong."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "tests" / "lint" / "role_arguments.py"


def load_checker():
    spec = importlib.util.spec_from_file_location("role_arguments", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def make_role(root: Path, name: str, defaults: dict, specs: dict, tasks: dict | None = None) -> None:
    role = root / "roles" / name
    write(role / "defaults" / "main.yml", defaults)
    write(role / "meta" / "argument_specs.yml", {"argument_specs": specs})
    for task_file, content in (tasks or {"main": []}).items():
        write(role / "tasks" / f"{task_file}.yml", content)


def test_the_collection_passes():
    done = subprocess.run([sys.executable, str(SCRIPT), str(ROOT)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_each_difference_is_named_with_role_and_variable(tmp_path):
    make_role(tmp_path, "good", {"good_a": 1}, {"main": {"options": {"good_a": {"type": "int", "default": 1}}}})
    make_role(tmp_path, "web", {"web_port": 80, "web_only_here": "x", "web_host": "{{ groups['all'][0] }}"}, {
        "main": {"options": {
            "web_port": {"type": "int", "default": 8080},
            "web_only_documented": {"type": "str", "default": "y"},
            "web_host": {"type": "str", "default": "{{ groups['all'][0] }}"},
        }},
        "build": {"options": {"web_port": {"type": "int", "default": 81},
                              "web_image": {"type": "str", "default": "i"}}},
    }, tasks={"main": [{"name": "Use an entry point", "ansible.builtin.include_role": {
        "name": "picluster.swarm.good", "tasks_from": "helpers.yml"}}], "build": []})
    make_role(tmp_path, "user", {}, {"main": {"options": {}}}, tasks={"main": [
        {"name": "Reach into another role", "ansible.builtin.include_role": {
            "name": "picluster.swarm.web", "tasks_from": "internal"}},
        {"name": "A declared one", "ansible.builtin.include_role": {
            "name": "picluster.swarm.web", "tasks_from": "build"}},
    ]})
    found = load_checker().problems(tmp_path)
    assert found == [
        "roles/web: web_only_here: in defaults/main.yml but not documented in meta/argument_specs.yml (main)",
        "roles/web: web_only_documented: meta/argument_specs.yml (main) gives default 'y' but defaults/main.yml "
        "does not set it",
        "roles/web: web_port: default differs: defaults/main.yml has 80, meta/argument_specs.yml (main) has 8080",
        "roles/web: web_image: meta/argument_specs.yml (build) gives default 'i' but defaults/main.yml does not set it "
        "(make it required, or set it there)",
        "roles/web: web_port: default differs: defaults/main.yml has 80, meta/argument_specs.yml (build) has 81",
        "roles/user/tasks/main.yml: ansible.builtin.include_role picluster.swarm.web tasks_from: internal: not an "
        "entry point declared in roles/web/meta/argument_specs.yml (declared: build, main); include entry points, "
        "not another role's task files",
        "roles/web/tasks/main.yml: ansible.builtin.include_role picluster.swarm.good tasks_from: helpers.yml: name "
        "the entry point without the extension (tasks_from: helpers); with it Ansible skips the argument validation",
    ]


def test_fails_loudly_from_the_command_line(tmp_path):
    make_role(tmp_path, "web", {"web_port": 80}, {"main": {"options": {"web_port": {"type": "int", "default": 8080}}}})
    done = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path)], capture_output=True, text=True, check=False)
    assert done.returncode == 1
    assert "roles/web: web_port: default differs: defaults/main.yml has 80" in done.stderr
    assert "1 problem(s)" in done.stderr
