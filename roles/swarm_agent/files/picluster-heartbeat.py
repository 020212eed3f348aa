# Copyright (c) 2025 picluster.swarm developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""picluster-heartbeat: announce this node in Consul under a TTL, as classic swarm did.

Holds the key ``<prefix>/<ip>:<port>`` (default prefix docker/swarm/nodes) with a
Consul session (TTL, behaviour delete, lock delay 0 so a restart can take the
key back at once) and renews it every TTL/4, writing a JSON document with the
time of each heartbeat. A quarter, not a half: a renewal that falls into a
Consul leader election (5 to 15 s without a leader with Consul's default Raft
timing, measured in the master drill) is retried every second while the
registration can still be saved, and lands before the TTL runs out.

Whose health the session follows (no single machine whose loss expires the
others):

* by default the heartbeat talks to the Consul agent on its own node
  (127.0.0.1:8500), so its session carries that node's serfHealth check: the
  node expires when it dies, never because another machine does;
* with ``--own-node NAME`` (hosts without a local agent) it registers NAME as a
  catalog node of its own and creates the session on it with no node checks,
  so the session depends on its TTL alone and not on the server that created
  it (a session made through a server dies with that server once autopilot
  removes it). Give several ``--consul`` addresses then: it fails over.

When Consul loses the session (agent restarted, session destroyed) or the key,
it creates a new session and acquires the key again. When Consul cannot be
reached it retries every second until the TTL has run out since the last
heartbeat that landed (the registration can still be saved), then with a
bounded backoff. On SIGTERM or
SIGINT it destroys its session and deletes its key, so the node leaves at once.

Python standard library only: a bare Pi needs nothing extra. The member
document and its rules come from the collection's own
plugins/module_utils/_membership.py (standard library only too), which the
swarm_agent role installs beside this script: the heartbeat and the
picluster.swarm modules write one format from one source.

Settings (flag, or environment variable):
  --consul       CONSUL_HTTP_ADDR      Consul HTTP API, host:port or http(s)://host:port (127.0.0.1:8500);
                                       repeat the flag (or separate with commas) to fail over between agents
  --own-node     HEARTBEAT_OWN_NODE    register this catalog node and hold a TTL-only session on it
  --token        CONSUL_HTTP_TOKEN     ACL token
  --ca-file      CONSUL_CACERT         CA bundle for https
  --prefix       HEARTBEAT_PREFIX      KV prefix (docker/swarm/nodes)
  --address      HEARTBEAT_ADDRESS     this node's ip:port (required)
  --ttl          HEARTBEAT_TTL         session TTL in seconds, 10..86400 (20)
  --hostname     HEARTBEAT_HOSTNAME    announced host name (this host's name)
  --role         HEARTBEAT_ROLE        announced role (worker)
  --engine-version HEARTBEAT_ENGINE_VERSION  announced Docker version ('' ; 'auto' asks `docker version`)
  --label k=v    HEARTBEAT_LABELS      labels, repeatable flag or comma-separated k=v list

A systemd unit (the swarm_agent role installs its own from a template):

    [Unit]
    Description=Announce this node in Consul (picluster heartbeat)
    After=network-online.target docker.service
    Wants=network-online.target

    [Service]
    EnvironmentFile=-/etc/default/picluster-heartbeat
    ExecStart=/usr/bin/python3 /usr/local/lib/picluster/picluster-heartbeat.py \\
        --address 10.0.0.11:2376 --role worker
    Restart=always
    RestartSec=2
    # SIGTERM deregisters the node before it exits.
    KillSignal=SIGTERM
    TimeoutStopSec=15

    [Install]
    WantedBy=multi-user.target
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timezone
from typing import Any, Dict, List, Optional, Tuple

# Installed beside this script (Python puts the script's directory first on sys.path).
from _membership import (
    DEFAULT_PREFIX,
    DEFAULT_TTL,
    MAX_TTL,
    MIN_TTL,
    SESSION_NAME_FORMAT,
    build_document,
    encode_document,
    member_key,
    validate_address,
)

MAX_BACKOFF = 30.0
# Retry delay while the last heartbeat that landed is younger than the TTL.
SAVE_RETRY = 1.0


def log(message: str) -> None:
    stamp = datetime.now(tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    print(f"{stamp} picluster-heartbeat: {message}", flush=True)


# -- Consul over urllib ----------------------------------------------------


class ConsulUnavailable(Exception):
    """Consul could not be reached or answered with a server error: retry later."""


class ConsulRefused(Exception):
    """Consul answered with a client error (bad token, bad request): retrying as-is will not help soon."""


def parse_consul_address(text: str) -> str:
    """Turn host:port or http(s)://host:port into a base URL."""
    value = (text or "127.0.0.1:8500").strip()
    if "://" not in value:
        value = "http://" + value
    parts = urllib.parse.urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"Consul address {text!r} is not host:port or http(s)://host:port")
    port = parts.port or 8500
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}:{port}"


