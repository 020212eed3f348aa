"""The user's controller: an unprivileged user runs ansible-playbook over SSH.

What a user does on a laptop, done for a lab brought up with `up --ssh`:

* a controller user with no sudo (`picluster-ctl` when the lab runs as root),
  so any task that would become root on the controller fails the run: that is
  the run-time check that nothing on the controller needs root;
* the collection installed from the tarball `ansible-galaxy collection build`
  makes, into a fresh collections path in that user's directory;
* a venv holding only what the tarball's requirements.txt names (cached in
  $PICLUSTER_CACHE, keyed by the file's hash, readable by the user);
* the collections the tarball's requirements.yml names, installed offline
  (Galaxy cannot be reached here): from the copies the `ansible` package
  bundles in the development venv, then `ansible-galaxy collection install
  --offline -r requirements.yml` confirms they satisfy it;
* `ansible-playbook -i inventory/hosts.yml picluster.swarm.site
  picluster.swarm.demo` as that user, in its directory, with an environment
  of its own (nothing of root's, nor of the checkout's ansible.cfg);
* with `mitogen`, the venv also holds Mitogen and the run sets the two
  variables docs/speed.md tells users to set (ANSIBLE_STRATEGY and
  ANSIBLE_STRATEGY_PLUGINS into the venv's ansible_mitogen): Mitogen over
  SSH and sudo, as a user opts in to it.
"""

from __future__ import annotations

import fcntl
import grp
import hashlib
import json
import os
import pwd
import re
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ._common import CACHE, ROOT, LabError, loadavg, say
from .inventory import SshAccess
from .membership import ansible_command

CONTROLLER_USER = "picluster-ctl"
PLAYBOOKS = ("picluster.swarm.site", "picluster.swarm.demo")
PLAYBOOK_TIMEOUT = 3600  # one whole-cluster run on a loaded 2-core machine: far below this
STEP_TIMEOUT = 900  # a pip install from PyPI, a tarball build, a collection install
# The user's ansible.cfg: the fresh collections path, pipelining (sudo on
# Raspberry Pi OS does not require a tty), forks for a six-Pi cluster, and SSH
# control sockets of this lab's own (a lab brought down and up again must not
# reuse a connection to a node that is gone). A connect timeout of 30 s, as
# docs/speed.md advises for Mitogen: it counts its bootstrap on the node
# (Python started, its core sent) in that timeout, which a busy or slow Pi can
# take longer than Ansible's default 10 s to finish.
ANSIBLE_CFG = """\
[defaults]
collections_path = {directory}/collections
interpreter_python = auto_silent
forks = 10
timeout = 30

[ssh_connection]
pipelining = True
control_path_dir = {directory}/cp
"""


def default_controller_user() -> str:
    """Who runs Ansible for a lab: the user running the lab, unless that is root."""
    me = pwd.getpwuid(os.getuid()).pw_name
    return CONTROLLER_USER if os.getuid() == 0 else me


