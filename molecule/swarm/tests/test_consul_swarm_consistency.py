"""swarm_consistency and swarm_reconcile against this scenario's real Consul and real swarm.

Every category happens for real: a frozen heartbeat (consul_expired), a
stopped engine (swarm_down), registrations put in Consul by hand (consul_only,
and two for one address), a node whose heartbeat is stopped (swarm_only, what
a node that joined without one looks like), a node with neither engine nor
heartbeat, as after a power cut (down, stale), a node that joined again and
left its old record behind (a duplicate the reconciler removes). Both modules run on this host as a user runs them from
the controller: Consul on the master, its engine over TLS with the docker
role's client certificate (Lab.consistency / Lab.reconcile).

Each test leaves the cluster as it found it (test_swarm.py runs after this file).
The file runs after test_consul_security.py (file order), whose first test ends
the upgrade's membership watch: the tests here stop heartbeats on purpose, and
the watch would count that against the upgrade.
"""

from __future__ import annotations

import json
from typing import Any

from picluster_lab import Lab

LAB = Lab.from_env()
TTL = 10  # swarm_heartbeat_ttl in molecule.yml
GRACE = 2.0
LABEL = "io.picluster.reconcile.drained"
GHOST = "192.0.2.10:2376"  # TEST-NET-1: an address no lab node has


def kv(method: str, key: str, value: dict | None = None) -> None:
    """Write or delete a key as an operator does: Consul denies requests without a token (the consul role's
    ACLs), so with the management token the consul role keeps on the controller."""
    access = LAB.consul_access
    answer = access.request(LAB.address(LAB.first_master), f"/v1/kv/{key}", method=method,
                            body=None if value is None else json.dumps(value), token=access.token("management"))
    assert answer.status == 200, (method, key, answer.status, answer.body[:200])


def consistency(**options: Any) -> dict:
    result = LAB.consistency(**options)
    assert not result.get("failed"), result.get("msg")
    return result


def reconcile(*, check: bool = False, **options: Any) -> dict:
    result = LAB.reconcile(check=check, diff=True, **options)
    assert not result.get("failed"), result.get("msg")
    return result


def entry(result: dict, host: str) -> dict:
    """The report's entry for a lab host (by address: a host the swarm does not know has no name there)."""
    found = [e for e in result["nodes"] if e["address"] == LAB.address(host) and not e["duplicate"]]
    found = found or [e for e in result["nodes"] if e["address"] == LAB.address(host)]
    assert found, f"{host} is not in the report: {result['nodes']}"
    return found[0]


def category_of(host: str, **options: Any) -> str:
    return entry(consistency(**options), host)["category"]


def wait_for(host: str, category: str, limit: float) -> float:
    return LAB.wait_until(f"{host} {category}", lambda: category_of(host) == category, limit, interval=1)


def availability(host: str) -> tuple[str, dict]:
    """The node's availability and labels, as the swarm holds them (by its ID: a rejoined node has two records)."""
    node_id = entry(consistency(), host)["swarm"]["id"]
    spec = json.loads(LAB.sh(LAB.first_master, ["docker", "node", "inspect", node_id, "-f", "{{json .Spec}}"]))
    return spec["Availability"], spec.get("Labels") or {}


def test_a_cluster_in_step_is_in_sync_and_healthy():
    result = consistency()
    assert result["in_sync"] and result["all_healthy"] and result["problems"] == [], result["problems"]
    assert {e["name"]: e["category"] for e in result["nodes"]} == {h: "healthy" for h in LAB.hosts()}
    assert result["counts"]["healthy"] == len(LAB.hosts()) == result["counts"]["total"]
    assert (result["http_requests"], result["docker_requests"]) == (2, 1)
    assert result["managers"] == {"total": 1, "reachable": 1, "leader": LAB.first_master}
    assert not result["changed"]


def test_a_frozen_heartbeat_is_consul_expired_and_planned_for_a_drain():
    """Stop a heartbeat: the node stays Ready in the swarm while its registration expires."""
    host = "node2"
    LAB.sh(host, "systemctl kill --signal=SIGSTOP picluster-heartbeat")
    seen: dict = {}

    def planned() -> bool:
        # Consul deletes the expired key one TTL after expiry: catch the window in check mode.
        result = reconcile(check=True, grace_period=1)
        seen.update(result)
        return any(a["node"] == host and a["category"] == "consul_expired" for a in result["actions"])

    try:
        LAB.wait_until(f"{host} consul_expired with a drain planned", planned, TTL + 30, interval=0.5)
        node = entry(seen["report"], host)
        assert node["category"] == "consul_expired" and node["swarm"]["status"] == "ready"
        assert node["consul"]["state"] == "expired" and node["gone_for"] >= 1
        assert "systemctl status picluster-heartbeat" in node["summary"]
        assert not seen["report"]["in_sync"] and seen["report"]["counts"]["consul_expired"] == 1
        assert availability(host)[0] == "active"  # check mode changed nothing
    finally:
        LAB.sh(host, "systemctl kill --signal=SIGCONT picluster-heartbeat")
    wait_for(host, "healthy", TTL + 20)


