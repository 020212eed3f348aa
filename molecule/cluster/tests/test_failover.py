"""No single master: the first master dies and the cluster's own services carry on.

The seed's author wanted to "distribute the master duties across the cluster".
With three masters, losing the first one (made Consul leader, swarm leader and
holder of the virtual IP first: the worst case) must leave a Consul leader, a
swarm leader, every other member alive in Consul at every poll, the entry point
answering through the virtual IP, and the dashboard showing the dead master
expired; the master then rejoins once and the virtual IP does not move back.
Then site.yml and the demo run again with one master powered off and finish for
the others, with nothing to change: the cluster scenario's idempotence check. It
goes as the user's run converged it (the controller user over SSH, sudo on the
nodes), with Mitogen switched on as docs/speed.md tells users to: the cold
converge keeps Ansible's own strategy, and each role's own scenario checks its
idempotence with it.

Runs after test_cluster.py and test_dashboard.py (file order) and leaves the
cluster whole.
"""

from __future__ import annotations

import base64

import pytest
from picluster_lab import REPORTS, DrillFailed, DrillLimits, DrillRun, Lab, LabError
from picluster_lab.controller import recap
from scenario_settings import REACTIVATE_BOUND_S, TTL

LAB = Lab.from_env()
DASHBOARD = "dashboard.picluster.lab"
# The test's limits: elections take seconds; the rest as for the worker drill.
LIMITS = DrillLimits(detect_s=TTL + 30, reschedule_s=120, rejoin_s=180, max_requests=1000, max_traffic_s=400)
EXPIRY_BOUND_S = TTL + 15  # the dead master turns expired within its TTL plus polling on a loaded machine
ENTRY_POINT_BOUND_S = 15.0  # keepalived moves the address after about three missed advertisements


@pytest.fixture(scope="module")
def auth() -> dict[str, str]:
    password = (LAB.pki_dir("dashboard") / "admin").read_text().split()[0]
    return {"Authorization": "Basic " + base64.b64encode(f"admin:{password}".encode()).decode()}


def swarm_sees_it_down(victim: str) -> bool:
    """The swarm, asked on a live manager, has the node as anything but Ready (a read that fails
    while the swarm elects a leader counts as not yet)."""
    try:
        return any(n.hostname == victim and n.status != "Ready" for n in LAB.swarm_nodes())
    except LabError:
        return False


