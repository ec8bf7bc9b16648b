"""Golden bases on a real libvirtd with the test guest (``lab.golden``): the installer runs once
in a builder domain, its generalised disk goes into the cache pool, and every node is a qcow2
overlay on it that takes its identity from its NoCloud seed at first boot. Two nodes cloned
from one base get different machine-ids, host keys and addresses, and their pinned host keys
verify; `kill -9` while the base installs, and the rerun waits for that install; snapshots
live in the overlays. A second lab reuses the base without installing; a save of the lab keeps
its disks as overlays on the base, and the lab made from it runs on with the saved memory;
neither lab's destroy, nor a prune while a lab or a save uses it, removes the base."""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import libvirt
import pytest

from oslab.images.pool import CACHE_POOL
from oslab.virt.metadata import DomainPhase, LabMeta
from tests.conftest import URI

pytestmark = pytest.mark.integration

PROBE = ("hostname; cat /etc/machine-id; cut -d' ' -f1-2 /etc/ssh/ssh_host_ed25519_key.pub; "
         "ip -4 -o addr show scope global | awk '{print $4}'")


@pytest.fixture
def conn() -> Iterator[Any]:
    c = libvirt.open(URI)
    yield c
    c.close()


def cache_volumes(conn: Any) -> dict[str, str]:
    """The cache pool's volumes: name -> path (none before the first base is cached)."""
    try:
        pool = conn.storagePoolLookupByName(CACHE_POOL)
    except libvirt.libvirtError:
        return {}
    pool.refresh(0)
    return {n: pool.storageVolLookupByName(n).path() for n in pool.listVolumes()}


def backing_of(conn: Any, lab: str, volume: str) -> str:
    vol = conn.storagePoolLookupByName(lab).storageVolLookupByName(volume)
    return ET.fromstring(vol.XMLDesc(0)).findtext("backingStore/path") or ""


