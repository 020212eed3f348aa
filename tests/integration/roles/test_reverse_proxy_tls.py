"""The reverse proxy's certificate, on the controller only (no host is touched).

Your own certificate: a key that does not match, an expired certificate, a
name it does not serve, a missing or unreadable file are refused before
anything changes, with what to do. The edge CA: made once, limited to the
cluster's names, its certificate verifies for them, a second run changes
nothing, the certificate is signed again when it nears its end, and a name
outside the CA's constraints is refused with the way out."""

from __future__ import annotations

import datetime
import re
from pathlib import Path

from _play import assert_refused, local_inventory, run_playbook
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from cryptography.x509.verification import PolicyBuilder, Store

PLAY = [{"name": "Proxy", "hosts": "masters", "gather_facts": False, "roles": ["picluster.swarm.reverse_proxy"]}]
EDGE_CA = [{"name": "Edge CA", "hosts": "m1", "gather_facts": False, "tasks": [
    {"name": "Make it", "ansible.builtin.include_role": {"name": "picluster.swarm.reverse_proxy",
                                                         "tasks_from": "edge_ca"}}]}]
NOW = datetime.datetime.now(datetime.timezone.utc)
DAY = datetime.timedelta(days=1)


def _certificate(tmp_path: Path, names: list[str], *, key=None, not_before=NOW - DAY, not_after=NOW + 90 * DAY,
                 tag: str = "own") -> tuple[Path, Path]:
    key = key or ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0].lstrip("*."))])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(not_before).not_valid_after(not_after)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = tmp_path / f"{tag}-cert.pem", tmp_path / f"{tag}-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


def _own(tmp_path: Path, cert: Path, key: Path, **more: object) -> dict:
    return local_inventory(["m1"], [], reverse_proxy_tls_certificate=str(cert), reverse_proxy_tls_key=str(key), **more)


def test_a_certificate_that_does_not_match_its_key(tmp_path):
    cert, _key = _certificate(tmp_path, ["*.picluster.lab", "picluster.lab"])
    _cert, other_key = _certificate(tmp_path, ["*.picluster.lab", "picluster.lab"], tag="other")
    rc, out = run_playbook(tmp_path, _own(tmp_path, cert, other_key), PLAY)
    assert_refused(rc, out, f"the certificate {cert} does not match the key {other_key}",
                   "Give the key the certificate was issued for")
    assert "PRIVATE KEY" not in out


def test_an_expired_certificate(tmp_path):
    cert, key = _certificate(tmp_path, ["*.picluster.lab", "picluster.lab"], not_before=NOW - 90 * DAY,
                             not_after=NOW - DAY)
    rc, out = run_playbook(tmp_path, _own(tmp_path, cert, key), PLAY)
    assert_refused(rc, out, f"the certificate {cert} is expired since",
                   "Renew it, or leave reverse_proxy_tls_certificate")


def test_a_certificate_not_valid_yet(tmp_path):
    cert, key = _certificate(tmp_path, ["*.picluster.lab", "picluster.lab"], not_before=NOW + 2 * DAY)
    rc, out = run_playbook(tmp_path, _own(tmp_path, cert, key), PLAY)
    assert_refused(rc, out, "is not valid before")


def test_a_name_the_certificate_does_not_serve(tmp_path):
    # *.picluster.lab serves demo.picluster.lab, not picluster.lab itself nor a.b.picluster.lab.
    cert, key = _certificate(tmp_path, ["*.picluster.lab"])
    rc, out = run_playbook(tmp_path, _own(tmp_path, cert, key, reverse_proxy_tls_extra_names=["a.b.picluster.lab"]),
                           PLAY)
    assert_refused(rc, out, f"the certificate {cert} does not serve picluster.lab, a.b.picluster.lab",
                   "its names are DNS:*.picluster.lab")


def test_a_certificate_without_its_key_and_an_unreadable_one(tmp_path):
    cert, key = _certificate(tmp_path, ["*.picluster.lab", "picluster.lab"])
    rc, out = run_playbook(tmp_path, local_inventory(["m1"], [], reverse_proxy_tls_certificate=str(cert)), PLAY)
    assert_refused(rc, out, "needs both reverse_proxy_tls_certificate and reverse_proxy_tls_key")
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    rc, out = run_playbook(tmp_path, _own(tmp_path, garbage, key), PLAY)
    assert_refused(rc, out, f"cannot use your certificate and key: the certificate {garbage}", "PEM files")


