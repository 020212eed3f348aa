"""picluster-proxy-gen: nginx configuration from the swarm's labelled services.

One image, two containers, so that what faces the network holds no Docker
access at all:

* ``generate`` (the generator's container: no network, a read-only root, no
  capabilities, an unprivileged user) reads the swarm through the read-only
  Docker API (the docker_readonly role) and writes nginx's configuration to a
  directory it shares with the other container;
* ``serve`` (nginx's container, on the overlay network, with the
  certificate) runs nginx, and installs each new text the generator wrote
  once ``nginx -t`` accepts it.

A swarm service that carries the label
``picluster.proxy.host=<name>[,<name>...]`` (and optionally
``picluster.proxy.port=<port>``, 80 by default) gets a virtual host whose
upstream servers are the addresses of that service's running tasks on the
proxy's overlay network. Task addresses, not the service's virtual IP: they
work with and without IPVS (the lab kernel has none) and with either endpoint
mode.

The configuration follows the swarm: Docker events (service and node) trigger
a resync at once and a short burst of follow-up resyncs while new tasks start;
a periodic resync is the safety net for changes that raise no event on the
manager (a task replaced on another node). nginx is reloaded (SIGHUP: old
workers finish their requests) only when the text changed and ``nginx -t``
accepts it; a rejected text is not installed (the last good one stays).

The rendering functions are pure (no Docker, no files) so they are unit
tested on their own: ``tests/unit/roles/test_proxy_gen.py``.

Usage: picluster-proxy-gen.py generate | serve | render
Settings come from the environment (see ``Settings.from_env``).
"""

from __future__ import annotations

import dataclasses
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional

HOST_LABEL = "picluster.proxy.host"
PORT_LABEL = "picluster.proxy.port"
# A host name or a leading-wildcard name (*.example.org), as nginx accepts it
# in server_name; anything else in a label is ignored (it would end up in the
# configuration text).
_HOST_RE = re.compile(r"^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*$")
_IPV4_RE = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")


@dataclasses.dataclass(frozen=True)
class Settings:
    """What the role passes in through the container's environment."""

    network: str = "my-net"
    http_port: int = 80
    https_port: int = 0  # 0: no TLS listener
    tls_certificate: str = ""
    tls_key: str = ""
    # With TLS: the virtual hosts answer plain HTTP only with a redirect to
    # HTTPS on this port (the one the host publishes), and send HSTS.
    https_redirect: int = 1
    https_public_port: int = 443
    hsts_max_age: int = 31536000  # 0: no Strict-Transport-Security header
    connect_timeout: str = "2s"
    read_timeout: str = "60s"
    next_upstream_tries: int = 3
    next_upstream_timeout: str = "10s"
    client_max_body_size: str = "16m"
    interval: float = 3.0
    config_path: str = "/etc/nginx/conf.d/picluster-proxy.conf"
    # The file the generator writes and nginx's container installs.
    shared_path: str = "/run/picluster-proxy/picluster-proxy.conf"
    # How often nginx's container looks for a new text, in seconds.
    poll: float = 0.5

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        def get(name: str, default: Any) -> Any:
            raw = env.get(f"PICLUSTER_PROXY_{name.upper()}")
            if raw is None or raw == "":
                return default
            return type(default)(raw)

        return cls(**{f.name: get(f.name, f.default) for f in dataclasses.fields(cls)})


@dataclasses.dataclass(frozen=True)
class VirtualHost:
    """One host name and every server (address:port) behind it."""

    host: str
    services: tuple[str, ...]
    servers: tuple[str, ...]


