# Copyright (c) 2025 picluster.swarm developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The rules that set Consul's membership beside the swarm's node list, and the reconciler's plan.

No Consul, no Docker: member records as _membership.collect_members makes them
and node objects shaped as the engine API's GET /nodes answers (the fields
the lab's engines return).
"""

from __future__ import annotations

import pytest
from ansible_collections.picluster.swarm.plugins.module_utils import _consistency as c
from ansible_collections.picluster.swarm.plugins.module_utils._consistency import RECONCILE_LABEL

NOW = 1_800_000_000.0


def iso(seconds_ago: float) -> str:
    return c.iso_time(NOW - seconds_ago)


def api_node(nid, hostname, ip, *, status="ready", availability="active", role="worker", reachability="reachable",
             leader=False, updated_ago=600.0, labels=None, version=10):
    node = {
        "ID": nid,
        "Version": {"Index": version},
        "UpdatedAt": iso(updated_ago),
        "Spec": {"Role": role, "Availability": availability, "Labels": dict(labels or {})},
        "Description": {"Hostname": hostname, "Engine": {"EngineVersion": "20.10.24"}},
        "Status": {"State": status, "Addr": ip},
    }
    if role == "manager":
        node["Status"]["Addr"] = "0.0.0.0"  # as some managers report it: the raft address has the real one
        node["ManagerStatus"] = {"Leader": leader, "Reachability": reachability, "Addr": f"{ip}:2377"}
    return node


def swarm(*args, **kwargs):
    return c.swarm_node_record(api_node(*args, **kwargs), NOW)


def member(ip, hostname, state="alive", *, age=2.0, ttl=10, port=2376, session="s-1"):
    return {"ip": ip, "port": port, "address": f"{ip}:{port}", "hostname": hostname, "role": "worker",
            "state": state, "ttl": ttl, "seconds_since_heartbeat": age, "seconds_left": max(0.0, ttl - age),
            "session": session, "heartbeat": NOW - age, "key": f"docker/swarm/nodes/{ip}:{port}"}


def by_name(report):
    return {e["name"]: e for e in report["nodes"]}


# -- reading the swarm ---------------------------------------------------------


def test_a_node_object_reads_as_one_record():
    record = swarm("abc", "master", "10.0.0.1", role="manager", leader=True, labels={RECONCILE_LABEL: "x"})
    assert record["address"] == "10.0.0.1"  # from the raft address, Status.Addr said 0.0.0.0
    assert (record["role"], record["status"], record["leader"], record["reachability"]) == (
        "manager", "ready", True, "reachable")
    assert record["version"] == 10 and record["down_for"] is None and record["drained_by_reconcile"]


def test_down_for_counts_from_the_last_change():
    record = swarm("abc", "node1", "10.0.0.2", status="down", updated_ago=42.0)
    assert record["down_for"] == 42.0 and record["updated_at"] == c.iso_time(NOW - 42.0)


def test_docker_times_keep_microseconds_and_refuse_garbage():
    whole = c.parse_docker_time("2027-01-15T08:00:00Z")
    assert c.parse_docker_time("2027-01-15T08:00:00.123456789Z") == whole + 0.123456
    assert c.parse_docker_time("0001-01-01T00:00:00Z") is None
    assert c.parse_docker_time("garbage") is None and c.parse_docker_time(None) is None


# -- categories ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "status", "category"),
    [
        ("alive", "ready", "healthy"),
        ("expiring", "ready", "healthy"),
        ("alive", "down", "swarm_down"),
        ("expiring", "unknown", "swarm_down"),
        ("expired", "ready", "consul_expired"),
        ("expired", "down", "down"),
        (None, "ready", "swarm_only"),
        (None, "down", "down"),
        ("alive", None, "consul_only"),
        ("expired", None, "consul_only"),
    ],
)
def test_every_pair_has_exactly_one_category(state, status, category):
    m = member("10.0.0.2", "node1", state) if state else None
    s = swarm("abc", "node1", "10.0.0.2", status=status) if status else None
    assert c.classify_pair(m, s) == category


def test_a_node_neither_side_knows_is_an_error():
    with pytest.raises(ValueError):
        c.classify_pair(None, None)


def test_gone_for_dates_from_the_heartbeat_then_from_the_swarm():
    expired = member("10.0.0.2", "node1", "expired", age=14.0, ttl=10)
    assert c.gone_for(expired, swarm("a", "node1", "10.0.0.2")) == 4.0  # expired 4 s ago, still Ready
    # Consul deleted the key: the swarm's clock is all there is.
    assert c.gone_for(None, swarm("a", "node1", "10.0.0.2", status="down", updated_ago=30.0)) == 30.0
    # Both: the larger.
    assert c.gone_for(expired, swarm("a", "node1", "10.0.0.2", status="down", updated_ago=2.0)) == 4.0
    # Ready with no registration: no evidence at all.
    assert c.gone_for(None, swarm("a", "node1", "10.0.0.2")) is None
    assert c.gone_for(member("10.0.0.2", "node1"), swarm("a", "node1", "10.0.0.2")) is None


def test_the_report_puts_every_node_in_its_category_with_what_to_do():
    members = [
        member("10.0.0.1", "master"),
        member("10.0.0.2", "node1"),
        member("10.0.0.3", "node2", "expired", age=14.0),
        member("10.0.0.5", "node4"),
        member("192.0.2.10", "ghost", "expired", age=900.0, session=None),
    ]
    nodes = [
        swarm("m1", "master", "10.0.0.1", role="manager", leader=True),
        swarm("n1", "node1", "10.0.0.2", status="down", updated_ago=20.0),
        swarm("n2", "node2", "10.0.0.3"),
        swarm("n3", "node3", "10.0.0.4"),
        swarm("n6", "node6", "10.0.0.7", status="down", updated_ago=7200.0),
    ]
    report = c.compare(members, nodes, stale_after=3600)
    entries = by_name(report)
    assert {name: e["category"] for name, e in entries.items()} == {
        "master": "healthy", "node1": "swarm_down", "node2": "consul_expired", "node3": "swarm_only",
        "node4": "consul_only", "node6": "down", "ghost": "consul_only"}
    assert [e["address"] for e in report["nodes"]] == [
        "10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.7", "192.0.2.10"]
    assert report["counts"] == {"total": 7, "healthy": 1, "swarm_down": 1, "consul_expired": 1, "consul_only": 2,
                                "swarm_only": 1, "down": 1, "duplicates": 0, "stale": 1, "problems": 6}
    assert report["stale"] == ["node6"] and entries["node6"]["stale"]
    assert not report["in_sync"] and not report["all_healthy"]
    assert report["managers"] == {"total": 1, "reachable": 1, "leader": "master"}
    summaries = {name: e["summary"] for name, e in entries.items()}
    assert "systemctl status docker" in summaries["node1"]
    assert "last heartbeat 14 s ago, TTL 10 s" in summaries["node2"]
    assert "picluster-heartbeat" in summaries["node2"]
    assert "systemctl start picluster-heartbeat" in summaries["node3"]
    assert "run the swarm_agent role" in summaries["node4"]
    assert "never drops a key no session holds" in summaries["ghost"]
    assert "state=absent" in summaries["ghost"]
    assert "docker node rm n6" in summaries["node6"] and "stale" in summaries["node6"]
    assert len(report["problems"]) == 6 and entries["master"]["summary"] not in report["problems"]


def test_a_cluster_in_step_is_in_sync_and_healthy():
    report = c.compare([member("10.0.0.1", "master"), member("10.0.0.2", "node1", "expiring", age=8.0)],
                       [swarm("m1", "master", "10.0.0.1", role="manager"), swarm("n1", "node1", "10.0.0.2")])
    assert report["in_sync"] and report["all_healthy"] and report["problems"] == []


def test_a_node_gone_from_both_keeps_them_in_sync_but_not_healthy():
    report = c.compare([member("10.0.0.1", "master")],
                       [swarm("m1", "master", "10.0.0.1", role="manager"),
                        swarm("n1", "node1", "10.0.0.2", status="down", updated_ago=30.0)])
    assert report["in_sync"] and not report["all_healthy"]
    assert by_name(report)["node1"]["category"] == "down"
    assert "start it again" in by_name(report)["node1"]["summary"]


def test_nothing_at_all_is_not_healthy():
    report = c.compare([], [])
    assert report["in_sync"] and not report["all_healthy"] and report["counts"]["total"] == 0


# -- duplicates ------------------------------------------------------------------


def test_a_rejoined_node_leaves_a_second_swarm_record():
    old = swarm("old1", "node2", "10.0.0.3", status="down", updated_ago=100.0)
    new = swarm("new1", "node2", "10.0.0.3", updated_ago=50.0)
    report = c.compare([member("10.0.0.3", "node2")], [old, new])
    first, second = report["nodes"]
    assert (first["swarm"]["id"], first["category"]) == ("new1", "healthy")  # the Ready record is the node
    assert (second["swarm"]["id"], second["category"]) == ("old1", "down")
    assert first["duplicate"] and second["duplicate"]
    (finding,) = report["duplicates"]
    assert finding["kind"] == "swarm_address" and finding["records"] == ["old1", "new1"]
    assert "docker node rm old1" in finding["summary"]
    assert not report["in_sync"] and report["counts"]["duplicates"] == 1


def test_two_registrations_for_one_address_and_one_name_at_two_addresses():
    members = [member("10.0.0.2", "node1"), member("10.0.0.2", "node1", "expired", age=99.0, port=2375),
               member("10.0.0.9", "node1")]
    report = c.compare(members, [swarm("n1", "node1", "10.0.0.2")])
    kinds = {d["kind"]: d for d in report["duplicates"]}
    assert set(kinds) == {"consul_address", "consul_hostname"}
    assert kinds["consul_address"]["records"] == ["10.0.0.2:2376", "10.0.0.2:2375"]
    entries = report["nodes"]
    assert entries[0]["consul"]["address"] == "10.0.0.2:2376" and entries[0]["category"] == "healthy"
    assert entries[1]["consul"]["address"] == "10.0.0.2:2375" and entries[1]["category"] == "consul_only"
    assert all(e["duplicate"] for e in entries)


# -- the plan -------------------------------------------------------------------------


def cluster(*extra_members, nodes=(), members=()):
    base_members = [member("10.0.0.1", "master"), member("10.0.0.2", "node1"), member("10.0.0.3", "node2")]
    base_nodes = [swarm("m1", "master", "10.0.0.1", role="manager", leader=True), swarm("n1", "node1", "10.0.0.2")]
    return c.compare(list(members or base_members) + list(extra_members), base_nodes + list(nodes))


def test_a_node_gone_past_the_grace_period_is_drained_and_labelled():
    report = cluster(nodes=[swarm("n2", "node2", "10.0.0.3", status="down", updated_ago=15.0)],
                     members=[member("10.0.0.1", "master"), member("10.0.0.2", "node1")])
    decided = c.plan(report, grace_period=10, now=NOW)
    (action,) = decided["actions"]
    assert (action["action"], action["node"], action["id"], action["category"]) == ("drain", "node2", "n2", "down")
    assert action["change"] == {"availability": "drain", "label": c.iso_time(NOW)}
    assert decided["held"] == []


def test_inside_the_grace_period_it_waits_and_says_so():
    report = cluster(nodes=[swarm("n2", "node2", "10.0.0.3", status="down", updated_ago=4.0)],
                     members=[member("10.0.0.1", "master"), member("10.0.0.2", "node1")])
    decided = c.plan(report, grace_period=10, now=NOW)
    assert decided["actions"] == []
    assert decided["held"] == [{"node": "node2", "address": "10.0.0.3", "would": "drain",
                                "reason": "gone for 4 s, grace period 10 s"}]


def test_a_ready_node_with_an_expired_registration_is_drained():
    report = cluster(nodes=[swarm("n2", "node2", "10.0.0.3")],
                     members=[member("10.0.0.1", "master"), member("10.0.0.2", "node1"),
                              member("10.0.0.3", "node2", "expired", age=13.0), member("10.0.0.4", "x")])
    (action,) = c.plan(report, grace_period=2, now=NOW)["actions"]
    assert action["category"] == "consul_expired" and action["action"] == "drain"


def test_a_ready_node_without_any_registration_is_never_touched():
    # What a node without a heartbeat looks like (swarm_heartbeat_enabled: false, or Consul lost its data).
    report = cluster(nodes=[swarm("n2", "node2", "10.0.0.3")],
                     members=[member("10.0.0.1", "master")])
    assert c.plan(report, grace_period=1, now=NOW) == {"actions": [], "held": []}


def test_consul_calling_half_the_ready_nodes_expired_drains_none():
    members = [member("10.0.0.1", "master", "expired", age=30.0), member("10.0.0.2", "node1", "expired", age=30.0),
               member("10.0.0.3", "node2"), member("10.0.0.4", "node3")]
    nodes = [swarm("m1", "master", "10.0.0.1", role="manager"), swarm("n1", "node1", "10.0.0.2"),
             swarm("n2", "node2", "10.0.0.3"), swarm("n3", "node3", "10.0.0.4")]
    decided = c.plan(c.compare(members, nodes), grace_period=5, now=NOW)
    assert decided["actions"] == []
    assert {h["node"] for h in decided["held"]} == {"master", "node1"}
    assert all("2 of the 4 Ready nodes" in h["reason"] for h in decided["held"])
    # One of four is fine.
    members[0] = member("10.0.0.1", "master")
    (action,) = c.plan(c.compare(members, nodes), grace_period=5, now=NOW)["actions"]
    assert action["node"] == "node1"


def test_a_node_it_drained_is_set_active_again_once_alive_and_ready():
    drained = swarm("n2", "node2", "10.0.0.3", availability="drain", labels={RECONCILE_LABEL: "t", "zone": "b"})
    (action,) = c.plan(cluster(nodes=[drained]), grace_period=10, now=NOW)["actions"]
    assert action["action"] == "activate" and action["change"] == {"availability": "active", "label": None}


def test_a_node_drained_by_hand_stays_drained():
    by_hand = swarm("n2", "node2", "10.0.0.3", availability="drain")
    assert c.plan(cluster(nodes=[by_hand]), grace_period=10, now=NOW) == {"actions": [], "held": []}


def test_reactivation_waits_for_alive_not_just_expiring():
    drained = swarm("n2", "node2", "10.0.0.3", availability="drain", labels={RECONCILE_LABEL: "t"})
    report = cluster(nodes=[drained], members=[member("10.0.0.1", "master"), member("10.0.0.2", "node1"),
                                               member("10.0.0.3", "node2", "expiring", age=8.0)])
    decided = c.plan(report, grace_period=10, now=NOW)
    assert decided["actions"] == [] and decided["held"][0]["would"] == "activate"


def test_an_operator_activating_a_drained_node_only_loses_the_label():
    reactivated = swarm("n2", "node2", "10.0.0.3", labels={RECONCILE_LABEL: "t"})
    (action,) = c.plan(cluster(nodes=[reactivated]), grace_period=10, now=NOW)["actions"]
    assert action["action"] == "activate" and action["change"] == {"label": None}


def test_already_drained_nodes_need_nothing():
    drained = swarm("n2", "node2", "10.0.0.3", status="down", availability="drain", updated_ago=100.0,
                    labels={RECONCILE_LABEL: "t"})
    report = cluster(nodes=[drained], members=[member("10.0.0.1", "master"), member("10.0.0.2", "node1")])
    assert c.plan(report, grace_period=10, now=NOW) == {"actions": [], "held": []}


def test_removal_after_the_removal_period_supersedes_the_drain():
    gone = swarm("n2", "node2", "10.0.0.3", status="down", updated_ago=700.0)
    report = cluster(nodes=[gone], members=[member("10.0.0.1", "master"), member("10.0.0.2", "node1")])
    (action,) = c.plan(report, grace_period=10, remove_after=600, now=NOW)["actions"]
    assert action["action"] == "remove" and action["change"] == {"present": False}
    (action,) = c.plan(report, grace_period=10, remove_after=800, now=NOW)["actions"]
    assert action["action"] == "drain"


@pytest.mark.parametrize(("grace", "remove", "words"), [
    (0, 0, "grace_period must be a positive"), (-5, 0, "grace_period must be a positive"),
    (True, 0, "grace_period must be a positive"), (10, -1, "remove_after must be 0"),
    (10, 10, "must be longer than grace_period"),
])
def test_bad_periods_are_refused_with_a_message(grace, remove, words):
    assert words in c.check_periods(grace, remove)
    with pytest.raises(ValueError, match=words):
        c.plan(cluster(), grace_period=grace, remove_after=remove, now=NOW)


def test_periods_that_make_sense_pass():
    assert c.check_periods(10, 0) is None and c.check_periods(0.5, 3600) is None


# -- the quorum guard -----------------------------------------------------------------------


def managers(*states):
    """Manager records from (reachability, status) pairs; the first is the leader."""
    return [swarm(f"m{i}", f"master{i}", f"10.0.0.{i + 1}", role="manager", leader=i == 0, reachability=r, status=s)
            for i, (r, s) in enumerate(states)]


def test_a_dead_manager_of_three_may_go():
    three = managers(("reachable", "ready"), ("reachable", "ready"), ("unreachable", "down"))
    assert c.quorum_refusal(three[2], three) is None


def test_never_the_last_manager():
    (only,) = managers(("unreachable", "down"))
    assert c.quorum_refusal(only, [only]) == "it is the swarm's last manager"


def test_never_a_manager_raft_still_reaches():
    three = managers(("reachable", "ready"), ("reachable", "ready"), ("reachable", "down"))
    assert "raft still reaches it" in c.quorum_refusal(three[2], three)


def test_never_when_the_managers_left_would_lose_their_quorum():
    five = managers(("reachable", "ready"), ("unreachable", "down"), ("unreachable", "down"),
                    ("unreachable", "down"), ("reachable", "ready"))
    assert "fewer than their quorum of 3" in c.quorum_refusal(five[1], five)


def test_workers_need_no_quorum():
    assert c.quorum_refusal(swarm("n1", "node1", "10.0.0.9"), []) is None


def test_the_plan_removes_dead_managers_one_by_one_while_quorum_holds():
    five = managers(("reachable", "ready"), ("reachable", "ready"), ("reachable", "ready"),
                    ("unreachable", "down"), ("unreachable", "down"))
    for record in five[3:]:
        record["down_for"] = 900.0
    members = [member(r["address"], r["hostname"]) for r in five[:3]]
    decided = c.plan(c.compare(members, five), grace_period=10, remove_after=600, now=NOW)
    assert [(a["action"], a["node"]) for a in decided["actions"]] == [("remove", "master3"), ("remove", "master4")]


def test_the_plan_holds_a_removal_the_guard_refuses_and_drains_instead():
    three = managers(("reachable", "ready"), ("unreachable", "down"), ("unreachable", "down"))
    for record in three[1:]:
        record["down_for"] = 900.0
    decided = c.plan(c.compare([member("10.0.0.1", "master0")], three), grace_period=10, remove_after=600, now=NOW)
    assert [(h["node"], h["would"]) for h in decided["held"]] == [("master1", "remove"), ("master2", "remove")]
    assert "fewer than their quorum" in decided["held"][0]["reason"]
    assert [(a["action"], a["node"]) for a in decided["actions"]] == [("drain", "master1"), ("drain", "master2")]


# -- diff and the change itself -------------------------------------------------------------


def test_the_diff_shows_every_change_before_it_happens():
    gone = swarm("n2", "node2", "10.0.0.3", status="down", updated_ago=700.0)
    drained = swarm("n3", "node3", "10.0.0.4", availability="drain", labels={RECONCILE_LABEL: "t"})
    old = swarm("n4", "node4", "10.0.0.5", status="down", updated_ago=9000.0)
    report = cluster(nodes=[gone, drained, old],
                     members=[member("10.0.0.1", "master"), member("10.0.0.2", "node1"), member("10.0.0.4", "node3")])
    actions = c.plan(report, grace_period=10, remove_after=3600, now=NOW)["actions"]
    assert [a["action"] for a in actions] == ["drain", "activate", "remove"]
    shown = c.diff(actions, [gone, drained, old])
    assert shown["before"] == {
        "node2 (10.0.0.3, n2)": {"availability": "active", RECONCILE_LABEL: None},
        "node3 (10.0.0.4, n3)": {"availability": "drain", RECONCILE_LABEL: "t"},
        "node4 (10.0.0.5, n4)": {"availability": "active", RECONCILE_LABEL: None},
    }
    assert shown["after"] == {
        "node2 (10.0.0.3, n2)": {"availability": "drain", RECONCILE_LABEL: c.iso_time(NOW)},
        "node3 (10.0.0.4, n3)": {"availability": "active", RECONCILE_LABEL: None},
    }


def test_a_change_keeps_what_else_the_spec_holds():
    spec = {"Role": "worker", "Availability": "active", "Labels": {"zone": "b"}, "Name": "x"}
    action = {"change": {"availability": "drain", "label": "2026-01-01T00:00:00Z"}}
    wanted = c.apply_change(spec, action)
    assert wanted == {"Role": "worker", "Availability": "drain", "Name": "x",
                      "Labels": {"zone": "b", RECONCILE_LABEL: "2026-01-01T00:00:00Z"}}
    assert spec["Labels"] == {"zone": "b"}  # not changed in place
    assert c.apply_change(wanted, action) is None  # already so: nothing to send
    back = c.apply_change(wanted, {"change": {"availability": "active", "label": None}})
    assert back["Labels"] == {"zone": "b"} and back["Availability"] == "active"
