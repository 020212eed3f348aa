"""What the whole-cluster tests share: reaching the lab's nodes from this host.

The lab is the scenario's (``mol-<scenario>``) unless PICLUSTER_TEST_LAB names
another (to point the tests at a `make lab` cluster while working on them).
Nodes are reached with ``docker exec``, the proxy on the master's lab address,
Consul through our own swarm_members module.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

LAB = os.environ.get("PICLUSTER_TEST_LAB") or (
    f"{os.environ.get('PICLUSTER_LAB_PREFIX', '')}mol-{os.environ.get('MOLECULE_SCENARIO_NAME', 'cluster')}")
ROOT = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", Path(__file__).resolve().parents[3]))
REPORTS = ROOT / "build" / "reports"
# Where the playbooks kept the controller-side PKI (the docker CA, the dashboard password).
INVENTORY_DIR = Path(
    os.environ.get("PICLUSTER_TEST_INVENTORY")
    or Path(os.environ.get("MOLECULE_INVENTORY_FILE", ROOT / "inventories/lab/hosts.yml")).parent
)


def container(host: str) -> str:
    return f"picluster-{LAB}-{host}"


def lab_hosts() -> list[str]:
    """Host names of the lab's nodes, stopped ones included."""
    out = subprocess.run(
        [
            "docker",
            "ps",
            "-a",
            "--filter",
            f"label=io.picluster.lab={LAB}",
            "--format",
            '{{.Label "io.picluster.hostname"}}',
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return sorted(out.split())


def sh(host: str, *argv: str, check: bool = True, timeout: float = 60) -> str:
    proc = subprocess.run(
        ["docker", "exec", container(host), *argv], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"{host}: {' '.join(argv)} failed: {proc.stderr.strip()}")
    return proc.stdout


def address(host: str) -> str:
    fmt = "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}"
    return subprocess.run(
        ["docker", "inspect", "-f", fmt, container(host)], capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()


def members() -> dict:
    """swarm_members, run as a user would, against the master's Consul."""
    proc = subprocess.run(
        [
            "ansible",
            "localhost",
            "-i",
            "localhost,",
            "-c",
            "local",
            "-o",
            "-m",
            "picluster.swarm.swarm_members",
            "-a",
            f"host={address('master')} include_expired=true",
            "-e",
            f"ansible_python_interpreter={sys.executable}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
        env=dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1"),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # -o prints "localhost | SUCCESS => {...}", possibly followed by warnings.
    result, _end = json.JSONDecoder().raw_decode(proc.stdout.split("=>", 1)[1].lstrip())
    return result


def state_of(result: dict, ip: str) -> str | None:
    return next((m["state"] for m in result["members"] if m["ip"] == ip), None)


def swarm_nodes() -> list[dict]:
    out = sh("master", "docker", "node", "ls", "--format", "{{json .}}")
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def get(host_header: str, path: str = "/", timeout: float = 5, headers: dict | None = None) -> tuple[int, str]:
    req = urllib.request.Request(f"http://{address('master')}{path}", headers={"Host": host_header, **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()
    except OSError as err:
        return 0, str(err)


def wait_until(what: str, predicate, limit: float, interval: float = 1.0) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        if predicate():
            return time.monotonic() - t0
        time.sleep(interval)
    raise AssertionError(f"{what} did not happen within {limit:.0f}s")
