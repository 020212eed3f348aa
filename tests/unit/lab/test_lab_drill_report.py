"""The drill report's figures come from its timeline, the same way for the test and the bench."""

from __future__ import annotations

from picluster_lab import DrillLimits, DrillReport
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
