# Copyright (c) 2025 picluster.swarm developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The python_lacks lookup (the roles' controller preflights): what an interpreter lacks, asked of it once."""

from __future__ import annotations

import sys

import pytest
from ansible.errors import AnsibleOptionsError
from ansible_collections.picluster.swarm.plugins.lookup.python_lacks import lacks


def test_nothing_lacking_is_an_empty_string():
    assert lacks(sys.executable, ["json=json", "ansible=ansible"]) == ""


def test_the_names_to_install_of_what_is_missing_in_order():
    assert lacks(sys.executable, ["a-b=no_such_mod_a", "json=json", "c (or d)=no_such_mod_c"]) == "a-b, c (or d)"


def test_an_interpreter_that_does_not_run_says_so(tmp_path):
    found = lacks(str(tmp_path / "no-such-python"), ["json=json"])
    assert found.startswith("a working interpreter: ") and "No such file" in found


def test_a_library_without_its_module_is_refused_by_name():
    with pytest.raises(AnsibleOptionsError, match="name=module, not requests"):
        lacks(sys.executable, ["requests"])
