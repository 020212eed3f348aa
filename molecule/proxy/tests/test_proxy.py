"""The reverse proxy on the master reaches tasks on every node over the overlay.

Requests go from this host straight to the master's lab address (the lab
network is a local bridge); swarm changes are made with `docker exec` into the
nodes. Tests run in file order: the last one removes the demo service.
"""

from __future__ import annotations

import json
import os
import subprocess

from picluster_lab import Lab

LAB = Lab.from_env()
DEMO_HOST = "demo.picluster.lab"
SERVICE = "demo-web"
PROXY = "picluster-proxy"  # nginx
GENERATOR = "picluster-proxy-gen"
POLL_LIMIT = 20  # seconds the proxy may take to follow a change


def sh(host: str, *argv: str, check: bool = True, timeout: float = 60) -> str:
    return LAB.sh(host, argv, check=check, timeout=timeout)


def get(host: str, path: str = "/") -> tuple[int, str, dict]:
    """Over HTTPS, as a browser ends up (plain HTTP only redirects here; the scenario's certificate is self-signed)."""
    answer = LAB.http(host, path, scheme="https", verify_tls=False, timeout=10)
    assert answer.status, f"nothing answered at {LAB.address('master')}: {answer.body}"
    return answer.status, answer.body, answer.headers


def replicas_seen(want: int, max_requests: int = 60) -> tuple[set[str], set[str]]:
    """(nodes, containers) that answered through the proxy, asking until
    ``want`` containers answered (each nginx worker keeps its own round
    robin, so a fixed count of requests could miss one)."""
    nodes, containers = set(), set()
    for _request in range(max_requests):
        status, body, _headers = get(DEMO_HOST)
        assert status == 200, f"{DEMO_HOST} answered {status}: {body}"
        answer = json.loads(body)
        nodes.add(answer["node"])
        containers.add(answer["container"])
        if len(containers) >= want:
            break
    return nodes, containers


def upstreams() -> int:
    conf = sh("master", "docker", "exec", PROXY, "cat", "/etc/nginx/conf.d/picluster-proxy.conf")
    return sum(1 for line in conf.splitlines() if line.strip().startswith("server ") and "max_fails" in line)


def wait_for(what: str, predicate) -> float:
    return LAB.wait_until(what, predicate, limit=POLL_LIMIT, interval=0.5)


def network(name: str) -> dict:
    return json.loads(sh("master", "docker", "network", "inspect", name))[0]


def test_overlay_networks_made_as_asked():
    mynet = network("my-net")
    assert (mynet["Driver"], mynet["Scope"], mynet["Attachable"]) == ("overlay", "swarm", True)
    test_net = network("proxy-test-net")
    assert test_net["IPAM"]["Config"][0]["Subnet"] == "10.231.7.0/24"
    assert test_net["IPAM"]["Config"][0]["Gateway"] == "10.231.7.1"
    assert test_net["Labels"]["io.picluster.test"] == "proxy"
    assert "encrypted" in network("proxy-secure-net")["Options"]
    assert sh("master", "docker", "network", "inspect", "proxy-old-net", check=False) == "[]\n"


def test_proxy_publishes_only_on_the_master():
    assert PROXY in sh("master", "docker", "ps", "--format", "{{.Names}}").split()
    # Started again after a reboot, when the overlay network is back (dockerd alone does not).
    assert sh("master", "systemctl", "is-enabled", "picluster-proxy-start").strip() == "enabled"
    for worker in ("node1", "node2"):
        assert PROXY not in sh(worker, "docker", "ps", "--format", "{{.Names}}").split()


def test_unknown_host_gets_a_clean_404():
    status, body, headers = get("nobody.example.org")
    assert status == 404
    assert body.startswith("no service is published under the host name nobody.example.org")
    assert headers.get("Content-Type", "").startswith("text/plain")
    assert "<html" not in body.lower()


def test_requests_reach_replicas_on_several_nodes():
    nodes, containers = replicas_seen(3)
    assert len(containers) == 3, containers
    assert len(nodes) >= 2, nodes


def test_plain_http_only_redirects_to_https():
    """A page behind the proxy (and a password typed into it) never crosses the LAN in clear."""
    answer = LAB.http(DEMO_HOST, "/some/path?x=1", scheme="http", timeout=10)
    assert answer.status == 301, answer
    assert answer.headers.get("Location") == f"https://{DEMO_HOST}/some/path?x=1", answer.headers
    assert '"node"' not in answer.body  # not the demo's page
    secure = LAB.http(DEMO_HOST, scheme="https", verify_tls=False, timeout=10)
    assert secure.status == 200, secure
    assert secure.json()["node"] in LAB.hosts()
    assert secure.headers.get("Strict-Transport-Security") == "max-age=31536000", secure.headers
    # No version in any answer (server_tokens off), the redirect included.
    assert {answer.headers.get("Server"), secure.headers.get("Server")} == {"nginx"}, (answer.headers, secure.headers)
    # The health path stays on plain HTTP for the vip role's check.
    assert LAB.http(LAB.address("master"), "/.picluster-proxy/health", scheme="http", timeout=10).status == 200


