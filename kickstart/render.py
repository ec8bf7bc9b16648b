"""Per-node kickstarts: render (Jinja2), validate (pykickstart, RHEL9), pack into an OEMDRV ISO.

One base template (``base.ks.j2``) holds everything both distro profiles share: network by MAC,
root password hash, SSH key, storage limited to the system disk ``vda`` and the ``%post`` that
pins the SSH host key, writes ``/etc/hosts`` and leaves the marker ``/etc/oslab-release``.
The children (``centos-stream9.ks.j2``, ``testlinux.ks.j2``) only fill in the install source and
the package set. The profile names its template (``Distro.kickstart_template``).

Anaconda finds ``ks.cfg`` on any disk labelled ``OEMDRV`` by itself; :func:`oemdrv_iso` builds
that disk. The kickstart carries the node's private host key: the ISO is written mode 0600.
"""

from __future__ import annotations

import hashlib
import io
import ipaddress
import re
import secrets
import warnings
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2

from oslab.distro import DISTROS, NODE_KERNEL_ARGS, NodeOs, distro_for
from oslab.errors import SpecError
from oslab.files import atomic_file
from oslab.spec import LabSpec, Node, Role

if TYPE_CHECKING:
    from oslab.access.state import LabState

MARKER_PATH = "/etc/oslab-release"
SYSTEM_DISK = "vda"
NTP_POOL = "2.centos.pool.ntp.org"
POST_LOG = "/root/oslab-ks-post.log"

# Heredoc delimiters of the %post; no input line may equal one of them.
_DELIMITERS = ("OSLAB_HOST_KEY", "OSLAB_HOST_PUB", "OSLAB_SSHD", "OSLAB_HOSTS", "OSLAB_RELEASE")
# All three are used with fullmatch (``$`` would let a trailing newline through).
_PUBKEY_RE = re.compile(r"(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/]+={0,3}"
                        r"( [^\"\\\x00-\x1f\x7f]*)?")
_SHA512_HASH_RE = re.compile(r"\$6\$(rounds=[0-9]{1,9}\$)?[./0-9A-Za-z]{1,16}\$[./0-9A-Za-z]{86}")
_TIMEZONE_RE = re.compile(r"[A-Za-z0-9_+\-]+(/[A-Za-z0-9_+\-]+)*")


@dataclass(frozen=True)
class KickstartInput:
    """Everything a node's kickstart needs.

    ``ssh_public_key`` is the lab's key (root's ``authorized_keys``); ``host_private_key_pem``
    and ``host_public_key`` are the node's ed25519 host key pair that oslab generated and pins;
    ``root_password_hash`` is a ``$6$`` SHA-512 crypt hash (see :func:`sha512_crypt`).
    """

    spec: LabSpec
    node: Node
    ssh_public_key: str
    host_private_key_pem: str
    host_public_key: str
    root_password_hash: str


# -- rendering ----------------------------------------------------------------------------------


def _load_template(name: str) -> str | None:
    if not name.endswith(".j2") or "/" in name or name.startswith("."):
        return None
    res = resources.files("oslab.kickstart").joinpath(name)
    return res.read_text(encoding="utf-8") if res.is_file() else None


