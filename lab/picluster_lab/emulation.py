"""ARM "Pi" nodes on an amd64 machine, under qemu-user emulation.

What the lab's image builder (images.py) and `up` (provision.py) call for a
node whose architecture is not the host's:

* :func:`ensure_interpreters`: Debian's qemu-user-static and binfmt-support,
  binfmt_misc mounted, and an interpreter registered per architecture with
  the flags PF (so it runs inside chroots and node containers). The
  interpreter is qemu 7.2 from Debian's source with our linux-user patch
  (:func:`build_patched_qemu`, cached by source version + patch hash).
* :func:`steps_for`: edits of a debootstrapped tree that make Docker and
  systemd work under emulation. These, the patch and :func:`run_flags` are
  the ONLY places the emulation is known about: the roles never see it. Each
  has its reason in :data:`WORKAROUNDS` (and docs/lab.md).
* :func:`build_consul`: Consul cross-compiled for the architecture from the
  same tools module as the host binary, cached beside it.

Raises :class:`EmulationError` (a LabError) with a message a person can act on.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import platform
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ._common import CACHE, LabError, say

HERE = Path(__file__).resolve().parent
PATCH = HERE / "qemu" / "picluster-linux-user.patch"
MIRROR = os.environ.get("PICLUSTER_DEBIAN_MIRROR", "http://deb.debian.org/debian")
SUITE = "bookworm"
BINFMT = Path("/proc/sys/fs/binfmt_misc")
HOST_DEBIAN_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "armhf"}.get(
    platform.machine(), platform.machine())

Step = Callable[[Path], None]


class EmulationError(LabError):
    """Something this machine lacks for emulated nodes, said so a person can act on it."""


@dataclass(frozen=True)
class Arch:
    debian: str  # dpkg --print-architecture inside the node
    qemu: str  # qemu's linux-user target name
    uname: str  # uname -m inside the node
    goarch: str
    goarm: str  # GOARM for 32-bit ARM, "" otherwise
    # binfmt_misc match of the ELF header (e_ident + e_type + e_machine), as
    # Debian's qemu-user-static registers it.
    magic: bytes
    mask: bytes


ELF_MASK = bytes.fromhex("ffffffffffffff00fffffffffffffffffeffffff")
ARCHES: dict[str, Arch] = {
    "arm64": Arch("arm64", "aarch64", "aarch64", "arm64", "",
                  bytes.fromhex("7f454c460201010000000000000000000200b700"), ELF_MASK),
    # GOARM=6: Raspberry Pi OS armhf is ARMv6 + VFPv2 (Pi Zero and Pi 1
    # included); HashiCorp's linux_arm build sets no GOARM, so it gets the
    # Go toolchain's default, 7, which those Pis cannot run.
    "armhf": Arch("armhf", "arm", "armv7l", "arm", "6",
                  bytes.fromhex("7f454c4601010100000000000000000002002800"), ELF_MASK),
}


def arch_info(arch: str) -> Arch:
    if arch not in ARCHES:
        raise EmulationError(f"no emulation recipe for architecture {arch!r}; choose from {', '.join(ARCHES)}")
    return ARCHES[arch]


def run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, check=True, text=True, **kw)  # type: ignore[call-overload]


def run_quiet(cmd: list[str], what: str, **kw: object) -> subprocess.CompletedProcess[str]:
    """Run with output captured; on failure, raise with its tail."""
    proc = subprocess.run(cmd, text=True, capture_output=True, check=False, **kw)  # type: ignore[call-overload]
    if proc.returncode != 0:
        tail = (proc.stderr.strip() or proc.stdout.strip())[-2000:]
        raise EmulationError(f"{what} failed (`{' '.join(cmd)}` exited {proc.returncode}):\n{tail}")
    return proc


# --- host packages ----------------------------------------------------------------------

RUNTIME_PACKAGES = ("qemu-user-static", "binfmt-support")
# Enough to build qemu's static linux-user targets and nothing of the system
# emulators: glib and pcre2 ship static archives in their -dev packages.
BUILD_PACKAGES = ("dpkg-dev", "gcc", "make", "pkg-config", "meson", "ninja-build", "python3",
                  "libglib2.0-dev", "libpcre2-dev", "patch")


def missing_packages(packages: tuple[str, ...]) -> list[str]:
    proc = subprocess.run(["dpkg-query", "-W", "-f", "${Package} ${db:Status-Status}\n", *packages],
                          capture_output=True, text=True, check=False)
    installed = {line.split()[0] for line in proc.stdout.splitlines() if line.endswith(" installed")}
    return [p for p in packages if p not in installed]


def apt_install(packages: tuple[str, ...]) -> None:
    missing = missing_packages(packages)
    if not missing:
        return
    if os.geteuid() != 0:
        raise EmulationError(f"packages {' '.join(missing)} are missing and installing them needs root")
    say(f"installing {' '.join(missing)}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    proc = subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing],
                          env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        # A stale or absent package list is the usual cause on a fresh machine.
        run_quiet(["apt-get", "update", "-q"], "apt-get update")
        run_quiet(["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing],
                  f"installing {' '.join(missing)}", env=env)


# --- binfmt_misc ---------------------------------------------------------------------------


def ensure_binfmt_misc() -> None:
    """binfmt_misc mounted (it is not at boot on these machines)."""
    if (BINFMT / "register").exists():
        return
    filesystems = Path("/proc/filesystems").read_text()
    if "binfmt_misc" not in filesystems:
        proc = subprocess.run(["modprobe", "binfmt_misc"], capture_output=True, text=True, check=False)
        if "binfmt_misc" not in Path("/proc/filesystems").read_text():
            raise EmulationError(
                "this kernel has no binfmt_misc (not in /proc/filesystems, and `modprobe binfmt_misc` said "
                f"{proc.stderr.strip() or 'nothing'}): ARM nodes cannot run here without CONFIG_BINFMT_MISC")
    proc = subprocess.run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not (BINFMT / "register").exists():
        raise EmulationError(
            f"cannot mount binfmt_misc on {BINFMT}: {proc.stderr.strip() or 'no register file after mount'}; "
            "it needs root outside a container (or a container allowed to mount it), so ARM nodes cannot run here")
    if (BINFMT / "status").read_text().strip() != "enabled":
        (BINFMT / "status").write_text("1")


def _escape(data: bytes) -> str:
    return "".join(f"\\x{b:02x}" for b in data)


def binfmt_entry(name: str) -> dict[str, str]:
    """An entry's fields ({"state": "enabled", "interpreter": ..., "flags": ...}), {} if absent."""
    path = BINFMT / name
    if not path.exists():
        return {}
    fields: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line in ("enabled", "disabled"):
            fields["state"] = line
        elif line.startswith("flags:"):
            fields["flags"] = line.split(":", 1)[1].strip()
        elif " " in line:
            key, value = line.split(" ", 1)
            fields[key] = value
    return fields


