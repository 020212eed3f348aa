"""What every part of the lab package shares: where things are, the error
type, and the one way this host's Docker client is called."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Test artefacts (drill timelines, screenshots), as CI keeps them.
REPORTS = ROOT / "build" / "reports"
CACHE = Path(os.environ.get("PICLUSTER_CACHE", "/var/cache/picluster"))
# Each node's /var/lib/docker lives here, so its engine runs overlay2.
STATE = Path(os.environ.get("PICLUSTER_LAB_STATE", "/var/lib/picluster-lab"))
LABEL = "io.picluster.lab"


class LabError(Exception):
    """A failure with a message a person can act on."""


class LabTimeout(LabError):
    """Something the lab waited for did not happen in time."""


def docker(
    *args: str, check: bool = True, timeout: float = 120, stdin: int | None = None, input_text: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run this host's docker client; raise LabError on failure when check is set."""
    try:
        proc = subprocess.run(
            ["docker", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=stdin,
            input=input_text,
        )
    except FileNotFoundError as err:
        raise LabError("the docker client is not installed; run scripts/setup.sh") from err
    except subprocess.TimeoutExpired as err:
        raise LabError(f"`docker {' '.join(args)}` did not finish within {timeout:.0f}s") from err
    if check and proc.returncode != 0:
        raise LabError(f"`docker {' '.join(args)}` failed: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc


def wait_until(what: str, predicate: Callable[[], object], limit: float, interval: float = 1.0) -> float:
    """Poll predicate until it is true; return the seconds it took (monotonic).
    Raise LabTimeout naming `what` after `limit` seconds."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        if predicate():
            return time.monotonic() - t0
        time.sleep(interval)
    raise LabTimeout(f"{what} did not happen within {limit:.0f}s")


def loadavg() -> float:
    """The 1-minute load average, recorded beside timings taken on a shared machine."""
    return float(Path("/proc/loadavg").read_text().split()[0])


def say(msg: str) -> None:
    print(f"==> {msg}", flush=True)
