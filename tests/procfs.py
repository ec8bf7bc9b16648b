"""Read every process's files under /proc without racing their exit."""

from __future__ import annotations

import os
from collections.abc import Iterator


def process_files(name: str) -> Iterator[tuple[int, bytes]]:
    """Yield (pid, contents of /proc/PID/NAME) for each process still there when read.

    A process may end between listing /proc and reading its file. ``Path.glob``
    stats each match outside the caller's ``try``, so a process that ends in
    that gap raised ProcessLookupError in a watcher thread (CI, stop 15):
    list the pids and catch each read instead.
    """
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/{name}", "rb") as f:
                yield int(pid), f.read()
        except OSError:
            continue
