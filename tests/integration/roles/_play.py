"""Run a small playbook against a dummy local inventory and return (rc, output)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Tuple

import yaml

ROOT = Path(__file__).resolve().parents[3]


def run_playbook(tmp_path: Path, inventory: dict, play: list, extra_vars: dict | None = None) -> Tuple[int, str]:
    """Hosts use the local connection: preflight checks must fail before anything touches a host."""
    inventory_file = tmp_path / "hosts.yml"
    playbook_file = tmp_path / "play.yml"
    inventory_file.write_text(yaml.safe_dump(inventory))
    playbook_file.write_text(yaml.safe_dump(play, sort_keys=False))
    command = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", str(inventory_file),
               str(playbook_file), "-e", f"ansible_python_interpreter={sys.executable}"]
    if extra_vars:
        command += ["-e", json.dumps(extra_vars)]
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env, timeout=300, check=False)
    return done.returncode, done.stdout + done.stderr


def local_inventory(masters: list[str], nodes: list[str], **all_vars: object) -> dict:
    return {"all": {"vars": {"ansible_connection": "local", **all_vars},
                    "children": {"masters": {"hosts": {h: {} for h in masters}},
                                 "nodes": {"hosts": {h: {} for h in nodes}}}}}


def assert_refused(rc: int, output: str, *fragments: str) -> None:
    """The play failed with a message (no traceback) that says each fragment."""
    assert rc != 0, output
    assert "Traceback" not in output, output
    for fragment in fragments:
        assert fragment in output, output
