"""The read-only Docker API filter: what it lets through, what it refuses, what it removes.

The last test runs the real filter process on a socket, in front of a
stand-in engine that records what reaches it.
"""

from __future__ import annotations

import importlib.util
import json
import socketserver
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import ClassVar

import pytest

FILTER = Path(__file__).resolve().parents[3] / "roles/docker_readonly/files/picluster-docker-ro.py"
_spec = importlib.util.spec_from_file_location("picluster_docker_ro", FILTER)
assert _spec and _spec.loader
ro = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = ro
_spec.loader.exec_module(ro)


@pytest.mark.parametrize(
    "target",
    [
        "/_ping",
        "/version",
        "/v1.41/services",
        "/services/demo",
        "/tasks?filters=%7B%22desired-state%22%3A%5B%22running%22%5D%7D",
        "/v1.41/nodes/abc123",
        "/networks/my-net",
        "/v1.41/events?filters=%7B%7D",
    ],
)
def test_reads_of_the_swarm_are_allowed(target):
    assert ro.decide("GET", target) == (True, "")
    assert ro.decide("HEAD", target)[0]


@pytest.mark.parametrize(
    ("method", "target"),
    [
        ("POST", "/v1.41/containers/create"),
        ("POST", "/containers/abc/exec"),
        ("POST", "/exec/abc/start"),
        ("DELETE", "/services/demo"),
        ("POST", "/services/demo/update"),
        ("GET", "/secrets"),
        ("GET", "/v1.41/secrets/abc"),
        ("GET", "/configs"),
        ("GET", "/swarm"),  # the join tokens
        ("GET", "/info"),
        ("GET", "/containers/json"),
        ("GET", "/services/demo/logs"),
        ("GET", "/services/../secrets"),
        ("GET", "/services/%2e%2e/secrets"),
        ("PUT", "/_ping"),
    ],
)
def test_everything_else_is_refused_with_the_reason(method, target):
    allowed, reason = ro.decide(method, target)
    assert not allowed
    assert f"{method} {target.partition('?')[0]} is not allowed" in reason


def test_the_environment_of_services_and_tasks_is_removed():
    service = {"ID": "s1", "Spec": {"Name": "db", "Labels": {"a": "b"},
                                    "TaskTemplate": {"ContainerSpec": {"Image": "x", "Env": ["PASSWORD=hunter2"]}}},
               "PreviousSpec": {"TaskTemplate": {"ContainerSpec": {"Env": ["PASSWORD=old"]}}}}
    task = {"ID": "t1", "Spec": {"ContainerSpec": {"Image": "x", "Env": ["PASSWORD=hunter2"]}}}
    services = json.loads(ro.redact("/v1.41/services", json.dumps([service]).encode()))
    assert "hunter2" not in json.dumps(services) and "old" not in json.dumps(services)
    assert services[0]["Spec"]["Labels"] == {"a": "b"}
    assert services[0]["Spec"]["TaskTemplate"]["ContainerSpec"] == {"Image": "x"}
    one_task = json.loads(ro.redact("/tasks/t1", json.dumps(task).encode()))
    assert one_task["Spec"]["ContainerSpec"] == {"Image": "x"}
    nodes = json.dumps([{"ID": "n1", "Spec": {"Env": ["kept"]}}]).encode()
    assert ro.redact("/nodes", nodes) == nodes  # only services and tasks carry a container's environment
    assert ro.redact("/services", b"not json") == b"not json"


class _Engine(BaseHTTPRequestHandler):
    """Answers every request with 200 and a list; records what reached it."""

    protocol_version = "HTTP/1.1"
    seen: ClassVar[list] = []

    def _answer(self) -> None:
        self.seen.append((self.command, self.path))
        body = json.dumps([{"ID": "s1", "Spec": {"TaskTemplate": {"ContainerSpec": {"Env": ["SECRET=1"]}}}}]).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_DELETE = _answer

    def address_string(self) -> str:
        return "unix"

    def log_message(self, format, *args):
        pass


class _UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def _request(path: str, method: str, target: str) -> tuple[int, bytes]:
    conn = ro.EngineConnection(path, timeout=10)  # the filter's own HTTP over a unix socket
    try:
        conn.request(method, target)
        answer = conn.getresponse()
        return answer.status, answer.read()
    finally:
        conn.close()


def test_the_filter_passes_reads_and_no_write_reaches_the_engine(tmp_path):
    engine_path, listen = str(tmp_path / "engine.sock"), str(tmp_path / "ro.sock")
    engine = _UnixServer(engine_path, _Engine)
    threading.Thread(target=engine.serve_forever, daemon=True).start()
    proc = subprocess.Popen([sys.executable, "-I", str(FILTER), "--engine", engine_path, "--listen", listen],
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while not Path(listen).exists():
            assert proc.poll() is None and time.monotonic() < deadline, "the filter did not start"
            time.sleep(0.05)
        status, body = _request(listen, "GET", "/v1.41/services")
        assert status == 200
        assert json.loads(body) == [{"ID": "s1", "Spec": {"TaskTemplate": {"ContainerSpec": {}}}}]
        for method, target in [("POST", "/containers/create"), ("POST", "/containers/x/exec"),
                               ("GET", "/secrets"), ("GET", "/swarm"), ("DELETE", "/services/s1")]:
            status, body = _request(listen, method, target)
            assert status == 403, (method, target)
            assert "picluster read-only Docker API" in json.loads(body)["message"]
        assert _Engine.seen == [("GET", "/v1.41/services")]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        engine.shutdown()
