"""`ansible-galaxy collection build` makes a tarball that installs, and whose
roles and modules resolve by their fully qualified names."""

from __future__ import annotations

import os
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
    for name in modules:
        out = _run(["ansible-doc", "-t", "module", f"picluster.swarm.{name}"], env=installed["env"],
                   cwd=Path(installed["cwd"]))
        assert name in out


def test_every_role_resolves_by_fqcn(installed, tmp_path):
    roles = sorted(p.name for p in (ROOT / "roles").iterdir() if (p / "tasks").is_dir())
    assert roles, "the collection ships no roles"
    play = [{"name": "Resolve roles", "hosts": "localhost", "gather_facts": False,
             "tasks": [{"name": f"Resolve {r}", "ansible.builtin.import_role": {"name": f"picluster.swarm.{r}"}}
                       for r in roles]}]
    playbook = tmp_path / "resolve.yml"
    playbook.write_text(yaml.safe_dump(play))
    # import_role resolves every role while the playbook is parsed.
    out = _run(["ansible-playbook", "-i", "localhost,", "--syntax-check", str(playbook)],
               env=installed["env"], cwd=tmp_path)
    assert "playbook: " in out
    for role in roles:
        doc = _run(["ansible-doc", "-t", "role", f"picluster.swarm.{role}"], env=installed["env"], cwd=tmp_path)
        assert "ENTRY POINT: *main*" in doc, f"picluster.swarm.{role} has no documented main entry point"
