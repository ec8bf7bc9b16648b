"""How the engine talks to a node: run a command, upload a file. Over SSH (``oslab.ssh``) for real
labs; unit tests pass a fake with the same shape that answers recorded output."""

from __future__ import annotations

from collections.abc import Sequence
from typing import IO

from oslab.ssh import Result, Session, Target


class SSHConn:
    """A ``NodeConn`` over the lab's pinned-key SSH (``oslab.ssh.Session``) and its SFTP.
    Every failure is an ``SSHError`` (an ``OslabError``) from ``oslab.ssh``."""

    def __init__(self, target: Target, connect_timeout: float = 15.0) -> None:
        self.name = target.name
        self.session = Session(target, connect_timeout=connect_timeout)

    def run(self, command: str, *, timeout: float, stdin: str | None = None,
            secrets: Sequence[str] = (), log: IO[str] | None = None) -> Result:
        return self.session.run(command, timeout=timeout, stdin=stdin, secrets=secrets, log=log)

    def put(self, path: str, data: bytes, *, timeout: float) -> None:
        self.session.put(path, data, timeout=timeout)

    def close(self) -> None:
        self.session.close()
