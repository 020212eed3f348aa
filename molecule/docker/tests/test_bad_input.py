"""Bad settings stop picluster.swarm.docker early, with a message that says what to fix.

Each case runs bad_input.yml against master with one bad setting as extra
vars; the cases run side by side to keep the scenario short.
"""

from __future__ import annotations

import json
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import testinfra
from picluster_lab import Lab

LAB = Lab.from_env()
PLAYBOOK = Path(__file__).resolve().parents[1] / "bad_input.yml"

CASES = {
    "unknown install source": (
        {"docker_install_source": "podman"},
        "docker_install_source must be one of: distribution, docker-ce, none"),
    "daemon options not a dict": (
        {"docker_daemon_options": ["labels"]},
        "docker_daemon_options"),
    "labels not a list": (
        {"docker_daemon_options": {"labels": "role=master"}},
        "'labels' must be a list of strings (got a string"),
    "log-opts not a dict": (
        {"docker_daemon_options": {"log-opts": ["max-size=10m"]}},
        "'log-opts' must be a dict (got a list"),
    "log-opts number": (
        {"docker_daemon_options": {"log-opts": {"max-file": 3}}},
        "quote max-file"),
    "label without a value": (
        {"docker_labels": ["role"]},
        "'key=value'"),
    "cluster store on engine 24": (
        {"docker_cluster_store": "consul://10.0.0.1:8500", "docker_engine_version_override": "24.0.7"},
        "removed upstream in Docker 23: use swarm mode"),
    "plaintext without opt-in": (
        {"docker_tls": False, "docker_daemon_options": {"hosts": ["unix:///var/run/docker.sock", "tcp://0.0.0.0:2375"]}},
        "without TLS"),
    "plaintext and TLS together": (
        {"docker_plaintext_tcp": True},
        "dockerd applies TLS to every TCP listener"),
    "docker-ce repository unreachable": (
        # Loopback port 9 (discard): refused at once, and nothing leaves the machine.
        {"docker_install_source": "docker-ce", "docker_engine_min_version": "99.0", "docker_cluster_store": "",
         "docker_ce_repo_url": "http://127.0.0.1:9/linux"},
        "cannot reach Docker's apt repository at http://127.0.0.1:9/linux"),
}


def _run(extra: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["ansible-playbook", "-i", str(LAB.playbook_inventory), str(PLAYBOOK), "-e", json.dumps(extra)],
        check=False, capture_output=True, text=True, timeout=300,
        env={**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_CALLBACK_RESULT_FORMAT": "json"},
    )


@pytest.fixture(scope="module")
def outcomes() -> dict[str, subprocess.CompletedProcess]:
    master = testinfra.get_host(LAB.testinfra_spec("master"))
    before = master.check_output("md5sum /etc/docker/daemon.json")
    with ThreadPoolExecutor(max_workers=5) as pool:
        results = dict(zip(CASES, pool.map(_run, [extra for extra, _ in CASES.values()])))
    # Every case stopped before writing: the engine's configuration is untouched.
    assert master.check_output("md5sum /etc/docker/daemon.json") == before
    assert not master.file("/etc/apt/sources.list.d/docker.sources").exists
    assert not master.file("/etc/apt/keyrings/docker.asc").exists
    return results


@pytest.mark.parametrize("case", list(CASES))
def test_fails_early_with_a_clear_message(outcomes, case):
    proc = outcomes[case]
    output = " ".join((proc.stdout + proc.stderr).split())
    assert proc.returncode != 0, f"{case}: the role did not fail:\n{proc.stdout}"
    assert CASES[case][1] in output, f"{case}: message not found in:\n{proc.stdout}\n{proc.stderr}"
    # Stopped in the checks: no handler ran, the engine was not restarted.
    assert "RUNNING HANDLER" not in proc.stdout