def ensure_user(name: str) -> pwd.struct_passwd:
    """The controller user, created (with a home, no sudo) when missing; several
    checkouts on one machine may share it, so an existing one is fine."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    if os.getuid() != 0:
        raise LabError(f"the controller user {name!r} does not exist; create it (`useradd -m {name}`) or run as root")
    made = subprocess.run(["useradd", "--create-home", "--user-group", "--shell", "/bin/bash", name],
                          capture_output=True, text=True, check=False, timeout=60)
    # 9: made meanwhile by another checkout's run.
    if made.returncode not in (0, 9):
        raise LabError(f"`useradd {name}` failed: {made.stderr.strip()}")
    say(f"controller user {name} created (no sudo: become on the controller fails the run)")
    return pwd.getpwnam(name)


SUDO_GROUPS = ("sudo", "wheel", "admin")


def refuse_sudo(user: pwd.struct_passwd) -> None:
    """The run-time check that nothing on the controller needs root holds only if
    the controller user cannot become root: no sudo group."""
    for name in SUDO_GROUPS:
        try:
            group = grp.getgrnam(name)
        except KeyError:
            continue
        if user.pw_name in group.gr_mem or group.gr_gid == user.pw_gid:
            raise LabError(f"the controller user {user.pw_name} is in group {name}: a task that needs root on "
                           f"the controller would pass unseen; take it out (`gpasswd -d {user.pw_name} {name}`)")


def chown_tree(path: Path, user: pwd.struct_passwd) -> None:
    """Hand a directory to the controller user (a no-op when it is us)."""
    if os.getuid() != 0:
        return
    for entry in (path, *path.rglob("*")):
        os.chown(entry, user.pw_uid, user.pw_gid, follow_symlinks=False)


def as_user(user: str, argv: Sequence[str], *, cwd: Path, env: dict[str, str], timeout: float,
            echo: bool = False) -> subprocess.CompletedProcess[str]:
    """Run argv as `user` with exactly `env` (runuser when we are root and not that user)."""
    command = ["env", "-i", *(f"{k}={v}" for k, v in env.items()), *argv]
    if pwd.getpwuid(os.getuid()).pw_name != user:
        if os.getuid() != 0:
            raise LabError(f"running as {user} needs root (runuser); run as root or as {user}")
        command = ["runuser", "-u", user, "--", *command]
    return stream(command, cwd=cwd, timeout=timeout, echo=echo)


def stream(command: Sequence[str], *, cwd: Path, timeout: float, echo: bool,
           env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command, keeping its output (and printing it as it comes when echo is set)."""
    deadline = time.monotonic() + timeout
    lines: list[str] = []
    with subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, errors="replace") as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if echo:
                print(line, end="", flush=True)
            if time.monotonic() > deadline:
                proc.kill()
                raise LabError(f"`{' '.join(command[-4:])}` did not finish within {timeout:.0f}s:\n"
                               + "".join(lines[-40:]))
        rc = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    return subprocess.CompletedProcess(list(command), rc, "".join(lines), "")


def checked(proc: subprocess.CompletedProcess[str], what: str) -> str:
    if proc.returncode != 0:
        raise LabError(f"{what} failed ({proc.returncode}):\n{proc.stdout.strip()[-3000:]}")
    return proc.stdout


# --- what the user installs ---------------------------------------------------------


def requirement_name(line: str) -> str:
    return re.split(r"[\s<>=!~;\[]", line.strip(), maxsplit=1)[0].lower()


def without(requirements: str, leave_out: Iterable[str]) -> str:
    """requirements.txt without the named libraries (to show what a missing one does)."""
    dropped = {name.lower() for name in leave_out}
    kept = [line for line in requirements.splitlines()
            if not line.strip() or line.lstrip().startswith("#") or requirement_name(line) not in dropped]
    return "\n".join(kept) + "\n"


def mitogen_requirement() -> str:
    """The Mitogen release the checkout pins (requirements-dev.txt), the one docs/speed.md names."""
    pins = re.findall(r"^mitogen==\S+", (ROOT / "requirements-dev.txt").read_text(), re.M)
    if len(pins) != 1:
        raise LabError(f"requirements-dev.txt pins mitogen {len(pins)} times; it must pin it once (mitogen==X.Y.Z)")
    return pins[0]


def with_mitogen(requirements: str) -> str:
    """requirements.txt and Mitogen, as docs/speed.md has a user install it beside them."""
    return f"{requirements.rstrip()}\n# Mitogen, the optional strategy (docs/speed.md)\n{mitogen_requirement()}\n"


