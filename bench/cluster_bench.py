# Copyright (c) 2025 picluster.swarm developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmark (not a test): the whole cluster on the local lab, for 1, 3 and 5 nodes.

For each size N: a lab `bench<N>` (1 master + N nodes; named
$PICLUSTER_LAB_PREFIX`bench<N>` when that is set), the app images loaded,
then
  - site.yml cold (wall time), and again (idempotent: wall time, changed=0 on every host);
  - optionally the idempotent run once more with Ansible's default fact gathering
    (no cache), to show what the fact-gathering lever saves;
  - playbooks/demo.yml (3 replicas behind the proxy);
  - the failure drill (the lab package's Lab.drill, which the cluster scenario's
    test runs too, there with tighter limits): kill a non-master node holding a
    demo replica while a bounded request loop runs through the proxy; time until
    swarm_members reports it expired (detection), until 3 demo tasks run off it
    (rescheduling), failed requests before / during / after the failover window,
    and the time to rejoin after `docker start` (the whole timeline goes to
    build/bench/benchN/drill.json);
then the lab is removed, also on failure. Every wait is bounded.

Writes bench/results/cluster.json (sizes measured now replace the same sizes
from an earlier run; the others are kept) and docs/benchmarks.md.

Usage (with the Makefile's environment, as scripts/bench.sh sets it):
    python3 bench/cluster_bench.py [--sizes 1,3,5] [--ttl 10] [--no-baseline] [--keep-lab]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lab"))

import picluster_lab  # noqa: E402
from picluster_lab import DrillFailed, DrillLimits, Lab, LabError, controller, loadavg  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "cluster.json"
FAILOVER_RESULTS = ROOT / "bench" / "results" / "failover.json"
MEMBERS_RESULTS = ROOT / "bench" / "results" / "swarm_members.json"
DOC = ROOT / "docs" / "benchmarks.md"
WORK = ROOT / "build" / "bench"
DEMO_HOST = "demo.picluster.lab"
PLAYBOOK_TIMEOUT = 3600  # one site.yml run on a loaded 2-core machine: far below this


class BenchError(Exception):
    pass


def log(msg: str) -> None:
    print(f"==> {msg}", flush=True)


def run(
    argv: List[str],
    timeout: float = 600,
    env: Optional[Dict[str, str]] = None,
    check: bool = True,
    cwd: Path = ROOT,
) -> subprocess.CompletedProcess:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False, cwd=cwd, env=env)
    except subprocess.TimeoutExpired as err:
        raise BenchError(f"`{' '.join(argv)}` did not finish within {timeout:.0f}s") from err
    if check and proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-25:]
        raise BenchError(f"`{' '.join(argv)}` failed ({proc.returncode}):\n" + "\n".join(tail))
    return proc


# --- the machine ---------------------------------------------------------------


def machine() -> Dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    models = re.findall(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
    meminfo = Path("/proc/meminfo").read_text()
    mem_kib = int(re.search(r"^MemTotal:\s*(\d+)", meminfo, re.M).group(1))
    docker = run(["docker", "version", "--format", "{{.Server.Version}}"], check=False).stdout.strip()
    ansible = run(["ansible", "--version"], check=False).stdout.splitlines()
    os_name = ""
    if Path("/etc/os-release").exists():
        m = re.search(r'^PRETTY_NAME="?([^"\n]+)', Path("/etc/os-release").read_text(), re.M)
        os_name = m.group(1) if m else ""
    return {
        "cpu_model": models[0] if models else platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "os": os_name,
        "kernel": platform.release(),
        "docker_server": docker,
        "ansible": ansible[0] if ansible else "",
        "python": platform.python_version(),
        "shared": "yes: other labs and molecule scenarios ran beside the bench; see the load averages",
    }


# --- one lab ---------------------------------------------------------------------

# The bench's limits: loose, it measures rather than judges (a loaded machine
# must still give a figure). The cluster scenario's test uses tighter ones.
def drill_limits(ttl: int) -> DrillLimits:
    return DrillLimits(detect_s=ttl + 60, reschedule_s=240, rejoin_s=240, lead_in_s=3, after_grace_s=0)


def playbook(
    lab: Lab,
    logs: Path,
    label: str,
    path: str,
    *extra: str,
    env: Dict[str, str],
    cwd: Path = ROOT,
    overlays: Sequence[Path] = (),
) -> Tuple[float, Dict[str, Dict[str, int]]]:
    """Run a playbook against the lab (from the checkout at `cwd`; `overlays`: more
    inventory sources after the lab's); return (wall seconds, recap per host). Output to build/bench/."""
    sources = [str(lab.inventory.path.parent), *map(str, overlays)]
    argv = ["ansible-playbook", *(arg for source in sources for arg in ("-i", source)), path, *extra]
    t0 = time.monotonic()
    proc = run(argv, timeout=PLAYBOOK_TIMEOUT, env=env, check=False, cwd=cwd)
    wall = time.monotonic() - t0
    logs.mkdir(parents=True, exist_ok=True)
    (logs / f"{label}.log").write_text(proc.stdout + proc.stderr)
    recap = controller.recap(proc.stdout)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-30:])
        raise BenchError(f"{label}: {path} failed ({proc.returncode}), log {logs}/{label}.log:\n{tail}")
    return wall, recap


