# Copyright (c) 2025 picluster.swarm developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The scrypt_hash filter (that the dashboard verifies what it writes: tests/unit/roles/test_dashboard.py)."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.picluster.swarm.plugins.filter.password import FilterModule, scrypt_hash


def test_the_hash_is_stable_and_salted():
    line = scrypt_hash("correct horse", "salt1", n=2**10)
    assert line == scrypt_hash("correct horse", "salt1", n=2**10)  # idempotent task
    assert line.startswith("scrypt:1024:8:1:salt1:") and "correct horse" not in line
    assert line != scrypt_hash("correct horse", "salt2", n=2**10)


def test_the_default_cost_is_the_slow_one():
    assert scrypt_hash("pw", "s").split(":")[1:4] == ["32768", "8", "1"]
    assert FilterModule().filters()["scrypt_hash"] is scrypt_hash


@pytest.mark.parametrize(("salt", "n", "words"),
                         [("", 1024, "salt"), ("a:b", 1024, "salt"), ("s", 1000, "power of two")])
def test_bad_input_names_what_to_fix(salt, n, words):
    with pytest.raises(AnsibleFilterError, match=words):
        scrypt_hash("pw", salt, n=n)
