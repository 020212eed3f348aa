"""The one reader of the picluster.swarm.swarm_members module's output.

The lab asks Consul who is in the cluster the way a user would: it runs the
module with `ansible localhost -m picluster.swarm.swarm_members`, and parses
the JSON callback's answer here, nowhere else.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._common import ROOT, LabError

MODULE = "picluster.swarm.swarm_members"
ABSENT = "absent"  # a member Consul no longer holds at all


@dataclass(frozen=True)
class Member:
    ip: str
    port: int
    address: str  # ip:port as the node announced it
    hostname: str
    role: str
    state: str  # alive, expiring or expired
    ttl: int
    seconds_left: float
    seconds_since_heartbeat: float | None
    raw: dict[str, Any]


@dataclass(frozen=True)
class Membership:
    members: tuple[Member, ...]
    counts: dict[str, int]
    raw: dict[str, Any]

    def by_ip(self, ip: str) -> Member | None:
        return next((m for m in self.members if m.ip == ip), None)

    def state_of(self, ip: str) -> str:
        """The member's state, or `absent` when Consul holds no key for it."""
        member = self.by_ip(ip)
        return member.state if member else ABSENT

    def ips(self, *states: str) -> list[str]:
        return sorted(m.ip for m in self.members if not states or m.state in states)


def parse(result: dict[str, Any]) -> Membership:
    """The module's result (one host's entry) as a Membership."""
    if result.get("failed"):
        raise LabError(f"{MODULE} failed: {result.get('msg', result)}")
    members = tuple(
        Member(
            ip=m["ip"],
            port=int(m["port"]),
            address=m["address"],
            hostname=m.get("hostname") or "",
            role=m.get("role") or "",
            state=m["state"],
            ttl=int(m.get("ttl") or 0),
            seconds_left=float(m.get("seconds_left") or 0.0),
            seconds_since_heartbeat=m.get("seconds_since_heartbeat"),
            raw=m,
        )
        for m in result.get("members", [])
    )
    return Membership(members=members, counts=dict(result.get("counts", {})), raw=result)


def parse_callback_output(stdout: str, module: str = MODULE) -> dict[str, Any]:
    """The localhost result from the ansible.posix.json callback's document."""
    try:
        document = json.loads(stdout)
        return document["plays"][0]["tasks"][0]["hosts"]["localhost"]
    except (ValueError, KeyError, IndexError, TypeError) as err:
        raise LabError(f"cannot read {module}'s answer ({err}): {stdout.strip()[-800:]}") from err


def ansible_command() -> tuple[str, str]:
    """The `ansible` program and the Python the module runs under (the venv's,
    which has the Consul client library)."""
    found = shutil.which("ansible")
    ansible = Path(found) if found else Path(sys.executable).parent / "ansible"
    if not ansible.exists():
        raise LabError("`ansible` is not on PATH; run scripts/setup.sh venv and use the venv's bin/")
    python = ansible.parent / "python3"
    return str(ansible), str(python if python.exists() else sys.executable)


def run_collection_module(module: str, args: dict[str, Any], *, check: bool = False, diff: bool = False,
                          timeout: float = 120, extra_env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run one of the collection's modules on this host, as a user would; its result, failed or not
    (`extra_env`: more environment, such as CONSUL_HTTP_TOKEN_FILE)."""
    ansible, python = ansible_command()
    env = dict(
        os.environ,
        **(extra_env or {}),
        ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
        ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
        ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
        ANSIBLE_NOCOLOR="1",
    )
    argv = [ansible, "localhost", "-i", "localhost,", "-c", "local", "-m", module, "-a", json.dumps(args),
            "-e", f"ansible_python_interpreter={python}", *(["--check"] if check else []),
            *(["--diff"] if diff else [])]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=ROOT, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as err:
        raise LabError(f"{module} did not answer within {timeout:.0f}s") from err
    if not proc.stdout.strip():
        raise LabError(f"{module} printed nothing: {proc.stderr.strip()[-800:]}")
    return parse_callback_output(proc.stdout, module)


def run_module(consul: str, options: dict[str, Any], timeout: float = 120,
               extra_env: dict[str, str] | None = None) -> Membership:
    """Run swarm_members against the Consul agent at `consul`, as a user would."""
    return parse(run_collection_module(MODULE, {"host": consul, "include_expired": True, **options},
                                       timeout=timeout, extra_env=extra_env))