def register_interpreter(arch: str, interpreter: Path) -> str:
    """Register ``interpreter`` for the architecture's ELF files with flags
    P (keep argv[0]: Debian's qemu reads it when its name ends in -binfmt-P)
    and F (opened now, so it runs inside chroots and containers that lack
    it). Debian's own entry for the same files is disabled so ours decides.
    Returns what was done."""
    info = arch_info(arch)
    if not interpreter.name.endswith("-binfmt-P"):
        raise EmulationError(f"{interpreter}: the interpreter's name must end in -binfmt-P "
                             "(Debian's qemu reads argv[0] that way under the P flag)")
    ensure_binfmt_misc()
    name = f"picluster-{info.qemu}"
    current = binfmt_entry(name)
    done = "present"
    if (current.get("state") != "enabled" or current.get("interpreter") != str(interpreter)
            or not {"P", "F"} <= set(current.get("flags", ""))):
        if current:
            (BINFMT / name).write_text("-1")
        line = f":{name}:M::{_escape(info.magic)}:{_escape(info.mask)}:{interpreter}:PF"
        try:
            (BINFMT / "register").write_text(line)
        except OSError as err:
            raise EmulationError(f"registering {interpreter} for {arch} in {BINFMT} failed: {err}") from err
        done = "registered"
    stock = binfmt_entry(f"qemu-{info.qemu}")
    if stock.get("state") == "enabled":
        (BINFMT / f"qemu-{info.qemu}").write_text("0")
        done += f", Debian's qemu-{info.qemu} entry disabled"
    return done


