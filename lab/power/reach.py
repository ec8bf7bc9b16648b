"""A node's SSH waited for while its domain runs: it may be booting (a reboot from inside, a
boot storm after `oslab start`), so a first refusal is no verdict. The wait is bounded, says
where it stands every 30 s, and ends at once when libvirt says the domain stopped running.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from oslab.access.ssh import Target, wait_ready
from oslab.errors import OslabError
from oslab.power.decide import NodeFact, unreachable

SAY_EVERY_S = 30.0


def await_ssh(lab: str, target: Target, timeout: float, say: Callable[[str], None],
              facts: Callable[[], Sequence[NodeFact]]) -> float:
    """Wait until ``target`` answers SSH with its pinned key, for at most ``timeout`` seconds;
    the seconds it took. ``facts`` reads the lab's domains from libvirt; ``say`` gets the
    progress lines. Raises with a hint when the domain does not run, or stops running, or the
    node never answers."""
    node = target.name
    why = unreachable(lab, node, facts())
    if why is not None:
        raise why
    start = time.monotonic()
    last = [0.0]

    def tick(elapsed: float, reason: str) -> None:
        if elapsed - last[0] >= SAY_EVERY_S:
            last[0] = elapsed
            say(f"waiting for SSH at {target.address} ({elapsed:.0f}s: {reason})")

    def give_up() -> str:
        stopped = unreachable(lab, node, facts())
        return stopped.message if stopped is not None else ""

    ok, reason = wait_ready(target, timeout, on_wait=tick, give_up=give_up)
    if not ok:
        stopped = unreachable(lab, node, facts())
        if stopped is not None:
            raise stopped
        raise OslabError(f"{node}: no SSH at {target.address} after {timeout:.0f}s ({reason})",
                         hint=f"look at `oslab console {node}`; rerun the command to go on "
                              "waiting")
    return time.monotonic() - start
