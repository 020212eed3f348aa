# Copyright (c) 2025 picluster.swarm developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmark (not a test): what losing a node and losing the first master cost, on 3 masters + 3 nodes.

A lab `bench-failover` (three masters with the virtual IP, three nodes; named
$PICLUSTER_LAB_PREFIX`bench-failover` when that is set) gets the app images,
site.yml and the demo service; then, --repeat times, the two drills of the
cluster scenario with the bench's loose limits, while a bounded request loop
runs through the virtual IP:
  - kill a worker holding a demo replica (the lab package's Lab.drill);
  - kill the first master, made Consul leader, swarm leader and holder of the
    virtual IP first (Lab.master_drill): seconds to a new Consul leader, to a
    new swarm leader, to the entry point answering again, to the dead master
    expiring; requests failed during and after the failover; survivors that
    were ever not alive; where the virtual IP was while the master rejoined.
The lab is removed afterwards, also on failure. Every wait is bounded.

Writes bench/results/failover.json and the failover section of docs/benchmarks.md.

Usage (with the Makefile's environment, as scripts/bench.sh sets it):
    python3 bench/failover_bench.py [--ttl 10] [--repeat 1] [--keep-lab]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
from pathlib import Path
from typing import Any, Dict

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lab"))

import cluster_bench as cb
import picluster_lab
from picluster_lab import DrillFailed, Lab, LabError

RESULTS = cb.ROOT / "bench" / "results" / "failover.json"


def drills(lab: Lab, ttl: int, logs: Path, run: int) -> Dict[str, Any]:
    """One worker drill and one master drill; the timelines to build/bench/, the figures returned."""
    figures: Dict[str, Any] = {}
    for kind, start in (("worker", lambda: lab.drill(ttl=ttl, limits=cb.drill_limits(ttl), via=lab.vip)),
                        ("master", lambda: lab.master_drill(ttl=ttl, limits=cb.drill_limits(ttl)))):
        path = logs / f"drill-{kind}-{run}.json"
        try:
            report = start()
        except DrillFailed as failed:
            path.write_text(json.dumps(failed.report.to_dict(), indent=2) + "\n")
            raise
        path.write_text(json.dumps(report.to_dict(), indent=2) + "\n")
        figures[kind] = report.summary()
        cb.log(f"{lab.name}: {kind} drill {run}: {json.dumps(figures[kind])}")
    return figures


def measure(args: argparse.Namespace, env: Dict[str, str]) -> Dict[str, Any]:
    name = picluster_lab.prefixed("bench-failover")
    logs = cb.WORK / name
    logs.mkdir(parents=True, exist_ok=True)
    out: Dict[str, Any] = {"lab": name, "masters": 3, "nodes": 3, "runs": []}
    try:
        picluster_lab.down(name)
        picluster_lab.up(name, masters=3, nodes=3)
        lab = Lab(name)
        picluster_lab.check(lab)
        picluster_lab.load_images(lab)
        out["vip"] = lab.vip
        site = ["-e", f"swarm_heartbeat_ttl={args.ttl}"]
        out["cold"], _recap = cb.measured(lab, logs, "site-cold", "site.yml", *site, env=env)
        out["demo_deploy"], _recap = cb.measured(lab, logs, "demo", "playbooks/demo.yml", env=env)
        for run in range(1, args.repeat + 1):
            out["runs"].append(drills(lab, args.ttl, logs, run))
    except (cb.BenchError, LabError) as err:
        out["error"] = str(err) or repr(err)
        cb.log(f"{name}: FAILED: {out['error']}")
    finally:
        if args.keep_lab:
            cb.log(f"{name}: kept (--keep-lab); remove with python3 lab down --name {name}")
        else:
            try:
                picluster_lab.down(name)
            except LabError as err:
                out["teardown_error"] = str(err)[-500:]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--ttl", type=int, default=10, help="swarm_heartbeat_ttl (default 10, Consul's minimum)")
    parser.add_argument("--repeat", type=int, default=1, help="drill pairs to run (default 1)")
    parser.add_argument("--keep-lab", action="store_true", help="leave the lab up afterwards")
    args = parser.parse_args()
    if not 1 <= args.repeat <= 5 or not 10 <= args.ttl <= 300:
        parser.error("--repeat 1 to 5, --ttl 10 to 300")
    results = measure(args, dict(os.environ))
    results.update(machine=cb.machine(), ttl_s=args.ttl,
                   updated=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d"))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    if cb.RESULTS.exists():
        cb.write_doc(json.loads(cb.RESULTS.read_text()))
    print(cb.failover_section(results))
    return 1 if "error" in results else 0


if __name__ == "__main__":
    sys.exit(main())