def register_stock(arch: str) -> str:
    """Debian's qemu-user-static as the interpreter (F flag), via update-binfmts."""
    info = arch_info(arch)
    apt_install(RUNTIME_PACKAGES)
    ensure_binfmt_misc()
    ours = binfmt_entry(f"picluster-{info.qemu}")
    if ours:
        (BINFMT / f"picluster-{info.qemu}").write_text("-1")
    run_quiet(["update-binfmts", "--enable", f"qemu-{info.qemu}"], f"update-binfmts --enable qemu-{info.qemu}")
    entry = binfmt_entry(f"qemu-{info.qemu}")
    if entry.get("state") != "enabled" or "F" not in entry.get("flags", ""):
        raise EmulationError(f"qemu-{info.qemu} is not registered with the F flag: {entry or 'no entry'}")
    return f"Debian's qemu-{info.qemu} ({entry['interpreter']}, flags {entry['flags']})"


def ensure_interpreters(arches: tuple[str, ...] = tuple(ARCHES), patched: bool = True) -> dict[str, str]:
    """Everything the host needs to run (and debootstrap) the architectures."""
    for arch in arches:
        arch_info(arch)
    apt_install(RUNTIME_PACKAGES)
    ensure_binfmt_misc()
    if not patched:
        return {arch: register_stock(arch) for arch in arches}
    qemu = build_patched_qemu()
    return {arch: register_interpreter(arch, qemu / f"{arch_info(arch).qemu}-binfmt-P") for arch in arches}


# --- patched qemu --------------------------------------------------------------------------

QEMU_TARGETS = ("aarch64", "arm")
# Only the linux-user targets, static, no optional feature but xattr: about
# 460 objects. Without --enable-attr the *xattr syscalls answer ENOSYS, and
# Python's shutil.copy2 (Ansible's file modules on /etc/hosts) fails.
QEMU_CONFIGURE = (
    "--static", "--disable-system", "--enable-linux-user", "--disable-tools",
    "--without-default-features", "--enable-attr", "--disable-debug-info", "--disable-werror", "--disable-docs",
    "--interp-prefix=/etc/qemu-binfmt/%M", "--with-git-submodules=ignore",
)


def enable_deb_src() -> None:
    """Source entries for the suite, if apt has none (Debian's images ship only binary ones)."""
    probe = subprocess.run(["apt-get", "source", "--print-uris", "qemu"], capture_output=True, text=True, check=False)
    if probe.returncode == 0 and ".dsc" in probe.stdout:
        return
    say("enabling deb-src entries for Debian's qemu source")
    Path("/etc/apt/sources.list.d/picluster-deb-src.sources").write_text(
        f"Types: deb-src\nURIs: {MIRROR}\nSuites: {SUITE} {SUITE}-updates\nComponents: main\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n")
    run_quiet(["apt-get", "update", "-q"], "apt-get update")


def qemu_source_version() -> str:
    """The version `apt-get source qemu` fetches, from its .dsc name."""
    enable_deb_src()
    out = run_quiet(["apt-get", "source", "--print-uris", "qemu"], "apt-get source --print-uris qemu").stdout
    # Each line: 'URI' local-name size hash; the local name has no epoch.
    match = re.search(r"^'\S+' qemu_(\S+)\.dsc ", out, re.MULTILINE)
    if not match:
        raise EmulationError(f"cannot tell the qemu source version from `apt-get source --print-uris qemu`:\n{out}")
    return match.group(1)


