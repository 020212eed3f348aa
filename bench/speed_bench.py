# Copyright (c) 2025 picluster.swarm developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmark (not a test): site.yml's converge time now against a baseline commit, side by side.

Issue 19 asks for the whole site.yml on 1 master + 5 nodes, cold and
idempotent, as a ratio to the baseline commit 42f445c measured in the same run
on the same machine. The baseline is checked out into a temporary git worktree
(removed afterwards) and runs its own site.yml with its own ansible.cfg, so its
own roles and collections path; the current checkout runs playbooks/site.yml
through its root site.yml. Both run from the same venv (same ansible-core).

Two labs of the same size from the same node image are up at once, one per
side (`speed-base` and `speed-now`, with PICLUSTER_LAB_PREFIX): the two sides'
roles write different files and services, so one lab shared between them
would make every run a partial re-converge of the other side's work, and
resetting a lab between runs would cost a cold converge each time. With both
labs up, each side's idle cluster loads the machine for the other side's runs
equally. Runs never overlap; they alternate:
  - cold: both labs fresh (nodes booted, engines running, app images loaded,
    no controller-side PKI), one cold site.yml each; with --cold-rounds 2 the
    labs are made fresh again and the order swaps;
  - idempotent: baseline, current, current-full, baseline, ... (--rounds rounds;
    current-full is the current checkout with its fast path off,
    -e site_state_fast_path=false, left out with --no-full-runs) with
    Ansible's default strategy, then the same with Mitogen's mitogen_linear
    (the lab's hosts on Mitogen's `docker` transport: Lab.mitogen_inventory).
    --variant NAME=VAR=VALUE[,VAR=VALUE] adds a run of the current checkout
    with more environment (e.g. ANSIBLE_FORKS=20) to each round: a lever
    measured beside the runs it is compared with.
Each run records its wall time (time.monotonic), the changed count (0 is
expected of an idempotent run; a run that fails is recorded, not raised), the
tasks per host (ok + skipped + failed in the recap), the 1-minute load before
and after, and the time of each task (ansible.posix.profile_tasks).

Writes bench/results/speed.json (or --results) and the speed section of
docs/benchmarks.md. Every wait is bounded; the labs are removed at the end
(also on failure) unless --keep-labs.