def test_a_name_that_is_not_a_dns_name(tmp_path):
    rc, out = run_playbook(tmp_path, local_inventory(["m1"], [], reverse_proxy_tls_domain="Pi Cluster"), PLAY)
    assert_refused(rc, out, "got *.Pi Cluster, Pi Cluster", "Set reverse_proxy_tls_domain")


def _verify(pki: Path, name: str) -> x509.Certificate:
    """The proxy's certificate verifies for `name` against the edge CA, as a TLS client would."""
    ca = x509.load_pem_x509_certificate((pki / "ca.pem").read_bytes())
    leaf = x509.load_pem_x509_certificate((pki / "proxy-cert.pem").read_bytes())
    verifier = PolicyBuilder().store(Store([ca])).build_server_verifier(x509.DNSName(name))
    verifier.verify(leaf, [])
    return leaf


def _changed(out: str) -> int:
    return int(re.search(r"changed=(\d+)", out).group(1))


def test_the_edge_ca_signs_for_the_cluster_s_names_once_and_again_near_the_end(tmp_path):
    pki = tmp_path / "pki" / "edge"
    inventory = local_inventory(["m1"], [])
    rc, out = run_playbook(tmp_path, inventory, EDGE_CA)
    assert rc == 0, out
    for name in ("dashboard.picluster.lab", "demo.picluster.lab", "picluster.lab"):
        leaf = _verify(pki, name)
    ca = x509.load_pem_x509_certificate((pki / "ca.pem").read_bytes())
    constraints = ca.extensions.get_extension_for_class(x509.NameConstraints)
    assert constraints.critical and [t.value for t in constraints.value.permitted_subtrees] == ["picluster.lab"]
    assert {oct(p.stat().st_mode & 0o777) for p in (pki / "ca-key.pem", pki / "proxy-key.pem")} == {"0o600"}
    assert oct(pki.stat().st_mode & 0o777) == "0o700"

    rc, out = run_playbook(tmp_path, inventory, EDGE_CA)
    assert rc == 0 and _changed(out) == 0, out
    assert x509.load_pem_x509_certificate((pki / "proxy-cert.pem").read_bytes()).serial_number == leaf.serial_number

    # Fewer days left than the renewal margin: signed again, same key, same CA.
    key_before = (pki / "proxy-key.pem").read_bytes()
    rc, out = run_playbook(tmp_path, local_inventory(["m1"], [], reverse_proxy_tls_renew_days=400), EDGE_CA)
    assert rc == 0 and _changed(out) == 1, out
    renewed = _verify(pki, "dashboard.picluster.lab")
    assert renewed.serial_number != leaf.serial_number
    assert (pki / "proxy-key.pem").read_bytes() == key_before
    assert x509.load_pem_x509_certificate((pki / "ca.pem").read_bytes()) == ca

    # A name added inside the CA's constraints: signed again with it.
    rc, out = run_playbook(tmp_path, local_inventory(["m1"], [], reverse_proxy_tls_extra_names=["a.b.picluster.lab"]),
                           EDGE_CA)
    assert rc == 0, out
    _verify(pki, "a.b.picluster.lab")


def test_a_name_outside_the_edge_ca_s_constraints_is_refused_and_nothing_is_lost(tmp_path):
    pki = tmp_path / "pki" / "edge"
    rc, out = run_playbook(tmp_path, local_inventory(["m1"], []), EDGE_CA)
    assert rc == 0, out
    before = {p.name: p.read_bytes() for p in pki.iterdir()}
    inventory = local_inventory(["m1"], [], reverse_proxy_tls_extra_names=["dash.home.arpa"])
    rc, out = run_playbook(tmp_path, inventory, PLAY)
    assert_refused(rc, out, f"the edge CA in {pki} may sign only names under picluster.lab",
                   "dash.home.arpa is not", "Move the ca.pem and ca-key.pem files away")
    assert {p.name: p.read_bytes() for p in pki.iterdir()} == before


def test_the_dashboard_s_name_must_be_one_the_certificate_serves(tmp_path):
    play = [{"name": "Dashboard", "hosts": "masters", "gather_facts": False, "roles": ["picluster.swarm.dashboard"]}]
    rc, out = run_playbook(tmp_path, local_inventory(["m1"], [], dashboard_host_name="cluster.home.lan"), play)
    assert_refused(rc, out, "which does not serve dashboard_host_name 'cluster.home.lan'",
                   "add it to reverse_proxy_tls_extra_names")
