# Copyright (c) 2025 picluster.swarm developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Pure membership logic: keys, values, states. No Consul needed (data shaped like Consul's answers)."""

from __future__ import annotations

import base64
import json

import pytest
import yaml
from ansible_collections.picluster.swarm.plugins.doc_fragments.membership import ModuleDocFragment
from ansible_collections.picluster.swarm.plugins.module_utils import _membership as m

NOW = 1_800_000_000.0
PREFIX = "docker/swarm/nodes"


def kv(key, value, session=None):
    raw = value if isinstance(value, bytes) else value.encode()
    return {"Key": key, "Value": base64.b64encode(raw).decode(), "Session": session, "ModifyIndex": 7}


def doc(address, age=1.0, **fields):
    return json.dumps(m.build_document(address, heartbeat=NOW - age, **fields))


def session(sid, ttl="20s"):
    return {"ID": sid, "TTL": ttl, "Node": "master", "Behavior": "delete"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [("10.0.0.1:2375", ("10.0.0.1", 2375)), ("[::1]:2376", ("::1", 2376)), (" 192.168.1.5:1 ", ("192.168.1.5", 1))],
)
def test_parse_address_accepts(text, expected):
    assert m.parse_address(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("10.0.0.1", "is not <ip>:<port>"),
        ("node1:2375", "does not start with an IP address"),
        ("10.0.0.1:0", "no valid port"),
        ("10.0.0.1:70000", "no valid port"),
        ("10.0.0.1:ab", "no valid port"),
        ("::1:2375", "write IPv6 addresses as [addr]:port"),
        ("", "is not <ip>:<port>"),
    ],
)
def test_parse_address_rejects_with_reason(text, reason):
    with pytest.raises(m.InvalidEntry, match=reason.replace("[", r"\[").replace("]", r"\]")):
        m.parse_address(text)


def test_parse_key():
    assert m.parse_key(PREFIX, PREFIX + "/10.0.0.1:2375") == "10.0.0.1:2375"
    assert m.parse_key("/" + PREFIX + "/", PREFIX + "/") is None  # the folder entry
    with pytest.raises(m.InvalidEntry, match="nested"):
        m.parse_key(PREFIX, PREFIX + "/10.0.0.1:2375/extra")
    with pytest.raises(m.InvalidEntry, match="outside"):
        m.parse_key(PREFIX, "other/10.0.0.1:2375")


def test_normalize_prefix_refuses_empty():
    with pytest.raises(ValueError, match="must not be empty"):
        m.normalize_prefix(" / ")


def test_build_document_fields_and_types():
    document = m.build_document("10.0.0.1:2375", hostname="n1", role="manager", engine_version="20.10.24",
                                labels={"arch": "armv7l", "n": 3}, ttl=20, heartbeat=NOW)
    assert tuple(document) == m.DOCUMENT_FIELDS
    assert document["labels"] == {"arch": "armv7l", "n": "3"}
    assert document["heartbeat_iso"] == "2027-01-15T08:00:00Z"
    assert m.comparable(document) == {k: v for k, v in document.items() if not k.startswith("heartbeat")}


def test_parse_value_accepts_document_and_classic():
    assert m.parse_value("10.0.0.1:2375", doc("10.0.0.1:2375"))["address"] == "10.0.0.1:2375"
    assert m.parse_value("10.0.0.1:2375", "10.0.0.1:2375") == {"schema": 0, "address": "10.0.0.1:2375"}


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "value is empty"),
        ("{bad", "not valid JSON"),
        ("hello world", "not valid JSON"),
        ("[1, 2]", "JSON list, expected an object"),
        ("42", "JSON int, expected an object"),
        ("10.0.0.2:2375", "does not match the key"),
        ('{"heartbeat": 1}', "'address' is missing"),
        ('{"address": "10.0.0.2:2375", "heartbeat": 1}', "does not match the key"),
        ('{"address": "10.0.0.1:2375"}', "'heartbeat' (epoch seconds) is missing"),
        ('{"address": "10.0.0.1:2375", "heartbeat": "yesterday"}', "must be a number of epoch seconds"),
        ('{"address": "10.0.0.1:2375", "heartbeat": true}', "must be a number of epoch seconds"),
        ('{"address": "10.0.0.1:2375", "heartbeat": 1, "labels": [1]}', "'labels' must be an object"),
        ('{"address": "10.0.0.1:2375", "heartbeat": 1, "hostname": 5}', "'hostname' must be a string"),
    ],
)
def test_parse_value_rejects_with_reason(value, reason):
    with pytest.raises(m.InvalidEntry) as info:
        m.parse_value("10.0.0.1:2375", value)
    assert reason in str(info.value)


def test_decode_kv_value_refuses_non_utf8():
    with pytest.raises(m.InvalidEntry, match="UTF-8"):
        m.decode_kv_value({"Value": base64.b64encode(b"\xff\xfe").decode()})
    assert m.decode_kv_value({"Value": None}) == ""


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("20s", 20.0), ("1m0s", 60.0), ("1m30s", 90.0), ("500ms", 0.5), ("1h", 3600.0), (15, 15.0), ("", None),
     ("soon", None), ("20x", None)],
)
def test_parse_duration(text, seconds):
    assert m.parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("age", "state", "left"),
    [(0.0, "alive", 20.0), (10.0, "alive", 10.0), (15.0, "alive", 5.0), (15.1, "expiring", 4.9),
     (19.9, "expiring", 0.1), (20.0, "expired", 0.0), (35.0, "expired", 0.0), (-3.0, "alive", 20.0)],
)
def test_classify_boundaries(age, state, left):
    got_state, got_age, got_left = m.classify(NOW - age, 20, True, NOW)
    assert (got_state, got_left) == (state, left)
    assert got_age == max(0.0, round(age, 1))


