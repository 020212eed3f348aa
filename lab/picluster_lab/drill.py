"""The failure drill, once, for the cluster scenario's test and the bench.

A drill is a run of steps (kill a node, wait until Consul expires it, wait
until its tasks run elsewhere, keep traffic flowing, start it again, wait
until it rejoins) while a bounded request loop goes through the entry point.
Every step, every membership poll (the state of every host) and every request
is recorded with a monotonic timestamp (seconds since the drill began), so
the report can answer questions about any window afterwards. `DrillRun` holds
the steps; `kill_a_worker` is today's drill. Longer drills (several kills,
traffic through a virtual IP) are further sequences of the same steps.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ._common import LabError, LabTimeout, loadavg
from ._common import wait_until as _wait_until
from .membership import ABSENT, Membership

if TYPE_CHECKING:
    from .lab import Lab

GONE = ("expired", ABSENT)


@dataclass(frozen=True)
class DrillLimits:
    """How long each wait may take, and how the traffic runs. Callers choose
    the waits (the test tight, the bench loose); the rest has defaults."""

    detect_s: float  # kill -> Consul reports the node expired or gone
    reschedule_s: float  # kill -> the service's tasks all run again, none on the node
    rejoin_s: float  # start -> alive in Consul and Ready in the swarm
    ready_s: float = 180.0  # before the drill: the service's tasks running, the entry point answering
    lead_in_s: float = 2.0  # traffic before the kill
    settle_s: float = 10.0  # traffic after the failover, which must all succeed
    after_grace_s: float = 2.0  # the first seconds of settle_s are not counted as "after"
    request_interval_s: float = 0.25
    request_timeout_s: float = 3.0
    max_requests: int = 1200
    max_traffic_s: float = 400.0
    poll_interval_s: float = 1.0


@dataclass(frozen=True)
class Request:
    t: float  # seconds since the drill began (monotonic)
    status: int  # HTTP status; 0 when nothing answered
    node: str  # who answered, from the demo app's JSON ("" when unknown)
    end: float | None = None  # when the answer (or the failure) came; None: at once

    @property
    def ok(self) -> bool:
        return self.status == 200

    @property
    def done(self) -> float:
        return self.t if self.end is None else self.end


@dataclass(frozen=True)
class Poll:
    t: float
    states: dict[str, str]  # host -> alive / expiring / expired / absent
    ages: dict[str, float] = field(default_factory=dict)  # host -> seconds since its last heartbeat


@dataclass(frozen=True)
class Event:
    t: float
    what: str  # kill, expired, rescheduled, settled, traffic-stopped, start, rejoined
    host: str = ""


@dataclass
class DrillReport:
    kind: str
    service: str
    host_header: str
    via: str
    ttl_s: int
    limits: DrillLimits
    victim: str = ""
    events: list[Event] = field(default_factory=list)
    polls: list[Poll] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    load_1m_start: float | None = None
    load_1m_end: float | None = None
    error: str = ""
    victim_roles: set[str] = field(default_factory=set)  # consul-leader, swarm-leader, vip-holder
    vip_holders: list[str] = field(default_factory=list)  # sampled from the restart until after the rejoin
    # Reads that failed while the cluster was changing (no Consul or swarm leader
    # for a moment answers HTTP 500 / "no leader"): (seconds, what, message).
    transient_errors: list[tuple[float, str, str]] = field(default_factory=list)

    def time_of(self, what: str, host: str | None = None) -> float | None:
        """When an event first happened (seconds since the drill began)."""
        return next((e.t for e in self.events if e.what == what and (host is None or e.host == host)), None)

    def between(self, first: str, then: str) -> float | None:
        """Seconds from one event to a later one, None when either is missing."""
        t_first, t_then = self.time_of(first), self.time_of(then)
        return None if t_first is None or t_then is None else t_then - t_first

    def requests_in(self, start: float | None, end: float | None) -> list[Request]:
        """Requests sent in [start, end); None means open on that side."""
        return [
            r for r in self.requests if (start is None or r.t >= start) and (end is None or r.t < end)
        ]

    @property
    def detection_s(self) -> float | None:
        return self.between("kill", "expired")

    @property
    def reschedule_s(self) -> float | None:
        return self.between("kill", "rescheduled")

    @property
    def rejoin_s(self) -> float | None:
        return self.between("start", "rejoined")

    def _dying_from(self) -> float | None:
        """When the victim may have died: `docker kill` was issued (the node can die any moment until it
        returns, a few hundred milliseconds later under load); the kill's return for older reports."""
        issued = self.time_of("kill-issued")
        return issued if issued is not None else self.time_of("kill")

    def before(self) -> list[Request]:
        """Requests answered before the kill was issued (one still in flight when the node died is `during`)."""
        kill = self._dying_from()
        return [r for r in self.requests if kill is None or r.done < kill]

    def during(self) -> list[Request]:
        kill, rescheduled = self._dying_from(), self.time_of("rescheduled")
        return [r for r in self.requests
                if (kill is None or r.done >= kill) and (rescheduled is None or r.t < rescheduled)]

    def after(self) -> list[Request]:
        settled = self.time_of("rescheduled")
        start = None if settled is None else settled + self.limits.after_grace_s
        return self.requests_in(start, self.time_of("traffic-stopped")) if settled is not None else []

    def summary(self) -> dict[str, Any]:
        """The figures (the keys drill.json and the bench results have always had)."""

        def rounded(value: float | None) -> float | None:
            return None if value is None else round(value, 1)

        before, during, after = self.before(), self.during(), self.after()
        return {
            "kind": self.kind,
            "ttl_s": self.ttl_s,
            "victim": self.victim,
            "via": self.via,
            "detection_s": rounded(self.detection_s),
            "reschedule_s": rounded(self.reschedule_s),
            "rejoin_s": rounded(self.rejoin_s),
            "rejoin_measured_from": "docker start returned",
            "restart_at_s_after_kill": rounded(self.between("kill", "start")),
            "requests_total": len(self.requests),
            "requests_before": len(before),
            "failed_before": sum(not r.ok for r in before),
            "requests_during_failover": len(during),
            "failed_during_failover": sum(not r.ok for r in during),
            "requests_after_failover": len(after),
            "failed_after_failover": sum(not r.ok for r in after),
            "answered_by_during_failover": sorted({r.node for r in during if r.ok and r.node}),
            "membership_polls": len(self.polls),
            "reads_failed_while_changing": len(self.transient_errors),
            **self.master_figures(),
            "load_1m_start": self.load_1m_start,
            "load_1m_end": self.load_1m_end,
            **({"error": self.error} if self.error else {}),
        }

    def master_figures(self) -> dict[str, Any]:
        """The figures only a drill that kills a master has (empty otherwise)."""
        if self.kind != "kill-the-first-master":
            return {}
        kill = self.time_of("kill")
        first_ok = next((r.t for r in self.requests if kill is not None and r.t >= kill and r.ok), None)

        def since_kill(what: str) -> float | None:
            t = self.time_of(what)
            return None if t is None or kill is None else round(t - kill, 1)

        return {
            "victim_roles": sorted(self.victim_roles),
            "consul_leader_s": since_kill("consul-leader"),
            "swarm_leader_s": since_kill("swarm-leader"),
            "entry_point_back_s": None if first_ok is None or kill is None else round(first_ok - kill, 1),
            "survivor_polls_not_alive": self.survivors_not_alive(),
            "survivor_oldest_heartbeat_s": self.survivors_oldest_heartbeat(),
            "vip_holders_after_start": self.vip_holders,
        }

    def survivors_oldest_heartbeat(self) -> float | None:
        """The oldest heartbeat of a host other than the victim in any poll after the kill: how close a survivor
        came to its TTL (the margin the heartbeat keeps through the Consul leader election)."""
        kill = self.time_of("kill")
        ages = [a for p in self.polls if kill is not None and p.t >= kill
                for h, a in p.ages.items() if h != self.victim]
        return max(ages, default=None)

    def survivors_not_alive(self) -> list[dict[str, Any]]:
        """Every poll after the kill in which a host other than the victim was not alive (the drill wants none)."""
        kill = self.time_of("kill")
        return [
            {"t": p.t, "host": h, "state": s}
            for p in self.polls if kill is not None and p.t >= kill
            for h, s in p.states.items() if h != self.victim and s not in ("alive", "expiring")
        ]

    def write(self, path: Path) -> dict[str, Any]:
        """The whole timeline to `path` (JSON); the figures printed (to the test
        log) and returned."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        summary = self.summary()
        print(json.dumps(summary))
        return summary

    def to_dict(self) -> dict[str, Any]:
        """Summary, limits and the whole timeline (events, polls, requests)."""
        return {
            **self.summary(),
            "limits": asdict(self.limits),
            "events": [asdict(e) for e in self.events],
            "polls": [asdict(p) for p in self.polls],
            "transient_errors": [list(e) for e in self.transient_errors],
            "requests": [asdict(r) for r in self.requests],
        }


class DrillFailed(LabError):
    """A drill step ran out of time; `report` holds what was recorded."""

    def __init__(self, message: str, report: DrillReport) -> None:
        super().__init__(message)
        self.report = report


class DrillRun:
    """The steps of a drill on one lab, recorded into one report.

    Use as a context manager: on the way out the traffic stops and every node
    the drill killed and did not start again is started, whatever happened.
    """

    def __init__(
        self, lab: Lab, *, kind: str, service: str, host_header: str, via: str | None, ttl: int, limits: DrillLimits
    ) -> None:
        self.lab = lab
        self.limits = limits
        self.report = DrillReport(kind=kind, service=service, host_header=host_header, via=via or lab.first_master,
                                  ttl_s=ttl, limits=limits)
        self._t0 = time.monotonic()
        self._down: set[str] = set()
        self._stop = threading.Event()
        self._loader: threading.Thread | None = None

    def __enter__(self) -> DrillRun:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop_traffic()
        for host in sorted(self._down):
            try:
                self.start(host)
            except LabError as err:
                self.report.error += f"; could not start {host} again: {err}"
        self.report.load_1m_end = loadavg()
        if isinstance(exc, LabError) and not isinstance(exc, DrillFailed):
            self.report.error = str(exc) + self.report.error
            raise DrillFailed(f"{self.report.kind} drill: {exc}", self.report) from exc

    def now(self) -> float:
        return time.monotonic() - self._t0

    def event(self, what: str, host: str = "") -> float:
        t = self.now()
        self.report.events.append(Event(round(t, 3), what, host))
        return t

    # -- traffic ------------------------------------------------------------------

    def start_traffic(self) -> None:
        """A bounded request loop through the entry point, in the background."""
        limits = self.limits
        self._stop.clear()

        def loop() -> None:
            began = time.monotonic()
            for _request in range(limits.max_requests):
                if self._stop.is_set() or time.monotonic() - began > limits.max_traffic_s:
                    return
                t = self.now()
                answer = self.lab.http(self.report.host_header, via=self.report.via, timeout=limits.request_timeout_s)
                node = ""
                if answer.ok:
                    try:
                        node = str(answer.json().get("node", ""))
                    except (ValueError, AttributeError):
                        node = ""
                self.report.requests.append(Request(round(t, 3), answer.status, node, round(self.now(), 3)))
                self._stop.wait(limits.request_interval_s)

        self._loader = threading.Thread(target=loop, name="drill-traffic", daemon=True)
        self._loader.start()

    def stop_traffic(self) -> None:
        if self._loader is None:
            return
        self._stop.set()
        self._loader.join(timeout=self.limits.request_timeout_s + 10)
        self._loader = None
        self.event("traffic-stopped")

    # -- steps ----------------------------------------------------------------------

    def kill(self, host: str) -> None:
        if self.report.load_1m_start is None:
            self.report.load_1m_start = loadavg()
        self.event("kill-issued", host)
        self.lab.kill(host)
        self._down.add(host)
        self.event("kill", host)

    def start(self, host: str) -> None:
        self.lab.start(host)
        self._down.discard(host)
        self.event("start", host)

    def poll_members(self) -> Membership:
        """One membership poll through a master that runs, recorded with every host's state."""
        members = self.lab.members(via=self.lab.live_master(besides=sorted(self._down)))
        states = {h: members.state_of(self.lab.address(h)) for h in self.lab.hosts()}
        found = {h: members.by_ip(self.lab.address(h)) for h in self.lab.hosts()}
        ages = {h: float(m.seconds_since_heartbeat) for h, m in found.items()
                if m is not None and m.seconds_since_heartbeat is not None}
        self.report.polls.append(Poll(round(self.now(), 3), states, ages))
        return members

    def wait_gone(self, host: str) -> None:
        """Until Consul reports the host expired (or holds no key for it)."""
        self._wait(f"{host} expired in Consul", lambda: self.poll_members().state_of(self.lab.address(host)) in GONE,
                   self.limits.detect_s, "expired", host)

    def wait_rescheduled(self, off: str, replicas: int) -> None:
        """Until `replicas` tasks of the service run, none on `off`."""

        def moved() -> bool:
            tasks = self.lab.service_tasks(self.report.service)
            return len(tasks) == replicas and off not in tasks

        self._wait(f"{self.report.service} back to {replicas} running tasks off {off}", moved, self.limits.reschedule_s,
                   "rescheduled", off)

    def settle(self) -> None:
        """Let traffic run on after the failover (those requests must all succeed)."""
        time.sleep(self.limits.settle_s)
        self.event("settled")

    def wait_rejoined(self, host: str) -> None:
        """Until the host is alive in Consul and Ready in the swarm again."""

        def back() -> bool:
            if self.poll_members().state_of(self.lab.address(host)) != "alive":
                return False
            return any(n.hostname == host and n.status == "Ready" for n in self.lab.swarm_nodes())

        self._wait(f"{host} alive in Consul and Ready in the swarm again", back, self.limits.rejoin_s, "rejoined", host)

    def wait_availability(self, host: str, availability: str, limit: float, event: str) -> None:
        """Until the swarm holds the host's availability as `availability` (Active, Drain, Pause)."""

        def reached() -> bool:
            nodes = self.lab.swarm_nodes(via=self.lab.live_master(besides=sorted(self._down)))
            return any(n.hostname == host and n.availability == availability for n in nodes)

        self._wait(f"{host} {availability} in the swarm", reached, limit, event, host)

    def wait_consul_leader(self, other_than: str) -> None:
        """Until a Consul server other than `other_than` is the raft leader."""
        gone = f"{self.lab.address(other_than)}:"

        def elected() -> bool:
            self.poll_members()
            leader = self.lab.consul_leader(via=self.lab.live_master(besides=sorted(self._down)))
            return bool(leader) and not leader.startswith(gone)

        self._wait("a new Consul leader", elected, self.limits.detect_s, "consul-leader", other_than)

    def wait_swarm_leader(self, other_than: str) -> None:
        """Until a manager other than `other_than` leads the swarm."""

        def elected() -> bool:
            self.poll_members()
            nodes = self.lab.swarm_nodes(via=self.lab.live_master(besides=sorted(self._down)))
            return any(n.manager_status == "Leader" and n.hostname != other_than for n in nodes)

        self._wait("a new swarm leader", elected, self.limits.detect_s, "swarm-leader", other_than)

    def watch_vip(self, seconds: float) -> None:
        """Sample who holds the virtual IP for a while (a returning master must not take it back)."""
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            self.report.vip_holders.append(self.lab.vip_holder())
            time.sleep(1.0)

    def _wait(self, what: str, predicate: Callable[[], bool], limit: float, event: str, host: str) -> None:
        """Until the predicate holds. While masters die and leaders change, a
        read may fail for a moment (Consul answers HTTP 500 until a new raft
        leader is elected, `docker node ls` until the swarm has one): such a
        failure counts as "not yet" and is recorded; if the limit passes, the
        last one is in the error."""

        def tolerant() -> bool:
            try:
                return predicate()
            except LabError as err:
                self.report.transient_errors.append((round(self.now(), 3), what, str(err)[:500]))
                return False

        try:
            _wait_until(what, tolerant, limit, self.limits.poll_interval_s)
        except LabTimeout as err:
            last = [e for e in self.report.transient_errors if e[1] == what][-1:]
            raise LabTimeout(f"{err}" + (f" (last failed read: {last[0][2]})" if last else "")) from None
        self.event(event, host)


