"""How the checks reach this machine and the dashboard: :class:`LocalRunner` (a ``NodeConn``
that runs commands here, the host side of the provider network), :func:`http_get`, and the
types of the HTTP getter and the guest connector a :class:`~.runner.Lab` takes.
"""

from __future__ import annotations

import contextlib
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO

from oslab.access.ssh import NodeConn, Result
from oslab.errors import OslabError


class LocalRunner:
    """A ``NodeConn`` that runs commands with bash on this machine (the host side, and tests).
    A command that outlives ``timeout`` raises OslabError."""

    name = "localhost"

    def __init__(self, env: Mapping[str, str] | None = None, cwd: Path | None = None) -> None:
        self.env = dict(env) if env is not None else None
        self.cwd = cwd

    def run(self, command: str, *, timeout: float, stdin: str | None = None,
            secrets: Sequence[str] = (), log: IO[str] | None = None) -> Result:
        from oslab.access.ssh import mask
        try:
            proc = subprocess.run(["bash", "-c", command], input=stdin, capture_output=True,
                                  text=True, timeout=timeout, env=self.env, cwd=self.cwd,
                                  check=False)
        except subprocess.TimeoutExpired as exc:
            raise OslabError(f"timed out after {timeout:.0f}s: {mask(command, secrets)}") from exc
        result = Result(mask(command, secrets), proc.returncode, proc.stdout,
                        mask(proc.stderr, secrets))
        if log is not None:  # as oslab.access.ssh.Session logs a command
            log.write(f"$ {result.command}\n"
                      + "".join(mask(line, secrets) + "\n" for line in result.stdout.splitlines())
                      + "".join(f"! {line}\n" for line in result.stderr.splitlines())
                      + f"# exit {result.returncode}\n")
        return result

    def put(self, path: str, data: bytes, *, timeout: float) -> None:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.touch(mode=0o600)
        p.write_bytes(data)

    def close(self) -> None:
        pass


HttpGet = Callable[[str, float], tuple[int, str]]
GuestConnect = Callable[[str, str], NodeConn]  # (address, pinned host key line) -> runner


def http_get(url: str, timeout: float) -> tuple[int, str]:
    """(HTTP status, body) of a GET; (0, reason) when nothing answers."""
    req = urllib.request.Request(url, headers={"User-Agent": "oslab-verify"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return int(resp.status), resp.read(1 << 20).decode(errors="replace")
    except urllib.error.HTTPError as exc:
        with contextlib.closing(exc):
            return exc.code, exc.read(1 << 16).decode(errors="replace")
    except OSError as exc:
        return 0, str(getattr(exc, "reason", exc))
