# Copyright (c) 2025 picluster.swarm developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The certificate name filters the reverse proxy's preflight uses (RFC 6125 matching, RFC 5280 constraints)."""

from __future__ import annotations

import datetime

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.picluster.swarm.plugins.filter.tls import (
    FilterModule,
    permitted_dns_names,
    tls_names_outside,
    tls_uncovered_names,
)
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@pytest.mark.parametrize(("wanted", "sans", "missing"), [
    (["demo.picluster.lab"], ["DNS:*.picluster.lab"], []),
    (["picluster.lab"], ["DNS:*.picluster.lab"], ["picluster.lab"]),  # a wildcard is not its own domain
    (["a.b.picluster.lab"], ["DNS:*.picluster.lab"], ["a.b.picluster.lab"]),  # one label only
    (["*.picluster.lab"], ["DNS:*.picluster.lab"], []),
    (["*.picluster.lab"], ["DNS:demo.picluster.lab"], ["*.picluster.lab"]),  # a wanted wildcard needs the wildcard
    (["Demo.PiCluster.lab."], ["DNS:demo.picluster.lab"], []),  # case and the root dot do not matter
    (["demo.picluster.lab"], ["IP:10.0.0.1", "email:a@b"], ["demo.picluster.lab"]),
    (["x.lab"], None, ["x.lab"]),
])
def test_uncovered_names_match_as_browsers_do(wanted, sans, missing):
    assert tls_uncovered_names(wanted, sans) == missing


def _ca(permitted: list[str] | None) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "edge")])
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
               .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1)))
    if permitted is not None:
        builder = builder.add_extension(x509.NameConstraints([x509.DNSName(p) for p in permitted], None), critical=True)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


def test_names_outside_the_ca_s_constraints():
    ca = _ca(["picluster.lab"])
    assert permitted_dns_names(ca) == ["picluster.lab"]
    assert tls_names_outside(["*.picluster.lab", "picluster.lab", "a.b.picluster.lab"], ca) == []
    assert tls_names_outside(["dash.home.arpa", "evilpicluster.lab"], ca) == ["dash.home.arpa", "evilpicluster.lab"]


def test_a_ca_without_constraints_may_sign_anything():
    assert tls_names_outside(["anything.example"], _ca(None)) == []


def test_not_a_certificate_is_a_clear_error():
    with pytest.raises(AnsibleFilterError, match="not a PEM certificate"):
        tls_names_outside(["a.lab"], "nonsense")
    assert set(FilterModule().filters()) == {"tls_uncovered_names", "tls_names_outside", "tls_permitted_names"}
