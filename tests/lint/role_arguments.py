# Copyright (c) 2025 picluster.swarm developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Keep every role's defaults/main.yml and meta/argument_specs.yml in step.

Ansible validates a role's variables against its argument spec but takes
their values from defaults/main.yml: a default written in one and not the
other is documented wrong, silently. Checked for every role under roles/:

* the ``main`` entry point names exactly the variables of defaults/main.yml,
  each with the same default (a role with tasks/main.yml needs a ``main``);
* any other entry point's ``default`` is the one defaults/main.yml sets, and an
  option defaults/main.yml does not set has no ``default`` (its caller gives it);
* every include_role/import_role of a picluster.swarm role names a declared
  entry point of it, without ``.yml`` (Ansible validates an entry point only
  when tasks_from is its bare name): no role includes another role's task files.

Usage: role_arguments.py [ROOT]   (the collection root; default: this checkout)
Exit status 1 with one line per problem: the role, the variable and the difference.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import yaml

COLLECTION = "picluster.swarm"
INCLUDE_ACTIONS = {
    f"{prefix}{action}"
    for prefix in ("", "ansible.builtin.", "ansible.legacy.")
    for action in ("include_role", "import_role")
}
MISSING = object()


def load_yaml(path: Path) -> Any:
    with path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def show(value: Any) -> str:
    return "(none)" if value is MISSING else repr(value)


def role_specs(role: Path) -> Dict[str, Dict[str, Any]]:
    path = role / "meta" / "argument_specs.yml"
    if not path.exists():
        return {}
    return (load_yaml(path) or {}).get("argument_specs") or {}


def check_main(role: Path, defaults: Dict[str, Any], specs: Dict[str, Dict[str, Any]]) -> Iterator[str]:
    where = f"roles/{role.name}"
    if "main" not in specs:
        if (role / "tasks" / "main.yml").exists() or defaults:
            yield f"{where}: meta/argument_specs.yml has no 'main' entry point (it has tasks/main.yml or defaults)"
        return
    options = specs["main"].get("options") or {}
    for name in sorted(set(defaults) - set(options)):
        yield f"{where}: {name}: in defaults/main.yml but not documented in meta/argument_specs.yml (main)"
    for name in sorted(set(options) - set(defaults)):
        if "default" in options[name]:
            yield (f"{where}: {name}: meta/argument_specs.yml (main) gives default {show(options[name]['default'])} "
                   "but defaults/main.yml does not set it")
        elif not options[name].get("required"):
            yield (f"{where}: {name}: documented in meta/argument_specs.yml (main) but not set in defaults/main.yml "
                   "and not required")
    for name in sorted(set(defaults) & set(options)):
        documented = options[name].get("default", MISSING)
        # No default in an argument spec means null, as in Ansible.
        if (None if documented is MISSING else documented) != defaults[name]:
            yield (f"{where}: {name}: default differs: defaults/main.yml has {show(defaults[name])}, "
                   f"meta/argument_specs.yml (main) has {show(documented)}")


def check_other_entry_points(role: Path, defaults: Dict[str, Any], specs: Dict[str, Dict[str, Any]]) -> Iterator[str]:
    where = f"roles/{role.name}"
    for entry, spec in sorted(specs.items()):
        if entry == "main":
            continue
        if not (role / "tasks" / f"{entry}.yml").exists():
            yield f"{where}: entry point '{entry}' has no tasks/{entry}.yml"
        for name, option in sorted((spec.get("options") or {}).items()):
            documented = option.get("default", MISSING)
            if name in defaults and documented is not MISSING and documented != defaults[name]:
                yield (f"{where}: {name}: default differs: defaults/main.yml has {show(defaults[name])}, "
                       f"meta/argument_specs.yml ({entry}) has {show(documented)}")
            if name not in defaults and documented is not MISSING:
                yield (f"{where}: {name}: meta/argument_specs.yml ({entry}) gives default {show(documented)} "
                       "but defaults/main.yml does not set it (make it required, or set it there)")


def includes(data: Any) -> Iterator[Tuple[str, Any]]:
    """(action, arguments) of every include_role/import_role in a YAML document, however nested."""
    if isinstance(data, dict):
        for key, value in data.items():
            if key in INCLUDE_ACTIONS:
                yield key, value
            else:
                yield from includes(value)
    elif isinstance(data, list):
        for item in data:
            yield from includes(item)


def check_includes(root: Path, entry_points: Dict[str, Dict[str, Dict[str, Any]]]) -> Iterator[str]:
    files = sorted(root.glob("roles/*/tasks/*.yml")) + sorted(root.glob("playbooks/*.yml"))
    for path in files:
        where = str(path.relative_to(root))
        for action, args in includes(load_yaml(path)):
            if not isinstance(args, dict):
                continue
            name = str(args.get("name", ""))
            if not name.startswith(f"{COLLECTION}."):
                continue
            role = name[len(COLLECTION) + 1:]
            entry = str(args.get("tasks_from", "main"))
            if role not in entry_points:
                yield f"{where}: {action} {name}: no such role in roles/"
            elif entry.endswith((".yml", ".yaml")):
                yield (f"{where}: {action} {name} tasks_from: {entry}: name the entry point without the extension "
                       f"(tasks_from: {entry.rsplit('.', 1)[0]}); with it Ansible skips the argument validation")
            elif entry not in entry_points[role]:
                declared = ", ".join(sorted(entry_points[role])) or "none"
                yield (f"{where}: {action} {name} tasks_from: {entry}: not an entry point declared in "
                       f"roles/{role}/meta/argument_specs.yml (declared: {declared}); include entry points, "
                       "not another role's task files")


def problems(root: Path) -> List[str]:
    found: List[str] = []
    entry_points: Dict[str, Dict[str, Dict[str, Any]]] = {}
    for role in sorted(p for p in (root / "roles").iterdir() if p.is_dir()):
        defaults_file = role / "defaults" / "main.yml"
        defaults = (load_yaml(defaults_file) or {}) if defaults_file.exists() else {}
        specs = role_specs(role)
        entry_points[role.name] = specs
        if not specs:
            found.append(f"roles/{role.name}: no meta/argument_specs.yml: document and validate its variables there")
            continue
        found.extend(check_main(role, defaults, specs))
        found.extend(check_other_entry_points(role, defaults, specs))
    found.extend(check_includes(root, entry_points))
    return found


def main(argv: List[str]) -> int:
    root = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parents[2]
    found = problems(root)
    for line in found:
        print(f"role arguments: {line}", file=sys.stderr)
    if found:
        print(f"role arguments: {len(found)} problem(s): defaults/main.yml and meta/argument_specs.yml must agree",
              file=sys.stderr)
        return 1
    print(f"role arguments: {len(list((root / 'roles').iterdir()))} roles, defaults and argument specs agree")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
