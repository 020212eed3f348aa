"""The one reader of swarm_members' output, on an answer as the JSON callback prints it."""

from __future__ import annotations

import json

import pytest
from picluster_lab import LabError
from picluster_lab.membership import parse, parse_callback_output

MEMBER = {
    "address": "10.213.51.102:2376", "ip": "10.213.51.102", "port": 2376, "hostname": "node1", "role": "worker",
    "state": "alive", "ttl": 10, "seconds_left": 6.5, "seconds_since_heartbeat": 3.5, "labels": {},
}


def callback_document(result: dict) -> str:
    return json.dumps({"plays": [{"tasks": [{"hosts": {"localhost": result}}]}], "stats": {}})


def test_members_and_counts_are_read():
    result = {"changed": False, "members": [MEMBER], "counts": {"total": 1, "alive": 1, "expiring": 0, "expired": 0}}
    members = parse(parse_callback_output(callback_document(result)))
    assert members.counts["alive"] == 1
    (m,) = members.members
    assert (m.ip, m.port, m.hostname, m.role, m.state, m.ttl, m.seconds_left) == (
        "10.213.51.102", 2376, "node1", "worker", "alive", 10, 6.5)
    assert members.state_of("10.213.51.102") == "alive"
    assert members.state_of("10.213.51.199") == "absent"
    assert members.ips() == ["10.213.51.102"] and members.ips("expired") == []


def test_a_failed_module_run_is_an_error_with_its_message():
    with pytest.raises(LabError, match="cannot reach Consul"):
        parse(parse_callback_output(callback_document({"failed": True, "msg": "cannot reach Consul at x"})))


def test_output_that_is_not_the_callback_document_is_an_error():
    with pytest.raises(LabError, match="cannot read"):
        parse_callback_output("localhost | FAILED! => {}")
