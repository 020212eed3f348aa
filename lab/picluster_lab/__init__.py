"""The local Pi lab as a library: `Lab(name)` and what it offers.

Standard library only (it runs before the venv exists, in the tests and in
the bench alike). `python3 lab <command>` is its command line (cli.py).
"""

from ._common import REPORTS, LabError, LabTimeout, loadavg, wait_until
from .drill import DrillFailed, DrillLimits, DrillReport, DrillRun
from .images import load as load_images
from .inventory import molecule_lab_name, prefixed
from .lab import HttpAnswer, Lab, PlaybookRun, SwarmNode
from .membership import Member, Membership
from .provision import down, up
from .show import check
from .watch import MembershipWatch, WatchReport, stop_watch, watch_files

__all__ = [
    "REPORTS",
    "DrillFailed",
    "DrillLimits",
    "DrillReport",
    "DrillRun",
    "HttpAnswer",
    "Lab",
    "LabError",
    "LabTimeout",
    "Member",
    "Membership",
    "MembershipWatch",
    "PlaybookRun",
    "SwarmNode",
    "WatchReport",
    "check",
    "down",
    "load_images",
    "loadavg",
    "molecule_lab_name",
    "prefixed",
    "stop_watch",
    "up",
    "wait_until",
    "watch_files",
]
