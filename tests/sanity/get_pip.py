"""Stand-in for the get-pip.py that ansible-test downloads to seed pip into
the empty virtualenvs of its sanity tests. The official script comes from a
host this machine cannot reach; this one seeds pip from Python's own
``ensurepip`` and then lets that pip install what ansible-test asked for
(pinned pip, setuptools, wheel versions) from PyPI, which is reachable.

scripts/test.sh copies it to ~/.ansible/test/cache/get_pip_<version>.py.
"""

import subprocess
import sys

# get-pip.py's own options; pip install does not know them.
GET_PIP_ONLY = {"--no-setuptools", "--no-wheel"}


def main() -> None:
    args = [a for a in sys.argv[1:] if a not in GET_PIP_ONLY]
    subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"], stdout=subprocess.DEVNULL)
    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", *args])


if __name__ == "__main__":
    main()
