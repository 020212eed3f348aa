# Copyright (c) 2025 picluster.swarm developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What a host looked like when site.yml last converged it, and what differs now.

Standard library only (the module runs it on the hosts, Python 3.7 included).
A snapshot is plain JSON data:

  files:      {path: "type mode uid gid size mtime_ns ctime_ns"} for every file, link and directory under the
              given roots ("missing" for a root that does not exist). No checksums: any write, chmod or chown
              moves the ctime, which nothing but the kernel sets, so a stat per file finds every change.
  units:      {unit: "LoadState ActiveState UnitFileState"} from one `systemctl show`.
  docker:     {"swarm": "state node manager", "containers": {name: "image state"} (not the swarm's task
              containers), "services": {name: "image mode"} (managers), "networks": {name: "driver"} (swarm scope)},
              only the objects whose names match the given patterns.

`differences(recorded, current)` names each difference in words a user reads.
"""

from __future__ import annotations

import fnmatch
import json
import os
import stat
import subprocess

RECORD_VERSION = 1
# Where a walk stops: a root with more entries than this is cut short and
# reported as such (a mistaken root such as / must not make a run crawl).
MAX_ENTRIES = 20000


def _describe(path):
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    if stat.S_ISDIR(st.st_mode):
        kind, size, mtime = "dir", 0, 0  # entries are listed on their own; a directory's mtime moves with them
    elif stat.S_ISLNK(st.st_mode):
        kind, size, mtime = "link:" + os.readlink(path), st.st_size, st.st_mtime_ns
    else:
        kind, size, mtime = "file", st.st_size, st.st_mtime_ns
    ctime = 0 if kind == "dir" else st.st_ctime_ns
    return f"{kind} {stat.S_IMODE(st.st_mode):o} {st.st_uid} {st.st_gid} {size} {mtime} {ctime}"


def _expand(root):
    """A root, or the paths its last component's shell pattern matches (/etc/systemd/system/picluster-*)."""
    parent, name = os.path.split(root)
    if not any(c in name for c in "*?["):
        return [root]
    try:
        names = os.listdir(parent)
    except OSError:
        return []
    return [os.path.join(parent, n) for n in sorted(fnmatch.filter(names, name))]


def files_snapshot(roots):
    out = {}
    for pattern in roots:
        matches = _expand(pattern)
        if not matches and not any(c in os.path.basename(pattern) for c in "*?["):
            matches = [pattern]
        for root in matches:
            described = _describe(root)
            if described is None:
                out[root] = "missing"
                continue
            out[root] = described
            if not described.startswith("dir"):
                continue
            count = 0
            for dirpath, dirnames, filenames in os.walk(root):
                dirnames.sort()
                for name in sorted(dirnames) + sorted(filenames):
                    path = os.path.join(dirpath, name)
                    out[path] = _describe(path) or "missing"
                    count += 1
                if count > MAX_ENTRIES:
                    out[root] = f"too many entries (over {MAX_ENTRIES}): leave it out of the recorded paths"
                    break
    return out


