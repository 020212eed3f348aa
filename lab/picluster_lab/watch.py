"""Watch a lab's membership in Consul while something changes the cluster.

`MembershipWatch` polls the first master's Consul on a thread, every half
second, the way the swarm_members module reads it (a recursive read of the
membership prefix and the session list, judged by the collection's own
plugins/module_utils/_membership.py, which is standard library only), and
keeps every poll with a monotonic timestamp. Its report says, per member,
the longest time Consul did not count it alive (absent or expired) and the
longest time between two heartbeats it wrote: during an upgrade of Consul
itself the API changes under the watcher (plain HTTP, then HTTPS with the
role's CA, tokens appearing), so each poll tries the secure way first and
falls back, and a poll Consul does not answer is recorded as such.
"""

from __future__ import annotations

import importlib.util
import json
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from ._common import REPORTS, ROOT, LabError, LabTimeout, wait_until

if TYPE_CHECKING:
    from .lab import Lab

PREFIX = "docker/swarm/nodes"
NOT_ALIVE = ("absent", "expired")


def membership_logic() -> ModuleType:
    """The collection's plugins/module_utils/_membership.py (what the module and the heartbeat use)."""
    path = ROOT / "plugins" / "module_utils" / "_membership.py"
    spec = importlib.util.spec_from_file_location("picluster_membership", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class Poll:
    t: float  # monotonic seconds since the watch started
    ok: bool
    way: str  # how Consul answered (https+token, http, ...) or why it did not
    states: dict[str, str] = field(default_factory=dict)  # ip -> alive/expiring/expired
    heartbeats: dict[str, float] = field(default_factory=dict)  # ip -> heartbeat time the node wrote


@dataclass
class MemberFigures:
    ip: str
    longest_not_alive_s: float  # absent or expired, between polls that saw it so
    longest_between_heartbeats_s: float  # between two heartbeats it wrote (seen in polls)
    polls_expiring: int


@dataclass
class WatchReport:
    interval_s: float
    duration_s: float
    polls: int
    polls_unanswered: int
    longest_unanswered_s: float
    members: list[MemberFigures]
    timeline: list[Poll]

    @property
    def longest_not_alive_s(self) -> float:
        return max((m.longest_not_alive_s for m in self.members), default=0.0)

    @property
    def longest_between_heartbeats_s(self) -> float:
        return max((m.longest_between_heartbeats_s for m in self.members), default=0.0)

    def summary(self) -> dict[str, Any]:
        return {
            "duration_s": round(self.duration_s, 1),
            "polls": self.polls,
            "polls_unanswered": self.polls_unanswered,
            "longest_unanswered_s": round(self.longest_unanswered_s, 1),
            "longest_not_alive_s": round(self.longest_not_alive_s, 1),
            "longest_between_heartbeats_s": round(self.longest_between_heartbeats_s, 1),
            "members": [asdict(m) for m in self.members],
        }

    def to_dict(self) -> dict[str, Any]:
        return {**self.summary(), "interval_s": self.interval_s, "timeline": [asdict(p) for p in self.timeline]}


class MembershipWatch:
    """`with MembershipWatch(lab, ips) as watch: ...` then `watch.report()`."""

    def __init__(self, lab: Lab, ips: list[str], *, interval: float = 0.5, via: str | None = None) -> None:
        self.lab = lab
        self.ips = list(ips)
        self.interval = interval
        self.address = lab.address(via or lab.first_master)
        self.logic = membership_logic()
        self.polls: list[Poll] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="membership-watch", daemon=True)
        self._t0 = 0.0
        self._way = 0

    def __enter__(self) -> MembershipWatch:
        self._t0 = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _ways(self) -> list[tuple[str, bool, str | None]]:
        """(name, tls, token) in the order to try: the secure way once the role has made its CA and token."""
        access = self.lab.consul_access
        token = access.token("read")
        ways = []
        if access.tls:
            ways.append(("https+token", True, token))
        ways += [("http+token", False, token), ("http", False, None)] if token else [("http", False, None)]
        return ways

    def _read(self) -> tuple[str, list[Any], list[Any]] | str:
        """(way, kv entries, sessions), or why no way answered."""
        access = self.lab.consul_access
        ways = self._ways()
        errors = []
        for offset in range(len(ways)):
            name, tls, token = ways[(self._way + offset) % len(ways)]
            kv = access.request(self.address, f"/v1/kv/{PREFIX}/?recurse=true", token=token, tls=tls, timeout=3)
            if kv.status not in (200, 404):
                errors.append(f"{name}: {kv.status or kv.body}")
                continue
            sessions = access.request(self.address, "/v1/session/list", token=token, tls=tls, timeout=3)
            if sessions.status != 200:
                errors.append(f"{name}: sessions {sessions.status or sessions.body}")
                continue
            self._way = (self._way + offset) % len(ways)
            return name, (kv.json() or []) if kv.status == 200 else [], sessions.json() or []
        return "; ".join(errors)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            answer = self._read()
            moment = started - self._t0
            if isinstance(answer, str):
                self.polls.append(Poll(moment, False, answer))
            else:
                way, entries, sessions = answer
                members, _invalid = self.logic.collect_members(PREFIX, entries, sessions)
                seen = {m["ip"]: m for m in members}
                states = {ip: seen[ip]["state"] if ip in seen else "absent" for ip in self.ips}
                beats = {ip: seen[ip]["heartbeat"] for ip in self.ips if ip in seen and seen[ip]["heartbeat"]}
                self.polls.append(Poll(moment, True, way, states, beats))
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))

    def report(self) -> WatchReport:
        polls = list(self.polls)
        answered = [p for p in polls if p.ok]
        members = [self._figures(ip, answered) for ip in self.ips]
        return WatchReport(
            interval_s=self.interval,
            duration_s=polls[-1].t if polls else 0.0,
            polls=len(polls),
            polls_unanswered=len(polls) - len(answered),
            longest_unanswered_s=_longest_run(polls, lambda p: not p.ok),
            members=members,
            timeline=polls,
        )

    @staticmethod
    def _figures(ip: str, answered: list[Poll]) -> MemberFigures:
        beats = sorted({p.heartbeats[ip] for p in answered if ip in p.heartbeats})
        between = max((b - a for a, b in zip(beats, beats[1:])), default=0.0)
        return MemberFigures(
            ip=ip,
            longest_not_alive_s=round(_longest_run(answered, lambda p: p.states.get(ip) in NOT_ALIVE), 1),
            longest_between_heartbeats_s=round(between, 1),
            polls_expiring=sum(1 for p in answered if p.states.get(ip) == "expiring"),
        )