def log(msg: str) -> None:
    print(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} picluster-proxy-gen: {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# Pure functions: swarm API data -> virtual hosts -> nginx text
# --------------------------------------------------------------------------

def parse_hosts(value: str) -> tuple[list[str], list[str]]:
    """Split a host label into valid names and rejected ones."""
    good, bad = [], []
    for name in (part.strip().lower() for part in value.split(",")):
        if not name:
            continue
        (good if _HOST_RE.match(name) and len(name) <= 253 else bad).append(name)
    return good, bad


def parse_port(value: Optional[str]) -> Optional[int]:
    if value is None or str(value).strip() == "":
        return 80
    try:
        port = int(str(value).strip())
    except ValueError:
        return None
    return port if 0 < port < 65536 else None


def down_nodes(nodes: Iterable[Mapping[str, Any]]) -> frozenset[str]:
    """IDs of the swarm nodes that are not ``ready`` (a master or node that died)."""
    return frozenset(node.get("ID", "") for node in nodes if (node.get("Status") or {}).get("State") != "ready")


def task_addresses(tasks: Iterable[Mapping[str, Any]], network: str, down: frozenset[str] = frozenset()) -> list[str]:
    """Addresses on ``network`` of the tasks that run and are meant to run.

    A task the orchestrator is shutting down (desired state no longer
    ``running``), one still starting, or one on a node the swarm sees down is
    left out: nginx would only learn of its death by failed connections (a
    global service's task on a dead node stays "running" until the node comes
    back).
    """
    found = set()
    for task in tasks:
        if task.get("DesiredState") != "running":
            continue
        if (task.get("Status") or {}).get("State") != "running":
            continue
        if task.get("NodeID") in down:
            continue
        for attachment in task.get("NetworksAttachments") or []:
            net = attachment.get("Network") or {}
            if network not in ((net.get("Spec") or {}).get("Name"), net.get("ID")):
                continue
            for cidr in attachment.get("Addresses") or []:
                address = cidr.split("/", 1)[0]
                if _IPV4_RE.match(address):
                    found.add(address)
    return sorted(found, key=lambda a: tuple(int(x) for x in a.split(".")))


def virtual_hosts(
    services: Iterable[Mapping[str, Any]],
    tasks: Iterable[Mapping[str, Any]],
    network: str,
    down: frozenset[str] = frozenset(),
) -> tuple[list[VirtualHost], list[str]]:
    """Virtual hosts from services and their tasks (as the swarm API gives them).

    Several services may claim one host name: their servers are merged into
    one upstream (a blue/green switch is then two services with one label).
    Returns the virtual hosts sorted by name and the problems found in labels.
    """
    by_service: dict[str, list[Mapping[str, Any]]] = {}
    for task in tasks:
        by_service.setdefault(task.get("ServiceID", ""), []).append(task)
    problems: list[str] = []
    hosts: dict[str, tuple[set[str], set[str]]] = {}
    for service in services:
        spec = service.get("Spec") or {}
        labels = spec.get("Labels") or {}
        if HOST_LABEL not in labels:
            continue
        name = spec.get("Name") or service.get("ID", "?")
        names, rejected = parse_hosts(labels[HOST_LABEL])
        if rejected:
            problems.append(f"service {name}: ignoring invalid host name(s) {', '.join(rejected)} in {HOST_LABEL}")
        port = parse_port(labels.get(PORT_LABEL))
        if port is None:
            problems.append(f"service {name}: {PORT_LABEL}={labels.get(PORT_LABEL)!r} is not a port; service skipped")
            continue
        service_tasks = by_service.get(service.get("ID", ""), [])
        servers = {f"{addr}:{port}" for addr in task_addresses(service_tasks, network, down)}
        for host in names:
            owners, merged = hosts.setdefault(host, (set(), set()))
            owners.add(name)
            merged.update(servers)
    vhosts = [VirtualHost(h, tuple(sorted(o)), tuple(sorted(s))) for h, (o, s) in sorted(hosts.items())]
    return vhosts, problems


def upstream_name(host: str) -> str:
    return "picluster_" + re.sub(r"[^A-Za-z0-9]", "_", host)


def redirects(settings: Settings) -> bool:
    """Whether the virtual hosts answer plain HTTP only with a redirect to HTTPS."""
    return bool(settings.https_port and settings.https_redirect)


def _listen(settings: Settings, default: bool = False) -> list[str]:
    flag = " default_server" if default else ""
    lines = [] if redirects(settings) and not default else [f"    listen {settings.http_port}{flag};"]
    if settings.https_port:
        # In each server, not in the http context: there it would add to the
        # protocols the base image's nginx.conf enables (Debian's lists TLSv1
        # and TLSv1.1; nginx warns "duplicate value" and keeps them all).
        lines += [f"    listen {settings.https_port} ssl{flag};", "    ssl_protocols TLSv1.2 TLSv1.3;"]
        if settings.hsts_max_age > 0 and not default:
            lines.append(f'    add_header Strict-Transport-Security "max-age={settings.hsts_max_age}" always;')
    return lines


def _redirect_server(vhosts: list[VirtualHost], settings: Settings) -> list[str]:
    """Plain HTTP for the virtual hosts: a permanent redirect to the same URL over HTTPS, never the page."""
    port = "" if settings.https_public_port == 443 else f":{settings.https_public_port}"
    return [
        "",
        "# Plain HTTP for every virtual host: a redirect to HTTPS, never the page.",
        "server {",
        f"    listen {settings.http_port};",
        f"    server_name {' '.join(v.host for v in vhosts)};",
        "    location / {",
        f"        return 301 https://$host{port}$request_uri;",
        "    }",
        "}",
    ]


def render(vhosts: Iterable[VirtualHost], settings: Settings) -> str:
    """The nginx configuration (http context) for these virtual hosts."""
    out = [
        "# Generated by picluster-proxy-gen from the swarm's services; rewritten on every change.",
        "# Services opt in with the label picluster.proxy.host=<name> (and picluster.proxy.port).",
        "server_names_hash_bucket_size 128;",
        "server_tokens off;",
        "map $http_upgrade $picluster_connection {",
        "    default upgrade;",
        "    ''      '';",
        "}",
        "",
    ]
    if settings.https_port:
        out += [
            f"ssl_certificate {settings.tls_certificate};",
            f"ssl_certificate_key {settings.tls_key};",
            "",
        ]
    # Unknown host names get a plain answer of our own, not nginx's error page
    # nor the first virtual host.
    out += [
        "server {",
        *_listen(settings, default=True),
        "    server_name _;",
        "    default_type text/plain;",
        "    location = /.picluster-proxy/health {",
        '        return 200 "ok\\n";',
        "    }",
        "    location / {",
        '        return 404 "no service is published under the host name $host\\n";',
        "    }",
        "}",
    ]
    vhosts = list(vhosts)
    if vhosts and redirects(settings):
        out += _redirect_server(vhosts, settings)
    for vhost in vhosts:
        out.append("")
        out.append(f"# {vhost.host}: service(s) {', '.join(vhost.services)}; {len(vhost.servers)} task(s)")
        if vhost.servers:
            out.append(f"upstream {upstream_name(vhost.host)} {{")
            out += [f"    server {server} max_fails=1 fail_timeout=5s;" for server in vhost.servers]
            out.append("}")
        out += ["server {", *_listen(settings), f"    server_name {vhost.host};"]
        if not vhost.servers:
            out += [
                "    default_type text/plain;",
                "    location / {",
                f'        return 503 "{vhost.host}: no task of {", ".join(vhost.services)} is running\\n";',
                "    }",
                "}",
            ]
            continue
        out += [
            f"    client_max_body_size {settings.client_max_body_size};",
            "    location / {",
            f"        proxy_pass http://{upstream_name(vhost.host)};",
            "        proxy_http_version 1.1;",
            "        proxy_set_header Host $host;",
            "        proxy_set_header Upgrade $http_upgrade;",
            "        proxy_set_header Connection $picluster_connection;",
            "        proxy_set_header X-Real-IP $remote_addr;",
            "        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
            "        proxy_set_header X-Forwarded-Proto $scheme;",
            f"        proxy_connect_timeout {settings.connect_timeout};",
            f"        proxy_read_timeout {settings.read_timeout};",
            "        proxy_next_upstream error timeout http_502 http_503 http_504;",
            f"        proxy_next_upstream_tries {settings.next_upstream_tries};",
            f"        proxy_next_upstream_timeout {settings.next_upstream_timeout};",
            "    }",
            "}",
        ]
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------
# Side effects: the swarm, the file, nginx
# --------------------------------------------------------------------------

def write_if_changed(path: Path, text: str) -> bool:
    """Replace the file's text atomically (a reader never sees half of it); False if it was already so."""
    try:
        if path.read_text() == text:
            return False
    except FileNotFoundError:
        pass
    fd, tmp = tempfile.mkstemp(dir=str(path.parent), prefix=".picluster-proxy-")
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
    return True


class Generator:
    """The swarm's labelled services, written as nginx's configuration to the shared file."""

    def __init__(self, settings: Settings, client: Any) -> None:
        self.settings = settings
        self.client = client
        self.wake = threading.Event()
        self.stopping = False
        self.last_problems: list[str] = []

    def read_swarm(self) -> list[VirtualHost]:
        services = self.client.api.services()
        tasks = self.client.api.tasks(filters={"desired-state": "running"})
        down = down_nodes(self.client.api.nodes())
        vhosts, problems = virtual_hosts(services, tasks, self.settings.network, down)
        if problems != self.last_problems:
            for problem in problems:
                log(problem)
            self.last_problems = problems
        return vhosts

    def sync(self) -> None:
        try:
            vhosts = self.read_swarm()
        except Exception as err:  # a manager restarting or not yet a manager: retry later
            log(f"cannot read services from the swarm: {err}")
            return
        if write_if_changed(Path(self.settings.shared_path), render(vhosts, self.settings)):
            summary = ", ".join(f"{v.host}={len(v.servers)}" for v in vhosts) or "none"
            log(f"configuration written; virtual hosts: {summary}")

    def watch_events(self) -> None:
        """Wake the main loop on every swarm service or node event."""
        while not self.stopping:
            try:
                for _event in self.client.events(decode=True, filters={"type": ["service", "node"]}):
                    self.wake.set()
                    if self.stopping:
                        return
            except Exception as err:
                log(f"event stream interrupted ({err}); reconnecting")
            time.sleep(2)

    def stop(self, *_args: Any) -> None:
        self.stopping = True
        self.wake.set()

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        self.sync()
        threading.Thread(target=self.watch_events, daemon=True).start()
        burst_until = 0.0
        while not self.stopping:
            # After an event, tasks start over the next seconds: look again
            # every second for a while, then fall back to the slow resync.
            timeout = 1.0 if time.monotonic() < burst_until else self.settings.interval
            if self.wake.wait(timeout):
                self.wake.clear()
                burst_until = time.monotonic() + 15
            if not self.stopping:
                self.sync()
        return 0


class Server:
    """nginx, and each new text of the shared file it accepts."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.nginx: Optional[subprocess.Popen] = None
        self.stopping = False
        self.wanted: Optional[str] = None  # the last text seen in the shared file

    def install(self, text: str) -> bool:
        """Write ``text`` as nginx's configuration if it differs, and reload; rolled back if
        ``nginx -t`` rejects it. True if nginx now uses it."""
        path = Path(self.settings.config_path)
        old = path.read_text() if path.exists() else None
        if old == text:
            return False
        write_if_changed(path, text)
        test = subprocess.run(["nginx", "-t", "-q"], capture_output=True, text=True, check=False)
        if test.returncode != 0:
            log(f"nginx rejected the new configuration, keeping the old one: {test.stderr.strip()}")
            if old is None:
                path.unlink()
            else:
                path.write_text(old)
            return False
        if self.nginx and self.nginx.poll() is None:
            self.nginx.send_signal(signal.SIGHUP)
        return True

    def follow(self) -> None:
        """Install the shared file's text when it changed since last seen."""
        try:
            text = Path(self.settings.shared_path).read_text()
        except FileNotFoundError:
            return  # the generator has not written yet
        if text != self.wanted:
            self.wanted = text
            if self.install(text):
                log("configuration installed")

    def stop(self, *_args: Any) -> None:
        self.stopping = True

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        # A default-only configuration first, so nginx answers at once.
        self.install(render([], self.settings))
        self.follow()
        self.nginx = subprocess.Popen(["nginx", "-g", "daemon off;"])
        while not self.stopping:
            time.sleep(self.settings.poll)
            if self.nginx.poll() is not None:
                log(f"nginx exited with status {self.nginx.returncode}; stopping so the container restarts")
                return 1
            self.follow()
        if self.nginx.poll() is None:
            self.nginx.send_signal(signal.SIGQUIT)  # graceful: finish open requests
            try:
                self.nginx.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.nginx.kill()
        return 0


def main(argv: list[str]) -> int:
    settings = Settings.from_env(os.environ)
    command = argv[1] if len(argv) > 1 else "serve"
    if command == "serve":
        return Server(settings).run()
    if command not in ("generate", "render"):
        print(f"usage: {argv[0]} generate | serve | render", file=sys.stderr)
        return 2
    import docker  # only here: nginx's side and the pure functions above need no Docker SDK

    generator = Generator(settings, docker.from_env(timeout=30))
    if command == "render":
        sys.stdout.write(render(generator.read_swarm(), settings))
        return 0
    return generator.run()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
