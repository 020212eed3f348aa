# Copyright (c) 2025 picluster.swarm developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests import the collection from the checkout (collections/ links back to the root)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
if str(ROOT / "collections") not in sys.path:
    sys.path.insert(0, str(ROOT / "collections"))


def import_installed(script: Path, name: str):
    """An installed service script imported as a module (its name has a dash), with the collection code
    installed beside it importable."""
    sys.path.insert(0, str(script.parent))
    spec = importlib.util.spec_from_file_location(name, script)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def heartbeat_module(installed_heartbeat: Path):
    """The heartbeat script imported as a module, from where the role installs it."""
    return import_installed(installed_heartbeat, "picluster_heartbeat")


@pytest.fixture(scope="session")
def reconciler(installed_reconciler: Path):
    """The reconciler service imported as a module, from where the role installs it."""
    return import_installed(installed_reconciler, "picluster_reconcile")