def kill_a_worker(
    lab: Lab,
    *,
    ttl: int,
    limits: DrillLimits,
    service: str,
    host_header: str,
    replicas: int,
    victim: str | None,
    via: str | None,
    while_down: Callable[[DrillRun], None] | None = None,
    after_rejoin: Callable[[DrillRun], None] | None = None,
) -> DrillReport:
    """Pull a worker that holds a task of the service: it expires in Consul,
    its task comes back elsewhere, the entry point keeps serving, and it
    rejoins cleanly once started again. `while_down` runs with it still down,
    `after_rejoin` once it is back (checks of the reconciler, say)."""
    _wait_until(f"{replicas} running {service} tasks", lambda: len(lab.service_tasks(service)) == replicas,
                limits.ready_s, interval=2)
    _wait_until(f"the entry point serving {host_header}", lambda: lab.http(host_header, via=via).ok,
                limits.ready_s)
    masters = set(lab.hosts("masters"))
    if victim is None:
        victim = next((n for n in lab.service_tasks(service) if n not in masters), None)
        if victim is None:
            raise LabError(f"no worker holds a running {service} task; the drill needs one")
    with DrillRun(lab, kind="kill-a-worker", service=service, host_header=host_header, via=via, ttl=ttl,
                  limits=limits) as run:
        run.report.victim = victim
        run.start_traffic()
        time.sleep(limits.lead_in_s)
        run.kill(victim)
        run.wait_gone(victim)
        run.wait_rescheduled(victim, replicas)
        run.settle()
        if while_down is not None:
            while_down(run)
        run.stop_traffic()
        run.start(victim)
        run.wait_rejoined(victim)
        if after_rejoin is not None:
            after_rejoin(run)
    return run.report