Usage (with the Makefile's environment, as scripts/bench.sh sets it):
    python3 bench/speed_bench.py [--baseline 42f445c] [--nodes 5] [--rounds 2] [--cold-rounds 1]
                                 [--strategies default,mitogen] [--variant NAME=VAR=VALUE,...] [--keep-labs]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lab"))

import cluster_bench as cb
import picluster_lab
from picluster_lab import Lab, LabError, loadavg
from picluster_lab.lab import MITOGEN_ENV

RESULTS = cb.ROOT / "bench" / "results" / "speed.json"
BASELINE = "42f445c"
STRATEGIES = ("default", "mitogen")
# profile_tasks' summary after the recap: "role : task name ---- 1.23s".
PROFILE_LINE = re.compile(r"^(.+?) -{3,} (\d+\.\d+)s\s*$", re.M)
PROFILE_KEPT = 40  # slowest tasks kept per run in the JSON
# What each lever gave and which were kept (docs/benchmarks.md, above the figures).
LEVERS = (cb.ROOT / "bench" / "speed_levers.md").read_text().rstrip()  # kept by hand, beside the figures


@dataclass
class Side:
    """One checkout converging one lab."""

    name: str  # "baseline", "current" or a variant's name
    checkout: Path
    lab_name: str
    rev: str
    extra_env: Dict[str, str] = field(default_factory=dict)
    lab: Optional[Lab] = None
    extra_args: tuple = ()  # more ansible-playbook arguments (the full-run side: -e site_state_fast_path=false)

    @property
    def site(self) -> str:
        return "site.yml"  # at the root in both layouts (now it imports playbooks/site.yml)


def git(*argv: str, cwd: Path = cb.ROOT) -> str:
    return cb.run(["git", *argv], cwd=cwd, timeout=300).stdout.strip()


def add_worktree(rev: str) -> Path:
    """The baseline's tree, checked out apart from ours (removed by remove_worktree)."""
    where = Path(tempfile.mkdtemp(prefix=f"picluster-speed-{rev}-"))
    git("worktree", "add", "--detach", str(where), rev)
    return where


def remove_worktree(where: Path) -> None:
    cb.run(["git", "worktree", "remove", "--force", str(where)], check=False, timeout=300)
    shutil.rmtree(where, ignore_errors=True)
    cb.run(["git", "worktree", "prune"], check=False, timeout=300)


def fresh_lab(side: Side, nodes: int) -> None:
    """Boot the side's lab anew, with the app images and no PKI left on the controller."""
    picluster_lab.down(side.lab_name)
    picluster_lab.up(side.lab_name, masters=1, nodes=nodes)
    side.lab = Lab(side.lab_name)
    picluster_lab.check(side.lab)
    picluster_lab.load_images(side.lab)
    # The CA, certificates, gossip key and dashboard login a cold run makes
    # on the controller are kept beside the inventory: a cold run starts without.
    shutil.rmtree(side.lab.inventory.path.parent / "pki", ignore_errors=True)


def environment(base_env: Dict[str, str], side: Side, strategy: str) -> Dict[str, str]:
    env = dict(base_env)
    env.update(
        ANSIBLE_CONFIG=str(side.checkout / "ansible.cfg"),
        ANSIBLE_CALLBACKS_ENABLED="ansible.posix.profile_tasks",
        PROFILE_TASKS_TASK_OUTPUT_LIMIT="all",
    )
    if strategy == "mitogen":
        env.update(MITOGEN_ENV)
    env.update(side.extra_env)
    return env


def profile(log_text: str) -> List[List[Any]]:
    """The slowest tasks of a run, from profile_tasks' summary: [[task, seconds], ...]."""
    tail = log_text.split("PLAY RECAP", 1)[-1]
    tasks = [[name.strip(), float(secs)] for name, secs in PROFILE_LINE.findall(tail)]
    return sorted(tasks, key=lambda t: -t[1])[:PROFILE_KEPT]


FATAL = re.compile(r"^fatal: \[([^\]]+)\]: FAILED! =>.*?\n\s+msg: (.+?)(?:\n\s*\n|\n\S)", re.S | re.M)


def first_failure(log_text: str) -> str:
    """The first failed task of a run's log: task, host and message (without a command line), on one line."""
    m = FATAL.search(log_text)
    if not m:
        return ""
    tasks = re.findall(r"^TASK \[(.+?)\]", log_text[: m.start()], re.M)
    message = " ".join(m.group(2).split()).split(" Command was:")[0]
    return f"task `{tasks[-1] if tasks else '?'}` on {m.group(1)}: {message[:300]}"


def converge(side: Side, kind: str, strategy: str, number: int, *, base_env: Dict[str, str],
             logs: Path) -> Dict[str, Any]:
    """One timed site.yml run; a failure is recorded in the figures, not raised."""
    assert side.lab is not None
    label = f"{kind}-{strategy}-{side.name}-{number}"
    cb.log(f"{label}: site.yml on {side.lab_name} from {side.rev} (load {loadavg()})")
    figures: Dict[str, Any] = {"kind": kind, "side": side.name, "strategy": strategy, "round": number,
                               "rev": side.rev, "lab": side.lab_name, "load_1m_start": loadavg()}
    overlays = [side.lab.mitogen_inventory(logs)] if strategy == "mitogen" else []
    t0 = time.monotonic()
    try:
        _wall, recap = cb.playbook(side.lab, logs, label, side.site, *side.extra_args,
                                   env=environment(base_env, side, strategy), cwd=side.checkout, overlays=overlays)
    except cb.BenchError as err:
        figures["error"] = str(err)[-1500:]
        recap = {}
    figures["wall_s"] = round(time.monotonic() - t0, 1)
    figures["load_1m_end"] = loadavg()
    log_file = logs / f"{label}.log"
    text = log_file.read_text() if log_file.exists() else ""
    if "error" in figures and first_failure(text):
        figures["error"] = first_failure(text)
    figures.update(
        changed_total=sum(r["changed"] for r in recap.values()),
        changed_per_host={h: r["changed"] for h, r in recap.items()},
        tasks_per_host={h: r["ok"] + r["skipped"] + r["failed"] for h, r in recap.items()},
        profile=profile(text),
    )
    state = "FAILED" if "error" in figures else f"changed={figures['changed_total']}"
    cb.log(f"{label}: {figures['wall_s']} s, {state}, load {figures['load_1m_start']} -> {figures['load_1m_end']}")
    return figures


# --- the summary -------------------------------------------------------------------


def walls(runs: List[Dict[str, Any]], kind: str, side: str, strategy: str) -> List[float]:
    return [r["wall_s"] for r in runs
            if r["kind"] == kind and r["side"] == side and r["strategy"] == strategy and "error" not in r]


def summarise(runs: List[Dict[str, Any]]) -> Dict[str, Any]:
    """Median wall time per kind, side and strategy, and current / baseline ratios."""
    out: Dict[str, Any] = {}
    keys = sorted({(r["kind"], r["strategy"], r["side"]) for r in runs})
    for kind, strategy, side in keys:
        got = walls(runs, kind, side, strategy)
        related = [r for r in runs if (r["kind"], r["strategy"], r["side"]) == (kind, strategy, side)]
        out.setdefault(kind, {}).setdefault(strategy, {})[side] = {
            "median_s": round(statistics.median(got), 1) if got else None,
            "runs_s": got,
            "failed_runs": sum("error" in r for r in related),
            "changed_totals": [r.get("changed_total") for r in related],
            "load_1m": [x for r in related for x in (r["load_1m_start"], r["load_1m_end"])],
        }
    for strategies in out.values():
        for sides in strategies.values():
            base = (sides.get("baseline") or {}).get("median_s")
            for name, figures in sides.items():
                if name != "baseline" and base and figures["median_s"]:
                    figures["ratio_to_baseline"] = round(figures["median_s"] / base, 3)
    return out


def task_costs(runs: List[Dict[str, Any]], side: str = "current", strategy: str = "default") -> List[List[Any]]:
    """The current side's slowest tasks over its idempotent runs (median seconds per task)."""
    per_task: Dict[str, List[float]] = {}
    chosen = [r for r in runs if r["kind"] == "idempotent" and r["side"] == side and r["strategy"] == strategy]
    for r in chosen:
        for name, secs in r.get("profile", []):
            per_task.setdefault(name, []).append(secs)
    ranked = sorted(((name, round(statistics.median(s), 2)) for name, s in per_task.items()), key=lambda t: -t[1])
    return [list(t) for t in ranked[:25]]


# --- the report --------------------------------------------------------------------


def fmt_s(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{value:.0f} s" if value >= 100 else f"{value:.1f} s"


def section(results: Dict[str, Any]) -> str:
    """The speed section of docs/benchmarks.md, from bench/results/speed.json."""
    summary, runs = results.get("summary", {}), results.get("runs", [])
    if not runs:
        return "Not measured yet: run `python3 bench/speed_bench.py`."
    rows = []
    for kind in ("cold", "idempotent"):
        for strategy, sides in summary.get(kind, {}).items():
            for name, f in sides.items():
                changed = ", ".join(str(c) for c in f["changed_totals"]) if not f["failed_runs"] else "-"
                failed = f" ({f['failed_runs']} failed)" if f["failed_runs"] else ""
                ratio = ("1" if f["median_s"] else "-") if name == "baseline" else f.get("ratio_to_baseline", "-")
                loads = f["load_1m"]
                rows.append(
                    f"| {kind} | {strategy} | {name} | {fmt_s(f['median_s'])}{failed} "
                    f"| {', '.join(fmt_s(x) for x in f['runs_s']) or 'n/a'} "
                    f"| {ratio} | {changed} "
                    f"| {min(loads) if loads else 'n/a'} to {max(loads) if loads else 'n/a'} |"
                )
    tasks = {r["side"]: r["tasks_per_host"] for r in runs if r["kind"] == "idempotent" and r.get("tasks_per_host")}
    task_lines = "\n".join(
        f"- {side}: " + ", ".join(f"{h} {n}" for h, n in sorted(counts.items())) for side, counts in tasks.items()
    )
    costs = "\n".join(f"| {name} | {secs} s |" for name, secs in results.get("task_costs", []))
    failures = sorted({f"- {r['kind']}, {r['strategy']}, {r['side']}: {r['error']}" for r in runs if "error" in r})
    failure_lines = ("\n\nWhy runs failed (the first failed task):\n\n" + "\n".join(failures)) if failures else ""
    variants = "".join(f"\n- `{name}`: {' '.join(f'{k}={v}' for k, v in env.items())}"
                       for name, env in results.get("variants", {}).items())
    return (
        f"Measured {results.get('updated', '?')} on 1 master + {results.get('nodes')} nodes, two labs of the same "
        f"image up at once, against the baseline {results.get('baseline', {}).get('rev')} "
        f"({results.get('baseline', {}).get('subject', '')}); current: {results.get('current', {}).get('rev')}. "
        f"Runs alternate baseline / current; medians of the runs listed. Ratio: current / baseline median "
        f"(goals: idempotent at most 0.25 with the default strategy, under 20 s with Mitogen; cold at most 0.5)."
        f"{variants}\n\n"
        "| run | strategy | side | median | runs | ratio | changed | load 1m (min to max) |\n"
        "|---|---|---|---|---|---|---|---|\n" + "\n".join(rows) + failure_lines +
        f"\n\nTasks per host in an idempotent run (ok + skipped + failed):\n\n{task_lines}\n\n"
        "The slowest tasks of the roles in the idempotent runs with the default strategy (current-full when it ran, "
        "else current; median over the runs; each is the time from the task's start to the next task's, across "
        "all hosts):\n\n"
        "| task | median |\n|---|---|\n" + costs
    )


def write(results: Dict[str, Any], path: Path, doc: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
    if doc:
        cb.replace_section("speed", "## Converge speed against the baseline (`bench/speed_bench.py`)\n\n"
                           + LEVERS + "\n\n" + section(results))


# --- the run -----------------------------------------------------------------------


def parse_variant(text: str) -> tuple[str, Dict[str, str]]:
    name, _, assignments = text.partition("=")
    env = dict(part.split("=", 1) for part in assignments.split(",") if "=" in part)
    if not name or not env:
        raise argparse.ArgumentTypeError(f"--variant {text!r}: give NAME=VAR=VALUE[,VAR=VALUE]")
    return name, env


def bench(args: argparse.Namespace, results: Dict[str, Any], out: Path) -> None:
    base_env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    logs = cb.WORK / picluster_lab.prefixed("speed")
    runs: List[Dict[str, Any]] = results["runs"]
    worktree = add_worktree(args.baseline)
    baseline = Side("baseline", worktree, picluster_lab.prefixed("speed-base"), git("rev-parse", "--short", "HEAD",
                                                                                     cwd=worktree))
    current = Side("current", cb.ROOT, picluster_lab.prefixed("speed-now"), results["current"]["rev"])
    variants = [Side(name, cb.ROOT, current.lab_name, current.rev, env) for name, env in args.variant]
    if args.full_runs:
        # The roles' own cost: the current checkout with its fast path off (what a re-run costs when
        # something did change, and what every run cost before the fast path).
        variants.insert(0, Side("current-full", cb.ROOT, current.lab_name, current.rev,
                                extra_args=("-e", "site_state_fast_path=false")))
    sides = [baseline, current]
    try:
        for number in range(1, args.cold_rounds + 1):
            cb.log(f"cold round {number}: fresh labs {baseline.lab_name} and {current.lab_name}")
            for side in sides:
                fresh_lab(side, args.nodes)
            for side in sides if number % 2 else sides[::-1]:
                runs.append(converge(side, "cold", "default", number, base_env=base_env, logs=logs))
                write(results | {"summary": summarise(runs)}, out, doc=False)
        for variant in variants:
            variant.lab = current.lab
        for strategy in args.strategies:
            for number in range(1, args.rounds + 1):
                for side in [baseline, current, *variants]:
                    runs.append(converge(side, "idempotent", strategy, number, base_env=base_env, logs=logs))
                    write(results | {"summary": summarise(runs)}, out, doc=False)
    except (cb.BenchError, LabError) as err:
        results["error"] = str(err) or repr(err)
        cb.log(f"FAILED: {results['error']}")
    finally:
        remove_worktree(worktree)
        for name in (baseline.lab_name, current.lab_name):
            if args.keep_labs:
                cb.log(f"{name}: kept (--keep-labs); remove with python3 lab down --name {name}")
                continue
            try:
                picluster_lab.down(name)
            except LabError as err:
                results.setdefault("teardown_errors", []).append(str(err)[-500:])


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--baseline", default=BASELINE, help=f"the commit to compare with (default {BASELINE})")
    parser.add_argument("--nodes", type=int, default=5, help="nodes besides the master (default 5)")
    parser.add_argument("--rounds", type=int, default=2, help="idempotent baseline/current pairs per strategy")
    parser.add_argument("--cold-rounds", type=int, default=1, help="cold pairs, each on fresh labs (default 1)")
    parser.add_argument("--strategies", default=",".join(STRATEGIES),
                        help="comma-separated: default, mitogen (default both)")
    parser.add_argument("--variant", action="append", type=parse_variant, default=[],
                        help="NAME=VAR=VALUE[,VAR=VALUE]: also run the current checkout with this environment")
    parser.add_argument("--no-full-runs", dest="full_runs", action="store_false",
                        help="leave out the current checkout's idempotent runs with its fast path off")
    parser.add_argument("--results", type=Path, default=RESULTS, help=f"where the figures go (default {RESULTS})")
    parser.add_argument("--keep-labs", action="store_true", help="leave both labs up afterwards")
    parser.add_argument("--report-only", action="store_true", help="only rewrite docs/benchmarks.md")
    args = parser.parse_args()
    if args.report_only:
        write(json.loads(args.results.read_text()), args.results, doc=True)
        return 0
    args.strategies = [s for s in args.strategies.split(",") if s]
    if set(args.strategies) - set(STRATEGIES) or not 1 <= args.nodes <= 10:
        parser.error(f"--strategies from {STRATEGIES}; --nodes 1 to 10")
    if not 0 <= args.rounds <= 5 or not 0 <= args.cold_rounds <= 3 or not (args.rounds or args.cold_rounds):
        parser.error("--rounds 0 to 5, --cold-rounds 0 to 3 (at least one of them)")
    if args.rounds and not args.cold_rounds:
        parser.error("idempotent rounds need a cold round first (the labs start empty)")
    dirty = bool(cb.run(["git", "status", "--porcelain", "--untracked-files=no"], timeout=60).stdout.strip())
    results: Dict[str, Any] = {
        "machine": cb.machine(),
        "nodes": args.nodes,
        "baseline": {"rev": args.baseline, "subject": git("log", "-1", "--format=%s", args.baseline)},
        "current": {"rev": git("rev-parse", "--short", "HEAD") + ("+changes" if dirty else "")},
        "variants": dict(args.variant, **({"current-full": {"-e": "site_state_fast_path=false"}}
                                          if args.full_runs else {})),
        "started_uptime_s": float(Path("/proc/uptime").read_text().split()[0]),
        "runs": [],
    }
    t0 = time.monotonic()
    bench(args, results, args.results)
    full = any(r["side"] == "current-full" for r in results["runs"])
    results.update(summary=summarise(results["runs"]),
                   task_costs=task_costs(results["runs"], side="current-full" if full else "current"),
                   total_s=round(time.monotonic() - t0, 1),
                   updated=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d"))
    write(results, args.results, doc=args.results == RESULTS)
    print(section(results))
    return 1 if "error" in results else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except subprocess.TimeoutExpired as err:
        sys.exit(f"speed_bench: {err}")
