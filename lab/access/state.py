"""The lab's state directory: only what cannot live in libvirt or on the nodes.

``$XDG_STATE_HOME/oslab/<lab>/`` (default ``~/.local/state/oslab/<lab>``) holds the lab's SSH key
pair, the host keys oslab generated for each node (so they can be pinned), generated passwords
(mode 0600) and per-node logs. Everything secret is written 0600 inside a 0700 directory.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import string
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from oslab.access.ssh import Target
from oslab.errors import OslabError, OwnershipError, SpecError
from oslab.files import read_small, write_atomic, write_private
from oslab.spec import LAB_NAME_HINT, Node, valid_lab_name

MARKER = ".oslab-state"  # written when oslab makes a lab's state dir; destroy requires it
# what `oslab verify` made in the cloud and has not removed yet (its next run removes it first)
VERIFY_LEDGER = "verify-resources.json"


def path_variable(variable: str, default: Path) -> Path:
    """The absolute path environment variable ``variable`` names, else ``default``."""
    value = os.environ.get(variable)
    if not value:
        return default
    if not os.path.isabs(value):
        raise OslabError(f"{variable}={value!r} is a relative path",
                         hint=f"set {variable} to an absolute path, or unset it "
                              f"(the default is {default})")
    return Path(value)


def state_root() -> Path:
    return path_variable("XDG_STATE_HOME", Path.home() / ".local" / "state") / "oslab"


def cache_root() -> Path:
    return path_variable("XDG_CACHE_HOME", Path.home() / ".cache") / "oslab"


@dataclass(frozen=True)
class KeyPair:
    private_path: Path
    public: str  # OpenSSH one-line public key


DAMAGED_HINT = ("restore it from a backup; without it oslab cannot reach or rebuild the lab's "
                "nodes, so `oslab destroy` and `oslab up` make a new lab")
MAX_STATE_FILE = 1 << 20  # keys, passwords: a few hundred bytes each
# what LabState.password makes, and all the installer can put in a URL or a config unquoted
PASSWORD_RE = re.compile(r"[A-Za-z0-9]{1,256}")
PASSWORD_NAME_RE = re.compile(r"[a-z0-9_]{1,64}")


def _damaged(path: Path, exc: Exception) -> OslabError:
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return OslabError(f"{path} is damaged: {reason}", hint=DAMAGED_HINT)


def _read(path: Path) -> bytes:
    """A file of the state directory: a regular file (never a FIFO to wait on, or a device),
    at most MAX_STATE_FILE bytes."""
    return read_small(path, MAX_STATE_FILE, "the lab's state file", DAMAGED_HINT)


def _ed25519(path: Path, comment: str) -> KeyPair:
    """Load the ed25519 key at ``path``, generating it (mode 0600) the first time. A key that
    does not load, or whose .pub does not match it, is refused."""
    pub_path = path.with_name(path.name + ".pub")
    if path.exists() or path.is_symlink():
        return _load_ed25519(path, pub_path)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                            serialization.NoEncryption())
    pub = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                        serialization.PublicFormat.OpenSSH).decode()
    write_private(path, pem)
    write_atomic(pub_path, f"{pub} {comment}\n")
    return KeyPair(private_path=path, public=f"{pub} {comment}")


def _load_ed25519(path: Path, pub_path: Path) -> KeyPair:
    try:
        key = serialization.load_ssh_private_key(_read(path), password=None)
    except (ValueError, TypeError) as exc:  # TypeError: a passphrase is needed
        raise _damaged(path, exc) from exc
    try:
        public = _read(pub_path).decode().strip()
    except ValueError as exc:
        raise _damaged(pub_path, exc) from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise _damaged(path, ValueError("not an ed25519 key"))
    mine = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                         serialization.PublicFormat.OpenSSH).decode()
    if public.split()[:2] != mine.split()[:2]:
        raise _damaged(pub_path, ValueError(f"it does not match {path.name}"))
    return KeyPair(private_path=path, public=public)


class LabState:
    """The state directory of one lab."""

    def __init__(self, lab: str, root: Path | None = None) -> None:
        if not valid_lab_name(lab):
            # the name becomes a path component that `destroy` removes: never '..', '/', ''
            raise SpecError(f"{lab!r} is not a valid lab name", hint=LAB_NAME_HINT)
        self.lab = lab
        self.dir = (root or state_root()) / lab

    def ensure(self) -> LabState:
        """Make the directory (0700, with oslab's marker) and its subdirectories if needed."""
        if self.dir.is_symlink() or (self.dir.exists() and not self.dir.is_dir()):
            raise OslabError(f"the lab's state directory {self.dir} is not a directory",
                             hint="move that file or link away; oslab makes the directory")
        try:
            if not self.dir.is_dir():
                self.dir.mkdir(parents=True, mode=0o700)
                write_atomic(self.dir / MARKER, f"oslab state directory of lab {self.lab}\n")
            fd = os.open(self.dir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
            try:
                os.fchmod(fd, 0o700)
            finally:
                os.close(fd)
            for sub in ("hostkeys", "logs"):
                (self.dir / sub).mkdir(exist_ok=True)
        except OSError as exc:
            raise OslabError(f"cannot make the lab's state directory {self.dir}: "
                             f"{exc.strerror or exc}",
                             hint="check XDG_STATE_HOME and the permissions of its "
                                  "directories") from exc
        return self

    @property
    def exists(self) -> bool:
        return self.dir.is_dir()

    def _ssh_key_path(self) -> Path:
        return self.dir / "id_ed25519"

    def _host_key_path(self, node: str) -> Path:
        return self.dir / "hostkeys" / f"{node}_ed25519"

    def ssh_key(self) -> KeyPair:
        """The lab's one SSH key pair (root on every node)."""
        self.ensure()
        return _ed25519(self._ssh_key_path(), f"oslab-{self.lab}")

    def host_key(self, node: str) -> KeyPair:
        """The host key oslab generates for ``node``; the kickstart installs it, SSH pins it."""
        self.ensure()
        return _ed25519(self._host_key_path(node), f"root@{node}")

    def target(self, node: str, address: str) -> Target | None:
        """How to SSH to an existing ``node`` with the keys this state dir already holds;
        None when they are missing. Unlike ssh_key() and host_key(), it never makes a key."""
        key = self._ssh_key_path()
        host = self._host_key_path(node)
        pub = host.with_name(host.name + ".pub")
        if not (key.exists() and pub.exists()):
            return None
        try:
            public = _read(pub).decode().strip()
        except ValueError as exc:
            raise _damaged(pub, exc) from exc
        return Target(node, address, public, key)

    def spec_target(self, node: Node) -> Target:
        """How to SSH to the spec's ``node``: its address from the spec, the lab's key and the
        host key pinned for it (both made the first time, as the provisioner needs them).
        :meth:`target` is the same for an address libvirt's metadata gives."""
        return Target(node.name, str(node.address), self.host_key(node.name).public,
                      self.ssh_key().private_path)

    def log_path(self, node: str) -> Path:
        self.ensure()
        return self.dir / "logs" / f"{node}.log"

    def console_log_path(self, node: str) -> Path:
        """Where libvirt writes the node's serial console (qemu writes it, so not 0700-bound)."""
        return self.dir / "logs" / f"{node}.console.log"

    def password(self, name: str, length: int = 24) -> str:
        """The lab's generated password ``name``, created on first use and kept 0600."""
        self.ensure()
        path = self.dir / "passwords.json"
        data = self._passwords()
        if name not in data:
            alphabet = string.ascii_letters + string.digits
            data[name] = "".join(secrets.choice(alphabet) for _ in range(length))
            write_private(path, json.dumps(data, indent=1, sort_keys=True).encode())
        return data[name]

    def check(self) -> LabState:
        """Refuse a damaged state directory before anything is made from it: it must be a
        directory, and the passwords and keys it holds must load. Makes nothing."""
        if self.dir.is_symlink() or (self.dir.exists() and not self.dir.is_dir()):
            raise OslabError(f"the lab's state directory {self.dir} is not a directory",
                             hint="move that file or link away; oslab makes the directory")
        self._passwords()
        keys = [self._ssh_key_path(), *sorted((self.dir / "hostkeys").glob("*_ed25519"))]
        for key in keys:
            if key.exists() or key.is_symlink():
                _load_ed25519(key, key.with_name(key.name + ".pub"))
        return self

    def stored_password(self, name: str) -> str | None:
        """The password ``name`` if the lab has made it; never makes one."""
        return self._passwords().get(name)

    def known_passwords(self) -> list[str]:
        return list(self._passwords().values())

    def _passwords(self) -> dict[str, str]:
        path = self.dir / "passwords.json"
        if not os.path.lexists(path):
            return {}
        try:
            data = json.loads(_read(path))
        except (OSError, ValueError, RecursionError) as exc:  # UnicodeDecodeError too
            raise _damaged(path, exc) from exc
        if not (isinstance(data, dict)
                and all(isinstance(k, str) and isinstance(v, str) and v
                        for k, v in data.items())):
            raise _damaged(path, ValueError("not an object of name: password strings"))
        odd = sorted(k for k, v in data.items()
                     if not (PASSWORD_NAME_RE.fullmatch(k) and PASSWORD_RE.fullmatch(v)))
        if odd:
            raise _damaged(path, ValueError(
                f"{', '.join(repr(k)[:60] for k in odd[:3])}: not a name and password as oslab "
                "makes them (letters and digits)"))
        return data

    @property
    def owned(self) -> bool:
        """The directory is one oslab made: a real directory (not a link) with oslab's marker.
        Only then may `destroy` remove it, as with the pool directory."""
        return (self.dir.is_dir() and not self.dir.is_symlink()
                and (self.dir / MARKER).is_file())

    def remove(self) -> bool:
        """Remove the state directory if oslab made it; False if there is none to remove.
        A directory at that path without oslab's marker is refused, never removed."""
        if not self.dir.exists() and not self.dir.is_symlink():
            return False
        if not self.owned:
            raise OwnershipError(
                f"{self.dir} has no oslab marker ({MARKER}): oslab did not make it",
                hint="nothing was removed from it; check what it is, and remove it by hand if "
                     "it is an old oslab state directory")
        shutil.rmtree(self.dir)
        return True
