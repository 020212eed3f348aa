# Copyright (c) 2025 picluster.swarm developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The engine connection's settings and messages, and the reconciler service's settings: no engine needed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from ansible_collections.picluster.swarm.plugins.doc_fragments.docker import ModuleDocFragment
from ansible_collections.picluster.swarm.plugins.module_utils import _swarm_api as api


@pytest.fixture()
def pki(tmp_path: Path) -> Path:
    for name in ("ca.pem", "cert.pem", "key.pem"):
        (tmp_path / name).write_text("x")
    return tmp_path


def test_the_default_is_the_local_socket():
    settings = api.resolve_docker_settings({}, {})
    assert settings.scheme == "unix" and settings.url == "unix:///var/run/docker.sock"


def test_docker_host_comes_from_the_environment_and_options_win():
    assert api.resolve_docker_settings({}, {"DOCKER_HOST": "tcp://10.0.0.1:2375"}).url == "tcp://10.0.0.1:2375"
    settings = api.resolve_docker_settings({"docker_host": "unix:///run/other.sock"}, {"DOCKER_HOST": "tcp://x:1"})
    assert settings.socket_path == "/run/other.sock"


def test_a_cert_path_means_tls_on_2376_with_its_three_files(pki: Path):
    settings = api.resolve_docker_settings({"docker_host": "10.0.0.1", "docker_cert_path": str(pki)}, {})
    assert (settings.scheme, settings.port) == ("https", 2376)
    assert (settings.ca_path, settings.client_cert, settings.client_key) == (
        str(pki / "ca.pem"), str(pki / "cert.pem"), str(pki / "key.pem"))
    from_env = api.resolve_docker_settings({"docker_host": "tcp://10.0.0.1:2376"}, {"DOCKER_CERT_PATH": str(pki)})
    assert from_env.scheme == "https" and from_env.client_cert == str(pki / "cert.pem")


def test_plain_tcp_without_certificates_is_2375():
    settings = api.resolve_docker_settings({"docker_host": "tcp://10.0.0.1"}, {})
    assert (settings.scheme, settings.port, settings.url) == ("http", 2375, "tcp://10.0.0.1:2375")


def test_docker_tls_verify_in_the_environment_turns_tls_on():
    settings = api.resolve_docker_settings({"docker_host": "tcp://10.0.0.1"}, {"DOCKER_TLS_VERIFY": "1"})
    assert settings.scheme == "https" and settings.ca_path is None


def test_a_missing_certificate_names_the_file_and_where_the_docker_role_keeps_it(tmp_path: Path):
    (tmp_path / "ca.pem").write_text("x")
    with pytest.raises(api.DockerError) as caught:
        api.resolve_docker_settings({"docker_host": "tcp://10.0.0.1:2376", "docker_cert_path": str(tmp_path)}, {})
    message = str(caught.value)
    assert f"docker_client_cert {tmp_path}/cert.pem (from docker_cert_path {tmp_path}) does not exist" in message
    assert "<inventory>/pki/docker" in message


def test_a_certificate_without_its_key_is_refused(pki: Path):
    with pytest.raises(api.DockerError, match="go together"):
        api.resolve_docker_settings({"docker_host": "tcp://h:2376", "docker_client_cert": str(pki / "cert.pem"),
                                     "docker_tls": True}, {})


@pytest.mark.parametrize("raw", ["ftp://h:1", "tcp://", "tcp://h:99999", "unix://"])
def test_addresses_that_are_not_engines_are_refused(raw: str):
    with pytest.raises(api.DockerError, match="docker_host"):
        api.resolve_docker_settings({"docker_host": raw}, {})


@pytest.mark.parametrize(("status", "body", "words"), [
    (503, {"message": "This node is not a swarm manager. Use \"docker swarm init\""}, "not a swarm manager"),
    (503, {"message": "rpc error: code = Unknown desc = The swarm does not have a leader. It's possible that too few "
                      "managers are online."}, "Nothing was changed"),
    (400, {"message": "Client sent an HTTP request to an HTTPS server."}, "spoken to in plaintext"),
    (500, {"message": "rpc error: update out of sequence"}, "changed meanwhile"),
    (404, {"message": "node x not found"}, "answered HTTP 404 while reading: node x not found"),
])
def test_engine_refusals_become_sentences(status: int, body: dict, words: str):
    client = api.DockerClient(api.resolve_docker_settings({"docker_host": "tcp://10.0.0.1:2375"}, {}))
    assert words in client._describe(status, body, "reading")


def test_the_doc_fragment_documents_every_option_once():
    options = yaml.safe_load(ModuleDocFragment.DOCUMENTATION)["options"]
    assert set(options) == set(api.DOCKER_ARGUMENT_SPEC)
    for name, spec in api.DOCKER_ARGUMENT_SPEC.items():
        assert options[name]["type"] == spec["type"]
        assert options[name].get("default") == spec.get("default")


# -- the reconciler service ------------------------------------------------------


def test_the_service_reads_its_settings_from_flags_and_environment(reconciler):
    service = reconciler.reconciler_from_args(
        ["--grace-period", "7", "--interval", "2"],
        {"CONSUL_HTTP_ADDR": "https://10.0.0.1:8501", "CONSUL_HTTP_TOKEN": "t", "RECONCILE_REMOVE_AFTER": "600"})
    assert (service.args.grace_period, service.args.interval, service.args.remove_after) == (7.0, 2.0, 600.0)
    assert service.consul.base_url == "https://10.0.0.1:8501" and service.consul.token == "t"
    assert service.docker.settings.url == "unix:///var/run/docker.sock"
    assert reconciler.reconciler_from_args([], {}).consul.base_url == "http://127.0.0.1:8500"


@pytest.mark.parametrize(("argv", "words"), [
    (["--grace-period", "0"], "grace_period must be a positive"),
    (["--grace-period", "-3"], "grace_period must be a positive"),
    (["--remove-after", "5"], "must be longer than grace_period"),
    (["--interval", "0"], "--interval must be a positive"),
    (["--docker", "ftp://x"], "is not unix:///path"),
    (["--consul", "ftp://x"], "is not host:port"),
])
def test_the_service_refuses_bad_settings_with_a_message(installed_reconciler: Path, argv: list, words: str):
    proc = subprocess.run([sys.executable, str(installed_reconciler), "--once", *argv], capture_output=True,
                          text=True, timeout=30, check=False, env={"PATH": "/usr/bin:/bin"})
    assert proc.returncode == 2 and words in proc.stderr and "Traceback" not in proc.stderr


def test_a_round_that_cannot_read_changes_nothing_and_says_why(installed_reconciler: Path, tmp_path: Path):
    proc = subprocess.run([sys.executable, str(installed_reconciler), "--once", "--docker",
                           f"unix://{tmp_path}/no.sock"], capture_output=True, text=True, timeout=30, check=False,
                          env={"PATH": "/usr/bin:/bin"})
    assert proc.returncode == 1 and proc.stdout.strip() == "null"
    assert "the socket does not exist" in proc.stderr and "nothing changed this round" in proc.stderr