class Consul:
    """The handful of Consul calls the heartbeat needs."""

    def __init__(self, base_urls: List[str], token: str = "", ca_file: str = "", timeout: float = 5.0) -> None:
        if not base_urls:
            raise ValueError("no Consul address")
        self.base_urls = list(base_urls)
        self.current = 0
        self.token = token
        self.timeout = timeout
        https = any(url.startswith("https") for url in self.base_urls)
        self.context = ssl.create_default_context(cafile=ca_file or None) if https else None

    @property
    def base_url(self) -> str:
        return self.base_urls[self.current]

    def call(self, method: str, path: str, body: Optional[str] = None, params: Optional[Dict[str, str]] = None
             ) -> Tuple[int, Any]:
        """One request; when the agent cannot be reached, the same request to the next one (each once)."""
        errors: List[str] = []
        for attempt in range(len(self.base_urls)):
            try:
                return self._call_one(method, path, body, params)
            except ConsulUnavailable as exc:
                errors.append(str(exc))
                if attempt + 1 < len(self.base_urls):
                    failed = self.base_url
                    self.current = (self.current + 1) % len(self.base_urls)
                    log(f"{exc}; trying {self.base_url} instead of {failed}")
        raise ConsulUnavailable("; ".join(errors))

    def _call_one(self, method: str, path: str, body: Optional[str], params: Optional[Dict[str, str]]
                  ) -> Tuple[int, Any]:
        url = self.base_url + urllib.parse.quote(path, safe="/:@")
        if params:
            url += "?" + urllib.parse.urlencode(params)
        request = urllib.request.Request(url, data=None if body is None else body.encode("utf-8"), method=method)
        if self.token:
            request.add_header("X-Consul-Token", self.token)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout, context=self.context) as response:
                return response.status, self._decode(response.read())
        except urllib.error.HTTPError as exc:
            text = exc.read().decode("utf-8", "replace").strip()
            if exc.code == 404:
                return 404, None
            if exc.code >= 500:
                raise ConsulUnavailable(f"{method} {path}: HTTP {exc.code} {text}") from None
            raise ConsulRefused(f"{method} {path}: HTTP {exc.code} {text}") from None
        except (urllib.error.URLError, OSError, socket.timeout) as exc:
            reason = getattr(exc, "reason", exc)
            raise ConsulUnavailable(f"cannot reach Consul at {self.base_url}: {reason}") from None

    @staticmethod
    def _decode(raw: bytes) -> Any:
        text = raw.decode("utf-8")
        if not text:
            return None
        try:
            return json.loads(text)
        except ValueError:
            return text

    def create_session(self, name: str, ttl: int, node: str = "") -> str:
        """A session on the agent's own node (with its serfHealth check), or on ``node`` with no node checks."""
        spec: Dict[str, Any] = {"Name": name, "TTL": f"{ttl}s", "Behavior": "delete", "LockDelay": "0s"}
        if node:
            spec.update({"Node": node, "NodeChecks": []})
        _status, data = self.call("PUT", "/v1/session/create", json.dumps(spec))
        return data["ID"]

    def register_node(self, node: str, address: str) -> None:
        """Put ``node`` in the catalog (idempotent); it has no health checks, so nothing reaps it."""
        body = json.dumps({"Node": node, "Address": address, "SkipNodeUpdate": False,
                           "NodeMeta": {"picluster-heartbeat": "true"}})
        self.call("PUT", "/v1/catalog/register", body)

    def session_info(self, session_id: str) -> Optional[Dict[str, Any]]:
        status, data = self.call("GET", "/v1/session/info/" + session_id)
        return data[0] if status == 200 and data else None

    def renew(self, session_id: str) -> bool:
        """False when Consul no longer knows the session."""
        status, data = self.call("PUT", "/v1/session/renew/" + session_id)
        return status == 200 and bool(data)

    def destroy(self, session_id: str) -> None:
        self.call("PUT", "/v1/session/destroy/" + session_id)

    def get_key(self, key: str) -> Optional[Dict[str, Any]]:
        status, data = self.call("GET", "/v1/kv/" + key)
        return data[0] if status == 200 and data else None

    def acquire(self, key: str, value: str, session_id: str) -> bool:
        _status, data = self.call("PUT", "/v1/kv/" + key, value, {"acquire": session_id})
        return data is True

    def delete_key(self, key: str, cas: int) -> None:
        self.call("DELETE", "/v1/kv/" + key, params={"cas": str(cas)})


