"""Role picluster.swarm.docker: TLS by default, plaintext only on opt-in, labels, legacy cluster store."""

from __future__ import annotations

import json

import pytest
import testinfra
from picluster_lab import Lab

LAB = Lab.from_env()
PKI = LAB.pki_dir("docker")
testinfra_hosts = [LAB.testinfra_spec(h) for h in ("master", "node1")]  # node2 (bare): test_docker_bare.py
CLIENT_DIR = "/tmp/picluster-client"


def _host(name: str):
    return testinfra.get_host(LAB.testinfra_spec(name))


@pytest.fixture(scope="module")
def client_on_node1():
    """The controller's client certificate, copied to node1 (the controller may not route to lab addresses)."""
    node1 = _host("node1")
    node1.run(f"mkdir -p {CLIENT_DIR}")
    for name in ("ca.pem", "cert.pem", "key.pem"):
        result = node1.ansible("ansible.builtin.copy", f"src={PKI / name} dest={CLIENT_DIR}/{name} mode=0600",
                               check=False, become=False)
        assert not result.get("failed"), result
    return node1


def _info(host) -> dict:
    return json.loads(host.check_output("docker info --format '{{json .}}'"))


def test_controller_pki_kept_private():
    for name in ("ca.pem", "ca-key.pem", "cert.pem", "key.pem"):
        assert (PKI / name).is_file(), f"{name} missing from {PKI}"
    assert (PKI / "ca-key.pem").stat().st_mode & 0o077 == 0
    assert (PKI / "servers" / "master" / "server-cert.pem").is_file()


def test_daemon_json_and_dropin(host):
    config = json.loads(host.file("/etc/docker/daemon.json").content_string)
    dropin = host.file("/etc/systemd/system/docker.service.d/picluster.conf").content_string
    assert dropin.startswith("#")
    exec_lines = [line for line in dropin.splitlines() if line.startswith("ExecStart=")]
    assert exec_lines[0] == "ExecStart=" and len(exec_lines) == 2
    assert " -H" not in exec_lines[1] and exec_lines[1].startswith("ExecStart=/usr/sbin/dockerd")
    assert config["log-opts"]["max-file"] == "3"
    assert config["hosts"][0] == "unix:///var/run/docker.sock"
    if host.backend.get_hostname() == "master":
        assert config["tlsverify"] is True
        assert config["log-opts"]["max-size"] == "5m"  # docker_daemon_options won over the role's 10m
    else:
        assert "tlsverify" not in config


def test_labels_in_docker_info(host):
    labels = _info(host)["Labels"]
    if host.backend.get_hostname() == "master":
        assert {"picluster.role=master", "picluster.zone=lab"} <= set(labels)
    else:
        assert "picluster.role=node" in labels


def test_legacy_cluster_store_on_engine_20(host):
    info = _info(host)
    if host.backend.get_hostname() == "master":
        assert info["ServerVersion"].startswith("20.10")
        assert info["ClusterStore"] == "etcd://127.0.0.1:2379"
        assert info["ClusterAdvertise"] == f"{LAB.address('master')}:2376"
        assert "Cluster Store: etcd://127.0.0.1:2379" in host.check_output("docker info")
    else:
        assert not info.get("ClusterStore")


def test_tls_answers_with_the_client_certificate(client_on_node1):
    master = LAB.address("master")
    # --cacert without -k: the server certificate must name the master's address.
    out = client_on_node1.run(
        f"curl -sS --max-time 10 --cacert {CLIENT_DIR}/ca.pem --cert {CLIENT_DIR}/cert.pem"
        f" --key {CLIENT_DIR}/key.pem https://{master}:2376/version")
    assert out.rc == 0, out.stderr
    assert json.loads(out.stdout)["Version"].startswith("20.10")
    # The docker CLI the way the docs tell a user to call it.
    cli = client_on_node1.run(
        f"docker --tlsverify --tlscacert {CLIENT_DIR}/ca.pem --tlscert {CLIENT_DIR}/cert.pem"
        f" --tlskey {CLIENT_DIR}/key.pem -H tcp://{master}:2376 info --format '{{{{.Name}}}}'")
    assert cli.rc == 0 and cli.stdout.strip() == "master", cli.stderr


def test_tls_refuses_without_a_client_certificate(client_on_node1):
    master = LAB.address("master")
    out = client_on_node1.run(f"curl -sS --max-time 10 --cacert {CLIENT_DIR}/ca.pem https://{master}:2376/version")
    assert out.rc != 0, f"engine answered without a client certificate: {out.stdout}"
    plain = client_on_node1.run(f"curl -sS --max-time 10 http://{master}:2376/version")
    assert plain.rc != 0 or "Client sent an HTTP request to an HTTPS server" in plain.stdout


def test_plaintext_only_where_opted_in():
    master, node1 = _host("master"), _host("node1")
    closed = node1.run(f"curl -sS --max-time 5 http://{LAB.address('master')}:2375/version")
    assert closed.rc != 0, "master listens on 2375 without having opted in"
    opened = master.run(f"curl -sS --max-time 10 http://{LAB.address('node1')}:2375/version")
    assert opened.rc == 0 and "ApiVersion" in opened.stdout, opened.stderr
    assert not node1.socket("tcp://0.0.0.0:2376").is_listening
