"""The drill report's figures come from its timeline, the same way for the test and the bench."""

from __future__ import annotations

import pytest
from picluster_lab import DrillLimits, DrillReport, DrillRun, LabError, LabTimeout
from picluster_lab.drill import Event, Poll, Request

LIMITS = DrillLimits(detect_s=30, reschedule_s=120, rejoin_s=180, after_grace_s=2)


def report() -> DrillReport:
    r = DrillReport(kind="kill-a-worker", service="demo-web", host_header="demo", via="master", ttl_s=10,
                    limits=LIMITS, victim="node2")
    r.events = [Event(2.0, "kill", "node2"), Event(11.5, "expired", "node2"), Event(20.0, "rescheduled", "node2"),
                Event(30.0, "settled"), Event(30.5, "traffic-stopped"), Event(31.0, "start", "node2"),
                Event(36.0, "rejoined", "node2")]
    r.polls = [Poll(5.0, {"master": "alive", "node2": "alive"}), Poll(11.5, {"master": "alive", "node2": "expired"})]
    r.requests = [Request(t, 0 if 3 <= t < 4 else 200, "node1") for t in (0.5, 1.0, 3.0, 3.5, 10.0, 21.0, 23.0, 29.0)]
    return r


def test_times_are_measured_between_events():
    r = report()
    assert r.detection_s == 9.5
    assert r.reschedule_s == 18.0
    assert r.rejoin_s == 5.0
    assert r.between("kill", "never") is None


def test_requests_fall_into_before_during_and_after():
    r = report()
    assert [q.t for q in r.before()] == [0.5, 1.0]
    assert [q.t for q in r.during()] == [3.0, 3.5, 10.0]
    # after: from rescheduled + grace until the traffic stopped
    assert [q.t for q in r.after()] == [23.0, 29.0]


def test_summary_keeps_the_keys_drill_json_and_the_bench_have_used():
    s = report().summary()
    for key in ("ttl_s", "victim", "detection_s", "reschedule_s", "rejoin_s", "requests_total", "failed_before",
                "failed_during_failover", "requests_during_failover", "failed_after_failover",
                "requests_after_failover", "load_1m_start", "load_1m_end", "restart_at_s_after_kill"):
        assert key in s, key
    assert (s["failed_during_failover"], s["requests_during_failover"]) == (2, 3)
    assert s["restart_at_s_after_kill"] == 29.0
    assert "error" not in s


def test_the_timeline_is_kept_whole():
    d = report().to_dict()
    assert len(d["events"]) == 7 and len(d["polls"]) == 2 and len(d["requests"]) == 8
    assert d["polls"][1]["states"]["node2"] == "expired"
    assert d["limits"]["detect_s"] == 30


class _FakeLab:
    first_master = "master1"


def _run(limit_s: float = 2.0):
    limits = DrillLimits(detect_s=limit_s, reschedule_s=1, rejoin_s=1, poll_interval_s=0.01)
    return DrillRun(_FakeLab(), kind="kill-the-first-master", service="s", host_header="h", via="v", ttl=10,
                    limits=limits)


def test_a_read_failing_while_leaders_change_counts_as_not_yet():
    run = _run()
    answers = iter([LabError("HTTP 500: no cluster leader"), LabError("HTTP 500: no cluster leader"), True])

    def elected() -> bool:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    run._wait("a new Consul leader", elected, 2.0, "consul-leader", "master1")
    assert run.report.time_of("consul-leader", "master1") is not None
    assert len(run.report.transient_errors) == 2
    assert run.report.summary()["reads_failed_while_changing"] == 2


def test_a_read_that_keeps_failing_times_out_naming_the_last_error():
    run = _run(limit_s=0.1)

    def broken() -> bool:
        raise LabError("HTTP 403: ACL not found")

    with pytest.raises(LabTimeout, match="ACL not found"):
        run._wait("a new Consul leader", broken, 0.1, "consul-leader", "master1")


def test_a_request_in_flight_when_the_node_dies_counts_as_during():
    r = report()
    r.requests = [Request(0.5, 200, "node1", 0.6), Request(1.9, 0, "", 4.9), Request(5.0, 200, "node1", 5.1)]
    assert [q.t for q in r.before()] == [0.5]
    assert [q.t for q in r.during()] == [1.9, 5.0]


def test_a_request_failing_while_docker_kill_runs_counts_as_during():
    """The node can die any moment after `docker kill` is issued, before it returns (seen: 0.2 s under load)."""
    r = report()
    r.events = [Event(1.8, "kill-issued", "node2"), *r.events]  # the kill returns at 2.0
    r.requests = [Request(0.5, 200, "node1", 0.6), Request(1.7, 0, "", 1.85), Request(5.0, 200, "node1", 5.1)]
    assert [q.t for q in r.before()] == [0.5]
    assert [q.t for q in r.during()] == [1.7, 5.0]
    assert r.summary()["failed_before"] == 0
    assert r.detection_s == pytest.approx(9.5)  # the figures still count from the kill's return