def test_the_generator_reads_the_swarm_through_a_read_only_api():
    """Nothing of the proxy holds root on the master. nginx's container, which faces the
    network, has no Docker access at all; the generator's has no network, and its read-only
    socket lists the swarm but refuses to create, exec, or give secrets away."""
    nginx = json.loads(sh("master", "docker", "inspect", PROXY))[0]
    assert not [m for m in nginx["Mounts"] if "docker" in m["Source"]], nginx["Mounts"]
    assert not [e for e in nginx["Config"]["Env"] if e.startswith("DOCKER_HOST=")], nginx["Config"]["Env"]
    generator = json.loads(sh("master", "docker", "inspect", GENERATOR))[0]
    assert generator["HostConfig"]["NetworkMode"] == "none"
    assert generator["HostConfig"]["ReadonlyRootfs"] is True and generator["HostConfig"]["CapDrop"] == ["ALL"]
    assert generator["Config"]["User"].split(":")[0] != "0", generator["Config"]["User"]
    asks = [["GET", "/v1.41/services"], ["GET", "/tasks"], ["POST", "/v1.41/containers/create"],
            ["POST", f"/containers/{PROXY}/exec"], ["GET", "/secrets"], ["GET", "/swarm"],
            ["DELETE", f"/services/{SERVICE}"]]
    docker_host = sh("master", "docker", "exec", GENERATOR, "printenv", "DOCKER_HOST").strip()
    assert docker_host == "unix:///run/picluster/docker-ro/docker.sock"
    got = LAB.docker_api_from("master", GENERATOR, docker_host.removeprefix("unix://"), asks)
    assert got["engine_socket_mounted"] is False, got
    status, body = got["GET /v1.41/services"]
    assert status == 200 and SERVICE in body, got
    assert got["GET /tasks"][0] == 200, got
    for method, target in asks[2:]:
        status, body = got[f"{method} {target}"]
        assert status == 403 and "picluster read-only Docker API" in body, (method, target, got)
    # The service is still there: the refused DELETE never reached the engine.
    assert SERVICE in sh("master", "docker", "service", "ls", "--format", "{{.Name}}")
    # The filter runs unprivileged, with the engine socket's group only.
    pid = sh("master", "systemctl", "show", "-p", "MainPID", "--value", "picluster-docker-ro.service").strip()
    assert pid not in ("", "0"), "picluster-docker-ro.service is not running"
    status_lines = dict(line.split(":", 1) for line in sh("master", "cat", f"/proc/{pid}/status").splitlines()
                        if ":" in line)
    assert status_lines["Uid"].split()[0] != "0", status_lines["Uid"]
    assert int(status_lines["CapEff"].strip(), 16) == 0, status_lines["CapEff"]


def test_scaling_changes_the_upstreams():
    sh("master", "docker", "service", "scale", "--detach", f"{SERVICE}=5")
    took = wait_for("scale to 5 upstreams", lambda: upstreams() == 5)
    print(f"proxy followed the scale-up in {took:.1f}s")
    _nodes, containers = replicas_seen(5)
    assert len(containers) == 5, containers
    sh("master", "docker", "service", "scale", "--detach", f"{SERVICE}=3")
    wait_for("scale back to 3 upstreams", lambda: upstreams() == 3)


def test_a_dead_task_is_retried_on_the_next_upstream():
    # Kill a task's container behind the orchestrator's back: until the proxy
    # resyncs, nginx still has its address and must retry the next server.
    tasks = {name: sh(name, "docker", "ps", "-q", "--filter", f"label=com.docker.swarm.service.name={SERVICE}").split()
             for name in ("node1", "node2", "master")}
    holder = next((name for name, ids in tasks.items() if ids), None)
    assert holder, f"no running {SERVICE} task on any node: {tasks}"
    sh(holder, "docker", "kill", tasks[holder][0])
    for _request in range(9):
        status, body, _headers = get(DEMO_HOST)
        assert status == 200, f"a request failed while a task was dead: {status} {body}"


def test_containers_reach_each_other_by_name_across_nodes():
    probe = "proxy-probe-a"
    sh("node1", "docker", "rm", "-f", probe, check=False)
    sh("node1", "docker", "run", "-d", "--name", probe, "--network", "my-net", "picluster/demo-web:latest")
    try:
        script = ("import json,sys,time,urllib.request\n"
                  "for i in range(20):\n"
                  "    try:\n"
                  f"        print(urllib.request.urlopen('http://{probe}:8080/', timeout=3).read().decode())\n"
                  "        sys.exit(0)\n"
                  "    except Exception as e:\n"
                  "        err = e; time.sleep(0.5)\n"
                  "sys.exit(f'unreachable: {err}')\n")
        out = sh("node2", "docker", "run", "--rm", "--network", "my-net", "picluster/demo-web:latest",
                 "python3", "-c", script, timeout=90)
        probe_id = sh("node1", "docker", "inspect", "-f", "{{.Config.Hostname}}", probe).strip()
        assert json.loads(out)["container"] == probe_id
    finally:
        sh("node1", "docker", "rm", "-f", probe, check=False)


def test_removing_the_service_removes_its_virtual_host():
    sh("master", "docker", "service", "rm", SERVICE)
    # Three 404s in a row: right after nginx's reload an old worker, still
    # finishing, can answer one more request with the previous configuration.
    took = wait_for("the virtual host to go", lambda: all(get(DEMO_HOST)[0] == 404 for _ in range(3)))
    print(f"proxy dropped the virtual host in {took:.1f}s")
    assert "no service is published" in get(DEMO_HOST)[1]


def test_roles_refuse_bad_input_with_a_message():
    playbook = os.path.join(os.path.dirname(__file__), "..", "preflight.yml")
    proc = subprocess.run(["ansible-playbook", "-i", str(LAB.playbook_inventory), playbook],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert sh("master", "docker", "network", "ls", "-q", "--filter", "name=^classic-net$") == ""
    assert sh("master", "docker", "ps", "-aq", "--filter", "name=picluster-proxy-preflight") == ""
