# Copyright (c) 2025 picluster.swarm developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filters for the docker role: check daemon.json options, read an engine version.

dockerd refuses to start on a daemon.json value of the wrong type (``"labels":
"a=b"``, ``"max-file": 3``), and the only trace is in its journal after the
restart. The role checks the options with these filters first, so the run stops
before anything is written, with a message that names the option.
"""

from __future__ import annotations

import re
from typing import Any

# Known daemon.json keys and the JSON type dockerd expects for each.
LIST_OF_STRINGS = (
    "hosts", "labels", "insecure-registries", "registry-mirrors", "dns", "dns-opts", "dns-search",
    "exec-opts", "storage-opts", "allow-nondistributable-artifacts", "authorization-plugins", "node-generic-resources",
)
BOOLEANS = (
    "tls", "tlsverify", "live-restore", "debug", "ipv6", "iptables", "ip6tables", "ip-forward", "ip-masq",
    "userland-proxy", "experimental", "icc", "selinux-enabled", "no-new-privileges", "init", "raw-logs",
)
STRINGS = (
    "log-driver", "log-level", "storage-driver", "tlscacert", "tlscert", "tlskey", "cluster-store",
    "cluster-advertise", "data-root", "exec-root", "bridge", "bip", "fixed-cidr", "fixed-cidr-v6",
    "default-gateway", "cgroup-parent", "pidfile", "default-runtime", "containerd", "userns-remap",
    "default-cgroupns-mode", "seccomp-profile", "group",
)
INTEGERS = ("mtu", "max-concurrent-downloads", "max-concurrent-uploads", "max-download-attempts", "shutdown-timeout")
DICTS_OF_STRINGS = ("log-opts", "cluster-store-opts")
DICTS = ("default-ulimits", "runtimes", "features", "builder", "metrics-addr")
LISTS_OF_DICTS = ("default-address-pools",)

# Checked in this order: bool before int (True is an int in Python).
_KINDS = ((bool, "a boolean"), (int, "an integer"), (float, "a number"), (str, "a string"),
          (dict, "a dict"), ((list, tuple), "a list"), (type(None), "null"))


def _kind(value: Any) -> str:
    return next((name for types, name in _KINDS if isinstance(value, types)), type(value).__name__)


def _is_str(value: Any) -> bool:
    return isinstance(value, str)


def _option_error(key: str, value: Any) -> str | None:
    """What is wrong with one option, or None when its type is right (or the key unknown)."""
    if key in LIST_OF_STRINGS:
        if not isinstance(value, (list, tuple)) or not all(_is_str(v) for v in value):
            return f"'{key}' must be a list of strings (got {_kind(value)}: {value!r})"
        if key == "labels":
            bad = [v for v in value if "=" not in v]
            if bad:
                return f"'labels' items must be 'key=value' strings (got {bad!r})"
    elif key in BOOLEANS:
        if not isinstance(value, bool):
            return f"'{key}' must be a boolean, true or false (got {_kind(value)}: {value!r})"
    elif key in STRINGS:
        if not _is_str(value):
            return f"'{key}' must be a string (got {_kind(value)}: {value!r})"
    elif key in INTEGERS:
        if isinstance(value, bool) or not isinstance(value, int):
            return f"'{key}' must be an integer (got {_kind(value)}: {value!r})"
    elif key in DICTS_OF_STRINGS:
        if not isinstance(value, dict):
            return f"'{key}' must be a dict (got {_kind(value)}: {value!r})"
        bad = sorted(k for k, v in value.items() if not _is_str(v))
        if bad:
            # dockerd wants "max-file": "3", never 3.
            return f"'{key}' values must be strings; quote {', '.join(bad)} (e.g. \"3\", not 3)"
    elif key in DICTS:
        if not isinstance(value, dict):
            return f"'{key}' must be a dict (got {_kind(value)}: {value!r})"
    elif key in LISTS_OF_DICTS:
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, dict) for v in value):
            return f"'{key}' must be a list of dicts (got {_kind(value)}: {value!r})"
    return None


def docker_daemon_option_errors(options: Any) -> list[str]:
    """Every type error in a daemon.json dict, as messages a person can act on."""
    if not isinstance(options, dict):
        return [f"the daemon options must be a dict of daemon.json keys (got {_kind(options)}: {options!r})"]
    errors = [f"daemon option {msg}" for key, value in options.items() if (msg := _option_error(str(key), value))]
    return errors


_VERSION = re.compile(r"(?:version\s+)?v?(\d+)\.(\d+)(?:\.(\d+))?")


def docker_version(text: Any) -> str:
    """'Docker version 20.10.24+dfsg1, build 5d6db84' -> '20.10.24'; '' when there is no version in it."""
    match = _VERSION.search(str(text or ""))
    if not match:
        return ""
    major, minor, patch = match.groups()
    # Docker's own 17.x-20.x versions pad the month ("18.09"); keep them as written.
    return f"{major}.{minor}.{patch or 0}"


class FilterModule:
    """Filters for the picluster.swarm.docker role."""

    def filters(self) -> dict[str, Any]:
        return {
            "docker_daemon_option_errors": docker_daemon_option_errors,
            "docker_version": docker_version,
        }
