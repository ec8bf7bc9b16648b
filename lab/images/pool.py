"""The cache pool: a libvirt storage pool of base images that outlives labs.

``oslab-images`` is a directory pool whose directory holds oslab's marker (as a lab's pool
does, with ``{"cache": "images"}`` instead of a lab name), so a foreign pool of that name is
refused, never used. Each base is three volumes named after the image (``<distro>-<role>-
<hash>``): the qcow2 root disk, the kernel and the initrd, uploaded through libvirt streams.
A lab's nodes are overlays on them in the lab's own pool; ``destroy`` removes the lab's pool
and so never a base.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import libvirt

from oslab.errors import OwnershipError
from oslab.images.build import Image
from oslab.images.common import Say
from oslab.virt.definitions import POOL_MARKER, PoolDef, VolumeDef
from oslab.virt.handles import Connection
from oslab.virt.lab_objects import pool_path, read_marker, stream_into

CACHE_POOL = "oslab-images"
CACHE_POOL_DIR = Path("/var/lib/libvirt/images") / CACHE_POOL
MARKER = {"cache": "images", "made_by": "oslab"}


@dataclass(frozen=True)
class BaseVolumes:
    """Paths of a base's volumes in the cache pool."""

    disk: str
    kernel: str
    initrd: str
    cmdline: str


def base_volume_names(image: Image) -> tuple[str, str, str, str]:
    """The disk, kernel, initrd and manifest volumes of ``image`` (the manifest last)."""
    return (f"{image.name}.qcow2", f"{image.name}.vmlinuz", f"{image.name}.initrd",
            f"{image.name}.json")


def _marker_ok(path: Path) -> bool:
    data = read_marker(path)
    return isinstance(data, dict) and data.get("cache") == MARKER["cache"]


class ImageCache:
    def __init__(self, conn: Connection, name: str = CACHE_POOL,
                 path: Path = CACHE_POOL_DIR) -> None:
        self.conn = conn
        self.name = name
        self.path = path

    def pool(self) -> Any | None:
        try:
            pool = self.conn.storagePoolLookupByName(self.name)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_STORAGE_POOL:
                return None
            raise
        if not _marker_ok(pool_path(pool)):
            raise OwnershipError(
                f"storage pool {self.name} exists but oslab did not make it as its image cache "
                f"(no {POOL_MARKER} marker in {pool_path(pool)})",
                hint=f"remove that pool yourself (virsh pool-destroy {self.name}; "
                     f"virsh pool-undefine {self.name}) so oslab can make its own")
        return pool

    def ensure(self) -> Any:
        """The running cache pool, made the first time."""
        pool = self.pool()
        if pool is None:
            if self.path.exists() and any(self.path.iterdir()) and not _marker_ok(self.path):
                raise OwnershipError(
                    f"{self.path} exists and is not empty, and oslab did not make it",
                    hint="move it away; oslab keeps its base images there")
            self.path.mkdir(parents=True, exist_ok=True)
            (self.path / POOL_MARKER).write_text(json.dumps(MARKER) + "\n")
            pool = self.conn.storagePoolDefineXML(PoolDef(self.name, self.path).xml(), 0)
        if not pool.isActive():
            pool.create(0)
        pool.setAutostart(1)
        return pool

    def ensure_base(self, image: Image, say: Say) -> BaseVolumes:
        """Upload ``image`` into the cache pool unless it is there. Names carry the image's
        hash; its manifest is uploaded last, so a base without one is an interrupted upload
        and is uploaded again. The bytes are streamed as they are (no libvirt copy, which
        would probe and convert the qcow2)."""
        pool = self.ensure()
        pool.refresh(0)
        have = set(pool.listVolumes())
        names = base_volume_names(image)
        sources = (image.disk, image.kernel, image.initrd, image.dir / "manifest.json")
        if names[-1] not in have:
            for name, source in zip(names, sources, strict=True):
                if name in have:
                    pool.storageVolLookupByName(name).delete(0)
                say(f"upload {name} into storage pool {self.name} "
                    f"({source.stat().st_size / 1e6:.0f} MB)")
                vol = pool.createXML(VolumeDef(name, source.stat().st_size, "raw").xml(), 0)
                stream_into(self.conn, vol, source)
        disk, kernel, initrd = (pool.storageVolLookupByName(n).path() for n in names[:3])
        return BaseVolumes(disk, kernel, initrd, image.cmdline)

    def bases(self) -> list[str]:
        """The base images in the cache (their disk volumes)."""
        pool = self.pool()
        if pool is None or not pool.isActive():
            return []
        pool.refresh(0)
        return sorted(v for v in pool.listVolumes() if v.endswith(".qcow2"))
