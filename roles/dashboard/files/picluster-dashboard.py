# Copyright (c) 2025 picluster.swarm developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""picluster-dashboard: a live page of the cluster's nodes and the containers on each.

Runs as a one-replica swarm service on a manager, behind the reverse proxy.
A collector thread reads, once per interval:

* Consul, through the collection's own client and membership logic
  (``_consul.py`` and ``_membership.py``, copied beside this file by the
  role): who is registered, with what TTL, and how long ago each heartbeat
  was (two requests, whatever the member count);
* the swarm, through the Docker engine API of a manager over TLS (the client
  certificate the docker role made): nodes, services and running tasks.

It serves:

* ``/``: the page (``index.html``), which polls ``api/cluster`` and counts each
  member's TTL down between polls;
* ``/api/cluster``: the same data as JSON (documented in docs/roles/dashboard.md);
* ``/api/health``: ``ok`` while the collector runs (no authentication, no data).

Everything but ``/api/health`` asks for HTTP basic authentication unless the
role turned it off (``PICLUSTER_DASHBOARD_AUTH=none``). The password file holds
``user:scrypt:N:r:p:salt:hexdigest`` lines (hashlib.scrypt, made on the
controller by the scrypt_hash filter), never the password.

The view is built by pure functions (``build_view`` and its helpers) so that it
is unit tested without Consul or Docker: ``tests/unit/roles/test_dashboard.py``.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
MAX_TASKS_PER_NODE = 200

# The collection's own rules, copied into lib/ by the role (standard library only): how a swarm node
# reads, and what Consul and the swarm disagree about, judged as swarm_consistency judges it.
sys.path.insert(0, str(HERE / "lib"))
from _consistency import (  # noqa: E402
    DISAGREEMENTS,
    build_entry,
    parse_docker_time,
    swarm_node_record,
)
from _consistency import iso_time as iso  # noqa: E402


@dataclasses.dataclass(frozen=True)
class Settings:
    """What the role passes in through the service's environment."""

    port: int = 8080
    interval: float = 1.0
    refresh: float = 2.0
    title: str = "picluster"
    prefix: str = "docker/swarm/nodes"
    expiring_fraction: float = 0.25
    consul_url: str = "http://127.0.0.1:8500"
    consul_token_file: str = ""
    consul_ca: str = ""
    docker_url: str = "unix:///var/run/docker.sock"
    docker_tls_dir: str = ""
    auth: str = "basic"
    auth_file: str = "/etc/picluster-dashboard/auth/users"
    realm: str = "picluster dashboard"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        # The proxy's generator (roles/reverse_proxy/files) reads its settings with the same few lines, on
        # purpose: each script runs alone in its own image, and a shared file would ship into both for seven lines.
        def get(name: str, default: Any) -> Any:
            raw = env.get(f"PICLUSTER_DASHBOARD_{name.upper()}")
            if raw is None or raw == "":
                return default
            return type(default)(raw)

        return cls(**{f.name: get(f.name, f.default) for f in dataclasses.fields(cls)})


# -- time --------------------------------------------------------------------


def _age(now: float, then: Optional[float]) -> Optional[float]:
    return None if then is None else round(max(0.0, now - then), 1)


# -- the view (pure) ---------------------------------------------------------


def task_view(task: Mapping[str, Any], services: Mapping[str, str], now: float) -> Dict[str, Any]:
    status = task.get("Status") or {}
    since = parse_docker_time(status.get("Timestamp")) or parse_docker_time(task.get("CreatedAt"))
    service = services.get(task.get("ServiceID", ""), task.get("ServiceID", "")[:12])
    slot = task.get("Slot")
    container = ((status.get("ContainerStatus") or {}).get("ContainerID") or "")[:12]
    spec = task.get("Spec") or {}
    image = str(((spec.get("ContainerSpec") or {}).get("Image")) or "").split("@", 1)[0]
    return {
        "id": task.get("ID", ""),
        "service": service,
        "slot": slot,
        "name": f"{service}.{slot}" if slot else f"{service}.{task.get('NodeID', '')[:12]}",
        "state": status.get("State", ""),
        "desired_state": task.get("DesiredState", ""),
        "message": status.get("Err") or status.get("Message", ""),
        "since": iso(since),
        "age_s": _age(now, since),
        "container_id": container,
        "image": image,
    }


