"""SSH to the lab's nodes with paramiko: the lab's key, and the host key oslab pinned.

No trust on first use: the client knows each node's host key before it connects
(``RejectPolicy`` with that key loaded), because oslab generated it and the kickstart installed it.
"""

from __future__ import annotations

import base64
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import paramiko

from oslab.errors import CommandError, OslabError

MASK = "***"


def mask(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return text


@dataclass(frozen=True)
class Result:
    command: str
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


@dataclass(frozen=True)
class Target:
    """How to reach one node."""

    name: str
    address: str
    host_key: str  # OpenSSH public key line: "ssh-ed25519 AAAA... comment"
    key_path: Path
    user: str = "root"
    port: int = 22

    def pinned(self) -> paramiko.PKey:
        kind, blob = self.host_key.split()[:2]
        return paramiko.PKey.from_type_string(kind, base64.b64decode(blob))


class Session:
    """One SSH connection to a node. Use as a context manager."""

    def __init__(self, target: Target, connect_timeout: float = 10.0) -> None:
        self.target = target
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        host = target.address if target.port == 22 else f"[{target.address}]:{target.port}"
        pinned = target.pinned()
        client.get_host_keys().add(host, pinned.get_name(), pinned)
        client.connect(
            target.address, port=target.port, username=target.user,
            key_filename=str(target.key_path), timeout=connect_timeout,
            banner_timeout=connect_timeout, auth_timeout=connect_timeout,
            allow_agent=False, look_for_keys=False,
        )
        self.client = client

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.client.close()

    def run(self, command: str, *, timeout: float = 600.0, stdin: str | None = None,
            secrets: Iterable[str] = (), log: IO[str] | None = None,
            on_line: Callable[[str], None] | None = None, check: bool = False) -> Result:
        """Run ``command``; stream its output (masked) to ``log`` and ``on_line`` as it comes."""
        secrets = tuple(secrets)
        shown = mask(command, secrets)
        if log is not None:
            log.write(f"$ {shown}\n")
            log.flush()
        transport = self.client.get_transport()
        if transport is None:
            raise OslabError(f"{self.target.name}: SSH connection is closed")
        chan = transport.open_session(timeout=30)
        chan.settimeout(1.0)
        chan.exec_command(command)
        if stdin is not None:
            chan.sendall(stdin.encode())
        chan.shutdown_write()
        out: list[bytes] = []
        err: list[bytes] = []
        pending = b""
        deadline = time.monotonic() + timeout
        while True:
            got = False
            if chan.recv_ready():
                data = chan.recv(65536)
                out.append(data)
                pending = self._emit(pending + data, secrets, log, on_line)
                got = True
            if chan.recv_stderr_ready():
                data = chan.recv_stderr(65536)
                err.append(data)
                self._emit(data, secrets, log, None, prefix="! ")
                got = True
            if chan.exit_status_ready() and not chan.recv_ready() and not chan.recv_stderr_ready():
                break
            if time.monotonic() > deadline:
                chan.close()
                raise CommandError(shown, -1, f"timed out after {timeout:.0f}s",
                                   where=self.target.name,
                                   hint="the node may be slow or stuck; see its log")
            if not got:
                time.sleep(0.05)
        if pending:
            self._emit(pending + b"\n", secrets, log, on_line)
        rc = chan.recv_exit_status()
        chan.close()
        result = Result(shown, rc, b"".join(out).decode(errors="replace"),
                        mask(b"".join(err).decode(errors="replace"), secrets))
        if log is not None:
            log.write(f"# exit {rc}\n")
            log.flush()
        if check and rc != 0:
            raise CommandError(shown, rc, result.stderr or result.stdout, where=self.target.name)
        return result

    @staticmethod
    def _emit(data: bytes, secrets: tuple[str, ...], log: IO[str] | None,
              on_line: Callable[[str], None] | None, prefix: str = "") -> bytes:
        *lines, rest = data.split(b"\n")
        for raw in lines:
            line = mask(raw.decode(errors="replace"), secrets)
            if log is not None:
                log.write(prefix + line + "\n")
            if on_line is not None:
                on_line(line)
        if log is not None:
            log.flush()
        return rest

    def sftp(self) -> paramiko.SFTPClient:
        return self.client.open_sftp()


HOST_KEY_MISMATCH = "host key does not match the pinned key"


def _why(exc: Exception) -> str:
    """Why an SSH connection failed, in a few words."""
    if isinstance(exc, paramiko.BadHostKeyException):
        return HOST_KEY_MISMATCH
    if isinstance(exc, paramiko.SSHException):
        return f"ssh: {exc}"
    return f"{type(exc).__name__}: {exc}"


def reachable(target: Target, timeout: float = 5.0) -> tuple[bool, str]:
    """Whether the node answers SSH with the pinned host key and accepts the lab's key."""
    try:
        with Session(target, connect_timeout=timeout) as s:
            s.run("true", timeout=timeout)
        return True, "ok"
    except (paramiko.SSHException, OSError) as exc:
        return False, _why(exc)


def port_open(address: str, port: int, timeout: float) -> bool:
    """Whether one TCP connection to ``address:port`` is accepted within ``timeout``."""
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True
    except OSError:
        return False


def open_when_ready(target: Target, timeout: float) -> Session:
    """An SSH session to ``target`` as soon as it answers with the pinned host key.

    The TCP port is polled with short attempts first (a SYN the network drops, e.g. while a
    new bridge port is still learning, would otherwise wait for TCP's retransmission), each
    attempt a little longer as time passes so a slow node is not missed; only then does the
    SSH handshake start. A host key that does not match fails at once.
    """
    start = time.monotonic()
    reason = "not tried"
    while (elapsed := time.monotonic() - start) < timeout:
        if not port_open(target.address, target.port, min(3.0, 0.5 + elapsed / 20)):
            reason = f"port {target.port} does not accept connections"
            time.sleep(0.1)
            continue
        try:
            return Session(target, connect_timeout=10.0)
        except (paramiko.SSHException, OSError) as exc:
            reason = _why(exc)
            if reason == HOST_KEY_MISMATCH:
                break
        time.sleep(0.2)
    raise OslabError(f"{target.name} does not answer SSH at {target.address} ({reason})",
                     hint=f"look at `oslab console {target.name}`")


def wait_ready(target: Target, timeout: float, interval: float = 2.0,
               on_wait: Callable[[float, str], None] | None = None) -> tuple[bool, str]:
    """Poll until SSH answers with the pinned key; (True, "ok") or (False, last reason)."""
    start = time.monotonic()
    reason = "not tried"
    while time.monotonic() - start < timeout:
        ok, reason = reachable(target, timeout=min(10.0, max(2.0, interval * 2)))
        if ok:
            return True, reason
        if reason == HOST_KEY_MISMATCH:
            return False, reason
        if on_wait is not None:
            on_wait(time.monotonic() - start, reason)
        time.sleep(interval)
    return False, reason
