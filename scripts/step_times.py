# Copyright (c) 2026 picluster.swarm developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Pass molecule's output through unchanged and, at its end, say how long each
step took (`==> steps: create 41s, converge 380s, ...`), on a monotonic clock:
where a scenario's time goes, for whoever has to make the suite faster."""

from __future__ import annotations

import re
import sys
import time

STEP = re.compile(r"^INFO\s+\[[^\]>]+ > (\w+)\] (Executing|Executed)")


def main() -> None:
    started: dict[str, float] = {}
    took: list[tuple[str, float]] = []
    for line in sys.stdin:
        sys.stdout.write(line)
        sys.stdout.flush()
        match = STEP.match(line)
        if not match:
            continue
        step, what = match.groups()
        if what == "Executing":
            started[step] = time.monotonic()
        elif step in started:
            took.append((step, time.monotonic() - started.pop(step)))
    running = [f"{step} (unfinished) {time.monotonic() - t0:.0f}s" for step, t0 in started.items()]
    print("==> steps: " + ", ".join([f"{step} {s:.0f}s" for step, s in took] + running), flush=True)


if __name__ == "__main__":
    main()
