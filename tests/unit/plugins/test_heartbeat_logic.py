# Copyright (c) 2025 picluster.swarm developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The node-side heartbeat: its settings and its retry logic.

Its member document is the collection's own (_membership.py, installed beside
the script), so there is no second copy to keep in step.
"""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

import pytest
from ansible_collections.picluster.swarm.plugins.module_utils import _membership as m


def test_document_is_the_collections(heartbeat_module):
    """What the heartbeat writes is a valid member for the modules' parser."""
    beat = heartbeat_module.heartbeat_from_args(["--address", "10.0.0.11:2375", "--hostname", "node1"], {})
    assert m.parse_value("10.0.0.11:2375", beat.document())["hostname"] == "node1"


def test_membership_code_is_standard_library_only():
    """The heartbeat runs on a bare Pi with _membership.py beside it: nothing outside the standard library."""
    tree = ast.parse(Path(m.__file__).read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported <= set(sys.stdlib_module_names), imported - set(sys.stdlib_module_names)


def test_settings_from_flags_and_environment(heartbeat_module):
    env = {"CONSUL_HTTP_ADDR": "https://127.0.0.1:8501", "CONSUL_HTTP_TOKEN": "tok",
           "HEARTBEAT_ADDRESS": "10.0.0.5:2375",
           "HEARTBEAT_TTL": "12", "HEARTBEAT_LABELS": "a=1,b=2", "HEARTBEAT_ROLE": "manager"}
    beat = heartbeat_module.heartbeat_from_args(["--label", "c=3", "--prefix", "/x/y/", "--hostname", "pi5"], env)
    assert beat.key == "x/y/10.0.0.5:2375"
    assert beat.ttl == 12
    assert beat.consul.base_url == "https://127.0.0.1:8501"
    assert beat.consul.token == "tok"
    assert beat.fields == {"hostname": "pi5", "role": "manager", "engine_version": "", "labels": {"a": "1", "b": "2",
                                                                                                  "c": "3"}}
    document = json.loads(beat.document())
    assert document["ttl"] == 12 and document["address"] == "10.0.0.5:2375"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "must be this node's <ip>:<port>"),
        (["--address", "10.0.0.1:2375", "--ttl", "5"], "--ttl must be between 10 and 86400"),
        (["--address", "10.0.0.1:2375", "--label", "novalue"], "label 'novalue' is not key=value"),
        (["--address", "10.0.0.1:2375", "--consul", "ftp://x"], "is not host:port or http(s)://host:port"),
        (["--address", "10.0.0.1:2375", "--prefix", "/"], "--prefix must not be empty"),
        (["--address", "10.0.0.1:2375", "--own-node", "a b"], "--own-node must be a Consul node name"),
    ],
)
def test_bad_settings_exit_with_message(heartbeat_module, capsys, argv, message):
    with pytest.raises(SystemExit) as info:
        heartbeat_module.heartbeat_from_args(argv, {})
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_backoff_is_bounded(heartbeat_module):
    beat = heartbeat_module.heartbeat_from_args(["--address", "10.0.0.1:2375", "--ttl", "20"], {})
    delays = [beat.next_delay(False, now=100.0) for _attempt in range(10)]
    assert delays[:3] == [1.0, 2.0, 4.0]
    assert max(delays) == pytest.approx(20 / 4)  # never longer than the renewal interval, a quarter of the TTL
    assert beat.next_delay(True, now=100.0) == pytest.approx(20 / 4) and beat.failures == 0


def test_retries_every_second_while_the_registration_can_be_saved(heartbeat_module):
    # A renewal that falls into a Consul leader election: retry every second
    # until the TTL has run out since the last heartbeat that landed, then back off.
    beat = heartbeat_module.heartbeat_from_args(["--address", "10.0.0.1:2375", "--ttl", "20"], {})
    beat.next_delay(True, now=100.0)
    saving = [beat.next_delay(False, now=100.0 + 5 + second) for second in range(14)]
    assert saving == [1.0] * 14
    after_the_ttl = [beat.next_delay(False, now=121.0 + second) for second in range(3)]
    assert after_the_ttl == [min(2.0 ** (n - 1), 5.0) for n in range(15, 18)]
    assert beat.next_delay(True, now=130.0) == pytest.approx(5.0) and beat.failures == 0


