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


def install_like_the_role(role: str, files_var: str, script: str, target: Path) -> Path:
    """Copy a role's service script and the collection code it imports side by side, as the role installs
    them: its file list (<files_var> in the role's vars/main.yml) decides."""
    role_dir = ROOT / "roles" / role
    for item in yaml.safe_load((role_dir / "vars" / "main.yml").read_text())[files_var]:
        shutil.copyfile(role_dir / item["src"], target / item["dest"])
    return target / script


@pytest.fixture(scope="session")
def installed_heartbeat(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The heartbeat script, installed as the swarm_agent role installs it (swarm_agent_heartbeat_files):
    the script and the collection's _membership.py it imports, side by side."""
    return install_like_the_role("swarm_agent", "swarm_agent_heartbeat_files", "picluster-heartbeat.py",
                                 tmp_path_factory.mktemp("picluster-heartbeat"))


@pytest.fixture(scope="session")
def installed_reconciler(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reconciler service, installed as the swarm_manager role installs it (swarm_manager_reconcile_files):
    the script and the collection's module_utils it imports, side by side."""
    return install_like_the_role("swarm_manager", "swarm_manager_reconcile_files", "picluster-reconcile.py",
                                 tmp_path_factory.mktemp("picluster-reconcile"))
