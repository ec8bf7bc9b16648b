"""The instance image `oslab verify` boots, and what oslab must know about it.

By default it is cirros 0.6.3, downloaded once from its official URL and checked against its
published sha256. ``oslab verify --image PATH`` (first) or the spec's ``[verify] image``
(relative to the spec file) name a local image instead, for example the small cirros-like
image ``tests/instance/build.sh`` makes. A local image must have a manifest beside it,
``PATH.json``, because nothing about an image file says who logs in or what Glance must be
told::

    {"name": "oslab-instance", "user": "cirros", "disk_format": "qcow2",
     "min_disk_gib": 1, "min_ram_mib": 128,
     "properties": {"hw_disk_bus": "virtio"}, "sha256": "<optional, checked before upload>"}

From the choice come the Glance upload command (format, minimum disk and RAM, properties), the
flavor the test server boots with, and the user SSH logs in as.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import stat
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from oslab.downloads import download
from oslab.errors import OslabError
from oslab.files import read_small
from oslab.spec import DownloadSource, LabSpec, local_path, local_path_problem
from oslab.spec_file import clip

CIRROS_URL = "https://download.cirros-cloud.net/0.6.3/cirros-0.6.3-x86_64-disk.img"
# From the release's SHA256SUMS (https://download.cirros-cloud.net/0.6.3/SHA256SUMS); the file
# is 21692416 bytes. oslab.downloads.download.fetch checks the download against it.
CIRROS_SHA256 = "7d6355852aeb6dbcd191bcda7cd74f1536cfe5cbf8a10495a7283a8396e4b75b"
CIRROS_USER = "cirros"

# The install guide's m1.nano, with the RAM a cirros 0.6 kernel needs; a bigger image minimum
# gets a flavor of its own.
NANO = ("m1.nano", 128, 1)

MANIFEST_SUFFIX = ".json"
MAX_MANIFEST_BYTES = 64 << 10  # a manifest is a few hundred bytes
MAX_LABEL = 64
MAX_NOTE = 200
MAX_PROPERTIES = 64
MAX_DISK_GIB = 16384  # the spec's bound on a node's disk
MAX_RAM_MIB = 1 << 20  # and on its memory
# a login name as useradd takes it by default (NAME_REGEX), at most 32 characters
USER_RE = re.compile(r"[a-z_][a-z0-9_.-]{0,31}")
# Glance property names as its schema and metadata definitions have them (hw_disk_bus,
# os_distro, trait:CUSTOM_X, ...); never '=': the command line splits name=value there
PROPERTY_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_:.-]{0,254}")
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-._")
_KEYS = {"name", "user", "disk_format", "min_disk_gib", "min_ram_mib", "properties", "sha256",
         "build", "kernel"}  # build, kernel: informational (tests/instance/build.sh writes them)
MANIFEST_EXAMPLE = ('{"name": "my-image", "user": "cirros", "disk_format": "qcow2", '
                    '"min_disk_gib": 1, "min_ram_mib": 128, "properties": {}}')


class DiskFormat(StrEnum):
    QCOW2 = "qcow2"
    RAW = "raw"


class Origin(StrEnum):
    """Where the choice came from (for messages)."""

    DEFAULT = "the default"
    OPTION = "--image"
    SPEC = "[verify] image"


@dataclass(frozen=True)
class InstanceImage:
    """The image to boot: ``label`` names it in rows and in Glance (``oslab-verify-<label>``);
    ``path`` is a local file, ``source`` a download (cirros)."""

    label: str
    user: str
    disk_format: DiskFormat = DiskFormat.QCOW2
    min_disk_gib: int = 0
    min_ram_mib: int = 0
    properties: tuple[tuple[str, str], ...] = ()
    sha256: str = ""
    path: str = ""
    source: DownloadSource | None = None
    origin: Origin = Origin.DEFAULT

    def glance_name(self, prefix: str) -> str:
        return f"{prefix}-{self.label}"

    def flavor(self) -> tuple[str, int, int]:
        """(name, RAM MiB, disk GiB) of the flavor to boot it with: m1.nano when the image fits
        in it, else a flavor named after its size."""
        _, ram, disk = NANO
        if self.min_ram_mib <= ram and self.min_disk_gib <= disk:
            return NANO
        ram, disk = max(ram, self.min_ram_mib), max(disk, self.min_disk_gib)
        return f"oslab.{ram}m{disk}g", ram, disk


CIRROS = InstanceImage(label="cirros", user=CIRROS_USER, sha256=CIRROS_SHA256,
                       source=DownloadSource(url=CIRROS_URL, sha256=CIRROS_SHA256))


def choose(option: str | None, spec: LabSpec, cwd: Path | None = None) -> InstanceImage:
    """``--image`` first (relative to ``cwd``, the current directory), then ``[verify] image``
    (relative to the spec file's directory, as every path in a spec), else cirros. `check`,
    `up` and `verify` all choose through here."""
    if option is not None:
        problem = local_path_problem(option)
        if problem:
            raise OslabError(f"--image: {clip(repr(option))} {problem}",
                             hint="give the path of a qcow2 or raw disk image (with its "
                                  "manifest PATH.json beside it)")
        return load(local_path(option, cwd or Path.cwd()), Origin.OPTION)
    if spec.verify.image:
        return load(spec.local_path(spec.verify.image), Origin.SPEC)
    return CIRROS


def manifest_path(image: Path) -> Path:
    return image.with_name(image.name + MANIFEST_SUFFIX)


def load(path: Path, origin: Origin) -> InstanceImage:
    """The local image at ``path`` as its manifest (``PATH.json``) describes it. Both must be
    regular files (a FIFO would never end, a device never be an image); the manifest is read
    up to MAX_MANIFEST_BYTES."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise OslabError(f"{origin.value}: the instance image {path} does not exist",
                         hint="give the path of a qcow2 or raw disk image, e.g. the one "
                              "tests/instance/build.sh prints") from None
    except OSError as exc:
        raise OslabError(f"{origin.value}: cannot read the instance image {path}: "
                         f"{exc.strerror or exc}",
                         hint="check the path and its permissions") from exc
    if not stat.S_ISREG(mode):
        raise OslabError(f"{origin.value}: the instance image {path} is not a regular file",
                         hint="give the path of a qcow2 or raw disk image file")
    manifest = manifest_path(path)
    if not os.path.lexists(manifest):
        raise OslabError(f"{origin.value}: the instance image {path} has no manifest "
                         f"{manifest}", hint=f"write {manifest.name} beside it, e.g. "
                                             f"{MANIFEST_EXAMPLE}")
    raw = read_small(manifest, MAX_MANIFEST_BYTES, "instance image manifest",
                     f"a manifest is a small JSON file such as {MANIFEST_EXAMPLE}")
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise OslabError(f"{manifest}: not JSON: {exc.msg} (line {exc.lineno})",
                         hint=f"a manifest looks like {MANIFEST_EXAMPLE}") from exc
    except (ValueError, RecursionError) as exc:  # not UTF-8, nested too deep, a huge number
        reason = str(exc).split(";")[0] or type(exc).__name__
        raise OslabError(f"{manifest}: not JSON: {clip(reason)}",
                         hint=f"a manifest is UTF-8 JSON such as {MANIFEST_EXAMPLE}") from exc
    return parse_manifest(data, str(manifest), path, origin)