def measured(
    lab: Lab, logs: Path, label: str, path: str, *extra: str, env: Dict[str, str]
) -> Tuple[Dict[str, Any], Dict[str, Dict[str, int]]]:
    """A playbook run's figures (wall time, changes, load before and after) and its recap."""
    load0 = loadavg()
    wall, recap = playbook(lab, logs, label, path, *extra, env=env)
    figures = {
        "wall_s": round(wall, 1),
        "changed_total": sum(r["changed"] for r in recap.values()),
        "load_1m_start": load0,
        "load_1m_end": loadavg(),
    }
    return figures, recap


def drill(lab: Lab, ttl: int, logs: Path) -> Dict[str, Any]:
    """The cluster scenario's failure drill, with the bench's limits; the
    whole timeline goes to build/bench/benchN/drill.json, the figures to the results."""
    logs.mkdir(parents=True, exist_ok=True)
    try:
        report = lab.drill(ttl=ttl, limits=drill_limits(ttl))
    except DrillFailed as failed:
        (logs / "drill.json").write_text(json.dumps(failed.report.to_dict(), indent=2) + "\n")
        raise
    (logs / "drill.json").write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    return report.summary()


def measure(size: int, args: argparse.Namespace, base_env: Dict[str, str]) -> Dict[str, Any]:
    lab_env = dict(base_env)
    name = picluster_lab.prefixed(f"bench{size}")
    logs = WORK / name
    facts = logs / "facts"
    if args.levers:
        # Gather facts once per host per run (smart) and keep them in a JSON
        # cache, so later plays and the second run do not gather them again.
        lab_env.update(
            {
                "ANSIBLE_GATHERING": "smart",
                "ANSIBLE_CACHE_PLUGIN": "jsonfile",
                "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(facts),
                "ANSIBLE_CACHE_PLUGIN_TIMEOUT": "7200",
            }
        )
    out: Dict[str, Any] = {
        "nodes": size,
        "hosts": 1 + size,
        "lab": name,
        "site_yml_plays": site_plays(),
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    t_all = time.monotonic()
    shutil.rmtree(facts, ignore_errors=True)  # a cold run starts with no cached facts
    try:
        log(f"{name}: lab up (1 master + {size} nodes)")
        picluster_lab.down(name)
        t0 = time.monotonic()
        picluster_lab.up(name, masters=1, nodes=size)
        out["lab_up_s"] = round(time.monotonic() - t0, 1)
        lab = Lab(name)
        picluster_lab.check(lab)
        t0 = time.monotonic()
        picluster_lab.load_images(lab)
        out["images_load_s"] = round(time.monotonic() - t0, 1)

        site = ["-e", f"swarm_heartbeat_ttl={args.ttl}"]
        log(f"{name}: site.yml cold")
        out["cold"], _recap = measured(lab, logs, "site-cold", "site.yml", *site, env=lab_env)
        log(f"{name}: cold {out['cold']['wall_s']:.0f}s; site.yml again (idempotent)")
        out["idempotent"], recap = measured(lab, logs, "site-idempotent", "site.yml", *site, env=lab_env)
        changed = {h: r["changed"] for h, r in recap.items()}
        out["idempotent"].update(changed_per_host=changed, idempotent=bool(changed) and not any(changed.values()))
        if args.baseline and args.levers:
            log(f"{name}: idempotent {out['idempotent']['wall_s']:.0f}s; once more with default fact gathering")
            plain = {k: v for k, v in base_env.items() if not k.startswith(("ANSIBLE_GATHERING", "ANSIBLE_CACHE"))}
            out["idempotent_default_gathering"], _recap = measured(
                lab, logs, "site-idempotent-default-gathering", "site.yml", *site, env=plain
            )
        log(f"{name}: demo service")
        out["demo_deploy"], _recap = measured(lab, logs, "demo", "playbooks/demo.yml", env=lab_env)
        log(f"{name}: failure drill")
        out["drill"] = drill(lab, args.ttl, logs)
        log(f"{name}: drill {json.dumps(out['drill'])}")
    except (BenchError, LabError) as err:
        out["error"] = str(err) or repr(err)
        log(f"{name}: FAILED: {out['error']}")
    finally:
        if args.keep_lab:
            log(f"{name}: kept (--keep-lab); remove with python3 lab down --name {name}")
        else:
            try:
                picluster_lab.down(name)
            except LabError as err:
                out["teardown_error"] = str(err)[-500:]
        out["total_s"] = round(time.monotonic() - t_all, 1)
    return out


# --- the report ------------------------------------------------------------------


def fmt(value: Any, unit: str = "") -> str:
    return "n/a" if value is None else f"{value}{unit}"


def table(results: Dict[str, Any]) -> str:
    rows = [
        "| nodes (+1 master) | cold site.yml | idempotent run (changed) | idempotent, default gathering "
        "| detection | rescheduling | failed requests during / after failover | rejoin | load 1m (start → end) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for key in sorted(results["sizes"], key=int):
        r = results["sizes"][key]
        cold, idem = r.get("cold", {}), r.get("idempotent", {})
        base, drill = r.get("idempotent_default_gathering", {}), r.get("drill", {})
        loads = [
            x
            for part in (cold, idem, base, r.get("demo_deploy", {}), drill)
            for x in (part.get("load_1m_start"), part.get("load_1m_end"))
            if x is not None
        ]
        failed = (
            f"{drill['failed_during_failover']} of {drill['requests_during_failover']} / "
            f"{drill['failed_after_failover']} of {drill['requests_after_failover']}"
            if drill
            else "n/a"
        )
        row = [
            key,
            fmt(cold.get("wall_s"), " s"),
            f"{fmt(idem.get('wall_s'), ' s')} ({fmt(idem.get('changed_total'))})",
            fmt(base.get("wall_s"), " s"),
            fmt(drill.get("detection_s"), " s"),
            fmt(drill.get("reschedule_s"), " s"),
            failed,
            fmt(drill.get("rejoin_s"), " s"),
            f"{loads[0]} → {loads[-1]} (max {max(loads)})" if loads else "n/a",
        ]
        if r.get("error"):
            row[-1] += f" — **failed**: {r['error'].splitlines()[0][:120]}"
        rows.append("| " + " | ".join(row) + " |")
    return "\n".join(rows)


def members_section() -> str:
    if not MEMBERS_RESULTS.exists():
        return "No results yet: run `make bench`.\n"
    m = json.loads(MEMBERS_RESULTS.read_text())
    utils, mod = m.get("module_utils_read_membership", {}), m.get("swarm_members_module_via_ansible", {})
    empty = m.get("swarm_members_module_via_ansible_empty_prefix", {})
    return (
        f"`bench/swarm_members_bench.py` registers {m.get('members_registered')} members in a real Consul "
        f"agent (dev mode, loopback) and polls them. Results: `bench/results/swarm_members.json`.\n\n"
        "| measure | value |\n|---|---|\n"
        f"| registration of {m.get('members_registered')} members | {m.get('registration_s')} s |\n"
        f"| `read_membership` poll, median (min-max) of {utils.get('calls')} | {utils.get('wall_ms_median')} ms "
        f"({utils.get('wall_ms_min')}-{utils.get('wall_ms_max')} ms) |\n"
        f"| HTTP requests per poll | {', '.join(map(str, utils.get('http_requests_per_call', [])))} |\n"
        f"| `swarm_members` through `ansible-playbook`, median of {mod.get('playbook_runs')} runs | "
        f"{mod.get('wall_s_median_per_playbook')} s (min {mod.get('wall_s_min_per_playbook')} s) |\n"
        f"| same, empty prefix (start-up cost alone) | {empty.get('wall_s_median_per_playbook')} s |\n"
        f"| load average (1 min) | {m.get('machine', {}).get('load_average_1m')} on "
        f"{m.get('machine', {}).get('cpus')} CPUs |\n"
    )


def lever_effect(results: Dict[str, Any]) -> str:
    """The idempotent run with and without the fact levers, per size, with the loads during each."""
    parts = []
    for key in sorted(results["sizes"], key=int):
        idem = results["sizes"][key].get("idempotent", {})
        base = results["sizes"][key].get("idempotent_default_gathering", {})
        if "wall_s" in idem and "wall_s" in base:
            saved = base["wall_s"] - idem["wall_s"]
            parts.append(
                f"{key} node{'s' if key != '1' else ''}: {abs(saved):.0f} s ({abs(saved) / base['wall_s']:.0%}) "
                f"{'faster' if saved >= 0 else 'slower'} with them (load {idem['load_1m_start']}-{idem['load_1m_end']}"
                f" against {base['load_1m_start']}-{base['load_1m_end']})"
            )
    return "; ".join(parts) or "not measured (--no-baseline)"


def site_plays() -> int:
    """Plays in site.yml now (each starts with a top-level `- name:`)."""
    return len(re.findall(r"^- name:", (ROOT / "playbooks" / "site.yml").read_text(), re.M))


def failover_section(results: Dict[str, Any]) -> str:
    """The table of bench/failover_bench.py (bench/results/failover.json) for docs/benchmarks.md."""
    rows: List[str] = []
    for number, run in enumerate(results.get("runs", []), 1):
        for kind in ("worker", "master"):
            r = run.get(kind)
            if not r:
                continue
            killed = "a worker" if kind == "worker" else f"the first master ({', '.join(r.get('victim_roles', []))})"
            rows.append(
                f"| {number} | {killed} "
                f"| {fmt(r.get('consul_leader_s'), ' s')} | {fmt(r.get('swarm_leader_s'), ' s')} "
                f"| {fmt(r.get('entry_point_back_s'), ' s')} | {fmt(r.get('detection_s'), ' s')} "
                f"| {r['failed_during_failover']} of {r['requests_during_failover']} / "
                f"{r['failed_after_failover']} of {r['requests_after_failover']} "
                f"| {len(r.get('survivor_polls_not_alive', []))} "
                f"| {fmt(r.get('rejoin_s'), ' s')} | {r.get('load_1m_start')} to {r.get('load_1m_end')} |"
            )
    if not rows:
        return "Not measured yet: run `python3 bench/failover_bench.py`."
    error = f"\n\nThe last run stopped early: {results['error']}" if results.get("error") else ""
    return (
        f"Measured {results.get('updated', '?')} on a lab of 3 masters + 3 nodes, the virtual IP "
        f"{results.get('vip', '')}, heartbeat TTL {results.get('ttl_s')} s, requests through the virtual IP "
        "(4 a second, 3 s timeout). `-` where a drill has no such step (killing a worker elects no leader).\n\n"
        "| run | killed | new Consul leader | new swarm leader | entry point answers again | expired in Consul "
        "| failed requests during / after failover | survivor polls not alive | rejoin | load 1m |\n"
        "|---|---|---|---|---|---|---|---|---|---|\n" + "\n".join(rows) + error +
        "\n\nTimes are from `docker kill`. *Entry point answers again*: the first request answered after the "
        "kill (a request sent just before it may still be answered by the old holder). *Survivor polls not "
        "alive*: membership polls in which a host other than the dead one was expired or gone; no single "
        "master means 0. The whole timelines are in `build/bench/bench-failover/`."
    )


def write_doc(results: Dict[str, Any]) -> None:
    mach, settings = results["machine"], results["settings"]
    levers = settings["levers"]
    # Sizes measured before the play count was recorded were taken with 7 plays.
    plays_now = site_plays()
    older = sorted((k for k, r in results["sizes"].items() if r.get("site_yml_plays", 7) != plays_now), key=int)
    plays_note = (
        f"\n\nThe figures for {', '.join(older)} node(s) were taken with an older `site.yml` (fewer plays than "
        f"its {plays_now} now: the `dashboard` play came after them). Run `make bench` again for current figures."
        if older
        else f"\n\nEvery size ran the current `site.yml` ({plays_now} plays, the dashboard included)."
    )
    doc = f"""# Benchmarks

Benchmarks, not tests: they measure and write figures, they do not pass or
fail. `make bench` runs both below (`scripts/bench.sh`); the cluster one
takes its sizes from `BENCH_SIZES` (default `1,3,5`):

```
make bench                      # swarm_members, then the cluster at 1, 3 and 5 nodes
BENCH_SIZES=1 make bench        # the cluster at 1 node only
python3 bench/cluster_bench.py --sizes 3 --no-baseline   # with the Makefile's PATH and ANSIBLE_CONFIG
```

## The cluster on the local lab (`bench/cluster_bench.py`)

For each size N the bench brings up a lab `benchN` (1 master + N nodes, see
[lab.md](lab.md)), loads the app images, runs `site.yml` twice and
`playbooks/demo.yml`, runs the failure drill of the `cluster` molecule
scenario, and removes the lab (also when something fails). Everything stays on
this machine: Ansible reaches the nodes with `docker exec`, the requests go to
the proxy on the lab bridge. Raw figures, per-host recaps and load averages:
`bench/results/cluster.json`; the playbook logs of the last run:
`build/bench/benchN/`.

Measured {results["updated"]} on {mach["cpu_model"]}, {mach["cpus"]} CPUs, {mach["memory_gib"]} GiB,
{mach["os"]}, kernel {mach["kernel"]}, Docker {mach["docker_server"]} (the node images run Debian's
docker.io 20.10 inside), {mach["ansible"]}, Python {mach["python"]}. The machine was shared: other
labs and molecule scenarios ran at the same time, so the load averages are part of the figures; read
the times as upper bounds. Consul heartbeat TTL {settings["swarm_heartbeat_ttl_s"]} s.{plays_note}

{table(results)}

What the columns mean:

- **cold site.yml**: wall time of `ansible-playbook site.yml -e swarm_heartbeat_ttl={settings["swarm_heartbeat_ttl_s"]}`
  on freshly booted nodes (their engines already running, as on a Pi with Hypriot OS).
- **idempotent run (changed)**: the same command a second time, and the total of `changed` over every
  host in the PLAY RECAP; it must be 0 (`idempotent` per size in the JSON).
- **idempotent, default gathering**: the second run once more, with Ansible's default fact gathering
  (every play gathers) and no fact cache: what the fact levers save.
- **detection**: from `docker kill` of a non-master node that runs a demo replica until the
  `picluster.swarm.swarm_members` module (run as a user would, against the master's Consul) reports it
  expired or gone. The session expires a TTL after the victim's last heartbeat, which came shortly
  before the kill, so this can be a little under the TTL; each poll costs ~3 s of `ansible` start-up,
  which is the resolution.
- **rescheduling**: from the kill until 3 demo tasks are running and none on the victim. With 1 node
  the replicas move to the master.
- **failed requests during / after failover**: a request loop (4 a second, 3 s timeout) runs through
  the proxy (`Host: {DEMO_HOST}`) on the master's port 80 during the drill; failures (not 200) inside
  the window kill → rescheduled, and in the 10 s after it. Failures before the kill are in the JSON
  (`failed_before`).
- **rejoin**: from `docker start` of the victim until it is alive in Consul and Ready in the swarm again.
- **load 1m**: `/proc/loadavg` at the start of the cold run and at the end of the drill, and the
  highest of the readings taken at the start and end of every measurement.

Speed levers: {levers}

Most of a run's time is one `docker exec` round trip per task and host (about 190 tasks on the master,
about 100 on each node): the idempotent run does nearly all the work of the cold one except the changes,
which is why it is not much faster. The fact levers against default gathering, second run: {lever_effect(results)}.
The difference was no larger than what the machine's load does to the same run. Since then
`site.yml` itself reads each host's facts once (after the login check, no hardware facts) and the base
role reads again what it changes, which the speed bench below measures side by side; the fact cache
stays off by default (a cache kept between runs would hold a Pi's old address after it changed).

## Losing a node, losing the first master (`bench/failover_bench.py`)

With three masters the cluster has no single master: Consul and the swarm elect new leaders, every
node's heartbeat talks to the Consul agent on the node itself (so only the dead one expires), each master
runs the reverse proxy and keepalived moves the virtual IP to a survivor (see
[roles/vip.md](roles/vip.md)). `python3 bench/failover_bench.py` (also run by `make bench`) measures it:

{failover_section(json.loads(FAILOVER_RESULTS.read_text())) if FAILOVER_RESULTS.exists() else "Not measured yet."}

## swarm_members at scale (`bench/swarm_members_bench.py`)

{members_section()}"""
    DOC.write_text(doc + kept_sections())


# Sections other benches write into docs/benchmarks.md between these markers
# (bench/speed_bench.py); write_doc keeps them as they are.
KEPT = re.compile(r"\n*<!-- (\w+):begin -->.*?<!-- \1:end -->\n", re.S)


def kept_sections() -> str:
    return "".join("\n\n" + m.group(0).lstrip("\n") for m in KEPT.finditer(DOC.read_text())) if DOC.exists() else "\n"


def replace_section(name: str, text: str) -> None:
    """Put `text` between docs/benchmarks.md's markers for `name` (appended the first time)."""
    block = f"<!-- {name}:begin -->\n{text.rstrip()}\n<!-- {name}:end -->\n"
    doc = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"<!-- {name}:begin -->.*?<!-- {name}:end -->\n", re.S)
    DOC.write_text(pattern.sub(lambda _m: block, doc) if pattern.search(doc) else doc.rstrip("\n") + "\n\n" + block)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--sizes",
        default=os.environ.get("BENCH_SIZES", "1,3,5"),
        help="node counts besides the master, comma-separated (default 1,3,5)",
    )
    parser.add_argument("--ttl", type=int, default=10, help="swarm_heartbeat_ttl in seconds (default 10)")
    parser.add_argument(
        "--no-levers", dest="levers", action="store_false", help="no smart gathering / fact cache (Ansible's defaults)"
    )
    parser.add_argument(
        "--no-baseline",
        dest="baseline",
        action="store_false",
        help="skip the extra idempotent run with default fact gathering",
    )
    parser.add_argument(
        "--report-only", action="store_true", help="only rewrite docs/benchmarks.md from bench/results/cluster.json"
    )
    parser.add_argument("--keep-lab", action="store_true", help="leave each lab up (for a look afterwards)")
    args = parser.parse_args()
    if args.report_only:
        write_doc(json.loads(RESULTS.read_text()))
        return 0
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    if not sizes or any(s < 1 or s > 10 for s in sizes):
        parser.error("--sizes: node counts from 1 to 10 (the drill needs a node besides the master)")

    base_env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    base_env.setdefault("ANSIBLE_CONFIG", str(ROOT / "ansible.cfg"))
    forks = run(["ansible-config", "dump", "--only-changed"], env=base_env, check=False).stdout
    m = re.search(r"^DEFAULT_FORKS\(.*\)\s*=\s*(\d+)", forks, re.M)
    pipelining = re.search(r"^\s*pipelining\s*=\s*(\S+)", (ROOT / "ansible.cfg").read_text(), re.M | re.I)
    levers = [
        f"forks = {m.group(1) if m else 'default (5)'} (ansible.cfg)",
        f"pipelining = {pipelining.group(1) if pipelining else 'off'} (ansible.cfg, [connection])",
    ]
    if args.levers:
        levers += [
            "fact gathering `smart` (ANSIBLE_GATHERING, set by the bench): each host's facts are gathered "
            f"once per run, not once per play (site.yml has {site_plays()} plays)",
            "fact cache `jsonfile` under build/bench/benchN/facts (ANSIBLE_CACHE_PLUGIN*, set by the bench, "
            "emptied before the cold run): the second run gathers nothing",
        ]
    settings = {
        "swarm_heartbeat_ttl_s": args.ttl,
        "forks": int(m.group(1)) if m else 5,
        "pipelining": bool(pipelining and pipelining.group(1).lower() in ("true", "yes", "1")),
        "fact_gathering": "smart" if args.levers else "implicit (default)",
        "fact_caching": "jsonfile" if args.levers else "memory (default)",
        "levers": "; ".join(levers) + ".",
    }

    previous: Dict[str, Any] = {}
    if RESULTS.exists():
        try:
            previous = json.loads(RESULTS.read_text()).get("sizes", {})
        except ValueError:
            previous = {}
    results = {"machine": machine(), "settings": settings, "sizes": previous}
    for size in sizes:
        results["sizes"][str(size)] = measure(size, args, base_env)
        results["updated"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
        results["uptime_s"] = float(Path("/proc/uptime").read_text().split()[0])
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=2) + "\n")
        write_doc(results)
        log(f"bench{size}: written to {RESULTS.relative_to(ROOT)} and {DOC.relative_to(ROOT)}")
    print(table(results))
    return 1 if any("error" in results["sizes"][str(s)] for s in sizes) else 0


if __name__ == "__main__":
    sys.exit(main())
