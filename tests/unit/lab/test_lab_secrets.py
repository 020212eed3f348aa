"""The secret scan's list (lab/picluster_lab/secret_scan.py) stays complete when a role gains a secret."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from picluster_lab import secret_scan as secrets

ROLES = Path(__file__).resolve().parents[3] / "roles"


def role_specs() -> dict[str, dict]:
    return {
        path.parents[1].name: yaml.safe_load(path.read_text())["argument_specs"]
        for path in sorted(ROLES.glob("*/meta/argument_specs.yml"))
    }


def test_every_secret_option_is_no_log_and_in_the_scan():
    found = secrets.secret_options(role_specs())
    assert "consul_encrypt_key" in found and "vip_auth_pass" in found  # the check reads the real specs
    not_hidden = sorted(name for name, no_log in found.items() if not no_log)
    assert not not_hidden, f"options that hold a secret without no_log: true in their argument spec: {not_hidden}"
    covered = {option for source in secrets.SOURCES for option in source.options}
    assert sorted(set(found) - covered) == [], "secret options no source in lab/picluster_lab/secret_scan.py covers"


def test_an_option_named_like_a_secret_is_found_even_without_no_log():
    specs = {"r": {"main": {"options": {"r_api_token": {"type": "str"}, "r_tls_key": {"type": "str"}}}}}
    assert secrets.secret_options(specs) == {"r_api_token": False, "r_tls_key": False}
    assert "reverse_proxy_tls_key" in secrets.PATH_OPTIONS  # a path to the user's key, not the key


def test_owner_only_files_must_be_covered(tmp_path):
    (tmp_path / "consul" / "tokens").mkdir(parents=True)
    (tmp_path / "consul" / "tokens" / "read").write_text("0b0f1c2e-aaaa-bbbb-cccc-0123456789ab\n")
    (tmp_path / "consul" / "ca.pem").write_text("public\n")
    (tmp_path / "docker" / "servers" / "master1").mkdir(parents=True)
    key = "-----BEGIN EC PRIVATE KEY-----\n" + "A" * 64 + "\n" + "B" * 20 + "\n-----END EC PRIVATE KEY-----\n"
    (tmp_path / "docker" / "servers" / "master1" / "server-key.pem").write_text(key)
    for path in tmp_path.rglob("*"):
        if path.is_file():
            os.chmod(path, 0o600 if path.name != "ca.pem" else 0o644)
    found = secrets.collect(tmp_path, lambda what: {f"{what} on master1": "x" * 24})
    assert found["consul/tokens/read"] == ["0b0f1c2e-aaaa-bbbb-cccc-0123456789ab"]
    assert found["docker/servers/master1/server-key.pem"] == ["A" * 64]  # the short last line is not searched
    assert "consul/ca.pem" not in found
    assert found["gossip on master1"] == ["x" * 24] and found["join-tokens on master1"] == ["x" * 24]
    (tmp_path / "new-role").mkdir()
    (tmp_path / "new-role" / "secret").write_text("s3cr3t")
    os.chmod(tmp_path / "new-role" / "secret", 0o600)
    with pytest.raises(AssertionError, match=r"new-role/secret"):
        secrets.collect(tmp_path, lambda what: {})


def test_a_key_s_public_half_in_a_public_pem_is_no_leak():
    private = "-----BEGIN EC PRIVATE KEY-----\n" + "P" * 64 + "\n" + "Q" * 40 + "\n-----END EC PRIVATE KEY-----\n"
    found = {"docker/key.pem": secrets.fingerprints(private)}
    public = '"public_key": "-----BEGIN PUBLIC KEY-----\\nMFkw' + "Q" * 40 + '\\n-----END PUBLIC KEY-----\\n"'
    assert secrets.leaks(found, "TASK [Make the key]\n" + public) == []
    assert secrets.leaks(found, public + "\nchanged: " + "Q" * 40) == ["docker/key.pem"]  # outside it: a leak
    assert secrets.leaks(found, "x" + "P" * 64) == ["docker/key.pem"]
