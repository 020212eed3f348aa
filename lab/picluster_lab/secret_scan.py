"""Every secret the collection makes or uses, and where the lab finds its value.

The cluster scenario converges with `--diff -vvv` and its verify step searches
that output for each value found here (zero hits wanted). Two checks keep the
list complete when a role gains a secret:

* tests/unit/lab/test_lab_secrets.py: every role option marked `no_log`, and
  every option whose name says it holds a secret, belongs to a source below;
* the scan itself: every file under the controller's pki directory that is
  readable by its owner alone must match a controller source's pattern.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

# Role options whose name reads like a secret but which hold a path to one (the
# file itself is covered by the pki patterns or is the user's own).
PATH_OPTIONS = frozenset({"reverse_proxy_tls_key"})
SECRET_OPTION = re.compile(r"(token|pass|password|passphrase|secret|_key)$")
PEM_KEY = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----\s*\n(.*?)\n-----END", re.S)
# Public PEM blocks in an output (plain or JSON-escaped): a private key's last base64 lines hold its public
# half (an EC key ends with its public point), so they may show up inside these, and that is no leak.
PUBLIC_PEM = re.compile(r"-----BEGIN (PUBLIC KEY|CERTIFICATE)-----.*?-----END \1-----", re.S)


@dataclass(frozen=True)
class Source:
    """One kind of secret: its role options, and where the lab reads its values."""

    name: str
    options: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()  # files under the controller's pki directory (fnmatch, relative paths)
    on_node: str = ""  # what to read on a master when the value lives on the nodes only


SOURCES: tuple[Source, ...] = (
    Source(
        "Consul ACL tokens",
        options=("dashboard_consul_token", "swarm_consul_token", "swarm_manager_reconcile_consul_token"),
        patterns=("consul/tokens/*",),
    ),
    Source("Consul private keys", patterns=("consul/*key.pem",)),  # fnmatch: * crosses directories
    Source("Docker private keys", patterns=("docker/*key.pem",)),
    Source("edge CA and proxy private keys", patterns=("edge/*key.pem",)),
    # The password and its salt (the salt is no secret once hashed, but it is kept beside it, owner-only).
    Source("dashboard password", options=("dashboard_password",), patterns=("dashboard/*",)),
    Source("VRRP password", options=("vip_auth_pass",), patterns=("vip/*",)),
    Source("Consul gossip key", options=("consul_encrypt_key",), on_node="gossip"),
    Source("swarm join tokens", on_node="join-tokens"),
)


def secret_options(specs: dict[str, dict]) -> dict[str, bool]:
    """{option: no_log} for every option of these argument specs ({role: argument_specs}) that holds a secret:
    marked no_log, or named like one and not a path."""
    found: dict[str, bool] = {}
    for spec in specs.values():
        for entry in (spec or {}).values():
            for name, option in ((entry or {}).get("options") or {}).items():
                no_log = bool(option.get("no_log"))
                if no_log or (SECRET_OPTION.search(name) and name not in PATH_OPTIONS):
                    found[name] = found.get(name, False) or no_log
    return found


def controller_source(relative: str) -> Source | None:
    """The source whose pattern covers this file under the pki directory."""
    return next((s for s in SOURCES if any(fnmatch.fnmatchcase(relative, p) for p in s.patterns)), None)


def fingerprints(text: str) -> list[str]:
    """What to search an output for, for one secret value: a PEM key's base64 lines (any one of them
    showing is a leak), else each non-empty line (a token, a password)."""
    keys = PEM_KEY.findall(text)
    if keys:
        return [line.strip() for body in keys for line in body.splitlines() if len(line.strip()) >= 32]
    return [line.strip() for line in text.splitlines() if line.strip()]


def leaks(found: dict[str, list[str]], output: str) -> list[str]:
    """The labels of `found` (as `collect` returns it) whose value shows in `output`, public PEM blocks aside."""
    searched = PUBLIC_PEM.sub("", output)
    return sorted(label for label, values in found.items() if any(v in searched for v in values))


def collect(pki: Path, read_on_node: Callable[[str], dict[str, str]]) -> dict[str, list[str]]:
    """{label: fingerprints} for every secret of the lab: every controller-side file a source covers (each
    owner-only file must be covered) and the node-side values `read_on_node(what)` returns ({label: value})."""
    found: dict[str, list[str]] = {}
    uncovered = []
    for path in sorted(p for p in pki.rglob("*") if p.is_file()):
        relative = str(path.relative_to(pki))
        if controller_source(relative) is not None:
            found[relative] = fingerprints(path.read_text(errors="replace"))
        elif not path.stat().st_mode & 0o077:  # only its owner may read it: what the roles keep as secrets
            uncovered.append(relative)
    if uncovered:
        raise AssertionError(
            f"secret files under {pki} that no source in lab/picluster_lab/secret_scan.py covers: {uncovered}; "
            "add a pattern there so the secret scan searches for them"
        )
    for source in SOURCES:
        if source.on_node:
            for label, value in read_on_node(source.on_node).items():
                found[label] = fingerprints(value)
    return found
