# Copyright (c) 2025 picluster.swarm developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmark (not a test): the whole cluster on the local lab, for 1, 3 and 5 nodes.

For each size N: a lab `bench<N>` (1 master + N nodes), the app images loaded,
then
  - site.yml cold (wall time), and again (idempotent: wall time, changed=0 on every host);
  - optionally the idempotent run once more with Ansible's default fact gathering
    (no cache), to show what the fact-gathering lever saves;
  - playbooks/demo.yml (3 replicas behind the proxy);
  - the failure drill of molecule/cluster/tests/test_cluster.py: kill a non-master
    node holding a demo replica while a bounded request loop runs through the
    proxy; time until swarm_members reports it expired (detection), until 3 demo
    tasks run off it (rescheduling), failed requests before / during / after the
    failover window, and the time to rejoin after `docker start`;
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
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "cluster.json"
MEMBERS_RESULTS = ROOT / "bench" / "results" / "swarm_members.json"
DOC = ROOT / "docs" / "benchmarks.md"
WORK = ROOT / "build" / "bench"
DEMO_HOST = "demo.picluster.lab"
SERVICE = "demo-web"
PLAYBOOK_TIMEOUT = 3600  # one site.yml run on a loaded 2-core machine: far below this
RECAP = re.compile(r"^(\S+)\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


class BenchError(Exception):
    pass


def log(msg: str) -> None:
    print(f"==> {msg}", flush=True)


def loadavg() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def run(
    argv: List[str], timeout: float = 600, env: Optional[Dict[str, str]] = None, check: bool = True
) -> subprocess.CompletedProcess:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False, cwd=ROOT, env=env)
    except subprocess.TimeoutExpired as err:
        raise BenchError(f"`{' '.join(argv)}` did not finish within {timeout:.0f}s") from err
    if check and proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-25:]
        raise BenchError(f"`{' '.join(argv)}` failed ({proc.returncode}):\n" + "\n".join(tail))
    return proc


def wait_until(what: str, predicate: Callable[[], bool], limit: float, interval: float = 1.0) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        if predicate():
            return time.monotonic() - t0
        time.sleep(interval)
    raise BenchError(f"{what} did not happen within {limit:.0f}s")


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


