# Copyright (c) 2025 picluster.swarm developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmark (not a test): swarm_members with 1,000 registered members in a real Consul agent.

Starts its own dev-mode agent on loopback ports, registers N members (one
session each, keys written in /v1/txn batches), then measures:
  - the module_utils poll (read_membership) N times: wall time and HTTP requests per call,
    counted by the client itself (ConsulClient.request_count);
  - the swarm_members module through ansible-playbook: wall time per playbook run and the
    module's own http_requests.
Writes bench/results/swarm_members.json and prints it.

Usage: $VENV_DIR/bin/python bench/swarm_members_bench.py [--members 1000] [--polls 20] [--playbook-runs 3]
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "collections"))
sys.path.insert(0, str(ROOT / "tests" / "integration"))

from ansible_collections.picluster.swarm.plugins.module_utils._consul import (  # noqa: E402
    ConsulClient,
    resolve_settings,
)
from ansible_collections.picluster.swarm.plugins.module_utils._membership import (  # noqa: E402
    build_document,
    count_states,
    encode_document,
    read_membership,
)
from conftest import ConsulAgent, consul_binary  # noqa: E402

PREFIX = "bench/swarm/nodes"
TXN_BATCH = 64  # Consul accepts up to 128 operations per transaction


def register_members(agent: ConsulAgent, count: int) -> float:
    """Register `count` members over one keep-alive connection; return seconds taken."""
    started = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", agent.ports["http"], timeout=30)
    operations: List[Dict[str, Any]] = []

    def flush() -> None:
        if not operations:
            return
        conn.request("PUT", "/v1/txn", body=json.dumps(operations))
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"txn failed: {response.status} {body[:300]!r}")
        operations.clear()

    for i in range(count):
        address = f"10.{100 + i // 62500}.{(i // 250) % 250}.{i % 250 + 1}:2375"
        conn.request("PUT", "/v1/session/create",
                     body=json.dumps({"Name": f"swarm-member {address}", "TTL": "600s", "Behavior": "delete",
                                      "LockDelay": "0s"}))
        response = conn.getresponse()
        session = json.loads(response.read())["ID"]
        document = build_document(address, hostname=f"node{i}", role="manager" if i < 3 else "worker",
                                  engine_version="20.10.24", labels={"arch": "armv7l"}, ttl=600)
        value = base64.b64encode(encode_document(document).encode()).decode()
        operations.append({"KV": {"Verb": "lock", "Key": f"{PREFIX}/{address}", "Value": value, "Session": session}})
        if len(operations) >= TXN_BATCH:
            flush()
    flush()
    conn.close()
    return time.monotonic() - started


def bench_module_utils(agent: ConsulAgent, polls: int) -> Dict[str, Any]:
    client = ConsulClient(resolve_settings({"host": agent.url}, environ={}))
    times, requests_per_call = [], []
    members: List[Dict[str, Any]] = []
    for _poll in range(polls):
        before = client.request_count
        started = time.perf_counter()
        members, _invalid = read_membership(client, PREFIX)
        times.append(time.perf_counter() - started)
        requests_per_call.append(client.request_count - before)
    return {
        "calls": polls,
        "members_seen": len(members),
        "counts": count_states(members),
        "wall_ms_median": round(statistics.median(times) * 1000, 1),
        "wall_ms_min": round(min(times) * 1000, 1),
        "wall_ms_max": round(max(times) * 1000, 1),
        "http_requests_per_call": sorted(set(requests_per_call)),
    }


def bench_module(agent: ConsulAgent, runs: int, prefix: str = PREFIX) -> Dict[str, Any]:
    venv_bin = Path(sys.executable).parent
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSUL_")}
    env.update(ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_STDOUT_CALLBACK="json",
               ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_DEPRECATION_WARNINGS="0")
    play = [{"hosts": "localhost", "gather_facts": False, "connection": "local", "tasks": [
        {"picluster.swarm.swarm_members": {"host": agent.url, "prefix": prefix}, "register": "swarm"},
    ]}]
    times, requests_per_call, listed = [], [], 0
    with tempfile.TemporaryDirectory() as tmp:
        playbook = Path(tmp) / "bench.yml"
        playbook.write_text(json.dumps(play))
        for _run in range(runs):
            started = time.perf_counter()
            proc = subprocess.run(
                [str(venv_bin / "ansible-playbook"), "-i", "localhost,", str(playbook),
                 "-e", json.dumps({"ansible_python_interpreter": sys.executable})],
                cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
            times.append(time.perf_counter() - started)
            result = json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]
            if result.get("failed"):
                raise RuntimeError(result.get("msg"))
            requests_per_call.append(result["http_requests"])
            listed = len(result["members"])
    return {
        "playbook_runs": runs,
        "members_listed": listed,
        "wall_s_median_per_playbook": round(statistics.median(times), 2),
        "wall_s_min_per_playbook": round(min(times), 2),
        "http_requests_per_call": sorted(set(requests_per_call)),
        "note": "playbook wall time includes ansible-playbook start-up and module transfer",
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--polls", type=int, default=20)
    parser.add_argument("--playbook-runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        agent = ConsulAgent(consul_binary(), Path(workdir), name="bench").start()
        try:
            registration_s = register_members(agent, args.members)
            results = {
                "members_registered": args.members,
                "registration_s": round(registration_s, 2),
                "module_utils_read_membership": bench_module_utils(agent, args.polls),
                "swarm_members_module_via_ansible": bench_module(agent, args.playbook_runs),
                # The same playbook on an empty prefix: ansible's own start-up cost, for comparison.
                "swarm_members_module_via_ansible_empty_prefix": bench_module(agent, args.playbook_runs,
                                                                              "bench/empty/nodes"),
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                            "load_average_1m": round(os.getloadavg()[0], 2)},
                "consul": subprocess.run([agent.binary, "version"], capture_output=True, text=True,
                                         check=False).stdout.splitlines()[0],
            }
        finally:
            agent.stop()
    out = ROOT / "bench" / "results" / "swarm_members.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
