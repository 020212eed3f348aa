# Copyright (c) 2025 picluster.swarm developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The swarm's node list through the Docker engine API: a small client, standard library only.

Why not community.docker's client: its connection options (``ca_path``,
``client_cert``, ``client_key``, ``validate_certs``, ``timeout``) carry the
same names as the Consul options every picluster.swarm module takes, so one
module cannot have both; and the reconciler service on the managers must run
on a bare Pi with nothing but Python, as the heartbeat does. This file ships
beside that service (roles/swarm_manager), so it imports nothing from the
collection. The options are named after Docker's own (``docker_host``,
``docker_cert_path``: the docker CLI's DOCKER_HOST and DOCKER_CERT_PATH, a
directory with ca.pem, cert.pem and key.pem, the layout the docker role keeps
in <inventory>/pki/docker).

Only what the consistency check and the reconciler need: ``GET /info``,
``GET /nodes``, ``GET /nodes/{id}``, ``POST /nodes/{id}/update`` and
``DELETE /nodes/{id}``. Failures are ``DockerError`` with a sentence a person
can act on.
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import os
import socket
import ssl
import time
from typing import Any, Dict, List, Mapping, Optional, Tuple
from urllib.parse import quote, urlencode, urlsplit

DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"
DEFAULT_TLS_PORT = 2376
DEFAULT_PLAIN_PORT = 2375
DEFAULT_DOCKER_TIMEOUT = 10.0
# How long a demoted manager may take to leave raft before it can be removed.
DEMOTE_WAIT = 20.0

# The Docker connection options; the doc fragment picluster.swarm.docker documents them, once.
DOCKER_ARGUMENT_SPEC: Dict[str, Dict[str, Any]] = dict(
    docker_host=dict(type="str"),
    docker_cert_path=dict(type="path"),
    docker_ca_path=dict(type="path"),
    docker_client_cert=dict(type="path"),
    docker_client_key=dict(type="path"),
    docker_tls=dict(type="bool"),
    docker_validate_certs=dict(type="bool", default=True),
    docker_tls_hostname=dict(type="str"),
    docker_timeout=dict(type="float", default=DEFAULT_DOCKER_TIMEOUT),
)


class DockerError(Exception):
    """A failure already phrased for a person: what failed, why, what to do."""


@dataclasses.dataclass(frozen=True)
class DockerSettings:
    """Where and how to reach one engine, after options and environment are merged."""

    scheme: str  # unix, http or https
    host: str = ""
    port: int = 0
    socket_path: str = ""
    ca_path: Optional[str] = None
    client_cert: Optional[str] = None
    client_key: Optional[str] = None
    validate_certs: bool = True
    tls_hostname: Optional[str] = None
    timeout: float = DEFAULT_DOCKER_TIMEOUT

    @property
    def url(self) -> str:
        if self.scheme == "unix":
            return f"unix://{self.socket_path}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'tcp' if self.scheme == 'http' else 'https'}://{host}:{self.port}"


def _env_flag(value: Optional[str]) -> bool:
    return (value or "").strip().lower() not in ("", "0", "false", "no", "off")


def resolve_docker_settings(params: Mapping[str, Any], environ: Optional[Mapping[str, str]] = None) -> DockerSettings:
    """Merge the docker_* options with DOCKER_HOST, DOCKER_CERT_PATH and DOCKER_TLS_VERIFY (options win).

    Raises DockerError when a value cannot be used (a certificate file missing, a bad address).
    """
    env = os.environ if environ is None else environ
    raw = (params.get("docker_host") or env.get("DOCKER_HOST") or DEFAULT_DOCKER_HOST).strip()
    cert_dir = params.get("docker_cert_path") or env.get("DOCKER_CERT_PATH") or None
    timeout = float(params.get("docker_timeout") or DEFAULT_DOCKER_TIMEOUT)
    if timeout <= 0:
        raise DockerError("docker_timeout must be a positive number of seconds")
    if raw.startswith("unix://"):
        path = raw[len("unix://"):]
        if not path:
            raise DockerError(f"docker_host {raw!r} names no socket; write unix:///var/run/docker.sock")
        return DockerSettings(scheme="unix", socket_path=path, timeout=timeout)
    if raw.startswith("/"):
        return DockerSettings(scheme="unix", socket_path=raw, timeout=timeout)

    parts = urlsplit(raw if "://" in raw else "tcp://" + raw)
    if parts.scheme not in ("tcp", "http", "https") or not parts.hostname or parts.path not in ("", "/"):
        raise DockerError(f"docker_host {raw!r} is not unix:///path, tcp://host:port or https://host:port")
    files = {
        "docker_ca_path": params.get("docker_ca_path") or (os.path.join(cert_dir, "ca.pem") if cert_dir else None),
        "docker_client_cert": params.get("docker_client_cert")
        or (os.path.join(cert_dir, "cert.pem") if cert_dir else None),
        "docker_client_key": params.get("docker_client_key")
        or (os.path.join(cert_dir, "key.pem") if cert_dir else None),
    }
    tls = params.get("docker_tls")
    if tls is None:
        tls = parts.scheme == "https" or _env_flag(env.get("DOCKER_TLS_VERIFY")) or any(files.values())
    if tls:
        for name, path in files.items():
            if path and not os.path.isfile(path):
                where = f" (from docker_cert_path {cert_dir})" if cert_dir and not params.get(name) else ""
                raise DockerError(
                    f"{name} {path}{where} does not exist or is not a file; the docker role keeps the cluster's CA "
                    "and client certificate in <inventory>/pki/docker (ca.pem, cert.pem, key.pem): set "
                    "docker_cert_path (DOCKER_CERT_PATH) to that directory"
                )
        if bool(files["docker_client_cert"]) != bool(files["docker_client_key"]):
            raise DockerError("docker_client_cert and docker_client_key go together; give both (or docker_cert_path)")
    try:
        port = parts.port or (DEFAULT_TLS_PORT if tls else DEFAULT_PLAIN_PORT)
    except ValueError:
        raise DockerError(f"docker_host {raw!r} has an invalid port") from None
    return DockerSettings(
        scheme="https" if tls else "http",
        host=parts.hostname,
        port=port,
        ca_path=files["docker_ca_path"] if tls else None,
        client_cert=files["docker_client_cert"] if tls else None,
        client_key=files["docker_client_key"] if tls else None,
        validate_certs=bool(params.get("docker_validate_certs", True)),
        tls_hostname=params.get("docker_tls_hostname") or None,
        timeout=timeout,
    )


