"""The user's way into the lab (`up --ssh`): SSH to a `pi` user with sudo.

As Raspberry Pi OS (and its Imager) leave a Pi: a user `pi` in group sudo,
allowed to sudo without a password by /etc/sudoers.d/010_pi-nopasswd (or,
with --sudo-password, a sudo that asks for pi's password), and the user's
public key in ~pi/.ssh/authorized_keys. The lab makes the key pair, scans each
node's host keys into a known_hosts file (checked against the keys the node
holds, so nothing is trusted on first use), and writes the inventory a user
would: ansible_connection ssh to the node's lab address as pi, become by
sudo. It all lives in the controller user's directory (SshAccess), owned by
that user, the private key 0600:

    <state>/<lab>/controller/ssh/{id_ed25519,id_ed25519.pub,known_hosts,pi-password}
    <state>/<lab>/controller/inventory/hosts.yml     (the roles keep their PKI in inventory/pki/)

The pi user is made through the lab's back door (`docker exec`), as the
Imager writes it to the SD card; everything after that goes over SSH.
"""

from __future__ import annotations

import concurrent.futures
import secrets
import shlex
import subprocess
import time

from . import controller, inventory
from ._common import LabError, docker, say
from .inventory import Host, SshAccess

SSH_TIMEOUT = 60  # sshd answers within seconds of systemd reaching `running`
NOPASSWD_RULE = "/etc/sudoers.d/010_pi-nopasswd"  # Raspberry Pi OS's own file name


def key_pair(access: SshAccess) -> str:
    """The lab's key pair (made once, kept while the lab is); the public key."""
    access.key.parent.mkdir(parents=True, exist_ok=True)
    access.key.parent.chmod(0o700)
    if not access.key.is_file():
        made = subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"picluster-lab {access.user}",
                               "-f", str(access.key)], capture_output=True, text=True, check=False, timeout=60)
        if made.returncode != 0:
            raise LabError(f"ssh-keygen failed: {made.stderr.strip()}; install openssh-client")
    access.key.chmod(0o600)
    return access.key.with_suffix(".pub").read_text().strip()


def password(access: SshAccess) -> str:
    """pi's password (made once): sudo asks for it with --sudo-password."""
    if not access.password_file.is_file():
        access.password_file.write_text(secrets.token_urlsafe(12) + "\n")
    access.password_file.chmod(0o600)
    return access.password_file.read_text().strip()


def user_script(access: SshAccess, public_key: str, secret: str) -> str:
    """What makes the node's user: the account, its key, its sudo rule."""
    user = shlex.quote(access.user)
    sudo_rule = (f"rm -f {NOPASSWD_RULE}" if access.sudo_password else
                 f"printf '%s\\n' {shlex.quote(f'{access.user} ALL=(ALL) NOPASSWD: ALL')} > {NOPASSWD_RULE} && "
                 f"chmod 0440 {NOPASSWD_RULE}")
    return "\n".join([
        "set -e",
        f"id {user} >/dev/null 2>&1 || useradd --create-home --shell /bin/bash --groups sudo {user}",
        f"printf '%s\\n' {shlex.quote(f'{access.user}:{secret}')} | chpasswd",
        f"install -d -m 0700 -o {user} -g {user} ~{access.user}/.ssh",
        f"printf '%s\\n' {shlex.quote(public_key)} > ~{access.user}/.ssh/authorized_keys",
        f"chown {user}:{user} ~{access.user}/.ssh/authorized_keys && chmod 0600 ~{access.user}/.ssh/authorized_keys",
        sudo_rule,
        "visudo -cq",
        "cat /etc/ssh/ssh_host_*_key.pub",
    ]) + "\n"


def host_keys(host: Host, held: str) -> list[str]:
    """The node's host keys as ssh-keyscan sees them at its address, once sshd
    answers; each must be one the node holds."""
    deadline = time.monotonic() + SSH_TIMEOUT
    scanned: list[str] = []
    while time.monotonic() < deadline:
        scan = subprocess.run(["ssh-keyscan", "-T", "5", host.address], capture_output=True, text=True,
                              check=False, timeout=30)
        scanned = [line for line in scan.stdout.splitlines() if line and not line.startswith("#")]
        if scanned:
            break
        time.sleep(1)
    if not scanned:
        raise LabError(f"{host.name}: sshd did not answer at {host.address}:22 within {SSH_TIMEOUT}s; "
                       f"see `systemctl status ssh` on the node")
    own = {tuple(line.split()[:2]) for line in held.splitlines() if line.startswith(("ssh-", "ecdsa-"))}
    foreign = [line for line in scanned if tuple(line.split()[1:3]) not in own]
    if foreign:
        raise LabError(f"{host.name}: a host key at {host.address} is not one the node holds: {foreign[0]}")
    return scanned


def give_access(host: Host, access: SshAccess, public_key: str, secret: str) -> list[str]:
    """Make the user on one node; return its known_hosts lines."""
    made = docker("exec", "-i", host.container, "sh", "-s", input_text=user_script(access, public_key, secret),
                  check=False, timeout=120)
    if made.returncode != 0:
        raise LabError(f"{host.name}: could not make user {access.user}: {made.stderr.strip() or made.stdout}")
    return host_keys(host, made.stdout)


def check_login(host: Host, access: SshAccess) -> None:
    """Log in as the controller user would (as that user), and sudo when no password is asked."""
    command = "sudo -n true" if not access.sudo_password else "true"
    argv = ["ssh", "-i", str(access.key), "-o", f"UserKnownHostsFile={access.known_hosts}",
            "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10",
            f"{access.user}@{host.address}", command]
    user = controller.ensure_user(access.controller_user)
    done = controller.as_user(access.controller_user, argv, cwd=access.directory, timeout=60,
                              env={"HOME": user.pw_dir, "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"})
    if done.returncode != 0:
        raise LabError(f"{host.name}: `ssh {access.user}@{host.address} {command}` as {access.controller_user} "
                       f"failed: {done.stdout.strip()}")


def setup(lab: str, subnet: str, hosts: list[Host], *, controller_user: str, sudo_password: bool) -> SshAccess:
    """Give every node the user, write the key pair, known_hosts and the SSH inventory; check each login."""
    t0 = time.monotonic()
    access = SshAccess(inventory.controller_directory(lab), controller_user, sudo_password=sudo_password)
    owner = controller.ensure_user(controller_user)
    access.directory.mkdir(parents=True, exist_ok=True)
    access.directory.chmod(0o700)
    public_key, secret = key_pair(access), password(access)
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(hosts)) as pool:
        scanned = list(pool.map(lambda h: give_access(h, access, public_key, secret), hosts))
    access.known_hosts.write_text("".join(line + "\n" for lines in scanned for line in lines))
    inventory.write_file(access.inventory, inventory.render_ssh(lab, subnet, hosts, access))
    controller.chown_tree(access.directory, owner)
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(hosts)) as pool:
        list(pool.map(lambda h: check_login(h, access), hosts))
    sudo = "sudo asks for the password in " + access.password_file.name if sudo_password else "passwordless sudo"
    say(f"lab {lab}: SSH as {access.user} ({sudo}) for {controller_user} in {time.monotonic() - t0:.0f}s; "
        f"inventory {access.inventory}")
    return access
