"""Root filesystem steps shared by the node and app image builders.

``chroot_install``'s source text is part of both images' recipe hashes
(``inspect.getsource``): change it and both rebuild.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, **kw)


def chroot_install(rootfs: Path, packages: list[str]) -> None:
    """Install packages into the tree without starting their services."""
    policy = rootfs / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)
    shutil.copy("/etc/resolv.conf", rootfs / "etc/resolv.conf")
    proc = rootfs / "proc"
    run(["mount", "-t", "proc", "proc", str(proc)])
    try:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        run(["chroot", str(rootfs), "apt-get", "install", "-y", "-q",
             "--no-install-recommends", *packages], env=env, stdout=subprocess.DEVNULL)
        run(["chroot", str(rootfs), "apt-get", "clean"])
    finally:
        run(["umount", str(proc)])
        policy.unlink()