def qemu_key(version: str) -> str:
    parts = [version, PATCH.read_text(), QEMU_TARGETS, QEMU_CONFIGURE]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:12]


def qemu_dir(version: str) -> Path:
    return CACHE / "qemu" / f"{version}-{qemu_key(version)}"


def build_patched_qemu() -> Path:
    """Debian's qemu source with our patch, the static linux-user targets
    only. Cached in $PICLUSTER_CACHE/qemu/<version>-<hash>/ with, per target,
    qemu-<t>-static and the <t>-binfmt-P name to register."""
    version = qemu_source_version()
    dest = qemu_dir(version)
    if all((dest / f"qemu-{t}-static").exists() for t in QEMU_TARGETS):
        return dest
    apt_install(BUILD_PACKAGES)
    timings: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="picluster-qemu-", dir="/var/tmp") as tmp:
        work = Path(tmp)
        t0 = time.monotonic()
        say(f"qemu: fetching Debian's source {version}")
        run_quiet(["apt-get", "source", "-q", "--download-only", "-o", "APT::Sandbox::User=root", "qemu"],
                  "apt-get source qemu", cwd=work)
        dsc = work / f"qemu_{version}.dsc"
        if not dsc.exists():
            raise EmulationError(f"apt-get source fetched {[p.name for p in work.glob('*.dsc')]}, not {dsc.name}")
        run_quiet(["dpkg-source", "-x", dsc.name, "src"], "dpkg-source -x", cwd=work)
        timings["source"] = time.monotonic() - t0
        src = work / "src"
        with PATCH.open() as patch:
            run_quiet(["patch", "-p1", "--forward", "--batch"], f"applying {PATCH.name}", stdin=patch, cwd=src)
        build = work / "build"
        build.mkdir()
        t0 = time.monotonic()
        say("qemu: configuring (static linux-user: " + ", ".join(QEMU_TARGETS) + ")")
        run_quiet([str(src / "configure"), "--meson=/usr/bin/meson",
                   f"--target-list={','.join(t + '-linux-user' for t in QEMU_TARGETS)}", *QEMU_CONFIGURE],
                  "configuring qemu", cwd=build)
        timings["configure"] = time.monotonic() - t0
        t0 = time.monotonic()
        say(f"qemu: compiling on {os.cpu_count()} cores")
        run_quiet(["ninja", f"-j{os.cpu_count() or 2}", *(f"qemu-{t}" for t in QEMU_TARGETS)],
                  "compiling qemu", cwd=build)
        timings["compile"] = time.monotonic() - t0
        staged = dest.with_name(dest.name + ".tmp")
        shutil.rmtree(staged, ignore_errors=True)
        staged.mkdir(parents=True)
        for target in QEMU_TARGETS:
            shutil.copy2(build / f"qemu-{target}", staged / f"qemu-{target}-static")
            (staged / f"{target}-binfmt-P").symlink_to(f"qemu-{target}-static")
        (staged / "build.json").write_text(json.dumps(
            {"source": version, "patch": PATCH.name, "key": qemu_key(version),
             "seconds": {k: round(v, 1) for k, v in timings.items()}, "load": os.getloadavg()}, indent=2) + "\n")
        shutil.rmtree(dest, ignore_errors=True)
        staged.rename(dest)
    parts = ", ".join(f"{k} {v:.0f}s" for k, v in timings.items())
    say(f"qemu: built in {sum(timings.values()):.0f}s ({parts}): {dest}")
    return dest


# --- root filesystem -----------------------------------------------------------------------