class Lab:
    def __init__(self, size: int, ttl: int, env: Dict[str, str]) -> None:
        self.name = f"bench{size}"
        self.size = size
        self.ttl = ttl
        self.env = env
        self.inventory = ROOT / "build" / "labs" / self.name
        self.logs = WORK / self.name
        self.hosts = ["master", *[f"node{i}" for i in range(1, size + 1)]]
        self._addr: Dict[str, str] = {}

    def container(self, host: str) -> str:
        return f"picluster-{self.name}-{host}"

    def sh(self, host: str, *argv: str, check: bool = True, timeout: float = 60) -> str:
        proc = run(["docker", "exec", self.container(host), *argv], timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise BenchError(f"{host}: {' '.join(argv)} failed: {proc.stderr.strip()}")
        return proc.stdout

    def address(self, host: str) -> str:
        if host not in self._addr:
            fmt = "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}"
            self._addr[host] = run(["docker", "inspect", "-f", fmt, self.container(host)]).stdout.strip()
        return self._addr[host]

    # -- playbooks --

    def playbook(
        self, label: str, playbook: str, *extra: str, env: Optional[Dict[str, str]] = None
    ) -> Tuple[float, Dict[str, Dict[str, int]]]:
        """Run a playbook against the lab; return (wall seconds, recap per host). Output to build/bench/."""
        argv = ["ansible-playbook", "-i", str(self.inventory), playbook, *extra]
        t0 = time.monotonic()
        proc = run(argv, timeout=PLAYBOOK_TIMEOUT, env=env or self.env, check=False)
        wall = time.monotonic() - t0
        self.logs.mkdir(parents=True, exist_ok=True)
        (self.logs / f"{label}.log").write_text(proc.stdout + proc.stderr)
        recap = {
            m[0]: {"ok": int(m[1]), "changed": int(m[2]), "unreachable": int(m[3]), "failed": int(m[4])}
            for m in RECAP.findall(proc.stdout)
        }
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-30:])
            raise BenchError(f"{label}: {playbook} failed ({proc.returncode}), log {self.logs}/{label}.log:\n{tail}")
        return wall, recap

    # -- cluster state --

    def members(self) -> Dict[str, Any]:
        """swarm_members, run as a user would, against the master's Consul."""
        proc = run(
            [
                "ansible",
                "localhost",
                "-i",
                "localhost,",
                "-c",
                "local",
                "-o",
                "-m",
                "picluster.swarm.swarm_members",
                "-a",
                f"host={self.address('master')} include_expired=true",
                "-e",
                f"ansible_python_interpreter={sys.executable}",
            ],
            timeout=60,
            env=dict(self.env, ANSIBLE_NOCOLOR="1"),
            check=False,
        )
        if proc.returncode != 0 or "=>" not in proc.stdout:
            raise BenchError(f"swarm_members failed: {(proc.stdout + proc.stderr).strip()[-800:]}")
        result, _end = json.JSONDecoder().raw_decode(proc.stdout.split("=>", 1)[1].lstrip())
        return result

    def state_of(self, result: Dict[str, Any], ip: str) -> Optional[str]:
        return next((m["state"] for m in result["members"] if m["ip"] == ip), None)

    def swarm_nodes(self) -> List[Dict[str, Any]]:
        out = self.sh("master", "docker", "node", "ls", "--format", "{{json .}}")
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def running_tasks(self) -> List[str]:
        out = self.sh(
            "master",
            "docker",
            "service",
            "ps",
            SERVICE,
            "--filter",
            "desired-state=running",
            "--format",
            "{{.Node}} {{.CurrentState}}",
        )
        return [line.split()[0] for line in out.splitlines() if " Running " in f" {line} "]

    def moved_off(self, victim: str) -> bool:
        tasks = self.running_tasks()
        return len(tasks) == 3 and victim not in tasks

    def get(self, timeout: float = 5) -> int:
        req = urllib.request.Request(f"http://{self.address('master')}/", headers={"Host": DEMO_HOST})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                resp.read()
                return resp.status
        except urllib.error.HTTPError as err:
            return err.code
        except OSError:
            return 0

    # -- the drill --

    def drill(self) -> Dict[str, Any]:
        wait_until("3 running demo tasks", lambda: len(self.running_tasks()) == 3, limit=180, interval=2)
        wait_until("the proxy serving the demo", lambda: self.get() == 200, limit=120, interval=1)
        victim = next(n for n in self.running_tasks() if n != "master")
        victim_ip = self.address(victim)
        requests: List[Tuple[float, bool]] = []
        stop = threading.Event()

        def traffic() -> None:
            # Bounded: at most 1,200 requests / 400 s, stopped by the drill.
            t_start = time.monotonic()
            for _request in range(1200):
                if stop.is_set() or time.monotonic() - t_start > 400:
                    return
                status = self.get(timeout=3)
                requests.append((time.monotonic(), status == 200))
                time.sleep(0.25)

        loader = threading.Thread(target=traffic, daemon=True)
        loader.start()
        time.sleep(3)
        load_start = loadavg()
        t_kill = time.monotonic()
        run(["docker", "kill", self.container(victim)])
        restarted = False
        try:
            detected = wait_until(
                f"{victim} expired in Consul",
                lambda: self.state_of(self.members(), victim_ip) in ("expired", None),
                limit=self.ttl + 60,
            )
            detected = time.monotonic() - t_kill
            wait_until(f"{SERVICE} back to 3 running tasks off {victim}", lambda: self.moved_off(victim), limit=240)
            settled = time.monotonic()
            rescheduled = settled - t_kill
            time.sleep(10)  # requests after the failover window
            stop.set()
            loader.join(timeout=10)
            t_restart = time.monotonic()
            run(["docker", "start", self.container(victim)])
            restarted = True
        finally:
            stop.set()
            if not restarted:
                run(["docker", "start", self.container(victim)], check=False)
        rejoined = wait_until(
            f"{victim} alive in Consul and Ready in swarm again",
            lambda: (
                self.state_of(self.members(), victim_ip) == "alive"
                and any(n["Hostname"] == victim and n["Status"] == "Ready" for n in self.swarm_nodes())
            ),
            limit=240,
            interval=2,
        )
        before = [ok for t, ok in requests if t < t_kill]
        window = [ok for t, ok in requests if t_kill <= t < settled]
        after = [ok for t, ok in requests if t >= settled]
        return {
            "victim": victim,
            "detection_s": round(detected, 1),
            "reschedule_s": round(rescheduled, 1),
            "rejoin_s": round(rejoined, 1),
            "rejoin_measured_from": "docker start returned",
            "requests_total": len(requests),
            "failed_before": before.count(False),
            "requests_during_failover": len(window),
            "failed_during_failover": window.count(False),
            "requests_after_failover": len(after),
            "failed_after_failover": after.count(False),
            "load_1m_start": load_start,
            "load_1m_end": loadavg(),
            "restart_at_s_after_kill": round(t_restart - t_kill, 1),
        }