# -- the heartbeat -----------------------------------------------------------


class Heartbeat:
    """Keeps one member registered until stopped."""

    def __init__(self, consul: Consul, key: str, address: str, ttl: int, document_fields: Dict[str, Any],
                 *, own_node: str = "") -> None:
        self.consul = consul
        self.key = key
        self.address = address
        self.ttl = ttl
        self.fields = document_fields
        self.own_node = own_node
        self.interval = ttl / 4.0
        self.session_name = SESSION_NAME_FORMAT.format(address=address)
        self.session_id: Optional[str] = None
        self.stop_event = threading.Event()
        self.failures = 0
        self.last_ok: Optional[float] = None  # time.monotonic() of the last heartbeat that landed

    def document(self) -> str:
        return encode_document(build_document(self.address, ttl=self.ttl, **self.fields))

    def adopt_or_create_session(self) -> str:
        """Take over our own earlier session (a restart, or swarm_registration) or create one."""
        entry = self.consul.get_key(self.key)
        holder = entry.get("Session") if entry else None
        if holder:
            info = self.consul.session_info(holder)
            if info and info.get("Name") == self.session_name and self.consul.renew(holder):
                log(f"took over session {holder} holding {self.key}")
                return holder
        if self.own_node:
            self.consul.register_node(self.own_node, self.address.rsplit(":", 1)[0].strip("[]"))
        session_id = self.consul.create_session(self.session_name, self.ttl, node=self.own_node)
        bound = f"TTL only, on catalog node {self.own_node}" if self.own_node else "bound to this node's agent"
        log(f"created session {session_id} (TTL {self.ttl}s, behaviour delete, {bound})")
        return session_id

    def beat(self) -> None:
        """One heartbeat: make sure we hold the key, renew, refresh the document."""
        if self.session_id is None:
            self.session_id = self.adopt_or_create_session()
        elif not self.consul.renew(self.session_id):
            log(f"Consul lost session {self.session_id}; creating a new one")
            self.session_id = self.adopt_or_create_session()
        if not self.consul.acquire(self.key, self.document(), self.session_id):
            # Someone else's session holds the key; ours stays ready for when it goes.
            raise ConsulUnavailable(f"{self.key} is held by another session; retrying")

    def next_delay(self, ok: bool, now: Optional[float] = None) -> float:
        now = time.monotonic() if now is None else now
        if ok:
            if self.failures:
                log(f"Consul answers again; {self.key} registered")
            self.failures = 0
            self.last_ok = now
            return self.interval
        self.failures += 1
        if self.last_ok is not None and now - self.last_ok < self.ttl:
            # The registration is still alive: every second counts (a Consul
            # leader election ends at a moment nobody can predict).
            return SAVE_RETRY
        # Lost or never made: back off, never longer than the renewal interval.
        return min(2.0 ** (self.failures - 1), self.interval, MAX_BACKOFF)

    def run(self) -> None:
        agents = ", ".join(self.consul.base_urls)
        log(f"announcing {self.key} every {self.interval:.1f}s (TTL {self.ttl}s) through {agents}")
        while not self.stop_event.is_set():
            try:
                self.beat()
                delay = self.next_delay(True)
            except (ConsulUnavailable, ConsulRefused) as exc:
                delay = self.next_delay(False)
                log(f"{exc}; retry {self.failures} in {delay:.0f}s")
            except (KeyError, TypeError, ValueError) as exc:
                delay = self.next_delay(False)
                log(f"unexpected answer from Consul ({exc}); retry {self.failures} in {delay:.0f}s")
            self.stop_event.wait(delay)
        self.deregister()

    def deregister(self) -> None:
        """Destroy our session (which deletes the key) and delete the key if it is still ours."""
        if self.session_id is None:
            return
        try:
            self.consul.destroy(self.session_id)
            entry = self.consul.get_key(self.key)
            if entry and entry.get("Session") in (None, self.session_id):
                self.consul.delete_key(self.key, entry["ModifyIndex"])
            log(f"deregistered {self.key}")
        except (ConsulUnavailable, ConsulRefused) as exc:
            log(f"could not deregister {self.key} ({exc}); it expires within {2 * self.ttl}s")
        self.session_id = None

    def stop(self, signum: int = 0, _frame: Any = None) -> None:
        if signum:
            log(f"received signal {signum}, stopping")
        self.stop_event.set()


