#!/usr/bin/env bash
# One set-up path for a fresh machine (Debian 12, root, nothing running):
#   host packages -> Docker engine -> Python venvs -> Consul binary -> node images
# Every step checks before it acts, so a second run takes seconds.
# Usage: scripts/setup.sh [packages|engine|venv|oldest|consul|images|arm|all]...
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

# chromium: the dashboard test drives the page headless (Debian's, no download of its own);
# fonts-dejavu-core gives its screenshots a font.
HOST_PACKAGES=(docker.io debootstrap iproute2 curl ca-certificates rsync shellcheck chromium fonts-dejavu-core)

step_packages() {
  local missing=()
  for p in "${HOST_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then say "host packages: present"; return; fi
  [ "$(id -u)" = 0 ] || die "host packages ${missing[*]} are missing and installing them needs root; run: sudo $0"
  say "host packages: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || die "apt-get update failed; check the Debian mirror is reachable"
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || die "apt-get install ${missing[*]} failed (see above)"
}

# Every lab node's systemd (and its engine) holds several inotify instances,
# all counted against root on this host: the kernel's default of 128 ran out
# with three labs up at once (a node's systemd then never booted). Raise it.
INOTIFY_INSTANCES=1024

step_inotify() {
  local now
  now=$(cat /proc/sys/fs/inotify/max_user_instances)
  if [ "$now" -ge "$INOTIFY_INSTANCES" ]; then say "inotify: max_user_instances $now"; return; fi
  [ "$(id -u)" = 0 ] || { say "inotify: max_user_instances is $now; as root, raise it to $INOTIFY_INSTANCES for labs side by side"; return; }
  sysctl -qw fs.inotify.max_user_instances="$INOTIFY_INSTANCES" || die "could not raise fs.inotify.max_user_instances"
  say "inotify: max_user_instances $now -> $INOTIFY_INSTANCES (lab nodes run systemd)"
}

step_engine() {
  step_inotify
  if docker info >/dev/null 2>&1; then say "docker engine: answering ($(docker info -f '{{.ServerVersion}}'))"; return; fi
  command -v dockerd >/dev/null || die "no dockerd on PATH; run '$0 packages' first"
  local log=/var/log/picluster-dockerd.log
  say "docker engine: not answering, starting dockerd (log: $log)"
  # No init system runs here, so start the daemon ourselves; containerd comes
  # up under it. setsid keeps it alive after this script's shell exits.
  setsid nohup dockerd >"$log" 2>&1 </dev/null &
  local i
  for i in $(seq 1 60); do
    docker info >/dev/null 2>&1 && { say "docker engine: up after ${i}s ($(docker info -f '{{.ServerVersion}}'))"; return; }
    sleep 1
  done
  tail -20 "$log" >&2 || true
  die "dockerd did not answer within 60 s; its log is $log (last lines above)"
}

step_venv() {
  if [ -x "$VENV_DIR/bin/ansible-playbook" ] && [ -f "$VENV_DIR/.complete" ]; then
    say "python venv: present ($VENV_DIR)"; return
  fi
  say "python venv: creating $VENV_DIR from requirements-dev.txt"
  rm -rf "$VENV_DIR"
  mkdir -p "$PICLUSTER_CACHE/pip"
  python3 -m venv "$VENV_DIR" || die "python3 -m venv failed; install python3-venv"
  PIP_CACHE_DIR="$PICLUSTER_CACHE/pip" "$VENV_DIR/bin/pip" install -q --disable-pip-version-check \
    -r "$PICLUSTER_ROOT/requirements-dev.txt" || die "pip install -r requirements-dev.txt failed (see above)"
  touch "$VENV_DIR/.complete"
}