def _membership_view(member: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
    if member is None:
        return {
            "state": "missing",
            "ttl": None,
            "seconds_left": None,
            "seconds_since_heartbeat": None,
            "heartbeat_iso": None,
            "key": None,
            "address": None,
        }
    return {
        "state": member.get("state"),
        "ttl": member.get("ttl"),
        "seconds_left": member.get("seconds_left"),
        "seconds_since_heartbeat": member.get("seconds_since_heartbeat"),
        "heartbeat_iso": member.get("heartbeat_iso"),
        "key": member.get("key"),
        "address": member.get("address"),
    }


def _consistency_view(
    member: Optional[Mapping[str, Any]], swarm: Optional[Mapping[str, Any]], both_read: bool
) -> Dict[str, Any]:
    """Where Consul and the swarm disagree about the node, with the words swarm_consistency uses.

    ``unknown`` while either source is unreadable: a node missing from an
    unread side is no disagreement.
    """
    if not both_read:
        return {"category": "unknown", "disagree": False, "summary": ""}
    entry = build_entry(member, swarm)
    return {"category": entry["category"], "disagree": entry["category"] in DISAGREEMENTS, "summary": entry["summary"]}


def build_view(
    members: Optional[List[Mapping[str, Any]]],
    nodes: Optional[List[Mapping[str, Any]]],
    tasks: Optional[List[Mapping[str, Any]]],
    services: Optional[List[Mapping[str, Any]]],
    now: float,
) -> Dict[str, Any]:
    """One card per machine: swarm nodes and Consul members joined by address
    (then by host name); a member without a swarm node, or a node without a
    member, still gets its card ("missing" on the side it lacks).

    ``members``/``nodes``/``tasks``/``services`` are None when their source
    could not be read: the cards then carry what the other source knows.
    """
    service_names = {s.get("ID", ""): (s.get("Spec") or {}).get("Name", "") for s in services or []}
    by_node: Dict[str, List[Dict[str, Any]]] = {}
    for task in tasks or []:
        if task.get("DesiredState") not in ("running", "ready", "accepted"):
            continue
        by_node.setdefault(task.get("NodeID", ""), []).append(task_view(task, service_names, now))

    remaining = list(members or [])

    def take_member(address: str, hostname: str) -> Optional[Mapping[str, Any]]:
        for field, wanted in (("ip", address), ("hostname", hostname)):
            for member in remaining:
                if wanted and member.get(field) == wanted:
                    remaining.remove(member)
                    return member
        return None

    cards: List[Dict[str, Any]] = []
    for node in nodes or []:
        swarm = swarm_node_record(node, now)
        member = take_member(swarm["address"], swarm["hostname"])
        node_tasks = sorted(by_node.get(swarm["id"], []), key=_task_order)
        cards.append(
            {
                "name": swarm["hostname"] or (member or {}).get("hostname", ""),
                "address": swarm["address"] or (member or {}).get("ip", ""),
                "role": swarm["role"] or (member or {}).get("role", ""),
                "engine_version": swarm["engine_version"] or (member or {}).get("engine_version", ""),
                "labels": {**dict((member or {}).get("labels") or {}), **swarm["engine_labels"], **swarm["labels"]},
                "membership": _membership_view(member) if members is not None else {"state": "unknown"},
                "consistency": _consistency_view(member, swarm, members is not None),
                "swarm": swarm,
                "tasks": node_tasks[:MAX_TASKS_PER_NODE],
                "task_count": len(node_tasks),
                "running": sum(1 for t in node_tasks if t["state"] == "running"),
            }
        )
    for member in remaining:  # registered in Consul, unknown to the swarm (or the swarm unreadable)
        cards.append(
            {
                "name": member.get("hostname") or member.get("ip", ""),
                "address": member.get("ip", ""),
                "role": member.get("role", ""),
                "engine_version": member.get("engine_version", ""),
                "labels": dict(member.get("labels") or {}),
                "membership": _membership_view(member),
                "consistency": _consistency_view(member, None, nodes is not None),
                "swarm": None,
                "tasks": [],
                "task_count": 0,
                "running": 0,
            }
        )
    cards.sort(key=_card_order)

    states = [c["membership"]["state"] for c in cards]
    running_by_service: Dict[str, int] = {}
    for card in cards:
        for task in card["tasks"]:
            if task["state"] == "running":
                running_by_service[task["service"]] = running_by_service.get(task["service"], 0) + 1
    service_views = []
    for svc in services or []:
        spec = svc.get("Spec") or {}
        mode = spec.get("Mode") or {}
        wanted = (mode.get("Replicated") or {}).get("Replicas") if "Replicated" in mode else None
        service_views.append(
            {
                "name": spec.get("Name", ""),
                "mode": "replicated" if "Replicated" in mode else "global",
                "replicas": wanted,
                "running": running_by_service.get(spec.get("Name", ""), 0),
                "labels": dict(spec.get("Labels") or {}),
            }
        )
    service_views.sort(key=_service_order)
    return {
        "nodes": cards,
        "services": service_views,
        "counts": {
            "nodes": len(cards),
            **{state: states.count(state) for state in ("alive", "expiring", "expired", "missing")},
            "ready": sum(1 for c in cards if c["swarm"] and c["swarm"]["status"] == "ready"),
            "disagree": sum(1 for c in cards if c["consistency"]["disagree"]),
            "tasks": sum(c["task_count"] for c in cards),
            "running": sum(c["running"] for c in cards),
        },
    }


def _task_order(task: Mapping[str, Any]) -> Tuple[str, int, str]:
    return str(task["service"]), int(task["slot"] or 0), str(task["id"])


def _service_order(service: Mapping[str, Any]) -> str:
    return str(service["name"])


def _card_order(card: Mapping[str, Any]) -> Tuple[int, Tuple[int, ...], str]:
    role_rank = 0 if card["role"] in ("manager", "master") else 1
    try:
        addr = tuple(int(part) for part in str(card["address"]).split("."))
    except ValueError:
        addr = ()
    return role_rank, addr, str(card["name"])


# -- authentication ----------------------------------------------------------


# scrypt needs 128 * n * r bytes; a hash line asking for more is refused.
SCRYPT_MAXMEM = 256 * 1024 * 1024


@dataclasses.dataclass(frozen=True)
class Login:
    """One user's stored hash: scrypt parameters, salt, digest."""

    n: int
    r: int
    p: int
    salt: str
    digest: bytes

    def matches(self, password: str) -> bool:
        computed = hashlib.scrypt(password.encode(), salt=self.salt.encode(), n=self.n, r=self.r, p=self.p,
                                  maxmem=SCRYPT_MAXMEM, dklen=len(self.digest))
        return hmac.compare_digest(computed, self.digest)


def parse_login(text: str) -> Login:
    """``scrypt:N:r:p:salt:hexdigest`` (what the scrypt_hash filter writes)."""
    parts = text.split(":")
    if len(parts) != 6 or parts[0] != "scrypt" or not all(parts):
        raise ValueError("each line of the password file must be user:scrypt:N:r:p:salt:hexdigest")
    try:
        login = Login(int(parts[1]), int(parts[2]), int(parts[3]), parts[4], bytes.fromhex(parts[5]))
    except ValueError as exc:
        raise ValueError(f"bad scrypt parameters or digest in the password file: {exc}") from None
    if login.n < 2 or login.n & (login.n - 1) or 128 * login.n * login.r > SCRYPT_MAXMEM or len(login.digest) < 16:
        raise ValueError("scrypt's n must be a power of two, 128*n*r at most 256 MiB, the digest 16 bytes or more")
    return login


def load_users(text: str) -> Dict[str, Login]:
    """``user:scrypt:N:r:p:salt:hexdigest`` per line; blank lines and # comments skipped."""
    users: Dict[str, Login] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        user, _sep, rest = line.partition(":")
        if not user:
            raise ValueError("each line of the password file must be user:scrypt:N:r:p:salt:hexdigest")
        users[user] = parse_login(rest)
    return users


class Authenticator:
    """Basic authentication against scrypt hashes, slow on purpose, made cheap for a page that polls.

    A login checked once is remembered (by a keyed hash of the header, never
    the header) for ``remember_s`` seconds, so the page's requests every two
    seconds cost one scrypt, not one each. Checks run one at a time: a flood
    of wrong passwords costs time, not memory.
    """

    def __init__(self, users: Mapping[str, Login], remember_s: float = 300.0, max_remembered: int = 64) -> None:
        self.users = dict(users)
        self.remember_s = remember_s
        self.max_remembered = max_remembered
        self._key = os.urandom(32)
        self._remembered: Dict[bytes, float] = {}
        self._lock = threading.Lock()
        self._checking = threading.Lock()
        # A stand-in, so an unknown user costs as much as a known one.
        self._decoy = Login(2**15, 8, 1, "decoy", b"\0" * 32)

    def check(self, header: Optional[str], now: Optional[float] = None) -> bool:
        if not header or not header.lower().startswith("basic "):
            return False
        moment = time.monotonic() if now is None else now
        token = hmac.new(self._key, header.encode(), hashlib.sha256).digest()
        with self._lock:
            expires = self._remembered.get(token)
            if expires is not None and expires > moment:
                return True
        try:
            user, _sep, password = base64.b64decode(header[6:].strip(), validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        login = self.users.get(user)
        with self._checking:
            ok = (login or self._decoy).matches(password) and login is not None
        if ok:
            with self._lock:
                if len(self._remembered) >= self.max_remembered:
                    self._remembered = {k: v for k, v in self._remembered.items() if v > moment}
                    if len(self._remembered) >= self.max_remembered:
                        self._remembered.clear()
                self._remembered[token] = moment + self.remember_s
        return ok


# -- collecting (talks to Consul and Docker) ---------------------------------


class Source:
    """The last good answer of one source and what went wrong since."""

    def __init__(self) -> None:
        self.data: Any = None
        self.updated_at: Optional[float] = None
        self.error: Optional[str] = None

    def ok(self, data: Any, now: float) -> None:
        self.data, self.updated_at, self.error = data, now, None

    def fail(self, error: str) -> None:
        self.error = error

    def describe(self, now: float) -> Dict[str, Any]:
        return {
            "ok": self.error is None and self.updated_at is not None,
            "error": self.error,
            "updated_at": iso(self.updated_at),
            "age_s": _age(now, self.updated_at),
        }


class Collector:
    """Polls Consul and the swarm on a thread; the handlers read its snapshot."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.consul = Source()
        self.docker = Source()
        self.polls = 0
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self._consul_client: Any = None
        self._docker_client: Any = None

    # Imported here, not at module level: the unit tests load this file
    # without the collection's module_utils or the Docker SDK on the path.
    def consul_client(self) -> Any:
        if self._consul_client is None:
            from _consul import ConsulClient, resolve_settings

            token = ""
            if self.settings.consul_token_file:
                token = Path(self.settings.consul_token_file).read_text().strip()
            params = {
                "host": self.settings.consul_url,
                "token": token or None,
                "ca_path": self.settings.consul_ca or None,
                "timeout": 5.0,
            }
            self._consul_client = ConsulClient(resolve_settings(params, {}))
        return self._consul_client

    def docker_client(self) -> Any:
        if self._docker_client is None:
            import docker

            tls: Any = False
            if self.settings.docker_tls_dir:
                tls_dir = Path(self.settings.docker_tls_dir)
                tls = docker.tls.TLSConfig(
                    client_cert=(str(tls_dir / "cert.pem"), str(tls_dir / "key.pem")),
                    ca_cert=str(tls_dir / "ca.pem"),
                    verify=True,
                )
            self._docker_client = docker.APIClient(base_url=self.settings.docker_url, tls=tls, timeout=5)
        return self._docker_client

    def poll_consul(self) -> None:
        from _consul import ConsulError
        from _membership import collect_members

        try:
            client = self.consul_client()
            entries = client.kv_list(self.settings.prefix)
            sessions = client.session_list()
            members, _invalid = collect_members(
                self.settings.prefix, entries, sessions, expiring_fraction=self.settings.expiring_fraction
            )
            self.consul.ok(members, time.time())
        except (ConsulError, OSError, ValueError) as exc:
            self.consul.fail(str(exc))

    def poll_docker(self) -> None:
        try:
            api = self.docker_client()
            nodes = api.nodes()
            services = api.services()
            tasks = api.tasks(filters={"desired-state": "running"})
            self.docker.ok({"nodes": nodes, "services": services, "tasks": tasks}, time.time())
        except Exception as exc:
            self.docker.fail(f"cannot read the swarm from {self.settings.docker_url}: {exc}")
            self._docker_client = None  # reconnect next time (certificates may have been replaced)

    def poll(self) -> None:
        threads = [threading.Thread(target=self.poll_consul), threading.Thread(target=self.poll_docker)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        with self.lock:
            self.polls += 1

    def run(self) -> None:
        while not self.stop.is_set():
            started = time.monotonic()
            self.poll()
            self.stop.wait(max(0.1, self.settings.interval - (time.monotonic() - started)))

    def snapshot(self, now: Optional[float] = None) -> Dict[str, Any]:
        moment = time.time() if now is None else now
        docker_data = self.docker.data or {}
        members = self.consul.data
        if members is not None and self.consul.updated_at is not None:
            # Age the member records to this moment: the page counts down from here.
            members = [_aged(m, moment - self.consul.updated_at, self.settings.expiring_fraction) for m in members]
        view = build_view(
            members, docker_data.get("nodes"), docker_data.get("tasks"), docker_data.get("services"), moment
        )
        view.update(
            {
                "title": self.settings.title,
                "generated_at": round(moment, 3),
                "generated_iso": iso(moment),
                "refresh_s": self.settings.refresh,
                "sources": {"consul": self.consul.describe(moment), "docker": self.docker.describe(moment)},
            }
        )
        return view


def _aged(member: Mapping[str, Any], elapsed: float, expiring_fraction: float) -> Dict[str, Any]:
    """A member record as it stands `elapsed` seconds after it was read."""
    out = dict(member)
    if member.get("state") == "expired" or member.get("seconds_left") is None or elapsed <= 0:
        return out
    left = round(float(member["seconds_left"]) - elapsed, 1)
    out["seconds_left"] = max(0.0, left)
    if member.get("seconds_since_heartbeat") is not None:
        out["seconds_since_heartbeat"] = round(float(member["seconds_since_heartbeat"]) + elapsed, 1)
    ttl = float(member.get("ttl") or 0)
    out["state"] = "expired" if left <= 0 else ("expiring" if left < ttl * expiring_fraction else "alive")
    return out


# -- HTTP --------------------------------------------------------------------


class Handler(BaseHTTPRequestHandler):
    server_version = "picluster-dashboard"
    collector: Collector
    auth: Optional[Authenticator]
    settings: Settings

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/api/health":
            self._send(200, b"ok\n", "text/plain; charset=utf-8")
            return
        if self.auth is not None and not self.auth.check(self.headers.get("Authorization")):
            self.send_response(401)
            self.send_header("WWW-Authenticate", f'Basic realm="{self.settings.realm}", charset="UTF-8"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if path in ("/", "/index.html"):
            self._send(200, (STATIC / "index.html").read_bytes(), "text/html; charset=utf-8")
        elif path == "/api/cluster":
            body = json.dumps(self.collector.snapshot(), separators=(",", ":")).encode()
            self._send(200, body, "application/json")
        else:
            self._send(404, b'{"error": "not found"}\n', "application/json")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header(
            "Content-Security-Policy",
            "default-src 'self'; style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'",
        )
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        if os.environ.get("PICLUSTER_DASHBOARD_ACCESS_LOG"):
            sys.stderr.write(f"{self.address_string()} {format % args}\n")


def main() -> int:
    settings = Settings.from_env(os.environ)
    auth: Optional[Authenticator] = None
    if settings.auth != "none":
        try:
            users = load_users(Path(settings.auth_file).read_text())
        except (OSError, ValueError) as exc:
            sys.stderr.write(
                f"picluster-dashboard: cannot read the password file {settings.auth_file}: {exc}; "
                "run the dashboard role again, or set dashboard_auth: false to serve without one\n"
            )
            return 2
        if not users:
            sys.stderr.write(f"picluster-dashboard: {settings.auth_file} names no user\n")
            return 2
        auth = Authenticator(users)
    collector = Collector(settings)
    threading.Thread(target=collector.run, name="collector", daemon=True).start()
    handler = type("BoundHandler", (Handler,), {"collector": collector, "auth": auth, "settings": settings})
    server = ThreadingHTTPServer(("", settings.port), handler)
    server.daemon_threads = True

    def on_term(signum: int, frame: Any) -> None:
        threading.Thread(target=server.shutdown).start()

    signal.signal(signal.SIGTERM, on_term)
    sys.stderr.write(
        f"picluster-dashboard: serving on :{settings.port}, Consul {settings.consul_url}, swarm {settings.docker_url}\n"
    )
    server.serve_forever()
    collector.stop.set()
    return 0


if __name__ == "__main__":
    sys.exit(main())
