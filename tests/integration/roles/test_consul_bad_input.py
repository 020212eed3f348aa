"""The consul role refuses bad input before touching a host, with a message a person can act on."""

from __future__ import annotations

import pytest
from _play import assert_refused, local_inventory, run_playbook

PLAY = [{"name": "Consul", "hosts": "all", "gather_facts": False, "roles": ["picluster.swarm.consul"]}]


def test_even_server_count(tmp_path):
    rc, out = run_playbook(tmp_path, local_inventory(["m1", "m2"], ["n1"]), PLAY)
    assert_refused(rc, out, "2 Consul servers in 'masters'", "use 1, 3 or 5 servers")


def test_no_server(tmp_path):
    rc, out = run_playbook(tmp_path, local_inventory([], ["n1"]), PLAY)
    assert_refused(rc, out, "no Consul server")


@pytest.mark.parametrize("key", ["not-a-key", "c2hvcnQ=", "A" * 44])
def test_wrong_gossip_key_format(tmp_path, key):
    rc, out = run_playbook(tmp_path, local_inventory(["m1"], ["n1"], consul_encrypt_key=key), PLAY)
    assert_refused(rc, out, "consul_encrypt_key is not a Consul gossip key", "base64 encoding of 16 or 32 bytes")
    assert key not in out.replace("consul_encrypt_key", ""), "the key must not be echoed"


def test_servers_missing_from_the_play(tmp_path):
    play = [dict(PLAY[0], hosts="nodes")]
    rc, out = run_playbook(tmp_path, local_inventory(["m1"], ["n1"]), play)
    assert_refused(rc, out, "the play must include every Consul server (m1")


@pytest.mark.parametrize("arch,release", [("armv6l", "arm"), ("armv7l", "arm"), ("aarch64", "arm64"),
                                          ("x86_64", "amd64")])
def test_release_url_and_checksum(tmp_path, arch, release):
    """The download path is checked up to the URL and checksum source: nothing is fetched."""
    base = "https://releases.hashicorp.com/consul/1.22.3"
    play = [{"name": "Release", "hosts": "m1", "gather_facts": False, "tasks": [
        {"name": "Compute", "ansible.builtin.include_role": {"name": "picluster.swarm.consul",
                                                             "tasks_from": "release.yml"},
         "vars": {"consul_architecture": arch}},
        {"name": "Check", "ansible.builtin.assert": {"that": [
            f"consul_download.url == '{base}/consul_1.22.3_linux_{release}.zip'",
            f"consul_download.checksum == 'sha256:{base}/consul_1.22.3_SHA256SUMS'",
            f"consul_download.archive == '/var/cache/consul/consul_1.22.3_linux_{release}.zip'"]}}]}]
    rc, out = run_playbook(tmp_path, local_inventory(["m1"], []), play)
    assert rc == 0, out


def test_unknown_architecture(tmp_path):
    play = [{"name": "Release", "hosts": "m1", "gather_facts": False, "tasks": [
        {"name": "Compute", "ansible.builtin.include_role": {"name": "picluster.swarm.consul",
                                                             "tasks_from": "release.yml"},
         "vars": {"consul_architecture": "mips"}}]}]
    rc, out = run_playbook(tmp_path, local_inventory(["m1"], []), play)
    assert_refused(rc, out, "no Consul release is known for the architecture 'mips'", "consul_binary_local_path")


def test_https_port_same_as_http_port(tmp_path):
    rc, out = run_playbook(tmp_path, local_inventory(["m1"], ["n1"], consul_https_port=8500), PLAY)
    assert_refused(rc, out, "consul_https_port (8500)", "must differ")


@pytest.mark.parametrize(("starts", "ends"), [(-30, -1), (2, 30)], ids=["expired", "not-valid-yet"])
def test_expired_consul_ca(tmp_path, starts, ends):
    """A CA past its end (or before its start: a controller clock set wrong) is refused before any host changes,
    with the way to a new one; the files stay."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    pki = tmp_path / "pki" / "consul"
    pki.mkdir(parents=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "old consul CA")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now + datetime.timedelta(days=starts))
            .not_valid_after(now + datetime.timedelta(days=ends))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(key, hashes.SHA256()))
    pem = cert.public_bytes(serialization.Encoding.PEM)
    (pki / "ca.pem").write_bytes(pem)
    rc, out = run_playbook(tmp_path, local_inventory(["m1"], ["n1"]), PLAY)
    assert_refused(rc, out, f"the Consul CA {pki}/ca.pem is not valid now", "move ca.pem and ca-key.pem out of")
    assert (pki / "ca.pem").read_bytes() == pem
