# Copyright (c) 2025 picluster.swarm developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The base role reads the memory cgroup controller the way each kernel reports it.

cgroup v2 (Raspberry Pi OS Bullseye and later): the root's cgroup.controllers.
cgroup v1: /proc/cgroups' "enabled" column; a 6.12 kernel built without
CONFIG_MEMCG_V1 has no memory line there at all. Words in /proc/cmdline are
not the test: on some 6.12 firmware cgroup_enable=memory is there and the
controller is still off.
"""

from __future__ import annotations

import pytest
from _render import render

PI_CMDLINE = ("coherent_pool=1M 8250.nr_uarts=1 cgroup_disable=memory console=tty1 root=PARTUUID=4d8097e2-02 "
              "rootfstype=ext4 fsck.repair=yes rootwait cgroup_enable=memory")
V1_HEADER = "#subsys_name\thierarchy\tnum_cgroups\tenabled\n"
# case: (cgroup.controllers or None for a v1 system, /proc/cgroups) -> (cgroup version, memory on)
CASES = {
    "v2-with-memory": ("cpuset cpu io memory hugetlb pids rdma misc\n", "", (2, True)),
    "v2-memory-off": ("cpuset cpu io pids\n", "", (2, False)),
    "v1-memory-enabled": (None, V1_HEADER + "cpuset\t3\t6\t1\nmemory\t4\t125\t1\npids\t8\t61\t1\n", (1, True)),
    "v1-memory-disabled": (None, V1_HEADER + "cpuset\t0\t39\t1\nmemory\t0\t39\t0\npids\t0\t39\t1\n", (1, False)),
    "v1-no-memcg-v1": (None, V1_HEADER + "cpuset\t0\t70\t1\ncpu\t0\t70\t1\npids\t0\t70\t1\n", (1, False)),
}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("kernel")
    cases = {}
    for name, (controllers, proc_cgroups, _want) in CASES.items():
        case_dir = tmp_path / name
        case_dir.mkdir()
        (case_dir / "cmdline").write_text(PI_CMDLINE + "\n")
        (case_dir / "cgroups").write_text(proc_cgroups)
        if controllers is not None:
            (case_dir / "cgroup.controllers").write_text(controllers)
        cases[name] = {"case_dir": str(case_dir)}
    tasks = [{"name": "Read the kernel's state", "ansible.builtin.include_role": {
        "name": "picluster.swarm.base", "tasks_from": "kernel_state.yml"},
        "vars": {"base_cgroup_v2_controllers_path": "{{ case_dir }}/cgroup.controllers",
                 "base_proc_cgroups_path": "{{ case_dir }}/cgroups",
                 "base_proc_cmdline_path": "{{ case_dir }}/cmdline"}}]
    return render(tmp_path, cases, tasks,
                  "{'version': base_cgroup_version | int, 'memory': base_memory_cgroup_on | bool,"
                  " 'cmdline': base_kernel_cmdline}")


@pytest.mark.parametrize("case", CASES)
def test_memory_controller_state(rendered, case):
    version, memory_on = CASES[case][2]
    result = rendered.results.get(case)
    assert result is not None, rendered.output
    assert (result["version"], result["memory"]) == (version, memory_on)
    # The same command line in every case: the words alone would have said "on" each time.
    assert result["cmdline"] == PI_CMDLINE
