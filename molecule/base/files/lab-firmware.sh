#!/bin/sh
# Lab stand-in for a Raspberry Pi's firmware and kernel, run at every boot of
# the node (molecule/base/prepare.yml installs it as picluster-lab-firmware.service).
#
# As on a Pi, the kernel's command line is the firmware's own arguments, then
# the first line of cmdline.txt, then whatever firmware-append holds (some 6.12
# firmware appends cgroup_disable=memory there); the memory cgroup controller is
# on when the last cgroup_enable=memory / cgroup_disable=memory word says so.
# The results are bind-mounted over /proc/cmdline and /proc/cgroups (or the
# cgroup v2 root's controller list), with a new boot_id, inside this node only.
# A container restart drops the mounts and runs this again: to the role, that
# is a reboot that re-reads cmdline.txt.
set -euf  # -f: no globbing of the words below
lab=/etc/picluster-lab
state=/run/picluster-lab
mkdir -p "$state"
boot_dir=$(cat "$lab/boot-dir")
append=$(cat "$lab/firmware-append" 2>/dev/null || true)
# shellcheck disable=SC2046,SC2086 # word splitting joins the parts with single spaces
set -- $(cat "$lab/firmware-prefix") $(head -n 1 "$boot_dir/cmdline.txt") $append
echo "$*" >"$state/cmdline"
memory=0
for word in "$@"; do
  case "$word" in
    cgroup_enable=memory) memory=1 ;;
    cgroup_disable=memory) memory=0 ;;
  esac
done
mount --bind "$state/cmdline" /proc/cmdline
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
  if [ "$memory" = 1 ]; then
    cp /sys/fs/cgroup/cgroup.controllers "$state/cgroup.controllers"
  else
    tr ' ' '\n' </sys/fs/cgroup/cgroup.controllers | grep -vx memory | tr '\n' ' ' >"$state/cgroup.controllers"
  fi
  mount --bind "$state/cgroup.controllers" /sys/fs/cgroup/cgroup.controllers
else
  awk -v on="$memory" 'BEGIN { OFS = "\t" } $1 == "memory" { $4 = on } { print }' /proc/cgroups >"$state/cgroups"
  mount --bind "$state/cgroups" /proc/cgroups
fi
cat /proc/sys/kernel/random/uuid >"$state/boot_id"
mount --bind "$state/boot_id" /proc/sys/kernel/random/boot_id
