"""`ansible-galaxy collection build` makes a tarball that installs, and whose
roles and modules resolve by their fully qualified names."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]


def _run(cmd: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd, timeout=300, check=False)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict[str, str]:
    work = tmp_path_factory.mktemp("galaxy")
    target = work / "collections"
    # Away from the checkout's ansible.cfg, whose collections/ link already
    # "has" picluster.swarm installed and would make the install a no-op.
    env = dict(os.environ)
    env.pop("ANSIBLE_CONFIG", None)
    env["ANSIBLE_COLLECTIONS_PATH"] = str(target)
    _run(["ansible-galaxy", "collection", "build", "--output-path", str(work), str(ROOT)], env=env, cwd=work)
    version = yaml.safe_load((ROOT / "galaxy.yml").read_text())["version"]
    tarball = work / f"picluster-swarm-{version}.tar.gz"
    assert tarball.exists(), f"expected {tarball.name}, got {[p.name for p in work.iterdir()]}"
    # --no-deps: Galaxy is unreachable; the community collections we depend on
    # come bundled with the `ansible` package (found on the sys.path).
    _run(["ansible-galaxy", "collection", "install", "--no-deps", "-p", str(target), str(tarball)], env=env, cwd=work)
    env["ANSIBLE_COLLECTIONS_SCAN_SYS_PATH"] = "true"
    env["ANSIBLE_NOCOLOR"] = "1"
    return {"env": env, "path": str(target), "cwd": str(work)}


def test_tarball_leaves_out_the_lab_and_build_files(installed):
    root = Path(installed["path"]) / "ansible_collections/picluster/swarm"
    assert (root / "MANIFEST.json").exists()
    for unwanted in ("tools", "collections", ".ci", "build", "lab", "tests/unit/lab"):
        assert not (root / unwanted).exists(), f"{unwanted}/ must not ship in the collection"


def test_installed_collection_is_listed(installed):
    out = _run(["ansible-galaxy", "collection", "list", "picluster.swarm", "-p", installed["path"]],
               env=installed["env"], cwd=Path(installed["cwd"]))
    assert "picluster.swarm" in out


def test_every_module_resolves_by_fqcn(installed):
    modules = sorted(p.stem for p in (ROOT / "plugins/modules").glob("*.py") if p.stem != "__init__")
    assert modules, "the collection ships no modules"
    # One ansible-doc for all of them (each start costs seconds under load).
    out = _run(["ansible-doc", "-t", "module", *(f"picluster.swarm.{name}" for name in modules)],
               env=installed["env"], cwd=Path(installed["cwd"]))
    documented = sections(out, "MODULE")
    for name in modules:
        assert f"picluster.swarm.{name}" in documented, f"ansible-doc does not render picluster.swarm.{name}"


def sections(doc: str, kind: str) -> dict[str, str]:
    """ansible-doc's output for several plugins or roles, split per name: each one's text starts with a
    line `> MODULE name (path)` or `> ROLE: name (path)`."""
    parts = re.split(rf"^> {kind}:? \*?(\S+?)\*? \(.*$", doc, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2]))


def entry_points(role: Path) -> list[str]:
    specs = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    return sorted(specs)


def test_every_role_entry_point_resolves_by_fqcn(installed, tmp_path):
    """Every entry point of every role, internal ones (app_image build, swarm classic) included."""
    roles = {p.name: entry_points(p) for p in sorted((ROOT / "roles").iterdir()) if (p / "tasks").is_dir()}
    assert roles, "the collection ships no roles"
    tasks = [{"name": f"Resolve {role} {entry}",
              "ansible.builtin.import_role": {"name": f"picluster.swarm.{role}", "tasks_from": entry}}
             for role, entries in roles.items() for entry in entries]
    playbook = tmp_path / "resolve.yml"
    playbook.write_text(yaml.safe_dump([{"name": "Resolve roles", "hosts": "localhost", "gather_facts": False,
                                         "tasks": tasks}]))
    # import_role resolves every role while the playbook is parsed.
    out = _run(["ansible-playbook", "-i", "localhost,", "--syntax-check", str(playbook)],
               env=installed["env"], cwd=tmp_path)
    assert "playbook: " in out
    docs = sections(_run(["ansible-doc", "-t", "role", *(f"picluster.swarm.{role}" for role in roles)],
                         env=installed["env"], cwd=tmp_path), "ROLE")
    for role, entries in roles.items():
        doc = docs.get(f"picluster.swarm.{role}")
        assert doc is not None, f"ansible-doc does not render picluster.swarm.{role}"
        for entry in entries:
            assert f"ENTRY POINT: *{entry}*" in doc, f"picluster.swarm.{role} does not document entry point {entry}"
    internal = {"app_image"}  # called by other roles only
    for role in set(roles) - internal:
        assert "main" in roles[role], f"picluster.swarm.{role} has no main entry point"


def test_site_playbook_runs_by_fqcn(installed, tmp_path):
    """playbooks/site.yml ships as picluster.swarm.site: the whole cluster without the checkout."""
    inventory = tmp_path / "hosts.yml"
    groups = {"masters": {"hosts": {"m1": {}}}, "nodes": {"hosts": {"n1": {}}}}
    inventory.write_text(yaml.safe_dump({"all": {"children": groups}}))
    out = _run(["ansible-playbook", "-i", str(inventory), "picluster.swarm.site", "--list-tags"],
               env=installed["env"], cwd=tmp_path)
    for tag in ("base", "docker", "consul", "swarm", "overlay", "proxy", "dashboard"):
        assert tag in out


def test_tarball_ships_the_controller_requirements(installed):
    """README's "use it on your Pis" installs from these two files; they ship with the collection."""
    root = Path(installed["path"]) / "ansible_collections/picluster/swarm"
    for name in ("requirements.txt", "requirements.yml"):
        assert (root / name).is_file(), f"{name} does not ship in the tarball"
        assert (root / name).read_text() == (ROOT / name).read_text()


def test_site_playbook_plays_from_the_installed_collection(installed, tmp_path):
    """picluster.swarm.site runs from the installed copy, not only parses: its first
    play refuses an even number of masters there (so no host is touched)."""
    inventory = tmp_path / "hosts.yml"
    masters = {"m1": {"picluster_address": "127.0.0.1"}, "m2": {"picluster_address": "127.0.0.1"}}
    inventory.write_text(yaml.safe_dump({"all": {"vars": {"ansible_connection": "local"}, "children": {
        "masters": {"hosts": masters}, "nodes": {"hosts": {"n1": {"picluster_address": "127.0.0.2"}}}}}}))
    proc = subprocess.run(["ansible-playbook", "-i", str(inventory), "picluster.swarm.site"],
                          capture_output=True, text=True, env=installed["env"], cwd=tmp_path, timeout=300, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert "2 Consul servers in 'masters' (m1, m2)" in out, out
    assert f"{installed['path']}/ansible_collections/picluster/swarm/roles/consul/tasks/preflight.yml" in out, out
    assert "Traceback" not in out
