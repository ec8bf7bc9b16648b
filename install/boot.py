"""Waiting for a node's boot to finish before working on it.

A node booted again (after a host reboot, or `oslab up` on a lab that was shut down) starts
every OpenStack unit at once; under TCG the e2e controller needed more than 20 minutes for that
(sshd itself did not send its banner for minutes), and commands run meanwhile time out
(rabbitmqctl above all) or find services down. The install and `oslab verify` wait for the
boot to finish first. A fresh node, or one without systemd, is not waited for.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import IO

from oslab.access.ssh import NodeConn
from oslab.errors import CommandError

BOOT_STATE = "command -v systemctl >/dev/null 2>&1 && systemctl is-system-running || true"
BOOT_WAIT = "systemctl is-system-running --wait >/dev/null; systemctl is-system-running || true"
BOOT_WAIT_S = 1800.0


def booting(state: str) -> bool:
    """Whether ``systemctl is-system-running`` says the boot is still under way."""
    return state in ("initializing", "starting")


def await_boot(conn: NodeConn, say: Callable[[str], None], doing: str,
               log: IO[str] | None = None, clock: Callable[[], float] = time.monotonic) -> None:
    """Wait until the node's boot has finished, when it is still under way; ``say`` what
    happens in words about ``doing`` ("installing", "verifying"). A boot that outlasts
    :data:`BOOT_WAIT_S` is said and then not waited for any longer."""
    state = conn.run(BOOT_STATE, timeout=60, log=log).stdout.strip()
    if not booting(state):
        return
    say(f"its boot is still under way (systemd: {state}): waiting for it to finish before "
        f"{doing}")
    start = clock()
    try:
        after = conn.run(BOOT_WAIT, timeout=BOOT_WAIT_S, log=log).stdout.strip()
    except CommandError:
        say(f"its boot did not finish within {BOOT_WAIT_S:.0f}s; {doing} anyway")
        return
    say(f"its boot finished after {clock() - start:.0f}s (systemd: {after})")
