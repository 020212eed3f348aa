# Copyright (c) 2025 picluster.swarm developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The fast path's record: what a snapshot of files sees change, and the verdict on a record.

Real files in a temporary directory (no systemd, no Docker: their parts of a
snapshot are plain data here, compared by the same code).
"""

from __future__ import annotations

import os
import time

import pytest
from ansible_collections.picluster.swarm.plugins.lookup import site_digest as d
from ansible_collections.picluster.swarm.plugins.module_utils import _site_state as s


@pytest.fixture
def tree(tmp_path):
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "a.hcl").write_text("a = 1\n")
    (tmp_path / "picluster-heartbeat.service").write_text("[Unit]\n")
    (tmp_path / "picluster-reconcile.service").write_text("[Unit]\n")
    (tmp_path / "other.service").write_text("[Unit]\n")
    return tmp_path


def roots(tree):
    return [str(tree / "conf.d"), str(tree / "picluster-*"), str(tree / "missing.conf")]


def test_a_snapshot_walks_directories_expands_patterns_and_names_missing_files(tree):
    files = s.files_snapshot(roots(tree))
    assert str(tree / "conf.d" / "a.hcl") in files
    assert str(tree / "picluster-heartbeat.service") in files and str(tree / "picluster-reconcile.service") in files
    assert str(tree / "other.service") not in files
    assert files[str(tree / "missing.conf")] == "missing"


@pytest.mark.parametrize("change", ["rewrite_same", "edit", "chmod", "new_file", "remove"])
def test_every_kind_of_change_to_a_file_shows(tree, change):
    before = {"files": s.files_snapshot(roots(tree))}
    target = tree / "conf.d" / "a.hcl"
    time.sleep(0.01)  # ctime has nanoseconds on the filesystems the hosts use; make sure it moves
    if change == "rewrite_same":
        target.write_text("a = 1\n")  # the same bytes again: the change time still moves
    elif change == "edit":
        target.write_text("a = 2\n")
    elif change == "chmod":
        os.chmod(target, 0o600)
    elif change == "new_file":
        (tree / "conf.d" / "b.hcl").write_text("b = 1\n")
    else:
        target.unlink()
    after = {"files": s.files_snapshot(roots(tree))}
    found = s.differences(before, after)
    assert len(found) == 1, found
    assert "conf.d/" in found[0]


def test_reading_a_file_changes_nothing(tree):
    before = {"files": s.files_snapshot(roots(tree))}
    (tree / "conf.d" / "a.hcl").read_text()
    assert s.differences(before, {"files": s.files_snapshot(roots(tree))}) == []


def test_units_containers_services_and_swarm_state_are_compared():
    before = {"units": {"consul.service": "loaded active enabled"},
              "docker": {"swarm": "active n1 manager", "containers": {"picluster-proxy": "img running"},
                         "services": {"dashboard": "img replicated"}, "networks": {"my-net": "overlay"}}}
    after = {"units": {"consul.service": "loaded failed enabled"},
             "docker": {"swarm": "inactive  worker", "containers": {"picluster-proxy": "img exited"},
                        "services": {}, "networks": {"my-net": "overlay"}}}
    found = s.differences(before, after)
    assert found == [
        "unit consul.service: loaded failed enabled, was loaded active enabled",
        "docker swarm: inactive  worker, was active n1 manager",
        "container picluster-proxy: img exited, was img running",
        "service dashboard: gone since the last full run (was img replicated)",
    ]


def test_an_engine_that_does_not_answer_is_a_difference():
    found = s.differences({"docker": {"swarm": "active n1 worker"}}, {"docker": {"error": "Cannot connect"}})
    assert found == ["docker: cannot read the engine's state (Cannot connect)"]


def record(digest="d1", age=10.0, snapshot=None):
    return {"version": s.RECORD_VERSION, "digest": digest, "time": 1000.0 - age, "snapshot": snapshot or {}}


@pytest.mark.parametrize(
    ("rec", "digest", "max_age", "converged", "why"),
    [
        (record(), "d1", 86400, True, ""),
        (None, "d1", 86400, False, "no record"),
        (record(digest="d0"), "d1", 86400, False, "inputs changed"),
        (record(digest="in/pki1"), "in/pki2", 86400, False, "the controller's certificates and keys"),
        (record(digest="in/pki1"), "in/pki1", 86400, True, ""),
        (record(age=90000), "d1", 86400, False, "90000 s old"),
        (record(age=90000), "d1", 0, True, ""),
        (record(age=-4000), "d1", 86400, False, "from the future"),
        ({"version": "unreadable"}, "d1", 86400, False, "another version"),
    ],
)
def test_the_verdict_on_a_record(rec, digest, max_age, converged, why):
    ok, reasons = s.verdict(rec, digest, {}, 1000.0, max_age)
    assert ok is converged
    assert (why in " ".join(reasons)) if why else reasons == []


def test_a_difference_on_the_host_is_named_in_the_verdict():
    ok, reasons = s.verdict(record(snapshot={"units": {"consul.service": "loaded active enabled"}}), "d1",
                            {"units": {"consul.service": "loaded inactive enabled"}}, 1000.0, 86400)
    assert not ok and reasons == ["unit consul.service: loaded inactive enabled, was loaded active enabled"]


# --- the digest's inputs (the lookup's pure parts) ----------------------------------


def test_registered_results_are_left_out_of_the_inputs_and_facts_are_picked_by_name():
    host_vars = {
        "consul_datacenter": "dc1",
        "consul_preflight_ca": {"changed": False, "stat": {"atime": 1.0}},
        "unrelated": "x",
        "ansible_facts": {"kernel": "6.1", "python": {"version": {"major": 3}}, "date_time": {"epoch": "1"}},
    }
    inputs = d.host_inputs(host_vars, ["consul_"], ["kernel", "python.version", "missing.fact"])
    assert inputs == {"consul_datacenter": "dc1",
                      "<facts>": {"kernel": "6.1", "python.version": {"major": 3}, "missing.fact": None}}


def test_a_variable_that_cannot_be_templated_is_hashed_by_its_error():
    class Vars(dict):
        def __getitem__(self, key):
            if key == "consul_bad":
                raise ValueError("undefined")
            return super().__getitem__(key)

    inputs = d.host_inputs(Vars(consul_bad="{{ nope }}"), ["consul_"], [])
    assert inputs["consul_bad"] == "<ValueError: undefined>"


def test_the_controller_files_change_the_digest(tmp_path):
    import hashlib

    def digest():
        h = hashlib.sha256()
        d.hash_tree(h, tmp_path, "pki")
        return h.hexdigest()

    (tmp_path / "ca.pem").write_text("one")
    first = digest()
    assert digest() == first
    (tmp_path / "ca.pem").write_text("two")
    assert digest() != first


def test_units_that_cannot_be_read_are_a_difference_even_if_they_could_not_be_read_before():
    broken = {"units": {"(systemctl)": "error: Failed to connect to bus"}}
    assert s.differences(broken, broken) == ["units: cannot read their state (error: Failed to connect to bus)"]


def test_the_two_halves_of_the_digest_read_what_they_say(tmp_path):
    """inputs: the roles' variables, not the facts or the controller's files; state: the reverse. A variable a
    role sets during a run (set_fact) moves only the inputs half, which the record takes from the run's start."""
    import yaml

    # The plugin's options as ansible-core would give them: its documented defaults, then the call's keywords.
    defaults = {k: v.get("default") for k, v in yaml.safe_load(d.DOCUMENTATION)["options"].items()}
    lookup = d.LookupModule()
    lookup.set_options = lambda var_options=None, direct=None: setattr(lookup, "given", direct or {})
    lookup.get_option = lambda name: {**defaults, **lookup.given}[name]
    (tmp_path / "ca.pem").write_text("one")

    def digests(host_vars):
        variables = {"groups": {"all": ["n1"], "nodes": ["n1"]}, "hostvars": {"n1": host_vars}}
        return {part: lookup.run([str(tmp_path)], variables, part=part)[0] for part in ("inputs", "state", "all")}

    base = digests({"consul_datacenter": "dc1", "ansible_facts": {"kernel": "6.1"}})
    set_fact = digests({"consul_datacenter": "dc1", "consul_made_here": 1, "ansible_facts": {"kernel": "6.1"}})
    new_kernel = digests({"consul_datacenter": "dc1", "ansible_facts": {"kernel": "6.6"}})
    assert set_fact["inputs"] != base["inputs"] and set_fact["state"] == base["state"]
    assert new_kernel["inputs"] == base["inputs"] and new_kernel["state"] != base["state"]
    (tmp_path / "ca.pem").write_text("two")
    new_ca = digests({"consul_datacenter": "dc1", "ansible_facts": {"kernel": "6.1"}})
    assert new_ca["inputs"] == base["inputs"] and new_ca["state"] != base["state"] and new_ca["all"] != base["all"]


def test_a_directory_inside_another_term_is_hashed_once():
    assert d.outermost(["/inv/pki", "/inv/pki/consul", "/elsewhere/docker", "/inv/pki-old"]) == [
        "/inv/pki", "/elsewhere/docker", "/inv/pki-old"]