def test_several_consul_addresses_and_own_node(heartbeat_module):
    beat = heartbeat_module.heartbeat_from_args(
        ["--address", "10.0.0.1:2376", "--consul", "10.0.0.10:8500,10.0.0.11:8500", "--consul", "https://10.0.0.12:8501",
         "--own-node", "node1"], {})
    assert beat.consul.base_urls == ["http://10.0.0.10:8500", "http://10.0.0.11:8500", "https://10.0.0.12:8501"]
    assert beat.own_node == "node1"
    local = heartbeat_module.heartbeat_from_args(["--address", "10.0.0.1:2376"], {})
    assert local.consul.base_urls == ["http://127.0.0.1:8500"] and local.own_node == ""


def test_failover_to_the_next_agent(heartbeat_module, monkeypatch):
    consul = heartbeat_module.Consul(["http://a:8500", "http://b:8500"])
    seen = []

    def one(method, path, body, params):
        seen.append(consul.base_url)
        if consul.base_url == "http://a:8500":
            raise heartbeat_module.ConsulUnavailable("cannot reach Consul at http://a:8500: refused")
        return 200, True

    monkeypatch.setattr(consul, "_call_one", one)
    assert consul.call("PUT", "/v1/session/renew/x") == (200, True)
    assert consul.call("PUT", "/v1/session/renew/x") == (200, True)  # stays on the agent that answered
    assert seen == ["http://a:8500", "http://b:8500", "http://b:8500"]


class FakeConsul:
    """Pure-logic stand-in for the heartbeat's own HTTP calls (the real thing is in the integration tests)."""

    def __init__(self):
        self.sessions = {}
        self.kv = {}
        self.created = 0

    def create_session(self, name, ttl, node=""):
        self.created += 1
        sid = f"s{self.created}"
        self.sessions[sid] = {"ID": sid, "Name": name, "Node": node}
        return sid

    def register_node(self, node, address):
        self.nodes = {**getattr(self, "nodes", {}), node: address}

    def session_info(self, sid):
        return self.sessions.get(sid)

    def renew(self, sid):
        return sid in self.sessions

    def destroy(self, sid):
        self.sessions.pop(sid, None)
        self.kv = {k: v for k, v in self.kv.items() if v["Session"] != sid}

    def get_key(self, key):
        return self.kv.get(key)

    def acquire(self, key, value, sid):
        holder = self.kv.get(key, {}).get("Session")
        if holder not in (None, sid):
            return False
        self.kv[key] = {"Session": sid, "Value": value, "ModifyIndex": 1}
        return True

    def delete_key(self, key, cas):
        self.kv.pop(key, None)


def make_beat(heartbeat_module, consul):
    return heartbeat_module.Heartbeat(consul, "p/10.0.0.1:2375", "10.0.0.1:2375", 10,
                                      {"hostname": "n", "role": "worker", "engine_version": "", "labels": {}})


def test_session_lost_is_recreated_and_own_session_adopted(heartbeat_module):
    consul = FakeConsul()
    beat = make_beat(heartbeat_module, consul)
    beat.beat()
    assert beat.session_id == "s1" and consul.kv["p/10.0.0.1:2375"]["Session"] == "s1"
    consul.destroy("s1")  # Consul lost it
    beat.beat()
    assert beat.session_id == "s2" and consul.kv["p/10.0.0.1:2375"]["Session"] == "s2"
    restarted = make_beat(heartbeat_module, consul)  # a restart finds its own session and keeps it
    restarted.beat()
    assert restarted.session_id == "s2" and consul.created == 2
    restarted.deregister()
    assert consul.kv == {} and consul.sessions == {}


def test_foreign_holder_is_not_taken_over(heartbeat_module):
    consul = FakeConsul()
    consul.sessions["other"] = {"ID": "other", "Name": "somebody else"}
    consul.kv["p/10.0.0.1:2375"] = {"Session": "other", "Value": "{}", "ModifyIndex": 1}
    beat = make_beat(heartbeat_module, consul)
    with pytest.raises(heartbeat_module.ConsulUnavailable, match="held by another session"):
        beat.beat()
    assert consul.kv["p/10.0.0.1:2375"]["Session"] == "other"


def test_own_node_session_is_registered_on_that_node(heartbeat_module):
    consul = FakeConsul()
    beat = heartbeat_module.Heartbeat(consul, "p/10.0.0.1:2375", "10.0.0.1:2375", 10,
                                      {"hostname": "n", "role": "worker", "engine_version": "", "labels": {}},
                                      own_node="node1")
    beat.beat()
    assert consul.nodes == {"node1": "10.0.0.1"}
    assert consul.sessions["s1"]["Node"] == "node1"
