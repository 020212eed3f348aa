# Copyright (c) 2025 picluster.swarm developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: site_digest
short_description: One digest of everything a run of site.yml converges the cluster from
version_added: 0.1.0
description:
  - Runs on the controller. Hashes, in one SHA-256 digest
    - the collection itself (its roles, plugins and playbooks, as installed or checked out);
    - for every host of the inventory, the value of each variable whose name starts with one of O(prefixes) (the
      roles' own variables, from the inventory, group and host variables, C(-e) and C(set_fact)), and the facts named
      in O(facts);
    - the groups and their hosts;
    - the files under the controller paths given as terms (the certificate authorities and keys the roles keep
      beside the inventory);
    - the ansible-core version.
  - Results of C(register) are left out (they hold times). A variable whose value cannot be templated is hashed by
    its error, so the digest still changes with it.
  - O(part) splits it in two. V(inputs) is what the run is asked to do (the collection, the variables, the groups,
    ansible-core), read at the start of a run. V(state) is what a run may itself change (the files under the terms,
    which a first run creates, and the facts), read when a run records the hosts, and at the start of the next.
  - M(picluster.swarm.site_state) compares it with the digest recorded after the last full run.
author:
  - picluster.swarm developers (@picluster)
options:
  _terms:
    description: Files and directories on the controller whose contents are part of the inputs (missing ones count
      as missing).
    type: list
    elements: path
    required: false
  prefixes:
    description: Variable names starting with one of these are hashed.
    type: list
    elements: str
    default: [base_, docker_, consul_, swarm_, overlay_network_, reverse_proxy_, vip_, dashboard_, app_image_,
              picluster_, ansible_host, ansible_port, ansible_user, ansible_python_interpreter]
  facts:
    description:
      - Facts (keys of C(ansible_facts), dotted for nested ones) hashed for every host that has them.
      - The host's name is not among them by default, it is in C(/etc/hostname) and C(/etc/hosts), which
        M(picluster.swarm.site_state) records.
    type: list
    elements: str
    default: [architecture, machine, distribution, distribution_release, distribution_version, os_family, kernel,
              service_mgr, virtualization_type, virtualization_role, default_ipv4.address, default_ipv4.interface,
              default_ipv6.address, python.version]
  part:
    description: V(all), or one of the two halves (see above).
    type: str
    choices: [all, inputs, state]
    default: all
"""

EXAMPLES = r"""
- name: The digest of this run's inputs and of the controller's pki directory
  ansible.builtin.set_fact:
    run_digest: "{{ lookup('picluster.swarm.site_digest', inventory_dir ~ '/pki') }}"
  run_once: true

- name: Only what the run may change itself
  ansible.builtin.debug:
    msg: "{{ lookup('picluster.swarm.site_digest', inventory_dir ~ '/pki', part='state') }}"
"""

RETURN = r"""
_raw:
  description: The digest, hexadecimal, in a list of one.
  type: list
  elements: str
"""

import hashlib
import json
import os
from pathlib import Path

from ansible.module_utils.ansible_release import __version__ as ansible_version
from ansible.plugins.lookup import LookupBase

# The collection: three levels up from plugins/lookup/site_digest.py.
COLLECTION = Path(__file__).resolve().parents[2]
# Its code only: MANIFEST.json (and FILES.json) change with every file of a build, whatever ships beside the code.
COLLECTION_PARTS = ("roles", "plugins", "playbooks", "meta")


def _files(root):
    """Every regular file under root (or root itself), in a stable order."""
    if root.is_file():
        yield root
        return
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for name in sorted(filenames):
            if not name.endswith((".pyc", ".pyo")):
                yield Path(dirpath) / name


def hash_tree(digest, root, label):
    root = Path(root)
    if not root.exists():
        digest.update((f"{label} missing\n").encode())
        return
    for path in _files(root):
        digest.update(("{} {}\n".format(label, path.relative_to(root) if path != root else "")).encode())
        try:
            digest.update(path.read_bytes())
        except OSError as err:
            digest.update((f"unreadable: {err.strerror}").encode())


def _registered(value):
    return isinstance(value, dict) and ("changed" in value or "failed" in value or "skipped" in value)


def _dig(facts, dotted):
    for part in dotted.split("."):
        if not isinstance(facts, dict) or part not in facts:
            return None
        facts = facts[part]
    return facts


def host_inputs(host_vars, prefixes, facts):
    out = {}
    for key in sorted(k for k in host_vars.keys() if prefixes and k.startswith(tuple(prefixes))):
        try:
            value = host_vars[key]
        except Exception as err:  # an undefined or failing template: its error is its value
            value = f"<{type(err).__name__}: {err}>"
        if not _registered(value):
            out[key] = value
    try:
        gathered = host_vars["ansible_facts"] if "ansible_facts" in host_vars else {}
    except Exception:
        gathered = {}
    if facts:
        out["<facts>"] = {name: _dig(gathered, name) for name in facts}
    return out


def outermost(terms):
    """The terms as absolute paths, without those inside an earlier one (the pki directory and each role's
    directory under it are hashed once)."""
    roots = []
    for term in terms:
        path = os.path.abspath(os.path.expanduser(str(term)))
        if not any(path == root or path.startswith(root + os.sep) for root in roots):
            roots.append(path)
    return roots


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        variables = variables or {}
        part = self.get_option("part")
        prefixes = self.get_option("prefixes") if part in ("all", "inputs") else []
        facts = self.get_option("facts") if part in ("all", "state") else []
        digest = hashlib.sha256()
        groups = variables.get("groups", {})
        if part in ("all", "inputs"):
            digest.update((f"ansible-core {ansible_version}\n").encode())
            for name in COLLECTION_PARTS:
                hash_tree(digest, COLLECTION / name, name)
            digest.update(json.dumps({g: sorted(h) for g, h in groups.items()}, sort_keys=True, default=str).encode())
        if part in ("all", "state"):
            for root in outermost(terms or []):
                hash_tree(digest, root, root)
        hostvars = variables.get("hostvars", {})
        for host in sorted(groups.get("all", [])):
            inputs = host_inputs(hostvars[host], prefixes, facts) if host in hostvars else {}
            digest.update(json.dumps({host: inputs}, sort_keys=True, default=str).encode())
        return [digest.hexdigest()]
