"""The scenario's converge once more under Mitogen: nothing changes, nothing fails.

Mitogen's mitogen_linear strategy is the documented faster way to run the
roles (docs/speed.md). It runs become where Ansible's own strategies skip it
(root to root, and on the controller for delegated tasks), so a role task that
would need root on the controller shows up here. This file sorts before the
scenario's other tests (by its name), so it runs on the cluster as converge left it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from picluster_lab import Lab

LAB = Lab.from_env()
CONVERGE = Path(os.environ.get("MOLECULE_SCENARIO_DIRECTORY", Path(__file__).resolve().parents[1])) / "converge.yml"


def test_converge_again_under_mitogen_changes_nothing(tmp_path):
    run = LAB.playbook(CONVERGE, mitogen=True, logs=tmp_path, timeout=900)
    assert run.returncode == 0, run.output[-4000:]
    assert sorted(run.recap) == sorted(LAB.hosts()), run.recap
    assert run.total("changed") == 0, run.recap
    assert run.total("failed") == run.total("unreachable") == 0, run.recap


def test_mitogen_took_over_the_connection(tmp_path):
    """Mitogen's own action plugin answers only under its strategy, with the transport it runs each host on."""
    run = LAB.ansible(["ansible", "all", "-m", "mitogen_get_stack"], mitogen=True, logs=tmp_path, timeout=300)
    assert run.returncode == 0, run.output[-4000:]
    # "method: docker" in YAML results, '"method": "docker"' in JSON ones.
    assert len(re.findall(r"\bmethod\W+docker\b", run.output)) == len(LAB.hosts()), run.output[-4000:]