def test_registrations_nobody_announces_are_consul_only_and_duplicates():
    """Register a stale key (and a second one for node1's address, as after a port change)."""
    doc = {"address": GHOST, "hostname": "ghost", "role": "worker", "heartbeat": 1_700_000_000.0, "ttl": TTL,
           "schema": 1, "labels": {}, "engine_version": ""}
    second = f"{LAB.address('node1')}:2375"
    keys = {f"docker/swarm/nodes/{GHOST}": doc,
            f"docker/swarm/nodes/{second}": {**doc, "address": second, "hostname": "node1"}}
    for key, value in keys.items():
        kv("PUT", key, value)
    try:
        result = consistency()
        ghost = next(e for e in result["nodes"] if e["address"] == GHOST.split(":", maxsplit=1)[0])
        assert ghost["category"] == "consul_only" and ghost["consul"]["session"] is None
        assert "never drops a key no session holds" in ghost["summary"] and "state=absent" in ghost["summary"]
        (dup,) = result["duplicates"]
        assert (dup["kind"], dup["value"]) == ("consul_address", LAB.address("node1"))
        assert sorted(dup["records"]) == sorted([f"{LAB.address('node1')}:2376", second])
        assert entry(result, "node1")["category"] == "healthy"  # the live registration is the node
        assert not result["in_sync"] and result["counts"]["duplicates"] == 1
        # A registration is Consul's business: the reconciler changes only the swarm.
        assert reconcile(grace_period=1)["actions"] == []
    finally:
        for key in keys:
            kv("DELETE", key)
    assert consistency()["in_sync"]


def test_a_node_without_a_heartbeat_is_swarm_only_and_never_touched():
    """What a node that joined without a heartbeat looks like: in the swarm, not in Consul."""
    host = "node1"
    LAB.sh(host, "systemctl stop picluster-heartbeat")  # deregisters at once
    try:
        wait_for(host, "swarm_only", 30)
        result = reconcile(grace_period=1)
        node = entry(result["report"], host)
        assert node["consul"] is None and node["gone_for"] is None
        assert "systemctl start picluster-heartbeat" in node["summary"]
        assert not result["changed"] and result["actions"] == []
        assert availability(host)[0] == "active"
    finally:
        LAB.sh(host, "systemctl start picluster-heartbeat")
    wait_for(host, "healthy", 30)


def test_a_stopped_engine_is_swarm_down_and_a_dead_node_is_drained_then_set_active_again():
    """Stop node2's engine: swarm_down (Consul still hears it), nothing for the reconciler. Stop its heartbeat too,
    as when the node loses power: down on both sides. Bad input changes nothing; check mode changes nothing; apply
    drains; again changes nothing; once it is back, apply sets it active; again changes nothing."""
    host = "node2"
    LAB.sh(host, "systemctl stop docker.socket docker.service")
    try:
        wait_for(host, "swarm_down", 90)
        node = entry(consistency(), host)
        assert node["consul"]["state"] in ("alive", "expiring") and node["swarm"]["status"] != "ready"
        assert "systemctl status docker" in node["summary"]
        # Consul still hears it: nothing for the reconciler to do.
        assert [a for a in reconcile(check=True, grace_period=1)["actions"] if a["node"] == host] == []

        LAB.sh(host, "systemctl stop picluster-heartbeat")

        def down_long_enough() -> bool:
            node = entry(consistency(), host)
            return node["category"] == "down" and (node["gone_for"] or 0) >= GRACE

        LAB.wait_until(f"{host} down for {GRACE:.0f} s", down_long_enough, 60)
        bad_input_fails_and_changes_nothing(host)
        stale = entry(consistency(stale_after=1), host)
        assert stale["stale"] and "stale" in stale["summary"] and f"docker node rm {stale['swarm']['id']}" in \
            stale["summary"]

        planned = reconcile(check=True, grace_period=GRACE)
        (action,) = planned["actions"]
        assert (action["action"], action["node"], action["category"]) == ("drain", host, "down")
        assert planned["changed"] and "result" not in action
        (shown,) = planned["diff"]["before"]
        assert planned["diff"]["before"][shown] == {"availability": "active", LABEL: None}
        assert planned["diff"]["after"][shown]["availability"] == "drain"
        assert availability(host) == ("active", {"zone": "b"})  # check mode changed nothing

        applied = reconcile(grace_period=GRACE)
        assert applied["changed"] and applied["actions"][0]["result"] == "done"
        drained, labels = availability(host)
        assert drained == "drain" and labels[LABEL] and labels["zone"] == "b"
        again = reconcile(grace_period=GRACE)
        assert not again["changed"] and again["actions"] == []
    finally:
        LAB.sh(host, "systemctl start docker.socket docker.service picluster-heartbeat")

    def reactivated() -> bool:
        return any(a["action"] == "activate" and a.get("result") == "done"
                   for a in reconcile(grace_period=GRACE)["actions"])

    LAB.wait_until(f"{host} set active again", reactivated, 120, interval=2)
    assert availability(host) == ("active", {"zone": "b"})
    again = reconcile(grace_period=GRACE)
    assert not again["changed"] and again["actions"] == []
    assert consistency()["all_healthy"]


