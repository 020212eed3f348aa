# Copyright (c) 2025 picluster.swarm developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Helpers to run the collection's plugins for real, through ansible-playbook and ansible-inventory.

Tasks are batched into one playbook per test (ansible starts in seconds here,
modules in a fraction of one), results come back through the json callback.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (right now)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PlaybookRun:
    def __init__(self, results: List[Dict[str, Any]], stdout: str, stderr: str, returncode: int) -> None:
        self.results = results
        self.stdout = stdout
        self.stderr = stderr
        self.returncode = returncode

    def __getitem__(self, index: int) -> Dict[str, Any]:
        return self.results[index]

    def __len__(self) -> int:
        return len(self.results)

    def assert_no_traceback(self) -> None:
        """No Python traceback and no module crash anywhere in the run.

        ansible-core 2.19 puts an 'exception' summary in every failed result
        ("(traceback unavailable)"); a real crash shows 'Traceback' or 'MODULE FAILURE'.
        """
        for text in (self.stdout, self.stderr):
            assert "Traceback" not in text, text[-3000:]
            assert "MODULE FAILURE" not in text, text[-3000:]


def clean_env(extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """The test process's environment without any Consul settings, plus extra."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSUL_")}
    env.update(
        ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
        ANSIBLE_STDOUT_CALLBACK="json",
        ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
        ANSIBLE_DEPRECATION_WARNINGS="0",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_LOCALHOST_WARNING="0",
        ANSIBLE_INVENTORY_UNPARSED_WARNING="0",
        ANSIBLE_PIPELINING="1",  # no temporary module files per task: faster
        PATH=f"{BIN}:{env.get('PATH', '')}",
    )
    env.update(extra or {})
    return env


class Ansible:
    """Runs tasks against localhost (connection local) with this venv's Python as the module interpreter."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.count = 0

    def run(
        self,
        tasks: List[Dict[str, Any]],
        env: Optional[Dict[str, str]] = None,
        interpreter: Optional[str] = None,
        timeout: float = 180,
    ) -> PlaybookRun:
        self.count += 1
        for task in tasks:
            task.setdefault("ignore_errors", True)
        play = [{"hosts": "localhost", "gather_facts": False, "connection": "local", "tasks": tasks}]
        playbook = self.workdir / f"play{self.count}.yml"
        playbook.write_text(json.dumps(play, indent=1))
        cmd = [str(BIN / "ansible-playbook"), "-i", "localhost,", str(playbook),
               "-e", json.dumps({"ansible_python_interpreter": interpreter or sys.executable})]
        proc = subprocess.run(cmd, cwd=ROOT, env=clean_env(env), capture_output=True, text=True, timeout=timeout,
                              check=False)
        try:
            doc = json.loads(proc.stdout)
        except ValueError:
            pytest.fail(f"ansible-playbook printed no JSON (rc {proc.returncode}):\n{proc.stdout[-3000:]}\n"
                        f"{proc.stderr[-3000:]}")
        results = [t["hosts"]["localhost"] for p in doc["plays"] for t in p["tasks"]]
        return PlaybookRun(results, proc.stdout, proc.stderr, proc.returncode)

    def inventory(self, config: Dict[str, Any], env: Optional[Dict[str, str]] = None,
                  name: str = "swarm.consul_members.yml") -> subprocess.CompletedProcess:
        self.count += 1
        path = self.workdir / f"inv{self.count}" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(config))
        extra = {"ANSIBLE_INVENTORY_UNPARSED_FAILED": "1",
                 "ANSIBLE_INVENTORY_ENABLED": "picluster.swarm.consul_members"}
        extra.update(env or {})
        return subprocess.run([str(BIN / "ansible-inventory"), "-i", str(path), "--list"], cwd=ROOT,
                              env=clean_env(extra), capture_output=True, text=True, timeout=120, check=False)


def module_task(module: str, args: Dict[str, Any], **keywords: Any) -> Dict[str, Any]:
    """A task calling picluster.swarm.<module>; keywords are task keywords (check_mode, diff, environment...)."""
    task = {f"picluster.swarm.{module}": args}
    task.update(keywords)
    return task


def wait_until(predicate: Any, timeout: float, interval: float = 0.25, what: str = "condition") -> float:
    """Poll predicate until true; return seconds taken; fail after timeout."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        time.sleep(interval)
    pytest.fail(f"{what} not reached within {timeout} s")


class HeartbeatProcess:
    """The real heartbeat script as a subprocess."""

    def __init__(self, script: Path, workdir: Path, args: List[str], env: Optional[Dict[str, str]] = None) -> None:
        self.log_path = workdir / f"heartbeat-{time.monotonic_ns()}.log"
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen([sys.executable, str(script), *args], stdout=self.log,
                                        stderr=subprocess.STDOUT, env=clean_env(env), start_new_session=True)

    def output(self) -> str:
        self.log.flush()
        return self.log_path.read_text()

    def terminate(self, sig: int, timeout: float = 15) -> int:
        self.process.send_signal(sig)
        return self.process.wait(timeout=timeout)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.log.close()