_ENV = jinja2.Environment(
    loader=jinja2.FunctionLoader(_load_template),
    undefined=jinja2.StrictUndefined,
    autoescape=False,
    keep_trailing_newline=True,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _check_inputs(inp: KickstartInput) -> None:
    """Refuse inputs that would break the kickstart's syntax or the %post's heredocs."""
    spec, node = inp.spec, inp.node
    if node not in spec.nodes:
        raise ValueError(f"node {node.name!r} is not a node of lab {spec.name!r}")
    if spec.distro not in DISTROS:
        raise SpecError(f"{spec.source}: lab.distro: unknown distro {spec.distro!r}",
                        hint="choose one of: " + ", ".join(sorted(DISTROS)))
    if not _TIMEZONE_RE.fullmatch(spec.timezone):
        raise SpecError(f"{spec.source}: lab.timezone: {spec.timezone!r} is not a time zone name",
                        hint="use a tz database name such as UTC or Europe/Berlin")
    if not _PUBKEY_RE.fullmatch(inp.ssh_public_key.strip()):
        raise ValueError("ssh_public_key is not one OpenSSH public key line")
    if not _PUBKEY_RE.fullmatch(inp.host_public_key.strip()) or \
            not inp.host_public_key.startswith("ssh-ed25519 "):
        raise ValueError(f"host_public_key of {node.name} is not an ssh-ed25519 public key line")
    if not _SHA512_HASH_RE.fullmatch(inp.root_password_hash):
        raise ValueError("root_password_hash is not a $6$ SHA-512 crypt hash")
    lines = inp.host_private_key_pem.strip().splitlines()
    if len(lines) < 3 or not (lines[0].startswith("-----BEGIN ")
                              and lines[0].endswith("PRIVATE KEY-----")
                              and lines[-1].startswith("-----END ")):
        raise ValueError(f"host_private_key_pem of {node.name} is not a PEM private key")
    for line in lines:
        if line.strip() in _DELIMITERS or line.startswith("%") or "\x00" in line:
            raise ValueError(f"host_private_key_pem of {node.name} has an unexpected line")


def marker_fields(spec: LabSpec, node: Node) -> dict[str, str]:
    """What the %post writes to :data:`MARKER_PATH` (``KEY=value`` lines, shell-sourceable)."""
    return {
        "OSLAB_LAB": spec.name,
        "OSLAB_NODE": node.name,
        "OSLAB_ROLE": node.role.value,
        "OSLAB_DISTRO": spec.distro,
        "OSLAB_SPEC_DIGEST": spec.digest(),
    }


def parse_marker(text: str) -> dict[str, str]:
    """Read the ``KEY=value`` lines of a node's :data:`MARKER_PATH` back."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            fields[key.strip()] = value.strip()
    return fields


def _virtio_disk(index: int) -> str:
    """The kernel's name of the ``index``-th virtio disk (0 is vda, 25 vdz, 26 vdaa)."""
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(ord("a") + rem) + letters
    return "vd" + letters


def _context(inp: KickstartInput) -> dict[str, Any]:
    spec, node = inp.spec, inp.node
    mgmt = spec.management
    controller = spec.controller
    return {
        "lab": spec.name,
        "node": node,
        "role": node.role.value,
        "distro": distro_for(spec.distro),
        "digest": spec.digest(),
        "timezone": spec.timezone,
        # The controller follows the public pool; the others the controller, by address
        # (/etc/hosts does not exist yet while the installer runs).
        "ntp_pool": NTP_POOL if node.role is Role.CONTROLLER else "",
        "ntp_server": "" if node.role is Role.CONTROLLER else str(controller.address),
        "mgmt_mac": spec.mac(node, 0),
        "provider_mac": spec.mac(node, 1),
        "address": str(node.address),
        "netmask": str(mgmt.cidr.netmask),
        "gateway": str(mgmt.gateway),
        "nameserver": str(mgmt.gateway),
        "system_disk": SYSTEM_DISK, "kernel_args": NODE_KERNEL_ARGS,
        # virtio disks in the domain's order: vda is the system disk, vdb... the extra disks
        "extra_disks": [_virtio_disk(i + 1) for i in range(len(node.extra_disks_gib))],
        "root_password_hash": inp.root_password_hash,
        "ssh_public_key": inp.ssh_public_key.strip(),
        "host_private_key": inp.host_private_key_pem.strip(),
        "host_public_key": inp.host_public_key.strip(),
        "hosts": [(str(n.address), n.name) for n in spec.nodes],
        "marker_path": MARKER_PATH,
        "marker": marker_fields(spec, node),
        "post_log": POST_LOG,
        "golden": False,
    }


def render(inp: KickstartInput) -> str:
    """The node's kickstart, from the template its distro profile names."""
    _check_inputs(inp)
    template = _ENV.get_template(distro_for(inp.spec.distro).kickstart_template)
    return template.render(_context(inp))


def render_validated(inp: KickstartInput) -> str:
    """:func:`render`, then :func:`validate` under the name ``<node>/ks.cfg``."""
    text = render(inp)
    validate(text, f"{inp.node.name}/ks.cfg")
    return text


def kickstarts(spec: LabSpec, state: LabState) -> dict[str, str]:
    """Each node's kickstart exactly as ``oslab up`` builds it (validated); none for a distro
    whose nodes boot a base image (Debian: no installer runs inside the node); with
    ``lab.golden``, only the builder's (``{"golden": text}``)."""
    if distro_for(spec.distro).node_os is not NodeOs.KICKSTART:
        return {}
    if spec.golden:
        return {BUILDER: builder_kickstart(spec, replace(spec.nodes[0], name=BUILDER))}
    ssh_pub = state.ssh_key().public
    root_hash = sha512_crypt(state.password("root"))
    out = {}
    for node in spec.nodes:
        host = state.host_key(node.name)
        out[node.name] = render_validated(KickstartInput(
            spec=spec, node=node, ssh_public_key=ssh_pub,
            host_private_key_pem=host.private_path.read_text(),
            host_public_key=host.public, root_password_hash=root_hash))
    return out


@dataclass(frozen=True)
class GoldenBuilder:
    """The machine a golden base is installed on: its NICs and the address it uses while the
    installer runs (the first node's; no node exists yet). None of it stays in the base."""

    name: str
    mgmt_mac: str
    provider_mac: str
    address: str
    netmask: str
    gateway: str


# What a golden kickstart is rendered with for its cache key: the builder's network is only
# the install's, so two labs with other addresses share a base.
CANONICAL_BUILDER = GoldenBuilder("golden", "52:54:00:00:00:01", "52:54:00:00:00:02",
                                  "192.0.2.10", "255.255.255.0", "192.0.2.1")


BUILDER = "golden"  # the node name of a golden base's builder: its domain is <lab>-golden


def builder_kickstart(spec: LabSpec, builder: Node) -> str:
    """The golden kickstart as the builder of ``spec``'s base gets it: the builder's own MACs
    and the address of the first node (none exists yet), for the install only."""
    mgmt = spec.management
    return golden_kickstart(spec.distro, spec.timezone, GoldenBuilder(
        builder.name, spec.mac(builder, 0), spec.mac(builder, 1), str(builder.address),
        str(mgmt.cidr.netmask), str(mgmt.gateway)))


def golden_kickstart(distro: str, timezone: str, builder: GoldenBuilder = CANONICAL_BUILDER,
                     ) -> str:
    """The kickstart of a golden base of ``distro`` (validated): a generic install that the
    %post generalises (no machine-id, host keys, root key, network or logs are kept)."""
    if not _TIMEZONE_RE.fullmatch(timezone):
        raise ValueError(f"bad timezone {timezone!r}")
    profile = distro_for(distro)
    node = Node(builder.name, Role.COMPUTE, ipaddress.IPv4Address(builder.address), 0, 0, 0)
    text = _ENV.get_template(profile.kickstart_template).render({
        "golden": True, "distro": profile, "node": node, "timezone": timezone,
        "mgmt_mac": builder.mgmt_mac, "provider_mac": builder.provider_mac,
        "address": builder.address, "netmask": builder.netmask, "gateway": builder.gateway,
        "nameserver": builder.gateway, "system_disk": SYSTEM_DISK, "extra_disks": [],
        "kernel_args": NODE_KERNEL_ARGS,
        "marker_path": MARKER_PATH, "post_log": POST_LOG,
        "marker": {"OSLAB_DISTRO": distro, "OSLAB_GOLDEN": "1"}})
    validate(text, f"golden-{distro}/ks.cfg")
    return text


# -- validation ---------------------------------------------------------------------------------


def validate(text: str, name: str = "ks.cfg") -> None:
    """Parse ``text`` as a RHEL 9 kickstart with pykickstart; warnings count as errors.

    Raises ``SpecError`` naming the line number and the line's text.
    """
    from pykickstart.errors import KickstartError
    from pykickstart.parser import KickstartParser
    from pykickstart.version import RHEL9, makeVersion

    class _Parser(KickstartParser):  # type: ignore[misc]
        """Remembers the line of the command being handled (warnings carry no line number)."""

        current: tuple[int, str] | None = None

        def handleCommand(self, lineno: int, args: list[str]) -> Any:
            self.current = (lineno, self._line)
            return super().handleCommand(lineno, args)

    lines = text.splitlines()
    parser = _Parser(makeVersion(RHEL9))

    hint = ("oslab renders the kickstart from the lab spec: check the spec values on that line; "
            "if they are fine, the kickstart templates have a bug")

    def fail(problem: str, lineno: int | None) -> SpecError:
        problem = " ".join(problem.split())
        if lineno is None or not 1 <= lineno <= len(lines):
            return SpecError(f"{name}: invalid kickstart: {problem}", hint=hint)
        return SpecError(f"{name}: line {lineno}: {problem}\n  {lineno} | {lines[lineno - 1]}",
                         hint=hint)

    def warning_line() -> int | None:
        raw: str = parser._line
        if parser.current is not None and parser.current[1] == raw:
            return parser.current[0]
        matches = [i for i, line in enumerate(lines, 1) if line == raw.rstrip("\n")]
        return matches[0] if matches else None

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            parser.readKickstartFromString(text)
        except KickstartError as exc:
            raise fail(str(exc.message) or str(exc), exc.lineno) from exc
        except Warning as exc:
            raise fail(f"{type(exc).__name__}: {exc}", warning_line()) from exc


# -- the OEMDRV disk ----------------------------------------------------------------------------


def oemdrv_iso(ks_text: str, dest: Path) -> Path:
    """Write an ISO labelled ``OEMDRV`` holding ``/ks.cfg`` (ISO9660, Rock Ridge, Joliet).

    The file is written mode 0600 (it holds the node's private host key) and atomically.
    """
    import pycdlib

    data = ks_text.encode("utf-8")
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=3, vol_ident="OEMDRV", rock_ridge="1.09", joliet=3)
    iso.add_fp(io.BytesIO(data), len(data), "/KS.CFG;1", rr_name="ks.cfg",
               joliet_path="/ks.cfg")
    dest = Path(dest)
    try:
        with atomic_file(dest, 0o600) as out:
            iso.write_fp(out)
    finally:
        iso.close()
    return dest