# The engine's helpers that cannot work emulated, taken from Debian's amd64
# packages of the same suite (the kernel is amd64, so they run natively).
NATIVE_PACKAGES = (
    "libc6", "libseccomp2", "libxtables12", "libmnl0", "libnftnl11", "libip4tc2", "libip6tc2",
    "libnetfilter-conntrack3", "libnfnetlink0", "iptables", "runc", "containerd",
)
NATIVE_BINARIES = (
    "usr/sbin/xtables-nft-multi", "usr/sbin/xtables-legacy-multi",
    "usr/bin/containerd-shim", "usr/bin/containerd-shim-runc-v1", "usr/bin/containerd-shim-runc-v2",
)
NATIVE_DIR = "usr/libexec/picluster-native"
RUNC_WRAPPER = f"""\
#!/bin/sh
# picluster lab, emulated node: runc is amd64 (it cannot run emulated).
# dockerd's network hook is "/proc/<dockerd pid>/exe", which under emulation
# is the qemu binary, not dockerd: point it at dockerd itself.
bundle=
prev=
for arg in "$@"; do
    case "$prev" in --bundle|-b) bundle=$arg ;; esac
    case "$arg" in --bundle=*) bundle=${{arg#--bundle=}} ;; esac
    prev=$arg
done
if [ -n "$bundle" ] && [ -f "$bundle/config.json" ]; then
    sed -i 's#"path":"/proc/[0-9]*/exe"#"path":"/usr/sbin/dockerd"#g' "$bundle/config.json"
fi
exec /{NATIVE_DIR}/runc "$@"
"""


def native_debs() -> list[Path]:
    """The host architecture's .debs of NATIVE_PACKAGES, downloaded once."""
    key = hashlib.sha256(json.dumps([HOST_DEBIAN_ARCH, NATIVE_PACKAGES]).encode()).hexdigest()[:12]
    where = CACHE / "native-debs" / key
    debs = sorted(where.glob("*.deb"))
    if len(debs) >= len(NATIVE_PACKAGES):
        return debs
    where.mkdir(parents=True, exist_ok=True)
    run_quiet(["apt-get", "download", "-q", "-o", "APT::Sandbox::User=root",
               *(f"{p}:{HOST_DEBIAN_ARCH}" for p in NATIVE_PACKAGES)], "downloading the native helpers", cwd=where)
    return sorted(where.glob("*.deb"))


def divert(rootfs: Path, path: str) -> None:
    """Keep the package's file aside (path.distrib) so upgrades do not overwrite ours."""
    listed = run(["chroot", str(rootfs), "dpkg-divert", "--list", f"/{path}"], capture_output=True).stdout
    if listed.strip():
        return
    run(["chroot", str(rootfs), "dpkg-divert", "--local", "--rename", "--add", f"/{path}"], stdout=subprocess.DEVNULL)