def parse_manifest(data: Any, where: str, path: Path,
                   origin: Origin = Origin.OPTION) -> InstanceImage:
    """Validate a manifest's JSON, every field by type and range; every problem is one error
    naming the key, with a hint."""
    if not isinstance(data, dict):
        raise OslabError(f"{where}: expected a JSON object", hint=MANIFEST_EXAMPLE)
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise OslabError(f"{where}: unknown key(s) {clip(', '.join(unknown))}",
                         hint="known keys: " + ", ".join(sorted(_KEYS)))
    label = _text(data, "name", where, path.name.split(".")[0])
    if not label or len(label) > MAX_LABEL or not set(label) <= _NAME_CHARS:
        raise OslabError(f"{where}: name {clip(repr(label))} is not a usable image name",
                         hint=f"use 1 to {MAX_LABEL} lower-case letters, digits, '-', '.' or "
                              "'_'")
    user = _text(data, "user", where, "")
    if not user:
        raise OslabError(f"{where}: no \"user\": the user to log in as over SSH is needed",
                         hint='e.g. "user": "cirros" (the user whose authorized_keys the '
                              "image fills from the metadata service)")
    if not USER_RE.fullmatch(user):
        raise OslabError(f"{where}: user {clip(repr(user))} is not a valid user name",
                         hint="a login name: a lower-case letter or '_', then up to 31 "
                              "lower-case letters, digits, '_', '.' or '-'")
    fmt = _text(data, "disk_format", where, DiskFormat.QCOW2.value)
    if fmt not in {f.value for f in DiskFormat}:
        raise OslabError(f"{where}: disk_format {clip(repr(fmt))} is not one of "
                         f"{', '.join(f.value for f in DiskFormat)}",
                         hint="the format of the image file (`qemu-img info` says it)")
    sha256 = _text(data, "sha256", where, "").lower()
    if sha256 and (len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256)):
        raise OslabError(f"{where}: sha256 is not 64 hex digits",
                         hint=f"`sha256sum {path}` prints it; or leave sha256 out")
    for key in ("build", "kernel"):
        _note(data, key, where)
    return InstanceImage(label=label, user=user, disk_format=DiskFormat(fmt),
                         min_disk_gib=_count(data, "min_disk_gib", where, MAX_DISK_GIB, "GiB"),
                         min_ram_mib=_count(data, "min_ram_mib", where, MAX_RAM_MIB, "MiB"),
                         properties=_properties(data.get("properties", {}), where),
                         sha256=sha256, path=str(path), origin=origin)


