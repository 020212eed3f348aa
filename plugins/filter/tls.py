# Copyright (c) 2025 picluster.swarm developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Host name checks the reverse proxy makes on its certificate before it changes anything.

Matching as browsers do it (RFC 6125): a wildcard stands for exactly one
label, the left-most; a name constraint (RFC 5280) covers the name itself and
every name below it.
"""

from __future__ import annotations

from typing import Any, Iterable, List

from ansible.errors import AnsibleFilterError

try:
    from cryptography import x509
except ImportError as exc:  # community.crypto needs it on the controller too
    x509 = None
    CRYPTOGRAPHY_ERROR = exc
else:
    CRYPTOGRAPHY_ERROR = None


def _dns_names(entries: Any) -> List[str]:
    """``DNS:`` entries (as community.crypto returns them) as lower-case names; others dropped."""
    names = []
    for entry in entries or []:
        text = str(entry).strip()
        if text.upper().startswith("DNS:"):
            names.append(text[4:].strip().rstrip(".").lower())
    return names


def _matches(name: str, pattern: str) -> bool:
    if pattern.startswith("*."):
        head, _dot, rest = name.partition(".")
        return bool(head) and head != "*" and rest == pattern[2:]
    return name == pattern


def tls_uncovered_names(names: Iterable[Any], subject_alt_names: Any) -> List[str]:
    """The names a certificate with these subject alternative names does not serve.

    A wanted wildcard (``*.example.org``) is served only by the same wildcard.
    """
    patterns = _dns_names(subject_alt_names)
    missing = []
    for raw in names or []:
        name = str(raw).strip().rstrip(".").lower()
        if name.startswith("*."):
            if name not in patterns:
                missing.append(str(raw))
        elif not any(_matches(name, pattern) for pattern in patterns):
            missing.append(str(raw))
    return missing


def permitted_dns_names(ca_pem: Any) -> List[str]:
    """The permitted DNS name constraints of a CA certificate (PEM); empty when it has none."""
    if x509 is None:
        raise AnsibleFilterError(f"tls_names_outside needs the Python library cryptography on the controller "
                                 f"(pip install cryptography): {CRYPTOGRAPHY_ERROR}")
    try:
        certificate = x509.load_pem_x509_certificate(str(ca_pem).encode())
    except ValueError as exc:
        raise AnsibleFilterError(f"tls_names_outside: not a PEM certificate: {exc}") from None
    try:
        constraints = certificate.extensions.get_extension_for_class(x509.NameConstraints).value
    except x509.ExtensionNotFound:
        return []
    return [tree.value for tree in constraints.permitted_subtrees or [] if isinstance(tree, x509.DNSName)]


def tls_names_outside(names: Iterable[Any], ca_pem: Any) -> List[str]:
    """The names a CA certificate's permitted DNS name constraints exclude (none: it may sign any)."""
    subtrees = [tree.lower().lstrip(".") for tree in permitted_dns_names(ca_pem)]
    if not subtrees:
        return []
    outside = []
    for raw in names or []:
        name = str(raw).strip().rstrip(".").lower()
        bare = name[2:] if name.startswith("*.") else name
        if not any(bare == tree or bare.endswith("." + tree) for tree in subtrees):
            outside.append(str(raw))
    return outside


class FilterModule:
    """picluster.swarm certificate name filters."""

    def filters(self) -> dict:
        return {
            "tls_uncovered_names": tls_uncovered_names,
            "tls_names_outside": tls_names_outside,
            "tls_permitted_names": permitted_dns_names,
        }