def test_classify_without_session_or_heartbeat():
    assert m.classify(NOW - 1, 20, False, NOW) == ("expired", 1.0, 0.0)
    assert m.classify(None, 20, True, NOW) == ("alive", None, None)
    assert m.classify(NOW - 4, 20, True, NOW, expiring_fraction=0.9)[0] == "expiring"


def test_collect_members_classifies_and_reports_invalid():
    entries = [
        {"Key": PREFIX + "/", "Value": None, "Session": None},
        kv(PREFIX + "/10.0.0.2:2375", doc("10.0.0.2:2375", age=2, hostname="n2"), "s2"),
        kv(PREFIX + "/10.0.0.1:2375", doc("10.0.0.1:2375", age=17, hostname="n1"), "s1"),
        kv(PREFIX + "/10.0.0.3:2375", doc("10.0.0.3:2375", age=25, hostname="n3"), "s3"),  # key still there
        kv(PREFIX + "/10.0.0.4:2375", doc("10.0.0.4:2375", age=1, hostname="n4"), None),  # nobody holds it
        kv(PREFIX + "/10.0.0.5:2375", doc("10.0.0.5:2375", age=1, hostname="n5"), "gone"),  # session vanished
        kv(PREFIX + "/10.0.0.6:2375", "10.0.0.6:2375", "s6"),  # classic swarm's own value
        kv(PREFIX + "/junk", "whatever"),
        kv(PREFIX + "/10.0.0.7:2375", "{not json"),
    ]
    sessions = [session("s1"), session("s2"), session("s3"), session("s6", "1m0s")]
    members, invalid = m.collect_members(PREFIX, entries, sessions, now=NOW)
    by_host = {x["address"]: x for x in members}
    assert [x["address"] for x in members] == [f"10.0.0.{i}:2375" for i in range(1, 7)]
    assert by_host["10.0.0.2:2375"]["state"] == "alive"
    assert by_host["10.0.0.1:2375"]["state"] == "expiring"
    assert by_host["10.0.0.3:2375"]["state"] == "expired"
    assert by_host["10.0.0.4:2375"]["state"] == "expired"
    assert by_host["10.0.0.5:2375"]["state"] == "expired"
    assert by_host["10.0.0.6:2375"]["state"] == "alive"
    assert by_host["10.0.0.6:2375"]["format"] == "classic"
    assert by_host["10.0.0.6:2375"]["ttl"] == 60
    assert by_host["10.0.0.2:2375"]["seconds_left"] == 18.0
    assert by_host["10.0.0.2:2375"]["session_node"] == "master"
    assert {i["key"]: i["reason"] for i in invalid} == {
        PREFIX + "/junk": "'junk' is not <ip>:<port>",
        PREFIX + "/10.0.0.7:2375": "value is not valid JSON (Expecting property name enclosed in double quotes: "
        "line 1 column 2 (char 1)): '{not json'",
    }
    assert m.count_states(members) == {"total": 6, "alive": 2, "expiring": 1, "expired": 3}
    assert [x["address"] for x in m.filter_states(members, ["expiring"])] == ["10.0.0.1:2375"]


def test_missing_members_and_unmet_wait():
    entries = [kv(PREFIX + "/10.0.0.1:2375", doc("10.0.0.1:2375", hostname="n1"), "s1"),
               kv(PREFIX + "/10.0.0.3:2375", doc("10.0.0.3:2375", age=40, hostname="n3"), "s3")]
    members, _invalid = m.collect_members(PREFIX, entries, [session("s1"), session("s3")], now=NOW)
    assert m.missing_members(members, ["n1", "10.0.0.1", "ghost", "n3"]) == [
        {"name": "ghost", "reason": "not registered"},
        {"name": "n3", "reason": "expired (last heartbeat 40 s ago, TTL 20 s)"},
    ]
    assert m.unmet_wait(members, 1, []) is None
    message = m.unmet_wait(members, 2, ["ghost"])
    assert message.startswith("1 of the 2 wanted members are alive; missing: ghost (not registered)")
    assert "expired: 10.0.0.3:2375 expired (last heartbeat 40 s ago" in message
    assert "alive: n1 (10.0.0.1:2375, alive)" in message


def test_read_membership_reads_kv_then_sessions_once():
    calls = []

    class Recorder:  # a stand-in transport recording the calls; Consul itself is exercised in integration
        def kv_list(self, prefix):
            calls.append(("kv", prefix))
            return [kv(PREFIX + "/10.0.0.1:2375", doc("10.0.0.1:2375", age=0), "s1")]

        def session_list(self):
            calls.append(("sessions",))
            return [session("s1")]

    members, invalid = m.read_membership(Recorder(), "/" + PREFIX + "/")
    assert calls == [("kv", PREFIX), ("sessions",)]
    assert len(members) == 1 and not invalid


def test_membership_doc_fragment_documents_the_argument_specs_once():
    """The options written once in the picluster.swarm.membership fragment are the code's, same types and defaults."""
    for fragment, spec in ((ModuleDocFragment.DOCUMENTATION, m.PREFIX_ARGUMENT_SPEC),
                           (ModuleDocFragment.READ, m.READ_ARGUMENT_SPEC)):
        documented = yaml.safe_load(fragment)["options"]
        assert set(documented) == set(spec)
        for name, option in spec.items():
            assert (documented[name]["type"], documented[name]["default"]) == (option["type"], option["default"])