# -- configuration -----------------------------------------------------------


def parse_labels(items: List[str]) -> Dict[str, str]:
    labels = {}
    for item in items:
        for raw_pair in item.split(","):
            pair = raw_pair.strip()
            if not pair:
                continue
            name, sep, value = pair.partition("=")
            if not sep or not name.strip():
                raise ValueError(f"label {pair!r} is not key=value")
            labels[name.strip()] = value.strip()
    return labels


def docker_engine_version() -> str:
    try:
        out = subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"], capture_output=True,
                             text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def build_parser(environ: Dict[str, str]) -> argparse.ArgumentParser:
    env = environ.get
    parser = argparse.ArgumentParser(description="Announce this node in Consul under a TTL (classic swarm layout).")
    parser.add_argument("--consul", action="append", default=[],
                        help="Consul HTTP API; repeat (or separate with commas) to fail over")
    parser.add_argument("--own-node", default=env("HEARTBEAT_OWN_NODE", ""))
    parser.add_argument("--token", default=env("CONSUL_HTTP_TOKEN", ""))
    parser.add_argument("--ca-file", default=env("CONSUL_CACERT", ""))
    parser.add_argument("--prefix", default=env("HEARTBEAT_PREFIX", DEFAULT_PREFIX))
    parser.add_argument("--address", default=env("HEARTBEAT_ADDRESS", ""))
    parser.add_argument("--ttl", type=int, default=int(env("HEARTBEAT_TTL", str(DEFAULT_TTL))))
    parser.add_argument("--hostname", default=env("HEARTBEAT_HOSTNAME", "") or socket.gethostname())
    parser.add_argument("--role", default=env("HEARTBEAT_ROLE", "worker"))
    parser.add_argument("--engine-version", default=env("HEARTBEAT_ENGINE_VERSION", ""))
    parser.add_argument("--label", action="append", default=[x for x in [env("HEARTBEAT_LABELS", "")] if x])
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds per HTTP request")
    return parser


def heartbeat_from_args(argv: Optional[List[str]] = None, environ: Optional[Dict[str, str]] = None) -> Heartbeat:
    """Parse flags and environment; raise SystemExit with a message on bad settings."""
    environment = dict(os.environ if environ is None else environ)
    env_addr = environment.get("CONSUL_HTTP_ADDR", "127.0.0.1:8500")
    parser = build_parser(environment)
    args = parser.parse_args(argv)
    try:
        address = validate_address(args.address)
    except ValueError as exc:
        parser.error(f"--address (HEARTBEAT_ADDRESS) must be this node's <ip>:<port>, got {args.address!r}: {exc}")
    if not MIN_TTL <= args.ttl <= MAX_TTL:
        parser.error(f"--ttl must be between {MIN_TTL} and {MAX_TTL} seconds (Consul's limits)")
    try:
        key = member_key(args.prefix, address)
    except ValueError:
        parser.error("--prefix must not be empty")
    try:
        labels = parse_labels(args.label)
        addresses = [a.strip() for item in (args.consul or [env_addr]) for a in item.split(",") if a.strip()]
        base_urls = [parse_consul_address(a) for a in addresses or ["127.0.0.1:8500"]]
    except ValueError as exc:
        parser.error(str(exc))
    engine = docker_engine_version() if args.engine_version == "auto" else args.engine_version
    if args.own_node and not args.own_node.replace("-", "").replace("_", "").replace(".", "").isalnum():
        parser.error(f"--own-node must be a Consul node name (letters, digits, '-', '_', '.'), got {args.own_node!r}")
    consul = Consul(base_urls, token=args.token, ca_file=args.ca_file, timeout=args.timeout)
    fields = {"hostname": args.hostname, "role": args.role, "engine_version": engine, "labels": labels}
    return Heartbeat(consul, key, address, args.ttl, fields, own_node=args.own_node)


def main(argv: Optional[List[str]] = None) -> int:
    heartbeat = heartbeat_from_args(argv)
    signal.signal(signal.SIGTERM, heartbeat.stop)
    signal.signal(signal.SIGINT, heartbeat.stop)
    heartbeat.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
