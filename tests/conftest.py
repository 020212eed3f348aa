# Copyright (c) 2025 picluster.swarm developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures every test stage shares."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SWARM_AGENT = ROOT / "roles" / "swarm_agent"


@pytest.fixture(scope="session")
def installed_heartbeat(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The heartbeat script, installed as the swarm_agent role installs it.

    The role's file list (swarm_agent_heartbeat_files) decides: the script and
    the collection's _membership.py it imports, side by side.
    """
    files = yaml.safe_load((SWARM_AGENT / "vars" / "main.yml").read_text())["swarm_agent_heartbeat_files"]
    target = tmp_path_factory.mktemp("picluster-heartbeat")
    for item in files:
        shutil.copyfile(SWARM_AGENT / item["src"], target / item["dest"])
    return target / "picluster-heartbeat.py"


@pytest.fixture(scope="session")
def installed_reconciler(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reconciler service, installed as the swarm_manager role installs it (swarm_manager_reconcile_files):
    the script and the collection's module_utils it imports, side by side."""
    role = ROOT / "roles" / "swarm_manager"
    files = yaml.safe_load((role / "vars" / "main.yml").read_text())["swarm_manager_reconcile_files"]
    target = tmp_path_factory.mktemp("picluster-reconcile")
    for item in files:
        shutil.copyfile(role / item["src"], target / item["dest"])
    return target / "picluster-reconcile.py"
