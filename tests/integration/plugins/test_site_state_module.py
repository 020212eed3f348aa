# Copyright (c) 2025 picluster.swarm developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""picluster.swarm.site_state through ansible-playbook on this host: its files and its real Docker engine.

(This host has no systemd; the units' part is the cluster scenario's, on the lab's nodes.)
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid

from ansible_runner import module_task


def state(args, **keywords):
    return module_task("site_state", args, **keywords)


def test_record_check_and_every_kind_of_change(ansible, tmp_path):
    conf = tmp_path / "etc" / "conf.d"
    conf.mkdir(parents=True)
    (conf / "a.conf").write_text("a\n")
    record = str(tmp_path / "state" / "site-state.json")
    common = {"path": record, "digest": "d1"}
    present = state(dict(common, state="present", paths=[str(conf), str(tmp_path / "etc" / "absent.conf")]))
    run = ansible.run([
        state(dict(common, state="present", paths=[str(conf)]), check_mode=True),  # 0 writes nothing
        state(common),  # 1 no record yet
        present,  # 2
        present,  # 3 the same again
        state(common),  # 4
        state(dict(common, digest="d2")),  # 5 other inputs
    ])
    run.assert_no_traceback()
    assert run[0]["changed"] is True  # and wrote nothing: run[1] finds no record
    assert run[1]["converged"] is False and "no record" in run[1]["reasons"][0]
    assert run[2]["changed"] is True and run[3]["changed"] is False
    assert oct(os.stat(record).st_mode & 0o777) == "0o600"
    assert run[4]["converged"] is True and run[4]["reasons"] == [], run[4]["reasons"]
    assert run[4]["counts"]["files"] == 3
    assert run[5]["converged"] is False and "inputs changed" in run[5]["reasons"][0]

    os.chmod(conf / "a.conf", 0o600)
    (tmp_path / "etc" / "absent.conf").write_text("new\n")
    name = f"picluster-site-state-{uuid.uuid4().hex[:8]}"
    image = subprocess.run(["docker", "images", "--format", "{{.Repository}}:{{.Tag}}", "picluster/debian"],
                           capture_output=True, text=True, check=True).stdout.split()[0]
    subprocess.run(["docker", "create", "--name", name, image, "true"], capture_output=True, check=True)
    try:
        run = ansible.run([state(common), state(dict(common, state="absent")), state(common)])
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)
    run.assert_no_traceback()
    reasons = run[0]["reasons"]
    assert run[0]["converged"] is False
    assert any(r.startswith(f"file {conf / 'a.conf'}: file 600 ") for r in reasons), reasons
    assert any(r.startswith(f"file {tmp_path / 'etc' / 'absent.conf'}: file 644 ") and r.endswith("was missing")
               for r in reasons), reasons
    assert f"container {name}: new since the last full run ({image} created)" in reasons, reasons
    assert run[1]["changed"] is True and not os.path.exists(record)
    assert "no record" in run[2]["reasons"][0]


def test_an_unreadable_record_is_not_trusted(ansible, tmp_path):
    record = tmp_path / "site-state.json"
    record.write_text("{not json")
    run = ansible.run([state({"path": str(record), "digest": "d1"})])
    run.assert_no_traceback()
    assert run[0]["converged"] is False and "another version" in run[0]["reasons"][0]
    assert json.loads(json.dumps(run[0]["counts"])) == {"files": 0, "units": 0, "docker": 0}
