"""Lab.http: HTTPS to an address with the Host header's name as the TLS server
name, checked against a given CA; redirects followed only to the same address.

A real TLS server on loopback with a certificate from a CA made here."""

from __future__ import annotations

import datetime
import http.server
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from picluster_lab.lab import Lab


def _pem(path: Path, *objects: object) -> Path:
    data = b""
    for obj in objects:
        if isinstance(obj, x509.Certificate):
            data += obj.public_bytes(serialization.Encoding.PEM)
        else:
            data += obj.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())
    path.write_bytes(data)
    return path


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("pki")
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test edge CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
          .not_valid_after(now + datetime.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "picluster.lab")])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("*.picluster.lab")]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return {"ca": _pem(base / "ca.pem", ca), "chain": _pem(base / "chain.pem", cert, ca),
            "key": _pem(base / "key.pem", key)}


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.server.redirect_to:
            self.send_response(301)
            self.send_header("Location", self.server.redirect_to + self.path)
            self.end_headers()
            return
        body = f"{self.headers['Host']} {self.path}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def _serve(tls: ssl.SSLContext | None, redirect_to: str = "") -> tuple[http.server.HTTPServer, str]:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Handler)
    server.redirect_to = redirect_to
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"127.0.0.1:{server.server_address[1]}"


@pytest.fixture(scope="module")
def servers(pki) -> Iterator[dict]:
    names: list[str] = []
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(pki["chain"], pki["key"])
    tls.sni_callback = lambda sock, name, ctx: names.append(name)
    secure, secure_at = _serve(tls)
    port = secure_at.rsplit(":", 1)[1]
    plain, plain_at = _serve(None, redirect_to=f"https://demo.picluster.lab:{port}")
    yield {"https": secure_at, "http": plain_at, "names": names}
    secure.shutdown()
    plain.shutdown()


@pytest.fixture
def lab() -> Lab:
    bare = object.__new__(Lab)  # no inventory needed: `via` is an address, the CA is given
    bare._hosts = {}
    return bare


def test_https_sends_the_host_header_s_name_and_checks_the_certificate_for_it(lab, pki, servers):
    answer = lab.http("demo.picluster.lab", "/x", via=servers["https"], ca=pki["ca"])
    assert (answer.status, answer.body) == (200, "demo.picluster.lab /x")
    assert servers["names"][-1] == "demo.picluster.lab"


def test_a_name_the_certificate_does_not_serve_is_no_answer(lab, pki, servers):
    answer = lab.http("picluster.lab", via=servers["https"], ca=pki["ca"])  # the wildcard does not cover it
    assert answer.status == 0 and "certificate" in answer.body.lower(), answer
    assert lab.http("picluster.lab", via=servers["https"], verify_tls=False).status == 200


def test_a_certificate_from_another_ca_is_no_answer(lab, pki, servers, tmp_path):
    other = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "someone else")])
    now = datetime.datetime.now(datetime.timezone.utc)
    stranger = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(other.public_key())
                .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .sign(other, hashes.SHA256()))
    answer = lab.http("demo.picluster.lab", via=servers["https"], ca=_pem(tmp_path / "other.pem", stranger))
    assert answer.status == 0 and "certificate verify failed" in answer.body, answer


def test_a_redirect_is_the_answer_unless_followed_and_then_only_to_the_same_address(lab, pki, servers):
    answer = lab.http("demo.picluster.lab", "/p?q=1", via=servers["http"], scheme="http", ca=pki["ca"])
    assert answer.status == 301
    assert answer.headers["Location"].startswith("https://demo.picluster.lab:")
    # The name is in no DNS: followed, the request goes to the address asked, with the name as Host and SNI.
    followed = lab.http("demo.picluster.lab", "/p?q=1", via=servers["http"], scheme="http", ca=pki["ca"],
                        follow_redirects=True)
    assert (followed.status, followed.body) == (200, "demo.picluster.lab /p?q=1")


def test_no_ca_file_is_no_answer_not_an_exception(lab, servers, tmp_path):
    answer = lab.http("demo.picluster.lab", via=servers["https"], ca=tmp_path / "missing.pem")
    assert answer.status == 0 and "No such file" in answer.body, answer
    # Plain HTTP needs no CA at all.
    assert lab.http("demo.picluster.lab", via=servers["http"], scheme="http", ca=tmp_path / "missing.pem").status == 301