# A second, small venv: the oldest ansible-core claimed, and only the three
# collections the roles use, out of the ansible release that shipped them.
step_oldest() {
  local want="ansible-core==$OLDEST_ANSIBLE_CORE $OLDEST_COLLECTIONS_FROM"
  if [ -x "$OLDEST_VENV_DIR/bin/ansible-playbook" ] && [ "$(cat "$OLDEST_VENV_DIR/.complete" 2>/dev/null)" = "$want" ]; then
    say "oldest venv: present ($want, $OLDEST_VENV_DIR)"; return
  fi
  say "oldest venv: creating $OLDEST_VENV_DIR ($want)"
  local t0 site wheels
  t0=$(now)
  rm -rf "$OLDEST_VENV_DIR"
  python3 -m venv "$OLDEST_VENV_DIR" || die "python3 -m venv failed; install python3-venv"
  PIP_CACHE_DIR="$PICLUSTER_CACHE/pip" "$OLDEST_VENV_DIR/bin/pip" install -q --disable-pip-version-check \
    "ansible-core==$OLDEST_ANSIBLE_CORE" || die "pip install ansible-core==$OLDEST_ANSIBLE_CORE failed (see above)"
  wheels="$PICLUSTER_CACHE/wheels"
  mkdir -p "$wheels"
  PIP_CACHE_DIR="$PICLUSTER_CACHE/pip" "$OLDEST_VENV_DIR/bin/pip" download -q --disable-pip-version-check --no-deps \
    -d "$wheels" "$OLDEST_COLLECTIONS_FROM" || die "pip download $OLDEST_COLLECTIONS_FROM failed (see above)"
  site=$("$OLDEST_VENV_DIR/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  "$OLDEST_VENV_DIR/bin/python" - "$wheels/${OLDEST_COLLECTIONS_FROM/==/-}-py3-none-any.whl" "$site" <<'PY' \
    || die "could not unpack the collections from $OLDEST_COLLECTIONS_FROM"
import sys, zipfile
wheel, site = sys.argv[1:]
wanted = tuple(f"ansible_collections/community/{name}/" for name in ("general", "docker", "crypto"))
with zipfile.ZipFile(wheel) as archive:
    archive.extractall(site, [n for n in archive.namelist() if n.startswith(wanted)])
PY
  echo "$want" >"$OLDEST_VENV_DIR/.complete"
  say "oldest venv: made in $(( $(now) - t0 ))s: $("$OLDEST_VENV_DIR/bin/ansible" --version | sed -n 1p)"
}

step_consul() {
  if [ -x "$CONSUL_BIN" ] && "$CONSUL_BIN" version >/dev/null 2>&1; then
    say "consul: present ($("$CONSUL_BIN" version | head -1), $CONSUL_BIN)"; return
  fi
  command -v go >/dev/null || die "Consul is built from source and needs Go on PATH (the Go module proxy must be reachable)"
  say "consul: building v$CONSUL_VERSION from tools/consul (takes several minutes the first time)"
  mkdir -p "$(dirname "$CONSUL_BIN")"
  local t0; t0=$(now)
  (cd "$PICLUSTER_ROOT/tools/consul" && go build -trimpath -o "$CONSUL_BIN.tmp" github.com/hashicorp/consul) \
    || die "go build of Consul v$CONSUL_VERSION failed (see above); tools/consul/go.mod pins it"
  mv "$CONSUL_BIN.tmp" "$CONSUL_BIN"
  say "consul: built in $(( $(now) - t0 ))s: $("$CONSUL_BIN" version | head -1)"
}

step_images() {
  # The node images, and what real Pis would pull (nginx base, the demo app).
  python3 "$PICLUSTER_ROOT/lab" images build || die "the lab's images could not be built (see above)"
}

step_arm() {
  # Emulated ARM nodes for the tests (docs/lab.md): the qemu-user interpreters,
  # the node images of arm64 and armhf, Consul cross-compiled for each. Not
  # part of `all` (`make lab` needs none of it); `make test` runs it. Cold, it
  # takes tens of minutes (a patched qemu, two emulated debootstraps); cached
  # by recipe afterwards. The emulated debootstraps keep about one core busy
  # (load near 1.5 for 17 minutes on a fresh machine, 2026-11-29), so Consul's
  # cross-compiles run beside them; this step as written was not timed cold.
  local a pid log="$PICLUSTER_CACHE/consul-cross-compile.log"
  mkdir -p "$PICLUSTER_CACHE"
  (
    for a in arm64 armhf; do
      PICLUSTER_CONSUL_BIN=$CONSUL_BIN python3 "$PICLUSTER_ROOT/lab" images consul --arch "$a" || exit 1
    done
  ) >"$log" 2>&1 &
  pid=$!
  for a in arm64 armhf; do
    PICLUSTER_CONSUL_BIN=$CONSUL_BIN python3 "$PICLUSTER_ROOT/lab" images build --arch "$a" --no-consul \
      || { kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; die "the $a lab images could not be built (see above)"; }
  done
  if ! wait "$pid"; then
    cat "$log" >&2
    die "Consul could not be cross-compiled for the ARM nodes (its output is above, and in $log)"
  fi
  cat "$log"
}

main() {
  local steps=("$@")
  [ ${#steps[@]} -gt 0 ] || steps=(all)
  for s in "${steps[@]}"; do
    case "$s" in
      all) step_packages; step_engine; step_venv; step_oldest; step_consul; step_images ;;
      packages|engine|venv|oldest|consul|images|arm) "step_$s" ;;
      *) die "unknown step '$s'; steps are: packages engine venv oldest consul images arm all" ;;
    esac
  done
}
main "$@"