def measure(size: int, args: argparse.Namespace, base_env: Dict[str, str]) -> Dict[str, Any]:
    lab_env = dict(base_env)
    facts = WORK / f"bench{size}" / "facts"
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
    lab = Lab(size, args.ttl, lab_env)
    out: Dict[str, Any] = {
        "nodes": size,
        "hosts": len(lab.hosts),
        "lab": lab.name,
        "site_yml_plays": site_plays(),
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    t_all = time.monotonic()
    shutil.rmtree(facts, ignore_errors=True)  # a cold run starts with no cached facts
    try:
        log(f"{lab.name}: lab up (1 master + {size} nodes)")
        run([sys.executable, "scripts/lab.py", "down", "--name", lab.name], timeout=300, check=False)
        t0 = time.monotonic()
        run(
            [sys.executable, "scripts/lab.py", "up", "--name", lab.name, "--masters", "1", "--nodes", str(size)],
            timeout=600,
        )
        out["lab_up_s"] = round(time.monotonic() - t0, 1)
        run([sys.executable, "scripts/lab.py", "check", "--name", lab.name], timeout=300)
        t0 = time.monotonic()
        run([sys.executable, "scripts/app_images.py", "load", "--lab", lab.name], timeout=900)
        out["images_load_s"] = round(time.monotonic() - t0, 1)

        site = ["-e", f"swarm_heartbeat_ttl={args.ttl}"]
        log(f"{lab.name}: site.yml cold")
        load0 = loadavg()
        wall, recap = lab.playbook("site-cold", "site.yml", *site)
        out["cold"] = {
            "wall_s": round(wall, 1),
            "changed_total": sum(r["changed"] for r in recap.values()),
            "load_1m_start": load0,
            "load_1m_end": loadavg(),
        }
        log(f"{lab.name}: cold {wall:.0f}s; site.yml again (idempotent)")
        load0 = loadavg()
        wall, recap = lab.playbook("site-idempotent", "site.yml", *site)
        changed = {h: r["changed"] for h, r in recap.items()}
        out["idempotent"] = {
            "wall_s": round(wall, 1),
            "changed_total": sum(changed.values()),
            "changed_per_host": changed,
            "idempotent": bool(changed) and not any(changed.values()),
            "load_1m_start": load0,
            "load_1m_end": loadavg(),
        }
        if args.baseline and args.levers:
            log(f"{lab.name}: idempotent {wall:.0f}s; once more with default fact gathering, no cache")
            plain = {k: v for k, v in base_env.items() if not k.startswith(("ANSIBLE_GATHERING", "ANSIBLE_CACHE"))}
            load0 = loadavg()
            wall, recap = lab.playbook("site-idempotent-default-gathering", "site.yml", *site, env=plain)
            out["idempotent_default_gathering"] = {
                "wall_s": round(wall, 1),
                "changed_total": sum(r["changed"] for r in recap.values()),
                "load_1m_start": load0,
                "load_1m_end": loadavg(),
            }
        log(f"{lab.name}: demo service")
        load0 = loadavg()
        wall, _recap = lab.playbook("demo", "playbooks/demo.yml")
        out["demo_deploy"] = {"wall_s": round(wall, 1), "load_1m_start": load0, "load_1m_end": loadavg()}
        log(f"{lab.name}: failure drill")
        out["drill"] = lab.drill()
        log(f"{lab.name}: drill {json.dumps(out['drill'])}")
    except (BenchError, StopIteration, KeyError, ValueError) as err:
        out["error"] = str(err) or repr(err)
        log(f"{lab.name}: FAILED: {out['error']}")
    finally:
        if args.keep_lab:
            log(f"{lab.name}: kept (--keep-lab); remove with scripts/lab.py down --name {lab.name}")
        else:
            down = run([sys.executable, "scripts/lab.py", "down", "--name", lab.name], timeout=300, check=False)
            if down.returncode != 0:
                out["teardown_error"] = (down.stdout + down.stderr).strip()[-500:]
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
The difference is no larger than what the machine's load does to the same run, so `site.yml` and
`ansible.cfg` keep Ansible's default gathering: the base role changes hostnames and addresses, and
facts gathered or cached before that would be stale for the later plays on a real Pi.
To use the levers on your own runs:
`ANSIBLE_GATHERING=smart ANSIBLE_CACHE_PLUGIN=jsonfile ANSIBLE_CACHE_PLUGIN_CONNECTION=build/facts`.

## swarm_members at scale (`bench/swarm_members_bench.py`)

{members_section()}"""
    DOC.write_text(doc)


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
