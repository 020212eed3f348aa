# Copyright (c) 2025 picluster.swarm developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A slow password hash from the standard library (hashlib.scrypt), computed on the controller.

Only the hash reaches the hosts; the dashboard verifies a login against it
with the same parameters, read back from the hash line.
"""

from __future__ import annotations

import hashlib
from typing import Any

from ansible.errors import AnsibleFilterError

# scrypt's cost: 2**15 blocks of 8 * 128 bytes, 32 MiB and about 0.1 s per
# check on a Raspberry Pi 4; stored with the hash, so it can be raised later.
DEFAULT_N = 2**15
DEFAULT_R = 8
DEFAULT_P = 1


def scrypt_hash(password: Any, salt: Any, n: int = DEFAULT_N, r: int = DEFAULT_R, p: int = DEFAULT_P) -> str:
    """``scrypt:N:r:p:<salt>:<hex digest>`` of the password, 32 bytes of output."""
    password_text, salt_text = str(password), str(salt)
    if not salt_text or ":" in salt_text:
        raise AnsibleFilterError("scrypt_hash: the salt must be a non-empty string without ':'")
    n, r, p = int(n), int(r), int(p)
    if n < 2 or n & (n - 1):
        raise AnsibleFilterError(f"scrypt_hash: n must be a power of two above 1, not {n}")
    digest = hashlib.scrypt(password_text.encode(), salt=salt_text.encode(), n=n, r=r, p=p,
                            maxmem=256 * 1024 * 1024, dklen=32)
    return f"scrypt:{n}:{r}:{p}:{salt_text}:{digest.hex()}"


class FilterModule:
    """picluster.swarm password filters."""

    def filters(self) -> dict:
        return {"scrypt_hash": scrypt_hash}
