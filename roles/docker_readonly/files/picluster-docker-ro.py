# Copyright (c) 2025 picluster.swarm developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""picluster-docker-ro: a read-only view of the Docker engine API.

The engine's own socket is root on the host, whatever the mount flags: a
"read-only" bind mount of /var/run/docker.sock still lets a container create
a privileged container. The reverse proxy's generator (and anything else that
only needs to read the swarm) gets this socket instead. It answers

* GET and HEAD of ``_ping``, ``version``, ``events`` (streamed), and the lists
  and single objects of ``nodes``, ``services``, ``tasks`` and ``networks``,
  with or without an API version prefix (``/v1.41/services``);

and refuses everything else (creating, starting or exec'ing a container,
deleting anything, reading secrets or configs, the swarm's join tokens, a
container's logs or environment...) with ``403`` and a JSON ``message`` the
Docker clients show as "Error response from daemon: ...". The environment of
services and tasks (``ContainerSpec.Env``, where people put passwords) is
removed from the answers.

Every request the client sends is parsed here and a new request, method and
path only, is made to the engine: no body, header or connection upgrade of
the client's reaches it.

systemd starts it on the first connection to its socket
(``picluster-docker-ro.socket`` makes the socket root-owned, group
``picluster-docker-ro``, mode 0660) as a dynamic user whose only privilege is
the engine socket's group. ``--listen PATH`` binds a socket itself (tests).

The decisions are pure functions (``decide``, ``redact``), unit tested in
tests/unit/roles/test_docker_readonly.py.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import socket
import socketserver
import sys
import threading
from http.server import BaseHTTPRequestHandler
from typing import Any, Optional, Tuple

ALLOWED_METHODS = ("GET", "HEAD")
# An object's ID or name: no slash, no "..", nothing percent-encoded.
_OBJECT = r"[A-Za-z0-9][A-Za-z0-9_.-]*"
_VERSION = r"(?:/v[0-9]+\.[0-9]+)?"  # the API version prefix clients may send (/v1.41/services)
_ALLOWED_PATH = re.compile(
    rf"^{_VERSION}/(?:_ping|version|events|(?:nodes|services|tasks|networks)(?:/{_OBJECT})?)$"
)
_STREAMED = re.compile(rf"^{_VERSION}/events$")
_REDACTED = re.compile(rf"^{_VERSION}/(?:services|tasks)(?:/[^/]+)?$")
ALLOWED_TEXT = (
    "GET or HEAD of _ping, version, events, and the lists and single objects of nodes, services, tasks and networks"
)
# Headers of the engine's answer passed on to the client.
FORWARDED_HEADERS = ("Content-Type", "Api-Version", "Docker-Experimental", "Ostype", "Swarm")
MAX_BODY = 64 * 1024 * 1024
MAX_CLIENTS = 32
SD_LISTEN_FDS_START = 3


def decide(method: str, target: str) -> Tuple[bool, str]:
    """(allowed, reason) for one request line; the reason is the refusal's text."""
    path, _sep, _query = target.partition("?")
    if method not in ALLOWED_METHODS:
        return False, f"{method} {path} is not allowed: this socket is read-only ({ALLOWED_TEXT})"
    if not _ALLOWED_PATH.match(path):
        return False, f"{method} {path} is not allowed: this socket answers only {ALLOWED_TEXT}"
    return True, ""


def is_streamed(target: str) -> bool:
    return bool(_STREAMED.match(target.partition("?")[0]))


def _drop_env(container_spec: Any) -> None:
    if isinstance(container_spec, dict):
        container_spec.pop("Env", None)


def _redact_one(item: Any) -> Any:
    if not isinstance(item, dict):
        return item
    for spec_key in ("Spec", "PreviousSpec"):
        spec = item.get(spec_key)
        if not isinstance(spec, dict):
            continue
        _drop_env(spec.get("ContainerSpec"))  # a task
        template = spec.get("TaskTemplate")  # a service
        if isinstance(template, dict):
            _drop_env(template.get("ContainerSpec"))
    return item


def redact(target: str, body: bytes) -> bytes:
    """The engine's answer without the services' and tasks' environment."""
    if not _REDACTED.match(target.partition("?")[0]):
        return body
    try:
        data = json.loads(body)
    except ValueError:
        return body
    data = [_redact_one(item) for item in data] if isinstance(data, list) else _redact_one(data)
    return json.dumps(data, separators=(",", ":")).encode() + b"\n"


class EngineConnection(http.client.HTTPConnection):
    """HTTP to the engine over its unix socket."""

    def __init__(self, path: str, timeout: Optional[float]) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.socket_path)
        self.sock = sock


