"""How oslab reaches a node: :class:`NodeConn`, and :class:`Session`, which is one over SSH
with paramiko (the lab's key, and the host key oslab pinned).

No trust on first use: the client knows each node's host key before it connects
(``RejectPolicy`` with that key loaded), because oslab generated it and the kickstart installed it.

The only module that imports paramiko: every paramiko or socket error becomes an
``SSHError`` here, where it enters the program.
"""

from __future__ import annotations

import base64
import logging
import secrets as secretsmod
import socket
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

import paramiko

from oslab.errors import CommandError, OslabError

MASK = "***"
# Every command runs with this variable exported, set to a token of its own. When the command
# outlives its timeout, closing the channel does not stop it (no pty, so no SIGHUP): the
# processes that carry the token in their environment are then killed on the node, the command's
# children included and services it started through systemd (clean environment) spared.
RUN_TOKEN_VAR = "OSLAB_RUN"
# after the exit status, how long to wait for the end of the output (see Session._run)
EOF_GRACE = 5.0


def kill_by_token_script(token: str) -> str:
    """POSIX sh (busybox too) that SIGKILLs every process whose environment has the token.

    One grep reads every environment (NUL-separated, so -z), not one process per entry: the
    node whose command timed out is often overloaded (seen: a loop of tr and grep over /proc
    outlived its own 30 s on a busy TCG controller)."""
    return (f"for f in $(grep -l -z -x '{RUN_TOKEN_VAR}={token}' /proc/[0-9]*/environ "
            f"2>/dev/null); do p=${{f#/proc/}}; kill -KILL \"${{p%/environ}}\" 2>/dev/null; "
            f"done; true")


# Errors of a connection that broke, timed out or was refused (EOFError: paramiko's reading end).
_CONNECTION_ERRORS = (paramiko.SSHException, OSError, EOFError)


class SSHError(OslabError):
    """A node could not be reached, or its SSH connection broke."""


class HostKeyMismatch(SSHError):
    """The node answered with a host key other than the one oslab pinned."""


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
        try:
            kind, blob = self.host_key.split()[:2]
            return paramiko.PKey.from_type_string(kind, base64.b64decode(blob, validate=True))
        except (ValueError, paramiko.SSHException) as exc:  # binascii.Error is a ValueError
            raise SSHError(f"{self.name}: the pinned host key is not an OpenSSH public key "
                           f"({self.host_key[:40]!r})",
                           hint="the lab's state directory is damaged; `oslab destroy` and "
                                "`oslab up` rebuild the lab with new keys") from exc


class NodeConn(Protocol):
    """One open connection to a node, used by one thread: run a command, upload a file.

    :class:`Session` is the one over SSH; unit tests pass fakes with the same shape that answer
    recorded output, and verification runs host-side commands through a local one."""

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