# -- transport -----------------------------------------------------------------------


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class _TLSConnection(http.client.HTTPSConnection):
    """HTTPS whose certificate is checked against tls_hostname when it differs from the address dialled."""

    def __init__(self, host: str, port: int, context: ssl.SSLContext, server_hostname: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self._context = context
        self._server_hostname = server_hostname

    def connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), self.timeout)
        try:
            self.sock = self._context.wrap_socket(sock, server_hostname=self._server_hostname)
        except (OSError, ssl.SSLError):
            sock.close()
            raise


def _tls_context(settings: DockerSettings) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if settings.validate_certs:
        if settings.ca_path:
            context.load_verify_locations(cafile=settings.ca_path)
        else:
            context.load_default_certs()
    else:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if settings.client_cert:
        context.load_cert_chain(settings.client_cert, settings.client_key)
    return context


def _tls_reason(exc: BaseException) -> str:
    text = str(exc)
    lowered = text.lower()
    if "hostname" in lowered and "match" in lowered:
        return "the engine's certificate does not name this address; set docker_tls_hostname to a name it has"
    if "certificate verify failed" in lowered:
        detail = text.split("certificate verify failed:", 1)[-1].split("(", 1)[0].strip(" )'\"")
        return f"the engine's certificate is not trusted ({detail or 'verify failed'}); set docker_cert_path or " \
               "docker_ca_path to the cluster's CA"
    if "certificate required" in lowered or "bad certificate" in lowered or "unknown ca" in lowered:
        return "the engine wants a client certificate signed by the cluster's CA; set docker_cert_path " \
               "(DOCKER_CERT_PATH) to <inventory>/pki/docker"
    if "wrong version number" in lowered or "record layer failure" in lowered or "packet length too long" in lowered:
        return "the engine does not speak TLS on this port (plaintext 2375?); use docker_tls: false or port 2376"
    return text


def _connection_reason(exc: BaseException) -> str:
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "no answer in time"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, FileNotFoundError):
        return "the socket does not exist"
    if isinstance(exc, PermissionError):
        return "permission denied on the socket (run as root or a member of the docker group)"
    if isinstance(exc, socket.gaierror):
        return "the host name does not resolve"
    text = str(exc)
    lowered = text.lower()
    for words, reason in (("no route", "no route to host"), ("unreachable", "network is unreachable"),
                          ("reset by peer", "the connection was reset (a TLS port spoken to in plaintext?)")):
        if words in lowered:
            return reason
    return text or type(exc).__name__


