"""The base-image cache on a real libvirtd: a lab's overlay on a base makes libvirt report the
base in use, so neither `images --prune` (even with --all) nor the lab's destroy removes it;
once the lab is destroyed, the prune does. Small qcow2 files stand in for the bases (no
mmdebstrap, no boot), in a cache pool and a host cache of the test's own."""

from __future__ import annotations

import json
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import libvirt
import pytest

from oslab.access.inventory import destroy
from oslab.access.state import LabState
from oslab.images.build import Image, ImageInputs
from oslab.images.inventory import gather, prune, prune_plan, users
from oslab.images.pool import ImageCache
from oslab.virt.definitions import GIB, PoolDef, VolumeDef
from oslab.virt.lab_objects import LabObjects
from tests.conftest import TEST_LAB_PREFIX, URI

pytestmark = pytest.mark.integration


def fake_base(store: Path, role: str, stamp: int) -> Image:
    inputs = ImageInputs("debian13", "trixie", role, f"repo-{secrets.token_hex(4)}")
    image = Image(store / inputs.key(), inputs)
    image.dir.mkdir(parents=True)
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(image.disk), "64M"],
                   check=True)
    image.kernel.write_bytes(b"kernel")
    image.initrd.write_bytes(b"initrd")
    (image.dir / "manifest.json").write_text(json.dumps(
        {"name": image.name, "key": inputs.key(), "inputs": {"distro": "debian13",
                                                             "role": role},
         "built_at": stamp}))
    return image


@pytest.fixture
def conn() -> Iterator[Any]:
    c = libvirt.open(URI)
    yield c
    c.close()


def test_a_base_a_lab_uses_survives_prune_and_destroy(conn: Any, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    token = secrets.token_hex(3)
    cache = ImageCache(conn, f"{TEST_LAB_PREFIX}imgs{token}", tmp_path / "cache-pool")
    lab = f"{TEST_LAB_PREFIX}{token}"
    store = tmp_path / "images"
    said: list[str] = []
    try:
        used = fake_base(store, "base", 1)
        spare = fake_base(store, "base", 2)  # newer: kept by default, removed by --all
        paths = {i.name: cache.ensure_base(i, said.append) for i in (used, spare)}
        objs = LabObjects(conn, lab)
        objs.ensure_pool(PoolDef(lab, tmp_path / "lab-pool"))
        objs.ensure_volume(VolumeDef("ctl-system.qcow2", GIB, backing=paths[used.name].disk))

        bases, found = gather(conn, store, cache)
        by_name = {b.name: b for b in bases}
        assert set(by_name) >= {used.name, spare.name}
        assert users(by_name[used.name], found) == [lab]  # read from libvirt's backing store
        assert users(by_name[spare.name], found) == []
        plan = prune_plan([by_name[used.name], by_name[spare.name]], found, frozenset(),
                          keep_newest=False)
        assert prune(conn, store, plan, said.append, cache) == [spare.name]
        cache_pool = cache.pool()
        assert cache_pool is not None
        cache_pool.refresh(0)
        assert {f"{used.name}.{e}" for e in ("qcow2", "vmlinuz", "initrd", "json")} <= set(
            cache_pool.listVolumes())
        assert not any(v.startswith(spare.name) for v in cache_pool.listVolumes())
        assert used.dir.is_dir() and not spare.dir.exists()

        assert destroy(conn, lab, LabState(lab)) == []
        assert objs.pool() is None
        bases, found = gather(conn, store, cache)
        [base] = [b for b in bases if b.name == used.name]
        assert len(base.volumes) == 4, "destroy never removes a base"
        assert prune(conn, store, prune_plan([base], found, frozenset(), False), said.append,
                     cache) == [used.name]
    finally:
        LabObjects(conn, lab).remove_pool()
        pool = cache.pool()
        if pool is not None:
            for vol in pool.listAllVolumes(0):
                vol.delete(0)
            pool.destroy()
            pool.undefine()