def test_killing_the_first_master_keeps_membership_the_entry_point_and_the_dashboard(auth):
    seen_by_dashboard: dict[str, object] = {}
    planned: dict[str, object] = {}

    def dashboard_while_down(run: DrillRun) -> None:
        """Through the virtual IP, with the first master still down: the page's data says it expired."""

        def shows_it_expired() -> bool:
            answer = LAB.http(DASHBOARD, "/api/cluster", via=LAB.vip, headers=auth)
            if not answer.ok:
                return False
            nodes = {n["name"]: n for n in answer.json()["nodes"]}
            victim = nodes.get(run.report.victim)
            seen_by_dashboard.update(victim=victim, others={k: v["membership"]["state"] for k, v in nodes.items()})
            return victim is not None and victim["membership"]["state"] in ("expired", "missing")

        LAB.wait_until("the dashboard showing the dead master expired", shows_it_expired, limit=30, interval=2)
        run.event("dashboard-shows-it")
        # The reconciler acts on a node both Consul and the swarm let go. A new swarm leader marks the dead
        # one Down only some seconds after its election (not yet 14 s after one that took 26 s: seen once).
        LAB.wait_until("the swarm marking the dead master Down", lambda: swarm_sees_it_down(run.report.victim),
                       limit=60, interval=2)
        run.event("swarm-sees-it-down")
        # The reconciler's quorum guard on a real three-manager swarm, in check mode: one dead manager of
        # three may be removed (two reachable keep their quorum), and planning it changes nothing.
        planned.update(LAB.reconcile(check=True, diff=True, grace_period=1, remove_after=2))
        run.event("reconcile-planned")

    try:
        report = LAB.master_drill(ttl=TTL, limits=LIMITS, while_down=dashboard_while_down)
    except DrillFailed as failed:
        failed.report.write(REPORTS / "master-drill.json")
        raise
    summary = report.write(REPORTS / "master-drill.json")
    victim = report.victim
    assert victim == LAB.first_master
    assert set(report.victim_roles) == {"consul-leader", "swarm-leader", "vip-holder"}, summary
    # New leaders, the entry point back, and nothing failing once it is.
    assert summary["consul_leader_s"] is not None and summary["swarm_leader_s"] is not None, summary
    assert summary["entry_point_back_s"] is not None and summary["entry_point_back_s"] <= ENTRY_POINT_BOUND_S, summary
    before, after = report.before(), report.after()
    assert before and all(r.ok for r in before), "the entry point failed before the drill began"
    assert after and all(r.ok for r in after), f"requests failed after the failover window: {summary}"
    # Every other member alive at every poll; the dead master expired within its TTL.
    assert report.survivors_not_alive() == [], summary
    assert report.detection_s is not None and report.detection_s <= EXPIRY_BOUND_S, summary
    assert report.time_of("dashboard-shows-it") is not None
    assert not planned.get("failed") and planned.get("changed"), planned.get("msg")  # would change; did not (below)
    assert ("remove", victim) in [(a["action"], a["node"]) for a in planned["actions"]], planned["actions"]
    assert not planned.get("held"), planned.get("held")
    assert all(state in ("alive", "expiring") for name, state in seen_by_dashboard["others"].items()
               if name != victim), seen_by_dashboard
    # Back once: one registration per node, no stale swarm node, the address stayed where it went.
    hosts = LAB.hosts()
    assert LAB.members().ips() == sorted(LAB.address(h) for h in hosts)
    nodes = LAB.swarm_nodes()
    assert sorted(n.hostname for n in nodes) == sorted(hosts) and all(n.status == "Ready" for n in nodes), nodes
    assert len(set(report.vip_holders)) == 1 and report.vip_holders[0] not in ("", victim), report.vip_holders
    # Its proxy runs again by itself (picluster-proxy-start: dockerd alone does not restart a container on an
    # overlay network that is not there yet at boot), so it can hold the entry point again.
    LAB.wait_until(f"{victim}'s proxy serving again", lambda: LAB.http("demo.picluster.lab", via=victim).ok,
                   limit=120, interval=2)
    # The reconciler on the new swarm leader drained the dead master; it sets it active again.
    LAB.wait_until(f"{victim} active in the swarm again",
                   lambda: any(n.hostname == victim and n.availability == "Active" for n in LAB.swarm_nodes()),
                   limit=REACTIVATE_BOUND_S + 30, interval=1)


def test_site_runs_again_under_mitogen_with_a_master_powered_off():
    """A master powered off is reported, and the run goes on for everyone else with nothing to change:
    site.yml and the demo again, under Mitogen over SSH and sudo (the user's way to opt in to it)."""
    off = LAB.hosts("masters")[1]
    LAB.wait_whole(180)  # the drill before may have just restarted the first master
    LAB.kill(off)
    try:
        # As converge.yml runs it: the controller user over SSH, so the master is truly unreachable.
        run = LAB.user_run(args=["--diff"], mitogen=True, timeout=1500)  # what it changes, it shows
    finally:
        LAB.start(off)
    (REPORTS / "site-with-a-master-off.log").write_text(run.stdout + run.stderr)
    counts = recap(run.stdout)
    assert counts[off]["failed"] + counts[off]["unreachable"] > 0, counts
    for host in LAB.hosts():
        if host != off:
            assert counts[host]["failed"] == counts[host]["unreachable"] == counts[host]["changed"] == 0, (
                host, counts[host])
    assert "Traceback" not in run.stdout + run.stderr
    LAB.wait_until(f"{off} alive in Consul, Ready and active in the swarm again",
                   lambda: LAB.member_state(off) == "alive"
                   and any(n.hostname == off and n.status == "Ready" and n.availability == "Active"
                           for n in LAB.swarm_nodes()),
                   limit=180, interval=2)

