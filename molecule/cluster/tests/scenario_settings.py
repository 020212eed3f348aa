"""The cluster scenario's settings.yml (what `lab user-run --settings` gives the playbooks), read once for the tests."""

from __future__ import annotations

from pathlib import Path

import yaml

SETTINGS = yaml.safe_load((Path(__file__).resolve().parents[1] / "settings.yml").read_text())
TTL = int(SETTINGS["swarm_heartbeat_ttl"])
