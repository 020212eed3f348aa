# Copyright (c) 2025 picluster.swarm developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fail when a task that runs on the controller could run with become.

Users run ansible-playbook as themselves on a laptop; a play's `become: true`
is inherited by every task, including those delegated to the controller, where
it would run sudo on the laptop (and ask for a password, or fail). So every
task that runs on the controller must say `become: false`, itself or on an
enclosing block:

* `delegate_to: localhost` or `127.0.0.1`;
* `delegate_to: "{{ some_var }}"` where the role's defaults (or vars) give
  `some_var` one of those values (the controller by default);
* `local_action`;
* every task of a play on `localhost` that sets `become: true`.

Usage: tests/lint/controller_become.py [PATH...]   (default: roles playbooks site.yml)
Prints one line per offending task and exits 1 when there is any.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import yaml

CONTROLLER_NAMES = {"localhost", "127.0.0.1", "::1"}
ONE_VARIABLE = re.compile(r"^\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}$")
BLOCK_KEYS = ("block", "rescue", "always")
FALSE_WORDS = {"false", "no", "off", "0"}


@dataclass
class Finding:
    path: Path
    name: str
    why: str

    def __str__(self) -> str:
        return f"{self.path}: task '{self.name}' {self.why} without `become: false`"


def is_false(value: Any) -> bool:
    if isinstance(value, bool):
        return value is False
    return isinstance(value, str) and value.strip().lower() in FALSE_WORDS


def load_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise SystemExit(f"{path}: not valid YAML: {err}") from err


def role_variables(role_dir: Path) -> Dict[str, Any]:
    """The values a role gives its variables when the user sets nothing."""
    merged: Dict[str, Any] = {}
    for sub in ("defaults", "vars"):
        for path in sorted((role_dir / sub).glob("*.y*ml")):
            data = load_yaml(path)
            if isinstance(data, dict):
                merged.update(data)
    return merged


def controller_reason(task: Dict[str, Any], variables: Dict[str, Any]) -> Optional[str]:
    """Why the task runs on the controller, or None when it does not."""
    if "local_action" in task:
        return "uses local_action"
    target = task.get("delegate_to")
    if not isinstance(target, str):
        return None
    target = target.strip()
    if target in CONTROLLER_NAMES:
        return f"is delegated to {target}"
    match = ONE_VARIABLE.match(target)
    if match and str(variables.get(match.group(1), "")).strip() in CONTROLLER_NAMES:
        return f"is delegated to {target}, which is {variables[match.group(1)]} by default"
    return None


def walk(tasks: Any, path: Path, variables: Dict[str, Any], become_off: bool,
         on_controller: Optional[str]) -> Iterator[Finding]:
    """Each task with the become setting and controller delegation it inherits."""
    if not isinstance(tasks, list):
        return
    for task in tasks:
        if not isinstance(task, dict):
            continue
        off = is_false(task["become"]) if "become" in task else become_off
        where = controller_reason(task, variables) or on_controller
        if any(key in task for key in BLOCK_KEYS):
            for key in BLOCK_KEYS:
                yield from walk(task.get(key), path, variables, off, where)
            continue
        if where and not off:
            yield Finding(path, str(task.get("name", "(unnamed)")), where)


def check_task_file(path: Path, variables: Dict[str, Any]) -> List[Finding]:
    return list(walk(load_yaml(path), path, variables, False, None))


def check_playbook(path: Path) -> List[Finding]:
    plays = load_yaml(path)
    findings: List[Finding] = []
    if not isinstance(plays, list):
        return findings
    for play in plays:
        if not isinstance(play, dict) or "hosts" not in play:
            continue
        hosts = {h.strip() for h in str(play["hosts"]).replace(",", ":").split(":")}
        local_play = bool(hosts) and hosts <= CONTROLLER_NAMES
        become_on = "become" in play and not is_false(play["become"])
        # A play on the controller with become on makes every task in it run as root there.
        where = "runs in a play on the controller with become: true" if local_play and become_on else None
        off = not become_on
        for key in ("pre_tasks", "tasks", "post_tasks", "handlers"):
            findings += walk(play.get(key), path, {}, off, where)
    return findings


def task_files(role_dir: Path) -> Iterator[Path]:
    for sub in ("tasks", "handlers"):
        yield from sorted((role_dir / sub).rglob("*.y*ml"))


def check(paths: List[Path]) -> List[Finding]:
    findings: List[Finding] = []
    for top in paths:
        if top.is_file():
            findings += check_playbook(top)
        elif (top / "tasks").is_dir() or (top / "handlers").is_dir():
            variables = role_variables(top)
            for path in task_files(top):
                findings += check_task_file(path, variables)
        elif top.name == "roles":
            for role_dir in sorted(p for p in top.iterdir() if p.is_dir()):
                findings += check([role_dir])
        elif top.is_dir():
            for path in sorted(top.glob("*.y*ml")):
                findings += check_playbook(path)
    return findings


def main(argv: List[str]) -> int:
    root = Path(__file__).resolve().parents[2]
    paths = [Path(a) for a in argv] or [root / "roles", root / "playbooks", root / "site.yml"]
    missing = [str(p) for p in paths if not p.exists()]
    paths = [p for p in paths if p.exists()]
    findings = check(paths)
    for finding in findings:
        print(str(finding).replace(f"{root}/", "", 1))
    if findings:
        print(f"{len(findings)} task(s) would run with become on the controller, where users run ansible-playbook "
              "as themselves: add `become: false` to each (or to its block).", file=sys.stderr)
        return 1
    checked = ", ".join(str(p.relative_to(root)) if p.is_relative_to(root) else str(p) for p in paths)
    print(f"controller tasks: none runs with become ({checked}"
          + (f"; not found: {', '.join(missing)}" if missing else "") + ")")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