class Session:
    """One SSH connection to a node. Use as a context manager."""

    def __init__(self, target: Target, connect_timeout: float = 10.0) -> None:
        self.target = target
        self.name = target.name
        _quiet_paramiko()
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        host = target.address if target.port == 22 else f"[{target.address}]:{target.port}"
        pinned = target.pinned()
        client.get_host_keys().add(host, pinned.get_name(), pinned)
        key = _private_key(target)
        try:
            client.connect(
                target.address, port=target.port, username=target.user,
                pkey=key, timeout=connect_timeout,
                banner_timeout=connect_timeout, auth_timeout=connect_timeout,
                channel_timeout=connect_timeout, allow_agent=False, look_for_keys=False,
            )
        except paramiko.BadHostKeyException as exc:
            client.close()
            raise HostKeyMismatch(
                f"{target.name}: the host key at {target.address} does not match the pinned key",
                hint="the node is not the one oslab installed; see `oslab status`") from exc
        except paramiko.AuthenticationException as exc:
            client.close()
            raise SSHError(f"{target.name}: {target.address} refused the lab's key "
                           f"({target.key_path}): {exc}",
                           hint="the node was not installed with this lab's state directory; "
                                "check --lab and XDG_STATE_HOME") from exc
        except _CONNECTION_ERRORS as exc:
            client.close()
            raise SSHError(f"{target.name}: no SSH at {target.address}: "
                           f"{_describe(exc, connect_timeout)}",
                           hint="check that the node runs (`oslab status`); `oslab up` starts "
                                "it") from exc
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
        try:
            return self._run(command, shown, timeout, stdin, secrets, log, on_line, check,
                             stop_on_timeout=True)
        except _CONNECTION_ERRORS as exc:
            raise SSHError(f"{self.target.name}: the SSH connection broke while running "
                           f"{shown!r}: {_describe(exc)}",
                           hint="check that the node still runs (`oslab status`), then rerun"
                           ) from exc

    def _run(self, command: str, shown: str, timeout: float, stdin: str | None,
             secrets: tuple[str, ...], log: IO[str] | None,
             on_line: Callable[[str], None] | None, check: bool, *,
             stop_on_timeout: bool) -> Result:
        transport = self.client.get_transport()
        if transport is None or not transport.is_active():
            raise SSHError(f"{self.target.name}: the SSH connection is closed",
                           hint="check that the node still runs (`oslab status`), then rerun")
        chan = transport.open_session(timeout=30)
        chan.settimeout(1.0)
        token = secretsmod.token_hex(8)
        chan.exec_command(f"export {RUN_TOKEN_VAR}={token}; {command}")
        if stdin is not None:
            chan.sendall(stdin.encode())
        chan.shutdown_write()
        out: list[bytes] = []
        err: list[bytes] = []
        pending = b""
        exited = 0.0  # when the exit status was first seen
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
                # the exit status may arrive before the last output: read on until the node's
                # end of output (EOF), for at most EOF_GRACE seconds (a background process may
                # hold it open). Under load CI lost the second line of a two-line answer so.
                exited = exited or time.monotonic()
                if chan.eof_received or chan.closed or time.monotonic() - exited > EOF_GRACE:
                    break
            if time.monotonic() > deadline:
                chan.close()
                stopped = stop_on_timeout and self._kill_on_node(token)
                raise CommandError(shown, -1, f"timed out after {timeout:.0f}s; "
                                   + ("stopped it on the node" if stopped
                                      else "it may still run on the node"),
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

    def _kill_on_node(self, token: str) -> bool:
        """Kill what a timed-out command left running; whether that worked (best effort)."""
        try:
            result = self._run(kill_by_token_script(token), "(stop the timed-out command)", 60.0,
                               None, (), None, None, False, stop_on_timeout=False)
        except (CommandError, *_CONNECTION_ERRORS):
            return False
        return result.ok

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

    def put(self, path: str, data: bytes, *, timeout: float) -> None:
        """Write ``data`` to ``path`` on the node over SFTP; the file is made 0600 before any
        byte is written."""
        try:
            sftp = self.client.open_sftp()
            try:
                channel = sftp.get_channel()
                if channel is not None:
                    channel.settimeout(timeout)
                with sftp.open(path, "wb") as f:
                    f.chmod(0o600)
                    f.write(data)
            finally:
                sftp.close()
        except _CONNECTION_ERRORS as exc:
            raise SSHError(f"{self.target.name}: cannot write {path}: {_describe(exc)}",
                           hint="is the directory there and writable, and the disk not full?"
                           ) from exc


def connect(target: Target, connect_timeout: float = 15.0) -> Session:
    """The installer's connection to ``target`` (its ``connect`` default): a :class:`Session`
    that gives the handshake a little longer."""
    return Session(target, connect_timeout=connect_timeout)


def _private_key(target: Target) -> paramiko.PKey:
    """The lab's private key, read here so a missing or damaged file is named as such."""
    try:
        return paramiko.PKey.from_path(target.key_path)
    except (OSError, ValueError, paramiko.SSHException) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise SSHError(f"cannot read the lab's SSH key {target.key_path}: {reason}",
                       hint="the lab's state directory is damaged or belongs to another lab; "
                            "check --lab and XDG_STATE_HOME, or `oslab destroy` and `oslab up` "
                            "to rebuild with new keys") from exc


def _quiet_paramiko() -> None:
    """paramiko's transport thread logs a failed handshake ("Error reading SSH protocol
    banner", a node still booting) with its traceback; with no handler, Python's last-resort
    handler printed it on the user's screen between oslab's progress lines. The failure still
    reaches oslab as an exception, which says it once, plainly."""
    logger = logging.getLogger("paramiko")
    if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
        logger.addHandler(logging.NullHandler())


def _describe(exc: BaseException, handshake: float | None = None) -> str:
    """A short reason: 'timed out', the OS error text, or the paramiko message. ``handshake``
    is how long the handshake was given, when it is one that failed."""
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timed out"
    if handshake is not None and str(exc) == "No existing session":
        # paramiko's words for a peer that accepted the connection and never finished the
        # handshake: sshd on a TCG node in its boot storm sent no banner for minutes
        return (f"it accepted the connection but did not finish the SSH handshake within "
                f"{handshake:g}s (a node that is still booting, or overloaded, answers slowly)")
    if isinstance(exc, paramiko.ssh_exception.NoValidConnectionsError) and exc.errors:
        exc = next(iter(exc.errors.values()))  # the reason the one address refused
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    if isinstance(exc, EOFError):
        return "the connection was closed"
    return str(exc) or type(exc).__name__


HOST_KEY_MISMATCH = "host key does not match the pinned key"


def reachable(target: Target, timeout: float = 5.0, probe: str = "true") -> tuple[bool, str]:
    """Whether the node answers SSH with the pinned host key, accepts the lab's key, and
    ``probe`` succeeds there."""
    try:
        with Session(target, connect_timeout=timeout) as s:
            result = s.run(probe, timeout=timeout)
        if result.returncode != 0:
            return False, f"`{probe}` exited {result.returncode}"
        return True, "ok"
    except HostKeyMismatch:
        return False, HOST_KEY_MISMATCH
    except SSHError as exc:
        return False, exc.message.removeprefix(f"{target.name}: ")
    except CommandError:
        return False, f"`true` did not finish within {timeout:.0f}s"


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
        except HostKeyMismatch:
            reason = HOST_KEY_MISMATCH
            break
        except SSHError as exc:
            reason = exc.message.removeprefix(f"{target.name}: ")
        time.sleep(0.2)
    raise OslabError(f"{target.name} does not answer SSH at {target.address} ({reason})",
                     hint=f"look at `oslab console {target.name}`")


def wait_ready(target: Target, timeout: float, interval: float = 2.0,
               on_wait: Callable[[float, str], None] | None = None,
               probe: str = "true",
               give_up: Callable[[], str] | None = None) -> tuple[bool, str]:
    """Poll until SSH answers with the pinned key and ``probe`` succeeds there; (True, "ok")
    or (False, last reason). ``give_up``, asked after each failed attempt, says why waiting
    longer is pointless (the node's domain is no longer running), or ""."""
    start = time.monotonic()
    reason = "not tried"
    while (elapsed := time.monotonic() - start) < timeout:
        # each attempt may take longer as time passes: a node busy starting its services
        # (TCG) can take more than 10 s to finish the handshake, and would never be seen
        attempt = min(60.0, max(2.0, interval * 2, 10.0 + elapsed / 10))
        ok, reason = reachable(target, timeout=attempt, probe=probe)
        if ok:
            return True, reason
        if reason == HOST_KEY_MISMATCH:
            return False, reason
        if on_wait is not None:
            on_wait(time.monotonic() - start, reason)
        if give_up is not None and (why := give_up()):
            return False, why
        time.sleep(interval)
    return False, reason
