"""Live progress on screen, and one log file per node in the lab's state dir."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import IO

from oslab.errors import OslabError
from oslab.files import open_append, read_tail

LOG_HINT = "remove it (oslab makes a node's log itself), then rerun"


class Reporter:
    """Thread-safe progress lines: ``[  12s] controller   installing``."""

    def __init__(self, stream: IO[str] | None = None, logs: dict[str, Path] | None = None,
                 quiet: bool = False) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.quiet = quiet
        self.start = time.monotonic()
        self.lock = threading.Lock()
        self.logs = dict(logs or {})
        self.width = max((len(n) for n in self.logs), default=8)

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def _line(self, who: str, message: str) -> str:
        return f"[{self.elapsed():5.0f}s] {who:<{self.width}}  {message}"

    def lab(self, message: str) -> None:
        self._emit("lab", message, None)

    def node(self, node: str, message: str, *, screen: bool = True) -> None:
        self._emit(node, message, self.logs.get(node), screen=screen)

    def _emit(self, who: str, message: str, log: Path | None, screen: bool = True) -> None:
        line = self._line(who, message)
        with self.lock:
            if screen and not self.quiet:
                print(line, file=self.stream, flush=True)
            if log is not None:
                with open_append(log, "the node's log", LOG_HINT) as f:
                    f.write(time.strftime("%Y-%m-%dT%H:%M:%S ") + message + "\n")


def tail(path: Path, lines: int = 25) -> str:
    """The last ``lines`` lines of a (console) log, without terminal control noise."""
    try:
        data = read_tail(path, 65536, "console log")
    except OslabError as exc:
        return f"({exc.message})"
    text = data.decode(errors="replace").replace("\r", "")
    keep = [line for line in text.splitlines() if line.strip()][-lines:]
    return "\n".join("  | " + line for line in keep)