class DockerClient:
    """The few engine API calls the swarm checks need, over a unix socket, TCP or TLS."""

    def __init__(self, settings: DockerSettings) -> None:
        self.settings = settings
        self.request_count = 0
        self._context = _tls_context(settings) if settings.scheme == "https" else None

    def _connection(self) -> http.client.HTTPConnection:
        s = self.settings
        if s.scheme == "unix":
            return _UnixConnection(s.socket_path, s.timeout)
        if s.scheme == "https" and self._context is not None:
            return _TLSConnection(s.host, s.port, self._context, s.tls_hostname or s.host, s.timeout)
        return http.client.HTTPConnection(s.host, s.port, timeout=s.timeout)

    def request(self, method: str, path: str, params: Optional[Mapping[str, Any]] = None, body: Any = None,
                *, action: str) -> Tuple[int, Any]:
        """One request; (status, decoded JSON). Raises DockerError phrased with `action`."""
        url = quote(path, safe="/")
        if params:
            url += "?" + urlencode([(k, v) for k, v in params.items() if v is not None])
        payload = None if body is None else json.dumps(body).encode("utf-8")
        headers = {"Content-Type": "application/json"} if payload is not None else {}
        where = f"the Docker engine at {self.settings.url}"
        self.request_count += 1
        connection = self._connection()
        try:
            connection.request(method, url, body=payload, headers=headers)
            response = connection.getresponse()
            raw = response.read()
            status = response.status
        except ssl.SSLError as exc:
            raise DockerError(f"TLS with {where} failed while {action}: {_tls_reason(exc)}") from None
        except (OSError, http.client.HTTPException) as exc:
            raise DockerError(
                f"cannot reach {where} while {action}: {_connection_reason(exc)}; is the manager up and its engine "
                "listening there? set docker_host (DOCKER_HOST) to a reachable manager"
            ) from None
        finally:
            connection.close()
        text = raw.decode("utf-8", "replace")
        try:
            data = json.loads(text) if text.strip() else None
        except ValueError:
            data = text
        if status >= 400:
            raise DockerError(self._describe(status, data, action))
        return status, data

    def _describe(self, status: int, data: Any, action: str) -> str:
        where = f"the Docker engine at {self.settings.url}"
        message = str(data.get("message") if isinstance(data, dict) else data or "").strip()
        lowered = message.lower()
        if "not a swarm manager" in lowered or "not part of a swarm" in lowered:
            return (f"{where} cannot answer {action}: it is not a swarm manager ({message}); set docker_host to a "
                    "manager's engine")
        if "does not have a leader" in lowered or "too few managers" in lowered:
            return (f"{where} cannot answer {action}: the swarm has no leader, too few managers are online to keep "
                    "its quorum ({message}); bring managers back first. Nothing was changed")
        if "http request to an https server" in lowered:
            return (f"{where} speaks TLS and was spoken to in plaintext while {action}; set docker_cert_path "
                    "(DOCKER_CERT_PATH) to <inventory>/pki/docker, or docker_tls: true")
        if "update out of sequence" in lowered:
            return (f"{where} refused {action}: the node changed meanwhile (another reconciler or an operator); run "
                    "again")
        return f"{where} answered HTTP {status} while {action}: {message or '(empty body)'}"

    # -- calls ------------------------------------------------------------------------

    def info(self) -> Dict[str, Any]:
        _status, data = self.request("GET", "/info", action="reading the engine's info")
        return data if isinstance(data, dict) else {}

    def nodes(self) -> List[Dict[str, Any]]:
        _status, data = self.request("GET", "/nodes", action="listing the swarm's nodes")
        return list(data or [])

    def node(self, node_id: str) -> Dict[str, Any]:
        _status, data = self.request("GET", f"/nodes/{node_id}", action=f"reading swarm node {node_id[:12]}")
        return data if isinstance(data, dict) else {}

    def update_node(self, node_id: str, version: int, spec: Mapping[str, Any], *, action: str) -> None:
        self.request("POST", f"/nodes/{node_id}/update", {"version": version}, dict(spec), action=action)

    def remove_node(self, node_id: str, *, action: str) -> None:
        # No force: the engine itself refuses to remove a node that is not Down.
        self.request("DELETE", f"/nodes/{node_id}", action=action)


def client_from_params(params: Mapping[str, Any], environ: Optional[Mapping[str, str]] = None) -> DockerClient:
    try:
        return DockerClient(resolve_docker_settings(params, environ))
    except (ssl.SSLError, OSError) as exc:
        raise DockerError(f"cannot load the TLS files for the Docker engine: {exc}") from None


# -- the reconciler's actions --------------------------------------------------------------


_VERBS = {"drain": "draining", "activate": "setting active", "remove": "removing"}


def perform(client: DockerClient, action: Mapping[str, Any], apply_change: Any) -> str:
    """Carry out one action of ``_consistency.plan``; return what happened, in a few words.

    The node is read again first and the change applied to that fresh spec
    and version: a label or availability someone set meanwhile is kept, and a
    second reconciler that got there first makes this one a no-op.
    """
    node_id = action["id"]
    verb = f"{_VERBS[action['action']]} swarm node {action['node']} ({node_id[:12]})"
    fresh = client.node(node_id)
    if action["action"] == "remove":
        return _remove(client, fresh, action, verb)
    spec = fresh.get("Spec") or {}
    wanted = apply_change(spec, action)
    if wanted is None:
        return "already so"
    client.update_node(node_id, (fresh.get("Version") or {}).get("Index", 0), wanted, action=verb)
    return "done"


def _remove(client: DockerClient, fresh: Mapping[str, Any], action: Mapping[str, Any], verb: str) -> str:
    node_id = action["id"]
    if (fresh.get("Status") or {}).get("State") == "ready":
        return "skipped: it is Ready again"
    spec = dict(fresh.get("Spec") or {})
    if spec.get("Role") == "manager":
        spec["Role"] = "worker"
        client.update_node(node_id, (fresh.get("Version") or {}).get("Index", 0), spec,
                           action=f"demoting swarm node {action['node']} before removing it")
        deadline = time.monotonic() + DEMOTE_WAIT
        while client.node(node_id).get("ManagerStatus") and time.monotonic() < deadline:
            time.sleep(1)
    client.remove_node(node_id, action=verb)
    return "done"
