# Copyright (c) 2025 picluster.swarm developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: python_lacks
short_description: What a Python interpreter on the controller lacks of the libraries a role uses there
version_added: 0.1.0
description:
  - Starts O(python) once on the controller and asks it to find each library's module, without importing it.
  - Returns an empty string when it has them all; otherwise the names to install of those it lacks, joined
    with C(, ), or C(a working interpreter:) and why it did not run.
  - The roles' preflights use it to refuse, before any host changes, a controller that could not run their
    controller-side tasks, and to say what to install. No task or module runs for it.
author:
  - picluster.swarm developers (@picluster)
options:
  _terms:
    description: The libraries, each as C(name to install=module to import), for example V(requests=requests).
    type: list
    elements: str
    required: true
  python:
    description: The interpreter to ask (the one that runs the modules delegated to localhost).
    type: path
    required: true
"""

EXAMPLES = r"""
- name: Refuse a controller without cryptography
  ansible.builtin.assert:
    that: picluster_lacks | length == 0
    fail_msg: "the controller's Python lacks {{ picluster_lacks }}"
  vars:
    picluster_lacks: >-
      {{ lookup('picluster.swarm.python_lacks', 'cryptography=cryptography', python=ansible_playbook_python) }}
"""

RETURN = r"""
_raw:
  description: Empty when nothing is missing; else what is missing, as one string.
  type: list
  elements: str
"""

import subprocess

from ansible.errors import AnsibleOptionsError
from ansible.plugins.lookup import LookupBase

FIND = (
    "import importlib.util, sys\n"
    "print(', '.join(a.split('=')[0] for a in sys.argv[1:] if importlib.util.find_spec(a.split('=')[1]) is None))"
)


def lacks(python, libraries):
    """What `python` lacks of `libraries` ("name=module" each): "" for nothing."""
    malformed = [lib for lib in libraries if lib.count("=") != 1]
    if malformed:
        raise AnsibleOptionsError(f"python_lacks lookup: give each library as name=module, not {', '.join(malformed)}")
    try:
        done = subprocess.run([python, "-c", FIND, *libraries], capture_output=True, text=True, timeout=60,
                              check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"a working interpreter: {exc}"
    if done.returncode != 0:
        return f"a working interpreter: {(done.stderr or done.stdout).strip()[-300:]}"
    return done.stdout.strip()


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        return [lacks(self.get_option("python"), [str(t) for t in terms or []])]
