# Copyright (c) 2025 picluster.swarm developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The docker role's filters: daemon.json type checks and engine version parsing."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[3] / "plugins" / "filter" / "docker_daemon.py"
_SPEC = importlib.util.spec_from_file_location("docker_daemon_filter", _PATH)
docker_daemon = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(docker_daemon)
errors = docker_daemon.docker_daemon_option_errors
version = docker_daemon.docker_version

GOOD = {
    "hosts": ["unix:///var/run/docker.sock", "tcp://0.0.0.0:2376"],
    "labels": ["role=master", "zone=a"],
    "log-driver": "json-file",
    "log-opts": {"max-size": "10m", "max-file": "3"},
    "live-restore": False,
    "tls": True,
    "tlsverify": True,
    "tlscacert": "/etc/docker/tls/ca.pem",
    "mtu": 1450,
    "default-address-pools": [{"base": "10.10.0.0/16", "size": 24}],
    "some-future-option": {"anything": 1},
}


def test_good_options_have_no_errors():
    assert errors(GOOD) == []


def test_not_a_dict():
    (msg,) = errors(["labels"])
    assert "must be a dict" in msg and "a list" in msg


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("labels", "role=master", "'labels' must be a list of strings (got a string"),
        ("labels", ["role"], "'key=value'"),
        ("hosts", [1], "'hosts' must be a list of strings"),
        ("log-opts", ["max-size=10m"], "'log-opts' must be a dict (got a list"),
        ("log-opts", {"max-size": "10m", "max-file": 3}, "quote max-file"),
        ("live-restore", "yes", "'live-restore' must be a boolean"),
        ("tlsverify", 1, "'tlsverify' must be a boolean"),
        ("storage-driver", ["overlay2"], "'storage-driver' must be a string"),
        ("mtu", True, "'mtu' must be an integer (got a boolean"),
        ("mtu", "1500", "'mtu' must be an integer (got a string"),
        ("default-address-pools", {"base": "x"}, "must be a list of dicts"),
    ],
)
def test_wrong_type_is_named(key, value, expected):
    found = errors({**GOOD, key: value})
    assert len(found) == 1, found
    assert expected in found[0]
    assert found[0].startswith("daemon option ")


def test_every_error_is_reported():
    assert len(errors({"labels": "a=b", "log-opts": [], "live-restore": "no"})) == 3


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Docker version 20.10.24+dfsg1, build 5d6db84", "20.10.24"),
        ("Docker version 18.09.0, build 4d60db4", "18.09.0"),
        ("Docker version 26.1.5+dfsg1, build a72d7cd", "26.1.5"),
        ("24.0", "24.0.0"),
        ("", ""),
        (None, ""),
        ("dockerd: command not found", ""),
    ],
)
def test_version(text, expected):
    assert version(text) == expected