def native_engine_helpers(rootfs: Path) -> None:
    """amd64 runc, containerd shims and iptables in the ARM tree: runc's
    namespace set-up, the shims' subreaping and iptables' nf_tables netlink do
    not survive emulation, and the kernel runs amd64 code natively. The ARM
    files are diverted (dpkg-divert) so package upgrades keep ours."""
    if not (rootfs / "usr/sbin/runc").exists():
        raise EmulationError(f"{rootfs}: no /usr/sbin/runc; install the engine before native_engine_helpers")
    with tempfile.TemporaryDirectory(prefix="picluster-native-", dir="/var/tmp") as tmp:
        staging = Path(tmp)
        versions = []
        for deb in native_debs():
            run(["dpkg-deb", "-x", str(deb), str(staging)])
            versions.append(deb.name)
        triplet = {"amd64": "x86_64-linux-gnu"}.get(HOST_DEBIAN_ARCH, f"{HOST_DEBIAN_ARCH}-linux-gnu")
        # The host's loader and libraries, in their multiarch directory, which
        # no ARM package uses; /lib64 as on an amd64 merged-/usr system.
        # bookworm's packages still ship libc in /lib: both go to /usr/lib.
        for libdir in ("lib", "usr/lib"):
            if (staging / libdir / triplet).is_dir():
                shutil.copytree(staging / libdir / triplet, rootfs / "usr/lib" / triplet, symlinks=True,
                                dirs_exist_ok=True)
        (rootfs / "usr/lib64").mkdir(exist_ok=True)
        loader = rootfs / "usr/lib64/ld-linux-x86-64.so.2"
        loader.unlink(missing_ok=True)
        loader.symlink_to(f"/usr/lib/{triplet}/ld-linux-x86-64.so.2")
        if not (rootfs / "lib64").exists():
            (rootfs / "lib64").symlink_to("usr/lib64")
        conf = staging / "etc/ld.so.conf.d" / f"{triplet}.conf"
        if conf.exists():
            shutil.copy2(conf, rootfs / "etc/ld.so.conf.d" / conf.name)
        for path in NATIVE_BINARIES:
            divert(rootfs, path)
            shutil.copy2(staging / path, rootfs / path)
        native = rootfs / NATIVE_DIR
        native.mkdir(parents=True, exist_ok=True)
        shutil.copy2(staging / "usr/sbin/runc", native / "runc")
        divert(rootfs, "usr/sbin/runc")
        wrapper = rootfs / "usr/sbin/runc"
        wrapper.write_text(RUNC_WRAPPER)
        wrapper.chmod(0o755)
        (native / "PACKAGES").write_text("\n".join(versions) + "\n")
    run(["chroot", str(rootfs), "ldconfig"])
    # The proof that the native side loads: the tree's iptables, run natively.
    out = run_quiet(["chroot", str(rootfs), "/usr/sbin/iptables", "--version"], "native iptables in the tree").stdout
    if "nf_tables" not in out:
        raise EmulationError(f"iptables in the tree is not the nf_tables one: {out.strip()}")


# Units whose sandboxing the emulated systemd cannot set up. PrivateNetwork=
# fails even with the patched qemu ("Failed to set up network namespacing:
# Input/output error", status 225/NETWORK): hostnamed is what `hostnamectl`
# (and Ansible's hostname module) talks to, localed likewise for locales, and
# e2scrub_reap would mark every boot degraded. Credentials (LoadCredential=
# of systemd-sysctl, -sysusers, -tmpfiles-setup) work with the patch.
NO_PRIVATE_NETWORK = "[Service]\nPrivateNetwork=no\n"
UNIT_DROPINS: dict[str, str] = {
    "systemd-hostnamed.service": NO_PRIVATE_NETWORK,
    "systemd-localed.service": NO_PRIVATE_NETWORK,
    "e2scrub_reap.service": NO_PRIVATE_NETWORK,
}
MASKED_UNITS: tuple[str, ...] = ()


def systemd_under_emulation(rootfs: Path) -> None:
    """Drop-ins and masks for the units that fail under emulation (see WORKAROUNDS)."""
    for unit, text in UNIT_DROPINS.items():
        dropin = rootfs / "etc/systemd/system" / f"{unit}.d"
        dropin.mkdir(parents=True, exist_ok=True)
        (dropin / "picluster-emulation.conf").write_text(text)
    for unit in MASKED_UNITS:
        link = rootfs / "etc/systemd/system" / unit
        link.unlink(missing_ok=True)
        link.symlink_to("/dev/null")


ENGINE_PACKAGE = "docker.io"


def steps_for(arch: str, packages: tuple[str, ...]) -> tuple[Step, ...]:
    """The emulation's edits of a layer of a foreign architecture that
    installed ``packages``: systemd's on every layer, the native engine
    helpers once the engine is in. None for the host's architecture."""
    if arch == HOST_DEBIAN_ARCH:
        return ()
    arch_info(arch)
    return (systemd_under_emulation, *((native_engine_helpers,) if ENGINE_PACKAGE in packages else ()))


# Emulated systemd waits for the guest's SIGRTMIN+3 (37), which qemu maps to
# host signal 39: qemu keeps host SIGRTMIN..+1 for itself, so guest signal n
# >= 32 is host signal n + 2 (linux-user/signal.c, signal_table_init).
STOP_SIGNAL = "39"