def _run(argv):
    try:
        proc = subprocess.run(argv, capture_output=True, text=True,
                              timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        return None, str(err)
    if proc.returncode != 0:
        return None, (proc.stderr or proc.stdout).strip()[-300:]
    return proc.stdout, ""


def units_snapshot(units):
    if not units:
        return {}
    out, err = _run(["systemctl", "show", "--property=Id,LoadState,ActiveState,UnitFileState", "--", *list(units)])
    if out is None:
        return {"(systemctl)": "error: " + err}
    found = {}
    for block in out.strip().split("\n\n"):
        props = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        if props.get("Id"):
            found[props["Id"]] = " ".join(props.get(k, "") for k in ("LoadState", "ActiveState", "UnitFileState"))
    return found


def _lines(argv):
    out, err = _run(argv)
    if out is None:
        raise RuntimeError(err)
    return [line.split("\t") for line in out.splitlines() if line.strip()]


def _named(names, patterns):
    return [n for n in names if any(fnmatch.fnmatchcase(n, p) for p in patterns)]


def docker_snapshot(docker_bin="docker", patterns=("*",)):
    """The engine's swarm state, and the containers, services and swarm networks whose names match `patterns`
    (a user's own services and networks are not the roles' business)."""
    try:
        swarm = json.loads(_lines([docker_bin, "info", "--format", "{{json .Swarm}}"])[0][0])
        snap = {
            "swarm": " ".join((swarm.get("LocalNodeState", ""), swarm.get("NodeID", ""),
                               "manager" if swarm.get("ControlAvailable") else "worker")),
            "containers": {},
        }
        fmt = '{{.Names}}\t{{.Image}}\t{{.State}}\t{{.Label "com.docker.swarm.task.id"}}'
        for name, image, state, task in _lines([docker_bin, "ps", "--all", "--no-trunc", "--format", fmt]):
            if not task and _named([name], patterns):
                snap["containers"][name] = f"{image} {state}"
        if swarm.get("ControlAvailable"):
            services = _lines([docker_bin, "service", "ls", "--format", "{{.Name}}\t{{.Image}}\t{{.Mode}}"])
            snap["services"] = {name: f"{image} {mode}" for name, image, mode in services if _named([name], patterns)}
            networks = _lines([docker_bin, "network", "ls", "--filter", "scope=swarm",
                               "--format", "{{.Name}}\t{{.Driver}}"])
            snap["networks"] = {name: driver for name, driver in networks if _named([name], patterns)}
        return snap
    except (RuntimeError, IndexError, ValueError) as err:
        return {"error": str(err)[-300:] or "no answer"}


def snapshot(paths, units, docker, docker_bin="docker", docker_names=("*",)):
    snap = {"files": files_snapshot(paths), "units": units_snapshot(units)}
    if docker:
        snap["docker"] = docker_snapshot(docker_bin, docker_names)
    return snap


# --- comparison (pure) ----------------------------------------------------------------


def _compare_maps(what, recorded, current, out, limit):
    for key in sorted(set(recorded) | set(current)):
        before, now = recorded.get(key), current.get(key)
        if before == now:
            continue
        if before is None:
            out.append(f"{what} {key}: new since the last full run ({now})")
        elif now is None:
            out.append(f"{what} {key}: gone since the last full run (was {before})")
        else:
            out.append(f"{what} {key}: {now}, was {before}")
        if len(out) >= limit:
            return


def differences(recorded, current, limit=20):
    """What differs between two snapshots, one line each (at most `limit`)."""
    out = []
    _compare_maps("file", recorded.get("files", {}), current.get("files", {}), out, limit)
    if "(systemctl)" in current.get("units", {}):
        out.append(f"units: cannot read their state ({current['units']['(systemctl)']})")
    else:
        _compare_maps("unit", recorded.get("units", {}), current.get("units", {}), out, limit)
    before_docker, now_docker = recorded.get("docker", {}), current.get("docker", {})
    if "error" in now_docker:
        out.append("docker: cannot read the engine's state ({})".format(now_docker["error"]))
    else:
        if before_docker.get("swarm") != now_docker.get("swarm"):
            out.append("docker swarm: {}, was {}".format(now_docker.get("swarm"), before_docker.get("swarm")))
        for part, what in (("containers", "container"), ("services", "service"), ("networks", "network")):
            _compare_maps(what, before_docker.get(part, {}), now_docker.get(part, {}), out, limit)
    return out[:limit]


def verdict(record, digest, current, now, max_age):
    """(converged, reasons) for a record read from the host (None when there is none)."""
    if record is None:
        return False, ["no record of a full run on this host (first run, or removed)"]
    if record.get("version") != RECORD_VERSION:
        return False, ["the record was written by another version of picluster.swarm"]
    reasons = []
    recorded, wanted = (str(record.get("digest", "")) + "/").split("/")[:2], (str(digest) + "/").split("/")[:2]
    if recorded[0] != wanted[0]:
        reasons.append("the inputs changed since the last full run (variables, inventory, the collection)")
    if recorded[1] != wanted[1]:
        reasons.append("the controller's certificates and keys, or a host's address, system or kernel, changed "
                       "since the last full run")
    age = now - float(record.get("time", 0))
    if max_age and age > max_age:
        reasons.append(f"the last full run is {age:.0f} s old, more than the {max_age} s allowed (site_state_max_age)")
    elif age < -300:
        reasons.append("the record is from the future (the clock moved back): running in full")
    reasons.extend(differences(record.get("snapshot", {}), current))
    return not reasons, reasons
