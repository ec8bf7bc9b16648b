"""A lab spec file: read it (or the built-in default), parse the TOML, and validate every
field into oslab.spec's model.

Every problem is reported as one ``SpecError`` that names the field and says what is wrong.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
import urllib.parse
import zoneinfo
from importlib import resources
from pathlib import Path
from typing import Any

from oslab.distro import DISTROS, RELEASES, NodeOs, distro_for
from oslab.errors import SpecError
from oslab.files import read_small
from oslab.spec import (
    LAB_NAME_HINT,
    LOCAL_PATH_HINT,
    DownloadSource,
    LabSpec,
    NetMode,
    Network,
    Node,
    Packages,
    PackageSource,
    Role,
    Scope,
    VerifySettings,
    local_path_problem,
    valid_lab_name,
)

HOSTNAME_RE = re.compile(r"^[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$")
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
RESERVED_NODE_NAMES = frozenset({"localhost", "localhost4", "localhost6", "ip6-localhost",
                                 "ip6-loopback"})


def _special_range(cidr: ipaddress.IPv4Network) -> str:
    """Why ``cidr`` cannot hold a lab network ('' when it can)."""
    for test, what in ((cidr.is_loopback, "loopback"), (cidr.is_multicast, "multicast"),
                       (cidr.is_link_local, "link-local"), (cidr.is_unspecified, "unspecified"),
                       (cidr.is_reserved, "reserved"),
                       (cidr.overlaps(ipaddress.IPv4Network("0.0.0.0/8")), "'this network'")):
        if test:
            return what
    return ""


def clip(text: str, limit: int = 200) -> str:
    """``text``, or its start and its length when it is longer than ``limit``: a hostile value
    is not echoed whole."""
    return text if len(text) <= limit else f"{text[:limit - 60]}...({len(text)} characters)"


def http_url(text: str) -> bool:
    """An http(s) URL that urllib can take apart: a host, a port if any that is a number
    from 0 to 65535, no whitespace or control character, at most MAX_URL_CHARS."""
    if (len(text) > MAX_URL_CHARS or not text.isprintable()
            or not re.fullmatch(r"https?://[^\s/]+(/\S*)?", text)):
        return False
    try:
        parts = urllib.parse.urlsplit(text)
        parts.port  # noqa: B018  (a ValueError when it is not a port number)
    except ValueError:  # an unclosed [IPv6 address, a port out of range
        return False
    return bool(parts.hostname)


def _timezones() -> set[str]:
    return zoneinfo.available_timezones()


_TOP_KEYS = {"lab", "iso", "networks", "nodes", "packages", "verify"}
_PACKAGES_KEYS = {"mirror", "source", "bake"}
_VERIFY_KEYS = {"image"}
_LAB_KEYS = {"name", "distro", "release", "timezone", "pool_dir", "install_timeout_s",
             "boot_timeout_s", "scope", "golden", "macs_from"}
_ISO_KEYS = {"path", "url", "sha256", "sha256_url"}
_NET_KEYS = {"cidr", "mode"}
_NODE_KEYS = {"name", "role", "address", "memory_mib", "vcpus", "disk_gib", "extra_disks_gib"}


# The commented built-in specs `oslab init` writes, by distro; the first is the default lab.
SPEC_FILES = {"centos-stream9": "default-lab.toml", "debian13": "debian13-lab.toml"}


def default_spec_text(distro: str = "centos-stream9") -> str:
    return resources.files("oslab").joinpath(SPEC_FILES[distro]).read_text()


def load_default() -> LabSpec:
    return parse(default_spec_text(), source="<built-in default>")


MAX_EXTRA_DISKS = 8
MAX_URL_CHARS = 2048
MAX_SPEC_BYTES = 1 << 20  # a lab spec is a few KiB; anything near this is not one
SPEC_FILE_HINT = ("a lab spec is a small TOML file, for example one `oslab init lab.toml` "
                  "writes; check the path")


def load(path: str | Path | None) -> LabSpec:
    """Load the spec at ``path``, or the built-in default when ``path`` is None. Only a regular
    file of at most MAX_SPEC_BYTES of UTF-8 is read (never a device, FIFO or directory)."""
    if path is None:
        return load_default()
    p = Path(path)
    data = read_small(p, MAX_SPEC_BYTES, "lab spec", SPEC_FILE_HINT, SpecError)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise SpecError(f"{p}: line {line}: byte 0x{data[exc.start]:02x} is not UTF-8",
                        hint="TOML files are UTF-8: re-save it as UTF-8 "
                             "(for example `iconv -f latin1 -t utf-8`)") from exc
    return parse(text, source=str(p))


def parse(text: str, source: str = "<string>") -> LabSpec:
    try:
        raw = tomllib.loads(text)
    except RecursionError as exc:
        raise SpecError(f"{source}: not valid TOML: arrays or tables nested too deeply",
                        hint="a lab spec nests at most a few levels; check the file") from exc
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{source}: not valid TOML: {exc}",
                        hint="fix the TOML syntax there; `oslab init` writes a commented "
                             "example") from exc
    return _Parser(source).spec(raw)


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, problem: str, hint: str | None = None) -> SpecError:
        where, problem = clip(where), clip(problem)  # a hostile value is not echoed whole
        return SpecError(f"{self.source}: {where}: {problem}",
                         hint=hint or f"fix {where} in the lab spec; `oslab init` writes a "
                                      "commented example of every field")

    def table(self, raw: Any, where: str, allowed: set[str]) -> dict[str, Any]:
        if not isinstance(raw, dict):
            raise self.fail(where, "must be a table")
        for key in raw:
            if key not in allowed:
                raise self.fail(f"{where}.{key}" if where else key, "unknown key",
                                hint="known keys here: " + ", ".join(sorted(allowed)))
        return raw

    def get(self, tbl: dict[str, Any], key: str, where: str, typ: type, default: Any = None) -> Any:
        if key not in tbl:
            if default is None:
                raise self.fail(where, f"missing required key {key!r}")
            return default
        value = tbl[key]
        if typ is int and (isinstance(value, bool) or not isinstance(value, int)):
            raise self.fail(f"{where}.{key}", f"must be an integer, not {value!r}")
        if typ is not int and not isinstance(value, typ):
            raise self.fail(f"{where}.{key}", f"must be a {typ.__name__}, not {value!r}")
        return value

    def positive(self, tbl: dict[str, Any], key: str, where: str, lo: int, hi: int,
                 default: int | None = None) -> int:
        value: int = self.get(tbl, key, where, int, default)
        if not lo <= value <= hi:
            raise self.fail(f"{where}.{key}", f"{value} is out of range ({lo} to {hi})")
        return value

    def spec(self, raw: dict[str, Any]) -> LabSpec:
        self.table(raw, "", _TOP_KEYS)
        lab = self.table(raw.get("lab", {}), "lab", _LAB_KEYS)
        name = self.get(lab, "name", "lab", str)
        if not valid_lab_name(name):
            raise self.fail("lab.name", f"{name!r} is not a valid lab name", hint=LAB_NAME_HINT)
        distro = self.get(lab, "distro", "lab", str, "centos-stream9")
        release = self.get(lab, "release", "lab", str, "epoxy")
        if distro not in DISTROS:
            raise self.fail("lab.distro", f"unknown distro {distro!r}",
                            hint="choose one of: " + ", ".join(sorted(DISTROS)))
        if release not in RELEASES:
            raise self.fail("lab.release", f"unknown OpenStack release {release!r}",
                            hint="choose one of: " + ", ".join(sorted(RELEASES)))
        iso = self.iso(raw.get("iso", {}))
        nets = self.table(raw.get("networks", {}), "networks", {"management", "provider"})
        management = self.network(nets.get("management"), "management")
        provider = self.network(nets.get("provider"), "provider")
        if management.cidr.overlaps(provider.cidr):
            raise self.fail("networks.provider.cidr",
                            f"{provider.cidr} overlaps the management network {management.cidr}",
                            hint="give the two networks separate ranges")
        nodes = self.nodes(raw.get("nodes"), management)
        macs_from = self.get(lab, "macs_from", "lab", str, "")
        if macs_from and not valid_lab_name(macs_from):
            raise self.fail("lab.macs_from", f"{macs_from!r} is not a valid lab name",
                            hint="it names the lab whose save this lab was made from; "
                                 "leave it out otherwise")
        golden: bool = self.get(lab, "golden", "lab", bool, False)
        if golden and distro_for(distro).node_os is not NodeOs.KICKSTART:
            raise self.fail("lab.golden", f"{distro} nodes always boot a cached base image",
                            hint="drop lab.golden; it is for distros installed by kickstart")
        return LabSpec(
            name=name, distro=distro, release=release, iso=iso,
            management=management, provider=provider, nodes=nodes,
            timezone=self.timezone(lab),
            pool_dir=self.pool_dir(lab),
            install_timeout_s=self.positive(lab, "install_timeout_s", "lab", 0, 86400, 0),
            boot_timeout_s=self.positive(lab, "boot_timeout_s", "lab", 10, 86400, 600),
            scope=self.scope(lab),
            golden=golden,
            macs_from=macs_from,
            packages=self.packages(raw.get("packages", {})),
            verify=VerifySettings(
                image=self.local_file(self.table(raw.get("verify", {}), "verify", _VERIFY_KEYS),
                                      "image", "verify")),
            source=self.source,
        )

    def timezone(self, lab: dict[str, Any]) -> str:
        tz: str = self.get(lab, "timezone", "lab", str, "UTC")
        if tz != "UTC" and tz not in _timezones():
            raise self.fail("lab.timezone", f"{tz!r} is not a time zone of the tz database",
                            hint="use a name such as UTC or Europe/Berlin "
                                 "(`timedatectl list-timezones` lists them)")
        return tz

    def pool_dir(self, lab: dict[str, Any]) -> str:
        text: str = self.get(lab, "pool_dir", "lab", str, "")
        if not text:
            return ""
        path = Path(text)
        if (not path.is_absolute() or ".." in path.parts or path == Path("/")
                or not text.isprintable() or len(text) > 1024):
            raise self.fail("lab.pool_dir", f"{text!r} is not an absolute directory path",
                            hint="give an absolute path such as /var/lib/libvirt/images/mylab, "
                                 "or leave it empty for the default")
        return text

    def local_file(self, tbl: dict[str, Any], key: str, where: str) -> str:
        """A file on this host (empty: none); see oslab.spec.local_path_problem."""
        text: str = self.get(tbl, key, where, str, "")
        problem = local_path_problem(text) if text else ""
        if problem:
            raise self.fail(f"{where}.{key}", f"{text!r} {problem}", hint=LOCAL_PATH_HINT)
        return text

    def url(self, tbl: dict[str, Any], key: str, where: str) -> str:
        text: str = self.get(tbl, key, where, str, "")
        if text and not http_url(text):
            raise self.fail(f"{where}.{key}", f"{text!r} is not an http(s) URL",
                            hint="oslab downloads over http or https only; for a local file "
                                 "use iso.path")
        return text

    def scope(self, lab: dict[str, Any]) -> Scope:
        text = self.get(lab, "scope", "lab", str, Scope.ALL.value)
        if text not in {s.value for s in Scope}:
            raise self.fail("lab.scope", f"{text!r} is not a scope",
                            hint="choose one of: " + ", ".join(s.value for s in Scope))
        return Scope(text)

    def packages(self, raw: Any) -> Packages:
        tbl = self.table(raw, "packages", _PACKAGES_KEYS)
        mirror = self.get(tbl, "mirror", "packages", str, "")
        parts = urllib.parse.urlsplit(mirror) if http_url(mirror) else None
        if mirror and (parts is None or parts.query or parts.fragment):
            raise self.fail("packages.mirror", f"{mirror!r} is not an http(s) URL",
                            hint="give the Debian mirror's URL (no ?query or #fragment), or "
                                 "leave it empty for the one in this host's apt sources")
        source = self.get(tbl, "source", "packages", str, PackageSource.MIRROR.value)
        if source not in {s.value for s in PackageSource}:
            raise self.fail("packages.source", f"{source!r} is not a package source",
                            hint="choose one of: " + ", ".join(s.value for s in PackageSource))
        bake: bool = self.get(tbl, "bake", "packages", bool, True)
        return Packages(mirror=mirror.rstrip("/"), source=PackageSource(source), bake=bake)

    def iso(self, raw: Any) -> DownloadSource:
        tbl = self.table(raw, "iso", _ISO_KEYS)
        iso = DownloadSource(path=self.local_file(tbl, "path", "iso"),
                             url=self.url(tbl, "url", "iso"),
                             sha256=self.get(tbl, "sha256", "iso", str, ""),
                             sha256_url=self.url(tbl, "sha256_url", "iso"))
        if iso.path and iso.url:
            raise self.fail("iso", "give either path or url, not both")
        if iso.sha256 and not SHA256_RE.match(iso.sha256.lower()):
            raise self.fail("iso.sha256", "must be 64 hexadecimal digits")
        if iso.url and not (iso.sha256 or iso.sha256_url):
            raise self.fail("iso", "a url needs its sha256 (or sha256_url to a CHECKSUM file)")
        return iso

    def network(self, raw: Any, kind: str) -> Network:
        where = f"networks.{kind}"
        if raw is None:
            raise self.fail("networks", f"missing the {kind} network")
        tbl = self.table(raw, where, _NET_KEYS)
        text = self.get(tbl, "cidr", where, str)
        try:
            cidr = ipaddress.IPv4Network(text, strict=True)
        except ValueError as exc:
            raise self.fail(f"{where}.cidr", f"{text!r} is not an IPv4 network: {exc}") from exc
        special = _special_range(cidr)
        if special:
            raise self.fail(f"{where}.cidr", f"{cidr} is {special} address space",
                            hint="use a private range such as 10.0.0.0/24 or 192.168.100.0/24")
        if cidr.prefixlen < 16:
            raise self.fail(f"{where}.cidr", f"{cidr} is too large for a lab network",
                            hint="use a /16 to /29, for example 10.0.0.0/24")
        if cidr.prefixlen > 29:
            raise self.fail(f"{where}.cidr", f"{cidr} is too small", hint="use a /29 or larger")
        mode_text = self.get(tbl, "mode", where, str, "nat")
        allowed = [NetMode.NAT.value] if kind == "management" else [m.value for m in NetMode]
        if mode_text not in allowed:
            raise self.fail(f"{where}.mode", f"{mode_text!r} is not a valid mode",
                            hint="choose one of: " + ", ".join(allowed))
        return Network(kind=kind, cidr=cidr, mode=NetMode(mode_text))

    def nodes(self, raw: Any, management: Network) -> tuple[Node, ...]:
        if not isinstance(raw, list) or not raw:
            raise self.fail("nodes", "the lab needs at least one [[nodes]] entry")
        nodes: list[Node] = []
        names: set[str] = set()
        addresses: dict[ipaddress.IPv4Address, str] = {}
        for i, item in enumerate(raw):
            where = f"nodes[{i}]"
            if isinstance(item, dict) and isinstance(item.get("name"), str):
                where = f"nodes[{i}] ({item['name']})"
            tbl = self.table(item, where, _NODE_KEYS)
            name = self.get(tbl, "name", where, str)
            if not HOSTNAME_RE.fullmatch(name):
                raise self.fail(f"{where}.name", f"{name!r} is not a valid hostname",
                                hint="use lower-case letters, digits and '-', starting with a "
                                     "letter, at most 63 characters")
            if name in RESERVED_NODE_NAMES:
                raise self.fail(f"{where}.name", f"{name!r} cannot name a node",
                                hint="it already means this machine in /etc/hosts; pick "
                                     "another name")
            if name in names:
                raise self.fail(f"{where}.name", f"duplicate node name {name!r}")
            names.add(name)
            role_text = self.get(tbl, "role", where, str)
            if role_text not in {r.value for r in Role}:
                raise self.fail(f"{where}.role", f"unknown role {role_text!r}",
                                hint="choose controller or compute")
            addr_text = self.get(tbl, "address", where, str)
            try:
                address = ipaddress.IPv4Address(addr_text)
            except ValueError as exc:
                raise self.fail(f"{where}.address", f"{addr_text!r} is not an IPv4 address") \
                    from exc
            usable = address in management.cidr and address not in (
                management.cidr.network_address, management.cidr.broadcast_address,
                management.gateway)
            if not usable:
                raise self.fail(f"{where}.address",
                                f"{address} is not a usable address of the management network "
                                f"{management.cidr}",
                                hint=f"pick one from {management.gateway + 1} to "
                                     f"{management.cidr.broadcast_address - 1}")
            if address in addresses:
                raise self.fail(f"{where}.address",
                                f"duplicate address {address} (also used by {addresses[address]})")
            addresses[address] = name
            extra_raw = self.get(tbl, "extra_disks_gib", where, list, [])
            if len(extra_raw) > MAX_EXTRA_DISKS:
                raise self.fail(f"{where}.extra_disks_gib",
                                f"{len(extra_raw)} extra disks; at most {MAX_EXTRA_DISKS}")
            extra = []
            for size in extra_raw:
                if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= 16384:
                    raise self.fail(f"{where}.extra_disks_gib",
                                    f"{size!r} is not a disk size in GiB (1 to 16384)")
                extra.append(size)
            nodes.append(Node(
                name=name, role=Role(role_text), address=address,
                memory_mib=self.positive(tbl, "memory_mib", where, 256, 1 << 20),
                vcpus=self.positive(tbl, "vcpus", where, 1, 256),
                disk_gib=self.positive(tbl, "disk_gib", where, 1, 16384),
                extra_disks_gib=tuple(extra),
            ))
        controllers = [n for n in nodes if n.role is Role.CONTROLLER]
        if len(controllers) != 1:
            raise self.fail("nodes", f"the lab needs exactly one controller, found "
                                     f"{len(controllers)}")
        return tuple(nodes)