def run_flags(arch: str) -> list[str]:
    """Extra `docker run` flags for a node of this architecture (after the lab's)."""
    if arch == HOST_DEBIAN_ARCH:
        return []
    arch_info(arch)
    return ["--stop-signal", STOP_SIGNAL]


def recipe_parts() -> list[str]:
    """What the image recipe hashes for emulated nodes: the steps, what they
    install, and the qemu patch (the interpreter is part of the node's
    behaviour although it lives on the host). Not the rest of this module:
    editing its plumbing costs no emulated rebuild."""
    steps = [inspect.getsource(f) for f in (steps_for, systemd_under_emulation, native_engine_helpers, divert,
                                             native_debs)]
    data = [NATIVE_PACKAGES, NATIVE_BINARIES, NATIVE_DIR, RUNC_WRAPPER, UNIT_DROPINS, MASKED_UNITS, STOP_SIGNAL]
    return [*steps, json.dumps(data, sort_keys=True), PATCH.read_text()]


# --- Consul ----------------------------------------------------------------------------------


ELF_MACHINES = {"arm64": 0xB7, "armhf": 0x28}


def build_consul(dest: Path, arch: str, tools: Path) -> Path:
    """Cross-compile Consul from the tools module (pure Go, CGO off, as
    HashiCorp's release builds are) to ``dest``, unless it is there."""
    info = arch_info(arch)
    if dest.exists():
        return dest
    if not shutil.which("go"):
        raise EmulationError("Consul is built from source and needs Go on PATH")
    dest.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, GOOS="linux", GOARCH=info.goarch, CGO_ENABLED="0")
    if info.goarm:
        env["GOARM"] = info.goarm
    t0 = time.monotonic()
    say(f"consul: cross-compiling {dest.name} for {arch} (GOARCH={info.goarch}"
        + (f" GOARM={info.goarm}" if info.goarm else "") + ")")
    tmp = dest.with_name(dest.name + ".tmp")
    run_quiet(["go", "build", "-trimpath", "-o", str(tmp), "github.com/hashicorp/consul"],
              f"cross-compiling Consul for {arch}", cwd=tools, env=env)
    header = tmp.read_bytes()[:20]
    if header[18] != ELF_MACHINES[arch]:
        raise EmulationError(f"{tmp} is not an {arch} binary (ELF machine {header[18]:#x})")
    tmp.rename(dest)
    say(f"consul: {arch} built in {time.monotonic() - t0:.0f}s: {dest}")
    return dest


# --- the reasons, for docs/lab.md -------------------------------------------------------------

WORKAROUNDS: dict[str, str] = {
    "patched qemu (lab/arm/qemu/picluster-linux-user.patch)":
        "Debian's qemu 7.2 refuses clone() with namespace flags (dockerd's netns re-exec, systemd sandboxing), "
        "PR_SET_CHILD_SUBREAPER, and rtnetlink neighbour messages (the overlay's VXLAN entries).",
    "binfmt flags PF":
        "F opens the interpreter at registration so it works inside chroots and node containers; "
        "P keeps argv[0], which Docker's re-exec'd helpers are dispatched by.",
    "amd64 runc, containerd shims, iptables (dpkg-diverted)":
        "runc's namespace set-up and nf_tables netlink cannot run emulated; the kernel is amd64, so they run natively.",
    "runc wrapper rewriting the /proc/<pid>/exe hook":
        "dockerd's network hook points at its own /proc/<pid>/exe, which under emulation is qemu, not dockerd.",
    "PrivateNetwork=no drop-ins (systemd-hostnamed, systemd-localed, e2scrub_reap)":
        "emulated systemd cannot set up a unit's private network namespace (EIO, status 225/NETWORK); "
        "hostnamed is what hostnamectl and Ansible's hostname module use.",
    "stop signal 39":
        "qemu shifts real-time signals by 2, so emulated systemd's SIGRTMIN+3 is host signal 39.",
}
