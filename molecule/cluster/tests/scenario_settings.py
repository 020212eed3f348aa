"""The cluster scenario's settings.yml (what `lab user-run --settings` gives the playbooks), read once for the tests."""

from __future__ import annotations

from pathlib import Path

import yaml

SETTINGS = yaml.safe_load((Path(__file__).resolve().parents[1] / "settings.yml").read_text())
TTL = int(SETTINGS["swarm_heartbeat_ttl"])
# The reconciler's rounds (swarm_manager role defaults unless settings.yml sets them).
RECONCILE = bool(SETTINGS.get("swarm_manager_reconcile_enabled", False))
RECONCILE_GRACE_S = float(SETTINGS.get("swarm_manager_reconcile_grace_period", 10))
RECONCILE_INTERVAL_S = float(SETTINGS.get("swarm_manager_reconcile_interval", 5))
# From the poll that saw the node expired (or back) to the swarm showing the change:
# the grace period (for a drain), up to two rounds, and slack for a loaded machine.
DRAIN_BOUND_S = RECONCILE_GRACE_S + 2 * RECONCILE_INTERVAL_S + 10
REACTIVATE_BOUND_S = 2 * RECONCILE_INTERVAL_S + 10
