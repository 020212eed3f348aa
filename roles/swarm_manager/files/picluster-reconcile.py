# Copyright (c) 2025 picluster.swarm developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""picluster-reconcile: keep the swarm's scheduling in line with Consul's membership, on the swarm leader.

Runs on every manager (the swarm_manager role installs it when
swarm_manager_reconcile_enabled is true) and acts only where it is the raft
leader, so there is no single machine it depends on and never two acting at
once. Each round (every --interval seconds) it:

1. asks the local engine (the unix socket) whether this node leads the swarm;
   on a follower, that is all;
2. reads Consul's membership through the local agent (two requests: a
   recursive KV read of the prefix and the session list) and the swarm's node
   list;
3. judges every node and plans with the collection's own rules
   (plugins/module_utils/_consistency.py, the same as the swarm_consistency
   and swarm_reconcile modules and the dashboard): drain a node gone for longer
   than the grace period, set active again a node it drained that is alive
   again, and with --remove-after remove nodes gone for longer than that
   (never a manager whose removal would hurt the quorum);
4. carries the plan out (plugins/module_utils/_swarm_api.py), re-reading each
   node first, and logs one line per change.

A round whose Consul or engine read fails changes nothing. Python standard
library only: the role installs _membership.py, _consistency.py and
_swarm_api.py from the collection beside this script, as swarm_agent does for
the heartbeat.

