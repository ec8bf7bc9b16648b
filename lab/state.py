"""The lab's state directory: only what cannot live in libvirt or on the nodes.

``$XDG_STATE_HOME/oslab/<lab>/`` (default ``~/.local/state/oslab/<lab>``) holds the lab's SSH key
pair, the host keys oslab generated for each node (so they can be pinned), generated passwords
(mode 0600) and per-node logs. Everything secret is written 0600 inside a 0700 directory.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import string
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from oslab.errors import OslabError, OwnershipError, SpecError
from oslab.spec import LAB_NAME_HINT, valid_lab_name
from oslab.ssh import Target

MARKER = ".oslab-state"  # written when oslab makes a lab's state dir; destroy requires it


def _xdg_dir(variable: str, default: Path) -> Path:
    value = os.environ.get(variable)
    if not value:
        return default
    if not os.path.isabs(value):
        raise OslabError(f"{variable}={value!r} is a relative path",
                         hint=f"set {variable} to an absolute path, or unset it "
                              f"(the default is {default})")
    return Path(value)


def state_root() -> Path:
    return _xdg_dir("XDG_STATE_HOME", Path.home() / ".local" / "state") / "oslab"


def cache_root() -> Path:
    return _xdg_dir("XDG_CACHE_HOME", Path.home() / ".cache") / "oslab"


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` with mode 0600, atomically (no window with a wider mode)."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


@dataclass(frozen=True)
class KeyPair:
    private_path: Path
    public: str  # OpenSSH one-line public key

    @property
    def public_blob(self) -> str:
        """The base64 key material, without type or comment."""
        return self.public.split()[1]


def _ed25519(path: Path, comment: str) -> KeyPair:
    """Load the ed25519 key at ``path``, generating it (mode 0600) the first time."""
    pub_path = path.with_name(path.name + ".pub")
    if not path.exists():
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption())
        pub = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                            serialization.PublicFormat.OpenSSH).decode()
        _write_private(path, pem)
        pub_path.write_text(f"{pub} {comment}\n")
    return KeyPair(private_path=path, public=pub_path.read_text().strip())


class LabState:
    """The state directory of one lab."""

    def __init__(self, lab: str, root: Path | None = None) -> None:
        if not valid_lab_name(lab):
            # the name becomes a path component that `destroy` removes: never '..', '/', ''
            raise SpecError(f"{lab!r} is not a valid lab name", hint=LAB_NAME_HINT)
        self.lab = lab
        self.dir = (root or state_root()) / lab

    def ensure(self) -> LabState:
        if not self.dir.is_dir():
            self.dir.mkdir(parents=True, mode=0o700)
            (self.dir / MARKER).write_text(f"oslab state directory of lab {self.lab}\n")
        os.chmod(self.dir, 0o700)
        for sub in ("hostkeys", "logs"):
            (self.dir / sub).mkdir(exist_ok=True)
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
        return Target(node, address, pub.read_text().strip(), key)

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
        data: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
        if name not in data:
            alphabet = string.ascii_letters + string.digits
            data[name] = "".join(secrets.choice(alphabet) for _ in range(length))
            _write_private(path, json.dumps(data, indent=1, sort_keys=True).encode())
        return data[name]

    def known_passwords(self) -> list[str]:
        path = self.dir / "passwords.json"
        return list(json.loads(path.read_text()).values()) if path.exists() else []

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