def make_first_master_lead(lab: Lab, master: str, limit: float) -> set[str]:
    """Make `master` the Consul leader, the swarm leader and the virtual IP's holder where the lab allows it,
    so killing it is the worst case; return the roles it holds."""
    if lab.vip and lab.vip_holder() not in ("", master):
        # The holder gives the address up; of the backups the highest priority (the first master) takes it.
        lab.sh(lab.vip_holder(), ["systemctl", "restart", "keepalived"])
        _wait_until(f"{master} holding the virtual IP", lambda: lab.vip_holder() == master, limit)
    lab.transfer_consul_leadership(master)
    _wait_until(f"{master} leading Consul", lambda: lab.consul_leader(via=master).startswith(f"{lab.address(master)}:"),
                limit)
    roles = {"consul-leader"}
    if any(n.hostname == master and n.manager_status == "Leader" for n in lab.swarm_nodes(via=master)):
        roles.add("swarm-leader")
    if lab.vip and lab.vip_holder() == master:
        roles.add("vip-holder")
    return roles


def kill_the_first_master(
    lab: Lab,
    *,
    ttl: int,
    limits: DrillLimits,
    service: str,
    host_header: str,
    replicas: int,
    while_down: Callable[[DrillRun], None] | None = None,
    vip_watch_s: float = 15.0,
) -> DrillReport:
    """Pull the first master (made Consul leader, swarm leader and holder of
    the virtual IP first) while requests run through the entry point (the
    virtual IP): a new Consul leader and a new swarm leader are elected, the
    entry point answers again, every other member stays alive throughout,
    the dead master expires; `while_down` runs with it still down (checks of
    the dashboard, say); then it comes back, rejoins once, and the virtual
    IP stays where it is."""
    victim = lab.first_master
    via = lab.entry_point
    lab.wait_whole(limits.ready_s)
    _wait_until(f"{replicas} running {service} tasks", lambda: len(lab.service_tasks(service)) == replicas,
                limits.ready_s, interval=2)
    _wait_until(f"the entry point serving {host_header}", lambda: lab.http(host_header, via=via).ok, limits.ready_s)
    roles = make_first_master_lead(lab, victim, limits.ready_s)
    with DrillRun(lab, kind="kill-the-first-master", service=service, host_header=host_header, via=via, ttl=ttl,
                  limits=limits) as run:
        run.report.victim = victim
        run.report.victim_roles = roles
        run.start_traffic()
        time.sleep(limits.lead_in_s)
        run.kill(victim)
        run.wait_consul_leader(victim)
        run.wait_swarm_leader(victim)
        run.wait_gone(victim)
        run.wait_rescheduled(victim, replicas)
        run.settle()
        if while_down is not None:
            while_down(run)
        run.stop_traffic()
        run.start(victim)
        run.wait_rejoined(victim)
        run.watch_vip(vip_watch_s)
    return run.report