def log(message: str) -> None:
    print(f"picluster-docker-ro: {message}", file=sys.stderr, flush=True)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "picluster-docker-ro"
    engine_socket = "/var/run/docker.sock"
    slots = threading.BoundedSemaphore(MAX_CLIENTS)

    # -- refusals -------------------------------------------------------------

    def refuse(self, status: int, message: str) -> None:
        log(f"refused: {message}")
        body = json.dumps({"message": f"picluster read-only Docker API: {message}"}).encode() + b"\n"
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.close_connection = True

    def do_refused(self) -> None:
        self.refuse(403, decide(self.command, self.path)[1])

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_CONNECT = do_TRACE = do_refused

    # -- reads ----------------------------------------------------------------

    def do_GET(self) -> None:
        allowed, reason = decide(self.command, self.path)
        if not allowed:
            self.refuse(403, reason)
            return
        # A read carries no body; one sent anyway would be read as the next request.
        if self.headers.get("Transfer-Encoding") or int(self.headers.get("Content-Length") or 0) > 0:
            self.refuse(400, f"{self.command} {self.path.partition('?')[0]} with a request body")
            return
        if not self.slots.acquire(blocking=False):
            self.refuse(503, f"more than {MAX_CLIENTS} requests at once")
            return
        try:
            self.forward()
        finally:
            self.slots.release()

    do_HEAD = do_GET

    def forward(self) -> None:
        streamed = is_streamed(self.path)
        engine = EngineConnection(self.engine_socket, timeout=None if streamed else 30)
        try:
            engine.request(self.command, self.path, headers={"Host": "docker"})
            answer = engine.getresponse()
            if streamed and answer.status == 200:
                self.stream(answer)
                return
            body = b"" if self.command == "HEAD" else answer.read(MAX_BODY + 1)
            if len(body) > MAX_BODY:
                self.refuse(502, f"the engine's answer to {self.path} is larger than {MAX_BODY} bytes")
                return
            if answer.status == 200:
                body = redact(self.path, body)
            length = answer.getheader("Content-Length") or "0" if self.command == "HEAD" else str(len(body))
            self.send_response(answer.status)
            self.copy_headers(answer)
            self.send_header("Content-Length", length)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
        except OSError as err:
            self.refuse(502, f"cannot reach the Docker engine at {self.engine_socket}: {err}")
        finally:
            engine.close()

    def stream(self, answer: http.client.HTTPResponse) -> None:
        """Events as they come, re-chunked, until either side hangs up."""
        self.send_response(200)
        self.copy_headers(answer)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.close_connection = True
        try:
            while True:
                chunk = answer.read1(65536)
                if not chunk:
                    break
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        except OSError:
            pass  # the client went away

    def copy_headers(self, answer: http.client.HTTPResponse) -> None:
        for name in FORWARDED_HEADERS:
            value = answer.getheader(name)
            if value is not None:
                self.send_header(name, value)

    def address_string(self) -> str:
        return "unix"

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        pass  # refusals are logged; reads, one a second per client, are not


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def systemd_socket() -> Optional[socket.socket]:
    """The listening socket systemd passed (socket activation), if any."""
    if os.environ.get("LISTEN_PID") != str(os.getpid()) or int(os.environ.get("LISTEN_FDS", "0")) < 1:
        return None
    return socket.socket(fileno=SD_LISTEN_FDS_START)


def main(argv: Optional[list] = None) -> int:
    parser = argparse.ArgumentParser(description="A read-only Docker API on a unix socket.")
    parser.add_argument("--engine", default="/var/run/docker.sock", help="the engine's socket")
    parser.add_argument("--listen", default="", help="bind this socket path instead of systemd's")
    args = parser.parse_args(argv)
    handler = type("BoundHandler", (Handler,), {"engine_socket": args.engine})
    inherited = systemd_socket()
    if inherited is not None:
        server = Server(inherited.getsockname(), handler, bind_and_activate=False)
        server.socket.close()
        server.socket = inherited
    elif args.listen:
        if os.path.exists(args.listen):
            os.unlink(args.listen)
        server = Server(args.listen, handler)
    else:
        parser.error("no socket from systemd (LISTEN_FDS) and no --listen PATH")
        return 2
    log(f"serving a read-only view of {args.engine} on {server.server_address}")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