def _text(data: dict[str, Any], key: str, where: str, default: str) -> str:
    value = data.get(key, default)
    if not isinstance(value, str):
        raise OslabError(f"{where}: {key} must be a string, not {clip(json.dumps(value))}",
                         hint=f"a manifest looks like {MANIFEST_EXAMPLE}")
    return value.strip()


def _note(data: dict[str, Any], key: str, where: str) -> None:
    """An informational key: a one-line string, if it is there."""
    value = _text(data, key, where, "")
    if len(value) > MAX_NOTE or not value.isprintable():
        raise OslabError(f"{where}: {key} must be one line of at most {MAX_NOTE} printable "
                         "characters", hint=f"{key} is only informational; shorten it or "
                                            "leave it out")


def _count(data: dict[str, Any], key: str, where: str, most: int, unit: str) -> int:
    value = data.get(key, 0)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= most:
        raise OslabError(f"{where}: {key} must be a whole number from 0 to {most}, not "
                         f"{clip(json.dumps(value))}",
                         hint=f"the image's minimum in {unit} (0, or leave it out, for none)")
    return value


def _properties(props: Any, where: str) -> tuple[tuple[str, str], ...]:
    """The Glance properties: names as Glance takes them on a command line (``name=value``
    must split back at the first '='), values one line each."""
    hint = 'e.g. "properties": {"hw_disk_bus": "virtio"}'
    if not isinstance(props, dict):
        raise OslabError(f"{where}: properties must map names to strings", hint=hint)
    if len(props) > MAX_PROPERTIES:
        raise OslabError(f"{where}: properties: {len(props)} of them; at most "
                         f"{MAX_PROPERTIES}", hint=hint)
    for key, value in props.items():
        if not PROPERTY_RE.fullmatch(key):
            raise OslabError(f"{where}: properties: {clip(repr(key))} is not a Glance "
                             "property name",
                             hint="letters, digits, '_', ':', '.' and '-', starting with a "
                                  "letter or digit, at most 255 characters (no '=', space or "
                                  "newline)")
        if not isinstance(value, str) or len(value) > 255 or not value.isprintable():
            raise OslabError(f"{where}: properties: {key} must be one line of at most 255 "
                             f"printable characters, not {clip(json.dumps(value))}",
                             hint=hint)
    return tuple(sorted(props.items()))


def create_args(image: InstanceImage, remote: str, name: str) -> str:
    """The arguments of ``openstack image create`` that upload ``remote`` as ``name``."""
    parts = ["image", "create", "--public", "--disk-format", image.disk_format.value,
             "--container-format", "bare"]
    if image.min_disk_gib:
        parts += ["--min-disk", str(image.min_disk_gib)]
    if image.min_ram_mib:
        parts += ["--min-ram", str(image.min_ram_mib)]
    for key, value in image.properties:
        parts += ["--property", f"{key}={value}"]
    parts += ["--file", remote, name]
    return shlex.join(parts)


def fetch(image: InstanceImage, cache_dir: Path) -> Path:
    """The image file on this host: cirros downloaded into ``cache_dir`` (once, verified), or
    the local file, checked against the manifest's sha256 when it gives one."""
    if image.source is not None:
        return download.fetch(image.source, cache_dir, download.text_progress(image.label))
    path = Path(image.path)
    if image.sha256:
        actual = download.sha256_file(path)
        if actual != image.sha256:
            raise OslabError(f"sha256 mismatch for {path}:\n  manifest {image.sha256}\n"
                             f"  file     {actual}",
                             hint=f"rebuild the image, or fix sha256 in {manifest_path(path)}")
    return path
