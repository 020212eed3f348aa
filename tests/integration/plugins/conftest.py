# Copyright (c) 2025 picluster.swarm developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures for the plugin tests: an Ansible runner and the real heartbeat as a subprocess."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Dict, Iterator, List, Optional

import pytest

# The checkout's collections/ links back to the root: tests import the collection's module_utils from there.
sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "collections"))

from ansible_runner import Ansible, HeartbeatProcess


@pytest.fixture
def ansible(tmp_path: Path) -> Ansible:
    return Ansible(tmp_path)


@pytest.fixture
def heartbeat(installed_heartbeat: Path, tmp_path: Path) -> Iterator:
    """Start the heartbeat as the role installs it (script and _membership.py side by side)."""
    started: List[HeartbeatProcess] = []

    def start(*args: str, env: Optional[Dict[str, str]] = None) -> HeartbeatProcess:
        process = HeartbeatProcess(installed_heartbeat, tmp_path, list(args), env)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()
