# Copyright (c) 2025 picluster.swarm developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Run role task files on local "hosts" (one per case, one ansible-playbook run) and collect what they decided.

Each host of the inventory is a case with its own variables; every host runs
on this machine (local connection), so a role's decision is rendered without a
real host. A host that fails has no result; its output is in ``Rendered.output``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List

import yaml

ROOT = Path(__file__).resolve().parents[3]


@dataclass
class Rendered:
    returncode: int
    output: str
    results: Dict[str, Any] = field(default_factory=dict)


def render(tmp_path: Path, cases: Dict[str, Dict[str, Any]], tasks: List[Dict[str, Any]], result: str, *,
           gather_facts: bool = False, environment: Dict[str, str] | None = None) -> Rendered:
    """Run ``tasks`` on every case; ``result`` is an expression saved per host when they succeed."""
    out_dir = tmp_path / "results"
    out_dir.mkdir()
    inventory = {"all": {"vars": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable},
                         "hosts": cases}}
    save = {"name": "Save the decision", "ansible.builtin.copy": {
        "content": "{{ (" + result + ") | to_json }}", "dest": f"{out_dir}/{{{{ inventory_hostname }}}}.json",
        "mode": "0644"}}
    play = {"name": "Render", "hosts": "all", "gather_facts": gather_facts, "tasks": [*tasks, save]}
    if gather_facts:
        play["gather_subset"] = ["!all"]
    if environment:
        play["environment"] = environment
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(inventory))
    (tmp_path / "play.yml").write_text(yaml.safe_dump([play], sort_keys=False))
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    done = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(tmp_path / "hosts.yml"),
                           str(tmp_path / "play.yml")], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    results = {p.stem: json.loads(p.read_text()) for p in out_dir.glob("*.json")}
    return Rendered(done.returncode, done.stdout + done.stderr, results)
