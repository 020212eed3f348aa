"""`python3 lab <command>`: the lab's command line (see picluster_lab/cli.py)."""

import sys

from picluster_lab.cli import main

sys.exit(main())