def bad_input_fails_and_changes_nothing(host: str) -> None:
    """While a drain is due: each bad setting fails with a sentence, and the node stays active."""
    unreachable = f"tcp://{LAB.address(LAB.first_master)}:2399"
    cases = [
        ({"grace_period": 0}, "grace_period must be a positive number of seconds"),
        ({"grace_period": -5}, "grace_period must be a positive number of seconds"),
        ({"grace_period": GRACE, "remove_after": 1}, "must be longer than grace_period"),
        ({"grace_period": GRACE, "docker_host": unreachable}, "cannot reach the Docker engine"),
        ({"grace_period": GRACE, "docker_cert_path": "/nonexistent/pki"}, "docker_ca_path /nonexistent/pki/ca.pem"),
        ({"grace_period": GRACE, "docker_cert_path": None, "docker_tls": True,
          "docker_ca_path": str(LAB.pki_dir("docker") / "ca.pem")}, "the engine wants a client certificate"),
    ]
    for options, words in cases:
        result = LAB.reconcile(**options)
        assert result.get("failed") and words in result["msg"], (options, result.get("msg"))
        assert "Traceback" not in result["msg"] and not result.get("changed")
    assert "connection refused" in LAB.reconcile(grace_period=GRACE, docker_host=unreachable)["msg"]
    assert availability(host)[0] == "active"


def test_a_rejoined_node_leaves_a_record_the_reconciler_removes():
    """A node that left and joined again: two swarm records for one address; remove_after removes the old one."""
    host, manager = "node2", LAB.first_master
    old_id = entry(consistency(), host)["swarm"]["id"]
    token = LAB.sh(manager, ["docker", "swarm", "join-token", "-q", "worker"]).strip()
    LAB.sh(host, ["docker", "swarm", "leave", "--force"])
    LAB.sh(host, ["docker", "swarm", "join", "--token", token, "--advertise-addr", LAB.address(host),
                  f"{LAB.address(manager)}:2377"], timeout=120)
    try:
        def duplicate_down() -> bool:
            result = consistency()
            old = [e for e in result["nodes"] if (e["swarm"] or {}).get("id") == old_id]
            return bool(old) and old[0]["category"] == "down" and (old[0]["gone_for"] or 0) >= GRACE + 1

        LAB.wait_until("the old record down", duplicate_down, 120)
        result = consistency()
        (dup,) = result["duplicates"]
        assert dup["kind"] == "swarm_address" and old_id in dup["records"] and f"docker node rm {old_id[:12]}" in \
            dup["summary"]
        assert entry(result, host)["category"] == "healthy"  # the Ready record is the node

        planned = reconcile(check=True, grace_period=GRACE, remove_after=GRACE + 1)
        assert [(a["action"], a["id"]) for a in planned["actions"]] == [("remove", old_id)]
        assert list(planned["diff"]["after"]) == []  # a removed node is absent after
        applied = reconcile(grace_period=GRACE, remove_after=GRACE + 1)
        assert [a["result"] for a in applied["actions"]] == ["done"]
        assert reconcile(grace_period=GRACE, remove_after=GRACE + 1)["actions"] == []
        result = consistency()
        assert result["duplicates"] == [] and result["all_healthy"], result["problems"]
    finally:
        new_id = entry(consistency(), host)["swarm"]["id"]
        LAB.sh(manager, ["docker", "node", "update", "--label-add", "zone=b", new_id])