def controller_venv(requirements: str) -> Path:
    """A venv with only these requirements, made once per content and shared
    (root makes it, everyone may read it); pip downloads from PyPI."""
    venv = CACHE / f"controller-venv-{hashlib.sha256(requirements.encode()).hexdigest()[:12]}"
    if (venv / ".complete").is_file():
        return venv
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(f"{venv}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another checkout may be making the same one
        if (venv / ".complete").is_file():
            return venv
        t0 = time.monotonic()
        shutil.rmtree(venv, ignore_errors=True)
        python = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable
        checked(stream([python, "-m", "venv", str(venv)], cwd=CACHE, timeout=STEP_TIMEOUT, echo=False),
                f"python3 -m venv {venv}")
        (venv / "requirements.txt").write_text(requirements)
        env = dict(os.environ, PIP_CACHE_DIR=str(CACHE / "pip"), PIP_DISABLE_PIP_VERSION_CHECK="1")
        checked(stream([str(venv / "bin/pip"), "install", "-q", "-r", str(venv / "requirements.txt")],
                       cwd=CACHE, timeout=STEP_TIMEOUT, echo=False, env=env),
                f"pip install -r requirements.txt into {venv}")
        for entry in (venv, *venv.rglob("*")):  # readable by the controller user, whatever root's umask
            if not entry.is_symlink():
                entry.chmod(entry.stat().st_mode | (0o555 if entry.is_dir() else 0o444))
        (venv / ".complete").write_text("")
        say(f"controller venv {venv.name} made in {time.monotonic() - t0:.0f}s (load {loadavg():.1f})")
    return venv


def bundled_collections() -> dict[str, Path]:
    """Collections the `ansible` package bundles in the development venv: the
    offline source for requirements.yml, Galaxy being out of reach."""
    _ansible, python = ansible_command()
    found = subprocess.run(
        [python, "-c", "import ansible_collections, json; print(json.dumps(list(ansible_collections.__path__)))"],
        capture_output=True, text=True, check=False, timeout=60,
    )
    if found.returncode != 0:
        raise LabError(f"the development venv ({python}) has no bundled collections: {found.stderr.strip()}; "
                       "run scripts/setup.sh venv (its `ansible` package bundles them)")
    collections: dict[str, Path] = {}
    for top in map(Path, json.loads(found.stdout)):
        for manifest in top.glob("*/*/MANIFEST.json"):
            collections.setdefault(f"{manifest.parent.parent.name}.{manifest.parent.name}", manifest.parent)
    return collections


def offline_sources(names: Iterable[str], bundled: dict[str, Path]) -> list[Path]:
    """The bundled directories for these collections and everything they depend on."""
    wanted, seen = list(names), {}
    while wanted:
        name = wanted.pop()
        if name in seen:
            continue
        if name not in bundled:
            raise LabError(f"collection {name} is not bundled with the development venv's `ansible` package "
                           "and Galaxy cannot be reached; add it to requirements-dev.txt's ansible release")
        seen[name] = bundled[name]
        deps = json.loads((bundled[name] / "MANIFEST.json").read_text())["collection_info"].get("dependencies") or {}
        wanted.extend(deps)
    return list(seen.values())


def build_tarball(out: Path) -> Path:
    """`ansible-galaxy collection build` of the checkout (as the developer, before release)."""
    ansible, _python = ansible_command()
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("picluster-swarm-*.tar.gz"):
        old.unlink()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    checked(stream([str(Path(ansible).parent / "ansible-galaxy"), "collection", "build", "--force",
                    "--output-path", str(out), str(ROOT)], cwd=out, timeout=STEP_TIMEOUT, echo=False, env=env),
            "ansible-galaxy collection build")
    built = sorted(out.glob("picluster-swarm-*.tar.gz"))
    if len(built) != 1:
        raise LabError(f"expected one collection tarball in {out}, found {[p.name for p in built]}")
    return built[0]


def shipped_file(tarball: Path, name: str) -> str:
    """A file the collection tarball ships (its members sit at the top: requirements.txt...)."""
    with tarfile.open(tarball) as archive:
        try:
            member = archive.extractfile(name)
        except KeyError:
            member = None
        if member is None:
            raise LabError(f"{tarball.name} does not ship {name}; galaxy.yml's build_ignore must keep it")
        return member.read().decode()


# --- the user's directory and run -----------------------------------------------------


@dataclass(frozen=True)
class Controller:
    """A prepared controller for one lab: who, where, with which venv."""

    access: SshAccess
    venv: Path
    tarball: Path
    mitogen: bool = False

    @property
    def directory(self) -> Path:
        return self.access.directory

    @property
    def inventory(self) -> Path:
        return self.access.inventory

    def env(self) -> dict[str, str]:
        user = pwd.getpwnam(self.access.controller_user)
        return {
            "HOME": user.pw_dir, "USER": user.pw_name, "LOGNAME": user.pw_name, "LANG": "C.UTF-8",
            "PATH": f"{self.venv}/bin:/usr/local/bin:/usr/bin:/bin",
            "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0",
            **(self.mitogen_env() if self.mitogen else {}),
        }

    def mitogen_env(self) -> dict[str, str]:
        """docs/speed.md's two variables: Mitogen's strategy, found inside the venv's ansible_mitogen."""
        found = sorted(self.venv.glob("lib/python3*/site-packages/ansible_mitogen/plugins/strategy"))
        if len(found) != 1:
            raise LabError(f"{self.venv} holds {len(found)} ansible_mitogen strategy directories, not one; "
                           f"remove the venv to have it made again")
        return {"ANSIBLE_STRATEGY": "mitogen_linear", "ANSIBLE_STRATEGY_PLUGINS": str(found[0])}

    def run(self, argv: Sequence[str], *, timeout: float = STEP_TIMEOUT,
            echo: bool = False) -> subprocess.CompletedProcess[str]:
        """A command as the controller user, in its directory, with its venv first on PATH."""
        return as_user(self.access.controller_user, argv, cwd=self.directory, env=self.env(), timeout=timeout,
                       echo=echo)

    def write(self, name: str, text: str) -> Path:
        """A file of the user's own (a playbook, a vars file) in its directory."""
        path = self.directory / "files" / name
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
        chown_tree(path.parent, pwd.getpwnam(self.access.controller_user))
        return path

    def playbook(self, playbooks: Sequence[str] = PLAYBOOKS, args: Sequence[str] = (), *,
                 timeout: float = PLAYBOOK_TIMEOUT, echo: bool = False) -> subprocess.CompletedProcess[str]:
        t0 = time.monotonic()
        done = self.run(["ansible-playbook", "-i", str(self.inventory), *playbooks, *args], timeout=timeout,
                        echo=echo)
        if echo:
            say(f"ansible-playbook {' '.join(playbooks)} as {self.access.controller_user} over SSH: exit "
                f"{done.returncode} after {time.monotonic() - t0:.0f}s (load {loadavg():.1f})")
        return done


def prepare(access: SshAccess, *, leave_out: Sequence[str] = (), settings: Path | None = None,
            mitogen: bool = False) -> Controller:
    """The controller user's directory made ready: ansible.cfg, the scenario's
    settings as group_vars, the venv (with Mitogen too, when asked), and a fresh
    collections path with the requirements and the collection from its tarball."""
    t0 = time.monotonic()
    user = ensure_user(access.controller_user)
    if user.pw_uid == 0:
        raise LabError("the controller user is root; run the lab as another user, or as root with the default "
                       f"controller user {CONTROLLER_USER}")
    refuse_sudo(user)
    directory = access.directory
    if not access.inventory.is_file():
        raise LabError(f"{access.inventory} is missing; bring the lab up again with `python3 lab up --ssh`")
    (directory / "ansible.cfg").write_text(ANSIBLE_CFG.format(directory=directory))
    (directory / "cp").mkdir(exist_ok=True)
    if settings:
        group_vars = access.inventory.parent / "group_vars" / "all"
        group_vars.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(settings, group_vars / settings.name)
    tarball = build_tarball(directory / "dist")
    requirements = shipped_file(tarball, "requirements.txt")
    (directory / "requirements.yml").write_text(shipped_file(tarball, "requirements.yml"))
    requirements = without(requirements, leave_out)
    venv = controller_venv(with_mitogen(requirements) if mitogen else requirements)
    shutil.rmtree(directory / "collections", ignore_errors=True)
    (directory / "collections").mkdir()
    chown_tree(directory, user)
    controller = Controller(access, venv, tarball, mitogen)
    names = json.loads(checked(controller.run(
        ["python3", "-c", "import json, sys, yaml; "
         "print(json.dumps([c['name'] for c in yaml.safe_load(open(sys.argv[1]))['collections']]))",
         "requirements.yml"]), "reading requirements.yml"))
    galaxy = ["ansible-galaxy", "collection", "install", "--offline", "-p", str(directory / "collections")]
    sources = offline_sources(names, bundled_collections())
    checked(controller.run([*galaxy, *map(str, sources)]), "installing the bundled collections offline")
    checked(controller.run([*galaxy, "-r", "requirements.yml"]),
            "checking the installed collections against requirements.yml")
    checked(controller.run([*galaxy, str(tarball)]), f"installing {tarball.name}")
    say(f"controller {access.controller_user}: {tarball.name} and {', '.join(names)} installed, venv "
        f"{venv.name}{' (with Mitogen)' if mitogen else ''}, in {time.monotonic() - t0:.0f}s")
    return controller


def recap(output: str) -> dict[str, dict[str, int]]:
    """PLAY RECAP's counts per host."""
    return {host: {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", counts)}
            for host, counts in re.findall(r"^(\S+)\s+:\s+(ok=.*)$", output, re.M)}
