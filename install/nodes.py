"""How the engine talks to a node: run a command, upload a file. Over SSH (paramiko) for real
labs; unit tests pass a fake with the same shape that answers recorded output."""

from __future__ import annotations

from collections.abc import Sequence
from typing import IO, Protocol

import paramiko

from oslab.errors import OslabError
from oslab.ssh import Result, Session, Target


class NodeConn(Protocol):
    """One open connection to a node, used by one thread."""

    name: str

    def run(self, command: str, *, timeout: float, stdin: str | None = None,
            secrets: Sequence[str] = (), log: IO[str] | None = None) -> Result:
        """Run a POSIX shell command as root; stream its output (masked) to ``log``.

        Raises ``CommandError`` (exit code -1) when it outlives ``timeout``."""
        ...

    def put(self, path: str, data: bytes, *, timeout: float) -> None:
        """Write ``data`` to ``path`` (created mode 0600 before any byte is written)."""
        ...

    def close(self) -> None:
        ...


class SSHConn:
    """A ``NodeConn`` over the lab's pinned-key SSH (``oslab.ssh.Session``) and its SFTP."""

    def __init__(self, target: Target, connect_timeout: float = 15.0) -> None:
        self.name = target.name
        try:
            self.session = Session(target, connect_timeout=connect_timeout)
        except paramiko.BadHostKeyException as exc:
            raise OslabError(f"{target.name}: the host key does not match the pinned key",
                             hint="the node is not the one oslab installed; see `oslab status`"
                             ) from exc
        except (paramiko.SSHException, OSError) as exc:
            raise OslabError(f"{target.name}: no SSH at {target.address}: {exc}",
                             hint="check that the lab runs (`oslab status`); "
                                  "`oslab up --stage provision` starts it") from exc
        self._sftp: paramiko.SFTPClient | None = None

    def run(self, command: str, *, timeout: float, stdin: str | None = None,
            secrets: Sequence[str] = (), log: IO[str] | None = None) -> Result:
        return self.session.run(command, timeout=timeout, stdin=stdin, secrets=secrets, log=log)

    def put(self, path: str, data: bytes, *, timeout: float) -> None:
        if self._sftp is None:
            self._sftp = self.session.sftp()
        channel = self._sftp.get_channel()
        if channel is not None:
            channel.settimeout(timeout)
        with self._sftp.open(path, "wb") as f:
            f.chmod(0o600)
            f.write(data)

    def close(self) -> None:
        if self._sftp is not None:
            self._sftp.close()
        self.session.close()