Settings (flag, or environment variable):
  --consul        CONSUL_HTTP_ADDR        the Consul agent, host:port or http(s)://host:port (127.0.0.1:8500)
  --token         CONSUL_HTTP_TOKEN       ACL token (key_prefix read on the prefix, session_prefix read);
                  CONSUL_HTTP_TOKEN_FILE  or a file that holds it
  --ca-file       CONSUL_CACERT           CA bundle for https
  --docker        DOCKER_HOST             the engine (unix:///var/run/docker.sock)
  --prefix        RECONCILE_PREFIX        membership prefix (docker/swarm/nodes)
  --interval      RECONCILE_INTERVAL      seconds between rounds (5)
  --grace-period  RECONCILE_GRACE_PERIOD  seconds a node must be gone before it is drained (10)
  --remove-after  RECONCILE_REMOVE_AFTER  seconds gone before it is removed from the swarm; 0 never (0)
  --once                                  one round, print what it saw and did as JSON, exit
  --dry-run                               plan and log, change nothing
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import ssl
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timezone
from typing import Any, Dict, List, Mapping, Optional, Tuple

# Installed beside this script (Python puts the script's directory first on sys.path).
from _consistency import (
    DEFAULT_GRACE_PERIOD,
    DEFAULT_STALE_AFTER,
    apply_change,
    check_periods,
    compare,
    plan,
    swarm_node_record,
)
from _membership import DEFAULT_EXPIRING_FRACTION, DEFAULT_PREFIX, collect_members, normalize_prefix
from _swarm_api import DockerClient, DockerError, client_from_params, perform

DEFAULT_INTERVAL = 5.0


def log(message: str) -> None:
    """To stderr (the journal keeps it): stdout is for --once's JSON alone."""
    stamp = datetime.now(tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    print(f"{stamp} picluster-reconcile: {message}", file=sys.stderr, flush=True)


class ReadError(Exception):
    """Consul could not be read completely: this round changes nothing."""


class ConsulReader:
    """The two reads of the membership, over urllib."""

    def __init__(self, address: str, token: str = "", ca_file: str = "", timeout: float = 5.0) -> None:
        value = address.strip() if "://" in address else "http://" + address.strip()
        parts = urllib.parse.urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"Consul address {address!r} is not host:port or http(s)://host:port")
        self.base_url = f"{parts.scheme}://{parts.netloc if parts.port else parts.netloc + ':8500'}"
        self.token = token
        self.timeout = timeout
        self.context = ssl.create_default_context(cafile=ca_file or None) if parts.scheme == "https" else None

    def get(self, path: str, what: str) -> Tuple[int, Any]:
        request = urllib.request.Request(self.base_url + path)
        if self.token:
            request.add_header("X-Consul-Token", self.token)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout, context=self.context) as response:
                if response.headers.get("X-Consul-Results-Filtered-By-ACLs", "").lower() == "true":
                    raise ReadError(f"Consul hid part of {what} from this token; give it key_prefix read on the "
                                    "prefix and session_prefix read")
                body = response.read().decode("utf-8")
                return response.status, json.loads(body) if body else None
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return 404, None
            detail = exc.read().decode("utf-8", "replace").strip()
            raise ReadError(f"Consul at {self.base_url} answered HTTP {exc.code} reading {what}: {detail}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ReadError(f"cannot read {what} from Consul at {self.base_url}: {reason}") from None

    def membership(self, prefix: str) -> Tuple[List[Dict[str, Any]], List[Dict[str, Any]]]:
        """KV first, then sessions: a session a key names existed when the key was read."""
        status, entries = self.get(f"/v1/kv/{urllib.parse.quote(prefix)}/?recurse=true", f"{prefix}/")
        _status, sessions = self.get("/v1/session/list", "the session list")
        return list(entries or []) if status != 404 else [], list(sessions or [])


class Reconciler:
    def __init__(self, consul: ConsulReader, docker: DockerClient, args: argparse.Namespace) -> None:
        self.consul = consul
        self.docker = docker
        self.args = args
        self.stop_event = threading.Event()
        self.leading: Optional[bool] = None
        self.last_error = ""
        self.last_held: List[Tuple[str, str]] = []

    def leads(self) -> Tuple[bool, List[Dict[str, Any]]]:
        """Whether this node is the swarm's leader, and the node list read to tell."""
        swarm = self.docker.info().get("Swarm") or {}
        if not swarm.get("ControlAvailable"):
            return False, []
        nodes = self.docker.nodes()
        me = next((n for n in nodes if n.get("ID") == swarm.get("NodeID")), {})
        return bool((me.get("ManagerStatus") or {}).get("Leader")), nodes

    def round(self) -> Dict[str, Any]:
        """One round; what it saw and did."""
        leading, nodes = self.leads()
        if leading != self.leading:
            log(f"this node leads the swarm: reconciling every {self.args.interval:g} s" if leading
                else "this node does not lead the swarm: idle until it does")
            self.leading = leading
        if not leading:
            return {"leader": False}
        entries, sessions = self.consul.membership(self.args.prefix)
        now = time.time()
        members, invalid = collect_members(self.args.prefix, entries, sessions, now=now,
                                           expiring_fraction=self.args.expiring_fraction)
        report = compare(members, [swarm_node_record(n, now) for n in nodes], stale_after=self.args.stale_after)
        decided = plan(report, grace_period=self.args.grace_period, remove_after=self.args.remove_after, now=now)
        self.log_held(decided["held"])
        for action in decided["actions"]:
            if self.args.dry_run:
                action["result"] = "dry run"
            else:
                action["result"] = perform(self.docker, action, apply_change)
            log(f"{action['action']} {action['node']} ({action['address']}, {action['id'][:12]}): "
                f"{action['reason']}: {action['result']}")
        return {"leader": True, "counts": report["counts"], "problems": report["problems"], "invalid": invalid,
                "actions": decided["actions"], "held": decided["held"]}

    def log_held(self, held: List[Mapping[str, Any]]) -> None:
        keys = sorted((h["node"], h["would"]) for h in held)
        if keys != self.last_held:
            for item in held:
                log(f"holding back: {item['would']} {item['node']} ({item['address']}): {item['reason']}")
            self.last_held = keys

    def safe_round(self) -> Optional[Dict[str, Any]]:
        try:
            result = self.round()
        except (ReadError, DockerError) as exc:
            message = str(exc)
            if message != self.last_error:
                log(f"{message}; nothing changed this round, retrying every {self.args.interval:g} s")
                self.last_error = message
            return None
        if self.last_error:
            log("reading Consul and the swarm works again")
            self.last_error = ""
        return result

    def run(self) -> None:
        log(f"started: Consul {self.consul.base_url}, engine {self.docker.settings.url}, grace period "
            f"{self.args.grace_period:g} s, remove after {self.args.remove_after:g} s (0: never)"
            + (", dry run" if self.args.dry_run else ""))
        while not self.stop_event.is_set():
            started = time.monotonic()
            self.safe_round()
            self.stop_event.wait(max(0.5, self.args.interval - (time.monotonic() - started)))
        log("stopped")

    def stop(self, signum: int = 0, _frame: Any = None) -> None:
        self.stop_event.set()


def build_parser(environ: Mapping[str, str]) -> argparse.ArgumentParser:
    env = environ.get
    parser = argparse.ArgumentParser(description="Drain swarm nodes Consul calls gone; reactivate them when back.")
    parser.add_argument("--consul", default=env("CONSUL_HTTP_ADDR") or "127.0.0.1:8500")
    parser.add_argument("--token", default=env("CONSUL_HTTP_TOKEN", ""))
    parser.add_argument("--ca-file", default=env("CONSUL_CACERT", ""))
    parser.add_argument("--docker", default=env("DOCKER_HOST") or "unix:///var/run/docker.sock")
    parser.add_argument("--prefix", default=env("RECONCILE_PREFIX") or DEFAULT_PREFIX)
    parser.add_argument("--interval", type=float, default=float(env("RECONCILE_INTERVAL") or DEFAULT_INTERVAL))
    parser.add_argument("--grace-period", type=float,
                        default=float(env("RECONCILE_GRACE_PERIOD") or DEFAULT_GRACE_PERIOD))
    parser.add_argument("--remove-after", type=float, default=float(env("RECONCILE_REMOVE_AFTER") or 0))
    parser.add_argument("--stale-after", type=float, default=DEFAULT_STALE_AFTER)
    parser.add_argument("--expiring-fraction", type=float, default=DEFAULT_EXPIRING_FRACTION)
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds per request")
    parser.add_argument("--once", action="store_true", help="one round, print it as JSON, exit")
    parser.add_argument("--dry-run", action="store_true", help="plan and log, change nothing")
    return parser


def reconciler_from_args(argv: Optional[List[str]] = None, environ: Optional[Mapping[str, str]] = None) -> Reconciler:
    """Parse flags and environment; SystemExit with a message on bad settings."""
    environment = dict(os.environ if environ is None else environ)
    parser = build_parser(environment)
    args = parser.parse_args(argv)
    problem = check_periods(args.grace_period, args.remove_after)
    if problem:
        parser.error(problem)
    if args.interval <= 0:
        parser.error(f"--interval must be a positive number of seconds, got {args.interval:g}")
    token = args.token
    if not token and environment.get("CONSUL_HTTP_TOKEN_FILE"):
        try:
            with open(environment["CONSUL_HTTP_TOKEN_FILE"], encoding="utf-8") as handle:
                token = handle.read().strip()
        except OSError as exc:
            parser.error(f"cannot read CONSUL_HTTP_TOKEN_FILE: {exc}")
    try:
        args.prefix = normalize_prefix(args.prefix)
        consul = ConsulReader(args.consul, token, args.ca_file, args.timeout)
        docker = client_from_params({"docker_host": args.docker, "docker_timeout": args.timeout}, {})
    except (ValueError, DockerError) as exc:
        parser.error(str(exc))
    return Reconciler(consul, docker, args)


def main(argv: Optional[List[str]] = None) -> int:
    reconciler = reconciler_from_args(argv)
    if reconciler.args.once:
        result = reconciler.safe_round()
        print(json.dumps(result, indent=2, sort_keys=True))
        return 0 if result is not None else 1
    signal.signal(signal.SIGTERM, reconciler.stop)
    signal.signal(signal.SIGINT, reconciler.stop)
    reconciler.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