def installing(conn: Any, name: str) -> bool:
    """The builder domain runs the installer (its phase in its metadata)."""
    try:
        dom = conn.lookupByName(name)
    except libvirt.libvirtError:
        return False
    meta = LabMeta.from_object_xml(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    return bool(dom.isActive()) and meta is not None and meta.phase == DomainPhase.INSTALLING


def pinned(lab: Any, node: str) -> str:
    pub = lab.home / "state" / "oslab" / lab.name / "hostkeys" / f"{node}_ed25519.pub"
    return " ".join(pub.read_text().split()[:2])


def saved_lab(lab: Any, conn: Any, base: str, base_path: str) -> None:
    root = Path(f"/var/lib/libvirt/images/{lab.name}-saves")
    lab.env["OSLAB_SAVES_DIR"] = str(root)
    try:
        lab.run("ssh", "ctl", "--", "echo golden > /dev/shm/value")
        lab.run("save", "g1")
        manifest = json.loads((root / "g1" / "manifest.json").read_text())
        assert base_path in [b["path"] for b in manifest["bases"]]
        disk = root / "g1" / "disks" / "ctl" / "ctl-system.qcow2"
        info = json.loads(subprocess.run(["qemu-img", "info", "-U", "--output=json", str(disk)],
                                         capture_output=True, text=True, check=True).stdout)
        assert info["full-backing-filename"] == base_path
        assert disk.stat().st_size < Path(base_path).stat().st_size
        assert (root / "g1" / "disks" / "ctl" / "ctl-seed.iso").is_file()
        dry = lab.run("images", "--prune", "--dry-run", "--all").stdout
        assert f"keep {base}: used by save:g1, {lab.name}" in dry, dry

        lab.run("destroy", "--yes")
        dry = lab.run("images", "--prune", "--dry-run", "--all").stdout
        assert f"keep {base}: used by save:g1" in dry, dry
        made = subprocess.run([sys.executable, "-m", "oslab", "up", "--from-saved", "g1"],
                              env=lab.env, capture_output=True, text=True, timeout=900)
        assert made.returncode == 0, made.stdout + made.stderr
        assert backing_of(conn, lab.name, "ctl-system.qcow2") == str(disk)
        assert lab.run("ssh", "ctl", "--", "cat /dev/shm/value").stdout.strip() == "golden"
        assert lab.run("ssh", "cmp1", "--", "hostname").stdout.strip() == "cmp1"
    finally:
        subprocess.run(lab.cmd("destroy", "--yes"), env=lab.env, capture_output=True,
                       timeout=300)
        shutil.rmtree(root, ignore_errors=True)


def test_two_nodes_from_one_golden_base(make_lab: Any, conn: Any) -> None:
    lab = make_lab(nodes=2, golden=True)
    base = ""
    before = set(cache_volumes(conn))
    try:
        # --fresh-image: a base of its own, so the install path runs even with a warm cache;
        # kill -9 while the builder installs, and the rerun waits for that install
        proc = lab.popen("up", "--stage", "provision", "--fresh-image")
        try:
            deadline = time.monotonic() + 600
            while proc.poll() is None and not installing(conn, f"{lab.name}-golden"):
                assert time.monotonic() < deadline, "the builder never started"
                time.sleep(0.5)
        finally:
            proc.kill()
            proc.communicate()
        assert proc.returncode == -9, "up was killed while the base installed"
        up = lab.run("up", "--stage", "provision", "--fresh-image", timeout=1500)
        assert "install already under way; waiting for it" in up.stderr, up.stderr
        found = re.search(r"golden base (testlinux-golden-[0-9a-f]{16}): installed and cached",
                          up.stderr)
        assert found, up.stderr
        base = found[1]
        volumes = cache_volumes(conn)
        assert {f"{base}.qcow2", f"{base}.json"} <= set(volumes)

        # each node an overlay on the base; the builder and its disks are gone
        for node in lab.nodes:
            assert backing_of(conn, lab.name, f"{node}-system.qcow2") == volumes[f"{base}.qcow2"]
        status = lab.status()
        assert sorted(n["node"] for n in status["nodes"]) == ["cmp1", "ctl"]  # type: ignore[attr-defined]
        lab_volumes = {v["name"] for v in status["volumes"]}  # type: ignore[attr-defined]
        assert "golden-system.qcow2" not in lab_volumes
        assert {"ctl-seed.iso", "cmp1-seed.iso"} <= lab_volumes

        # identity from the seed: `oslab ssh` verifies each node's pinned host key
        seen = {}
        for node in lab.nodes:
            lines = lab.run("ssh", node, "--", PROBE).stdout.split("\n")
            hostname, machine_id, host_key, address = lines[:4]
            assert hostname == node
            assert re.fullmatch(r"[0-9a-f]{32}", machine_id), machine_id
            assert host_key == pinned(lab, node)
            assert address == f"{lab.addresses[node]}/24"
            seen[node] = (machine_id, host_key)
        assert seen["ctl"][0] != seen["cmp1"][0], "two clones share a machine-id"
        assert seen["ctl"][1] != seen["cmp1"][1], "two clones share a host key"

        # internal snapshots live in the overlays: snapshot, change a file, revert
        lab.run("snapshot", "clean")
        lab.run("ssh", "ctl", "--", "touch /root/after-snapshot")
        lab.run("revert", "clean")
        gone = lab.run("ssh", "ctl", "--", "test -e /root/after-snapshot", check=False)
        assert gone.returncode == 1, "the revert kept a file made after the snapshot"
        lab.run("snapshot", "--delete", "clean")

        # a prune, even of every unused base, keeps the one the lab uses
        dry = lab.run("images", "--prune", "--dry-run", "--all").stdout
        assert f"keep {base}: used by {lab.name}" in dry, dry

        # a second lab with the same inputs (and host cache) reuses the base: no install
        other = make_lab(nodes=1, golden=True)
        other.env["XDG_CACHE_HOME"] = lab.env["XDG_CACHE_HOME"]
        warm = other.run("up", "--stage", "provision", timeout=900)
        assert f"golden base {base}: cached" in warm.stderr, warm.stderr
        assert "install started" not in warm.stderr
        assert other.run("ssh", "ctl", "--", "hostname").stdout.strip() == "ctl"

        # a save of a lab on a base: each disk stays an overlay on the base (only its own
        # clusters), the seed is copied, the save keeps the base from a prune, and the lab made
        # from it is an overlay on the save's disk with the saved memory
        other.run("destroy", "--yes")
        saved_lab(lab, conn, base, volumes[f"{base}.qcow2"])

        # destroy removes the lab's overlays and never the base
        lab.run("destroy", "--yes")
        assert {f"{base}.qcow2", f"{base}.json"} <= set(cache_volumes(conn))
    finally:
        # this test's own bases only (the cache pool is shared with other runs), also when it
        # failed before it learned the base's name: every golden volume that appeared since
        made = {n for n in set(cache_volumes(conn)) - before if n.startswith("testlinux-golden-")}
        if made:
            pool = conn.storagePoolLookupByName(CACHE_POOL)
            for name in sorted(made, key=lambda n: not n.endswith(".json")):  # manifest first
                # libvirt may refuse while a lab the fixture destroys next still uses it
                with contextlib.suppress(libvirt.libvirtError):
                    pool.storageVolLookupByName(name).delete(0)