# -- SHA-512 crypt ------------------------------------------------------------------------------

_CRYPT_ALPHABET = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_ROUNDS_DEFAULT = 5000
_ROUNDS_MIN = 1000
_ROUNDS_MAX = 999_999_999
_SALT_MAX = 16
# The byte order of the final encoding (Drepper, "Unix crypt using SHA-256 and SHA-512").
_SHA512_ORDER = (
    (0, 21, 42), (22, 43, 1), (44, 2, 23), (3, 24, 45), (25, 46, 4), (47, 5, 26), (6, 27, 48),
    (28, 49, 7), (50, 8, 29), (9, 30, 51), (31, 52, 10), (53, 11, 32), (12, 33, 54),
    (34, 55, 13), (56, 14, 35), (15, 36, 57), (37, 58, 16), (59, 17, 38), (18, 39, 60),
    (40, 61, 19), (62, 20, 41),
)


def _b64_from_24bit(b2: int, b1: int, b0: int, n: int) -> str:
    w = (b2 << 16) | (b1 << 8) | b0
    out = []
    for _ in range(n):
        out.append(_CRYPT_ALPHABET[w & 0x3F])
        w >>= 6
    return "".join(out)


def _repeat(block: bytes, length: int) -> bytes:
    return (block * (length // len(block) + 1))[:length]


def sha512_crypt(password: str, salt: str | None = None) -> str:
    """The ``$6$`` SHA-512 crypt hash of ``password`` (glibc-compatible, pure Python).

    ``salt`` may carry the ``$6$`` prefix and a ``rounds=N$`` part (clamped to 1000 to
    999999999); it is cut to 16 characters. Without it a random 16-character salt is used.
    """
    rounds = _ROUNDS_DEFAULT
    custom_rounds = False
    if salt is None:
        salt = "".join(secrets.choice(_CRYPT_ALPHABET) for _ in range(_SALT_MAX))
    else:
        salt = salt.removeprefix("$6$")
        if salt.startswith("rounds="):
            head, sep, rest = salt[len("rounds="):].partition("$")
            if sep and head.isdigit():
                rounds = min(max(int(head), _ROUNDS_MIN), _ROUNDS_MAX)
                custom_rounds = True
                salt = rest
        salt = salt.split("$", 1)[0][:_SALT_MAX]
    if "\n" in salt or ":" in salt:
        raise ValueError("a crypt salt may not contain ':' or a newline")

    p = password.encode("utf-8")
    s = salt.encode("utf-8")
    b = hashlib.sha512(p + s + p).digest()
    a_ctx = hashlib.sha512(p + s)
    a_ctx.update(_repeat(b, len(p)))
    n = len(p)
    while n:
        a_ctx.update(b if n & 1 else p)
        n >>= 1
    a = a_ctx.digest()
    p_seq = _repeat(hashlib.sha512(p * len(p)).digest(), len(p))
    s_seq = _repeat(hashlib.sha512(s * (16 + a[0])).digest(), len(s))

    c = a
    for i in range(rounds):
        ctx = hashlib.sha512(p_seq if i & 1 else c)
        if i % 3:
            ctx.update(s_seq)
        if i % 7:
            ctx.update(p_seq)
        ctx.update(c if i & 1 else p_seq)
        c = ctx.digest()

    encoded = "".join(_b64_from_24bit(c[x], c[y], c[z], 4) for x, y, z in _SHA512_ORDER)
    encoded += _b64_from_24bit(0, 0, c[63], 2)
    prefix = f"$6$rounds={rounds}$" if custom_rounds else "$6$"
    return f"{prefix}{salt}${encoded}"


def verify_sha512_crypt(password: str, hashed: str) -> bool:
    """Whether ``hashed`` (a ``$6$`` hash) is the hash of ``password``."""
    if not hashed.startswith("$6$"):
        return False
    setting = hashed.rsplit("$", 1)[0]
    return secrets.compare_digest(sha512_crypt(password, setting), hashed)


__all__ = [
    "MARKER_PATH",
    "KickstartInput",
    "marker_fields",
    "oemdrv_iso",
    "parse_marker",
    "render",
    "render_validated",
    "sha512_crypt",
    "validate",
    "verify_sha512_crypt",
]
