# Copyright (c) 2025 picluster.swarm developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The scrypt_hash filter: what it writes is what the dashboard verifies."""

from __future__ import annotations

import base64
import importlib.util
import sys
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.picluster.swarm.plugins.filter.password import FilterModule, scrypt_hash

ROOT = Path(__file__).resolve().parents[3]
# The dashboard imports the collection's module_utils from lib/ beside it; here, from the checkout.
sys.path.insert(0, str(ROOT / "plugins/module_utils"))
_spec = importlib.util.spec_from_file_location("picluster_dashboard_for_filter",
                                               ROOT / "roles/dashboard/files/picluster-dashboard.py")
dashboard = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = dashboard  # dataclasses look their module up
_spec.loader.exec_module(dashboard)


def test_the_hash_is_stable_and_verified_by_the_dashboard():
    line = scrypt_hash("correct horse", "salt1", n=2**10)
    assert line == scrypt_hash("correct horse", "salt1", n=2**10)  # idempotent task
    assert line.startswith("scrypt:1024:8:1:salt1:") and "correct horse" not in line
    assert line != scrypt_hash("correct horse", "salt2", n=2**10)
    auth = dashboard.Authenticator(dashboard.load_users(f"admin:{line}\n"))
    header = "Basic " + base64.b64encode(b"admin:correct horse").decode()
    assert auth.check(header)


def test_the_default_cost_is_the_slow_one():
    assert scrypt_hash("pw", "s").split(":")[1:4] == ["32768", "8", "1"]
    assert FilterModule().filters()["scrypt_hash"] is scrypt_hash


@pytest.mark.parametrize(("salt", "n", "words"),
                         [("", 1024, "salt"), ("a:b", 1024, "salt"), ("s", 1000, "power of two")])
def test_bad_input_names_what_to_fix(salt, n, words):
    with pytest.raises(AnsibleFilterError, match=words):
        scrypt_hash("pw", salt, n=n)
