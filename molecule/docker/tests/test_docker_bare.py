"""Role picluster.swarm.docker installs an engine on the bare node (node2) and serves it with TLS only."""

from __future__ import annotations

import json

from picluster_lab import Lab

LAB = Lab.from_env()
PKI = LAB.pki_dir("docker")
testinfra_hosts = [LAB.testinfra_spec("node2")]
CLIENT_DIR = "/tmp/picluster-client"


def test_engine_and_sdk_installed_from_debian(host):
    assert host.package("docker.io").is_installed
    assert host.package("python3-docker").is_installed
    assert host.service("docker").is_enabled
    assert host.service("docker").is_running


def test_engine_carries_the_configuration(host):
    info = json.loads(host.check_output("docker info --format '{{json .}}'"))
    assert "picluster.installed=by-role" in info["Labels"]


def test_tls_with_the_client_certificate_only(host):
    host.run(f"mkdir -p {CLIENT_DIR}")
    for name in ("ca.pem", "cert.pem", "key.pem"):
        result = host.ansible("ansible.builtin.copy", f"src={PKI / name} dest={CLIENT_DIR}/{name} mode=0600",
                              check=False, become=False)
        assert not result.get("failed"), result
    address = LAB.address(host.backend.get_hostname())
    tls = f"--cacert {CLIENT_DIR}/ca.pem"
    good = host.run(f"curl -sS --max-time 10 {tls} --cert {CLIENT_DIR}/cert.pem --key {CLIENT_DIR}/key.pem"
                    f" https://{address}:2376/_ping")
    assert good.rc == 0 and good.stdout == "OK", good.stderr
    # The certificate also names localhost / 127.0.0.1.
    local = host.run(f"curl -sS --max-time 10 {tls} --cert {CLIENT_DIR}/cert.pem --key {CLIENT_DIR}/key.pem"
                     " https://localhost:2376/_ping")
    assert local.rc == 0, local.stderr
    assert host.run(f"curl -sS --max-time 10 {tls} https://{address}:2376/_ping").rc != 0
    assert host.run(f"curl -sS --max-time 5 http://{address}:2375/_ping").rc != 0