def _longest_run(polls: list[Poll], bad: Any) -> float:
    """Longest time from the first poll of a run of `bad` polls to the next good one (or the last poll)."""
    longest, since = 0.0, None
    for poll in polls:
        if bad(poll):
            since = poll.t if since is None else since
        elif since is not None:
            longest, since = max(longest, poll.t - since), None
    if since is not None and polls:
        longest = max(longest, polls[-1].t - since)
    return longest


def watch_until(lab: Lab, out: Path, stop_file: Path, max_seconds: float, *, interval: float = 0.5,
                ready_file: Path | None = None) -> WatchReport:
    """Watch every host's membership until `stop_file` appears (or `max_seconds` pass), then write the
    report as JSON to `out` (the file appears whole: written aside, then renamed). `ready_file`, when
    given, appears once a poll has been answered: whoever started the watch in the background waits for
    it, so what it does next (an upgrade) is watched from its first step."""
    out.parent.mkdir(parents=True, exist_ok=True)
    stop_file.unlink(missing_ok=True)
    out.unlink(missing_ok=True)
    if ready_file is not None:
        ready_file.unlink(missing_ok=True)
    ips = [lab.address(host) for host in lab.hosts()]
    started = time.monotonic()
    running = _running_marker(stop_file)
    running.touch()
    try:
        with MembershipWatch(lab, ips, interval=interval) as watch:
            while not stop_file.exists() and time.monotonic() - started < max_seconds:
                if ready_file is not None and not ready_file.exists() and any(p.ok for p in list(watch.polls)):
                    ready_file.touch()
                time.sleep(0.5)
    finally:
        running.unlink(missing_ok=True)
        if ready_file is not None:
            ready_file.unlink(missing_ok=True)
    report = watch.report()
    partial = out.with_suffix(".partial")
    partial.write_text(json.dumps({**report.to_dict(), "stopped_by": "stop file" if stop_file.exists() else
                                   f"{max_seconds:.0f} s limit"}, indent=1))
    partial.replace(out)
    return report


def watch_files(name: str) -> tuple[Path, Path]:
    """Where `python3 lab watch` writes a lab's report, and the file that stops it."""
    return REPORTS / f"{name}-watch.json", REPORTS / f"{name}-watch.stop"


def _running_marker(stop_file: Path) -> Path:
    """Present while a watch runs (`lab down` then stops it; with none running it leaves no stop file)."""
    return stop_file.with_suffix(".running")


def end_running_watch(name: str) -> None:
    """Ask the watch of lab `name` to stop, if one runs (no waiting, no report read)."""
    _out, stop_file = watch_files(name)
    if _running_marker(stop_file).exists():
        stop_file.touch()


def stop_watch(name: str, timeout: float = 60) -> dict[str, Any]:
    """Stop the background watch of lab `name` and return its report (as written)."""
    out, stop_file = watch_files(name)
    stop_file.parent.mkdir(parents=True, exist_ok=True)
    stop_file.touch()
    try:
        wait_until(f"the watch report {out}", out.exists, timeout, 0.5)
    except LabTimeout:
        raise LabError(f"no watch report at {out} {timeout:.0f} s after asking it to stop: was the watch started "
                       f"(python3 lab watch --name {name}), and is it still running? (its output: "
                       f"{REPORTS}/*watch.log)") from None
    return json.loads(out.read_text())
