# Shared helpers for the set-up and lab scripts. Sourced, not run.
# shellcheck shell=bash

PICLUSTER_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Everything expensive is kept here, outside the checkout, so a fresh clone on
# the same machine (CI) reuses it: the venv, the Consul binary, node rootfs.
PICLUSTER_CACHE=${PICLUSTER_CACHE:-/var/cache/picluster}
CONSUL_VERSION=${CONSUL_VERSION:-1.22.3}
VENV_DIR="$PICLUSTER_CACHE/venv-$(sha256sum "$PICLUSTER_ROOT/requirements-dev.txt" | cut -c1-12)"
CONSUL_BIN="$PICLUSTER_CACHE/consul/consul-$CONSUL_VERSION"
export PICLUSTER_ROOT PICLUSTER_CACHE CONSUL_VERSION VENV_DIR CONSUL_BIN

say() { printf '==> %s\n' "$*"; }
die() { printf 'ERROR: %s\n' "$*" >&2; exit 1; }

# Seconds on a clock that never jumps (since boot), for the "took N s" lines:
# the wall clock here has jumped back by an hour during a run.
now() { local up; read -r up _ </proc/uptime; echo "${up%.*}"; }
