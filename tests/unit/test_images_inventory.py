"""The base-image cache: what libvirt's test driver shows (a cache pool, a lab's pool, a
foreign pool and a domain, with backing stores) read into bases and uses; the prune decision
as a table of cases; prune itself on the test driver and a host cache in tmp_path, under the
build locks; `oslab images` through the CLI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import libvirt
import pytest
from click.testing import CliRunner

from oslab.cli import cli
from oslab.errors import OslabError
from oslab.images.build import lock_path, use_path
from oslab.images.common import locked
from oslab.images.inventory import (
    Base,
    Use,
    busy_keys,
    gather,
    prune,
    prune_plan,
    table,
    users,
)
from oslab.images.pool import CACHE_POOL, MARKER, ImageCache
from oslab.virt.definitions import POOL_MARKER
from oslab.virt.metadata import LabMeta

K_USED, K_OLD, K_NEW, K_CTL, K_DOM = ("1" * 16, "2" * 16, "3" * 16, "4" * 16, "5" * 16)
BASES = {  # name: built (the host manifest's built_at)
    f"debian13-base-{K_USED}": 1000, f"debian13-base-{K_OLD}": 2000,
    f"debian13-base-{K_NEW}": 3000, f"debian13-controller-{K_CTL}": 500,
    f"debian13-compute-{K_DOM}": 100,
}


def volumes_xml(name: str) -> str:
    return "".join(f"<volume><name>{name}.{ext}</name><capacity>{1 << 20}</capacity>"
                   f"<allocation>{1 << 20}</allocation></volume>"
                   for ext in ("qcow2", "vmlinuz", "initrd", "json"))


def overlay(name: str, backing: str) -> str:
    return (f"<volume><name>{name}</name><capacity>{1 << 30}</capacity>"
            f"<target><format type='qcow2'/></target>"
            f"<backingStore><path>{backing}</path><format type='qcow2'/></backingStore>"
            "</volume>")


def pool_xml(name: str, path: Path, volumes: str) -> str:
    return (f"<pool type='dir'><name>{name}</name><target><path>{path}</path></target>"
            f"{volumes}</pool>")


@dataclass
class Scene:
    conn: libvirt.virConnect
    cache: ImageCache
    store: Path  # the host cache's images directory
    uri: str


@pytest.fixture
def scene(tmp_path: Path) -> Iterator[Scene]:
    pool_dir = tmp_path / "oslab-images"
    pool_dir.mkdir()
    (pool_dir / POOL_MARKER).write_text(json.dumps(MARKER))
    lab_dir = tmp_path / "lab1"
    lab_dir.mkdir()
    (lab_dir / POOL_MARKER).write_text(json.dumps({"lab": "lab1", "made_by": "oslab"}))
    store = tmp_path / "cache" / "oslab" / "debian" / "images"
    for name, built in BASES.items():
        distro, role, key = name.split("-")
        d = store / key
        d.mkdir(parents=True)
        (d / "root.qcow2").write_bytes(b"q" * 1000)
        (d / "manifest.json").write_text(json.dumps(
            {"name": name, "key": key, "inputs": {"distro": distro, "role": role},
             "built_at": built}))
    cache_vols = "".join(volumes_xml(n) for n in BASES)
    scenario = tmp_path / "scenario.xml"
    scenario.write_text(
        "<node>"
        + pool_xml(CACHE_POOL, pool_dir, cache_vols)
        + pool_xml("lab1", lab_dir, overlay("ctl-system.qcow2",
                                            f"{pool_dir}/debian13-base-{K_USED}.qcow2"))
        + pool_xml("other", tmp_path / "other", overlay(
            "mine.qcow2", f"{pool_dir}/debian13-controller-{K_CTL}.qcow2"))
        + "<domain type='test'><name>stray</name><memory>65536</memory><os><type>hvm</type>"
          f"<kernel>{pool_dir}/debian13-compute-{K_DOM}.vmlinuz</kernel></os></domain>"
        + "<domain type='test'><name>lab1-ctl</name><memory>65536</memory><metadata>"
        + LabMeta("lab1", "domain", "controller", "d", "ctl").xml()
        + "</metadata><os><type>hvm</type>"
          f"<kernel>{pool_dir}/debian13-base-{K_USED}.vmlinuz</kernel></os></domain>"
        + "</node>")
    uri = f"test://{scenario}"
    conn = libvirt.open(uri)
    yield Scene(conn, ImageCache(conn, CACHE_POOL, pool_dir), store, uri)
    conn.close()


def test_gather_reads_bases_and_every_user(scene: Scene) -> None:
    bases, found = gather(scene.conn, scene.store, scene.cache)
    assert [b.name for b in bases] == sorted(BASES)
    by_name = {b.name: b for b in bases}
    used = by_name[f"debian13-base-{K_USED}"]
    assert len(used.volumes) == 4 and used.pool_bytes == 4 << 20
    assert used.host_bytes > 1000 and used.built == 1000
    assert used.host_dir == str(scene.store / K_USED)
    assert {b.name: users(b, found) for b in bases} == {
        # the lab pool's oslab marker and its node's metadata name the lab
        f"debian13-base-{K_USED}": ["lab1"],
        f"debian13-base-{K_OLD}": [], f"debian13-base-{K_NEW}": [],
        f"debian13-controller-{K_CTL}": ["pool:other"],  # a pool oslab did not make
        f"debian13-compute-{K_DOM}": ["domain:stray"],  # a domain booting its kernel
    }
    lines = table(bases, found, now=1000 + 2 * 3600)
    assert lines[0].split() == ["BASE", "POOL", "MB", "HOST", "MB", "AGE", "USED", "BY"]
    assert lines[1].split() == [f"debian13-base-{K_USED}", "4", "0", "2h", "lab1"]
    assert lines[4].split() == [f"debian13-compute-{K_DOM}", "4", "0", "2h", "domain:stray"]


def B(name: str, built: float) -> Base:  # a table's shorthand
    distro, role, key = name.split("-")
    return Base(name, key, distro, role, paths=(f"/p/{name}.qcow2",), built=built)


@dataclass(frozen=True)
class Case:
    id: str
    bases: tuple[Base, ...]
    uses: tuple[Use, ...]
    busy: frozenset[str]
    keep_newest: bool
    expect: dict[str, str]  # name: "remove" or the reason it is kept


A, Z, C = B(f"d-base-{K_OLD}", 1), B(f"d-base-{K_NEW}", 2), B(f"d-controller-{K_CTL}", 1)
CASES = [
    Case("unused-old-goes-newest-stays", (A, Z), (), frozenset(), True,
         {A.name: "remove", Z.name: "the newest d image for role base (--all removes it too)"}),
    Case("all-removes-the-newest-too", (A, Z), (), frozenset(), False,
         {A.name: "remove", Z.name: "remove"}),
    Case("used-is-kept-even-with-all", (A, Z), (Use(A.paths[0], "lab1"),
                                                Use(A.paths[0], "domain:lab1-ctl")),
         frozenset(), False, {A.name: "used by domain:lab1-ctl, lab1", Z.name: "remove"}),
    Case("being-built-is-kept", (A, Z), (), frozenset({A.key}), False,
         {A.name: "an `oslab up` builds or uses it now (its lock is held)", Z.name: "remove"}),
    Case("newest-per-distro-and-role", (A, Z, C), (Use(Z.paths[0], "pool:x"),), frozenset(),
         True, {A.name: "remove", Z.name: "used by pool:x",
                C.name: "the newest d image for role controller (--all removes it too)"}),
    Case("a-use-of-another-path-is-not-a-use", (A,), (Use("/p/other.qcow2", "lab1"),),
         frozenset(), False, {A.name: "remove"}),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_prune_plan(case: Case) -> None:
    plan = prune_plan(list(case.bases), list(case.uses), case.busy, case.keep_newest)
    assert {d.base.name: "remove" if d.remove else d.reason for d in plan} == case.expect


def test_prune_removes_only_unused_and_honours_the_build_lock(scene: Scene) -> None:
    bases, found = gather(scene.conn, scene.store, scene.cache)
    plan = prune_plan(bases, found, frozenset(), keep_newest=False)
    assert [d.base.name for d in plan if d.remove] == [
        f"debian13-base-{K_OLD}", f"debian13-base-{K_NEW}"]
    said: list[str] = []
    with locked(lock_path(scene.store, K_OLD)):  # an `oslab up` builds this one now
        assert busy_keys(scene.store, bases) == frozenset({K_OLD})
        removed = prune(scene.conn, scene.store, plan, said.append, scene.cache)
    assert removed == [f"debian13-base-{K_NEW}"]
    assert said == [f"kept debian13-base-{K_OLD}: an `oslab up` builds or uses it now"]
    left, found = gather(scene.conn, scene.store, scene.cache)
    assert sorted(b.name for b in left) == sorted(set(BASES) - {f"debian13-base-{K_NEW}"})
    assert not (scene.store / K_NEW).exists()
    assert sorted(p.name for p in scene.store.iterdir() if not p.name.endswith(".lock")) == \
        sorted({K_USED, K_OLD, K_CTL, K_DOM})
    # a second prune with no lock held takes the old one; the used ones never go
    removed = prune(scene.conn, scene.store, prune_plan(left, found, frozenset(), False),
                    said.append, scene.cache)
    assert removed == [f"debian13-base-{K_OLD}"]
    kept = {b.name for b in gather(scene.conn, scene.store, scene.cache)[0]}
    assert kept == {f"debian13-base-{K_USED}", f"debian13-controller-{K_CTL}",
                    f"debian13-compute-{K_DOM}"}


def test_prune_reads_the_uses_again(scene: Scene) -> None:
    """A lab made an overlay on the base after the plan was made: the base stays."""
    bases, found = gather(scene.conn, scene.store, scene.cache)
    plan = prune_plan(bases, found, frozenset(), keep_newest=False)
    lab = scene.conn.storagePoolLookupByName("lab1")
    lab.createXML(overlay("late.qcow2", f"{scene.cache.path}/debian13-base-{K_NEW}.qcow2"), 0)
    said: list[str] = []
    assert prune(scene.conn, scene.store, plan, said.append, scene.cache) == [
        f"debian13-base-{K_OLD}"]
    assert said == [f"kept debian13-base-{K_NEW}: used meanwhile by lab1"]


def test_prune_never_renames_an_entry_that_became_a_link(scene: Scene,
                                                        tmp_path: Path) -> None:
    """A cache entry swapped for a symbolic link after the plan was made: kept, untouched."""
    bases, found = gather(scene.conn, scene.store, scene.cache)
    plan = prune_plan(bases, found, frozenset(), keep_newest=False)
    real = tmp_path / "elsewhere"
    (scene.store / K_NEW).rename(real)
    (scene.store / K_NEW).symlink_to(real)
    said: list[str] = []
    assert prune(scene.conn, scene.store, plan, said.append, scene.cache) == [
        f"debian13-base-{K_OLD}"]
    assert said == [f"kept debian13-base-{K_NEW}: {scene.store / K_NEW} is no longer a "
                    "directory (a symbolic link?); left in place"]
    assert (scene.store / K_NEW).is_symlink() and (real / "manifest.json").is_file()


def test_an_inactive_pool_blocks_the_prune(scene: Scene) -> None:
    scene.conn.storagePoolLookupByName("other").destroy()
    with pytest.raises(OslabError) as err:
        gather(scene.conn, scene.store, scene.cache)
    assert err.value.message == (
        "storage pools other are inactive: their volumes may be overlays on a cached base, "
        "and libvirt cannot list them")
    assert err.value.hint is not None and "virsh pool-start" in err.value.hint


def run_cli(scene: Scene, *args: str) -> tuple[int, str]:
    env = {"XDG_CACHE_HOME": str(scene.store.parents[2])}
    result = CliRunner().invoke(cli, ["--uri", scene.uri, "images", *args], env=env)
    return result.exit_code, result.output


def test_images_cli_lists_and_dry_runs(tmp_path: Path) -> None:
    """The CLI opens its own connection, so the scene's pool sits at the real cache path only
    through the scenario: here the pool is absent and the host cache alone is listed."""
    store = tmp_path / "cache" / "oslab" / "debian" / "images"
    d = store / K_OLD
    d.mkdir(parents=True)
    (d / "manifest.json").write_text(json.dumps(
        {"name": f"debian13-base-{K_OLD}", "inputs": {"distro": "debian13", "role": "base"},
         "built_at": 1}))
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    runner = CliRunner()
    out = runner.invoke(cli, ["--uri", "test:///default", "images", "--json"], env=env)
    assert out.exit_code == 0, out.output
    [row] = json.loads(out.output)
    assert (row["name"], row["used_by"], row["volumes"]) == (f"debian13-base-{K_OLD}", [], [])
    out = runner.invoke(cli, ["--uri", "test:///default", "images", "--prune", "--dry-run",
                              "--all"], env=env)
    assert out.output == f"would remove debian13-base-{K_OLD}: unused\n"
    assert d.is_dir()
    out = runner.invoke(cli, ["--uri", "test:///default", "images", "--dry-run"], env=env)
    assert isinstance(out.exception, OslabError)
    assert out.exception.message == "--dry-run and --all only go with --prune"


def test_an_up_between_build_and_overlay_keeps_its_base(scene: Scene) -> None:
    """`oslab up` holds the base's use lock (shared) from choosing it until its overlays
    exist: no overlay shows it in use yet, and still a prune keeps it."""
    bases, found = gather(scene.conn, scene.store, scene.cache)
    plan = prune_plan(bases, found, frozenset(), keep_newest=False)
    said: list[str] = []
    with locked(use_path(scene.store, K_NEW), shared=True), \
            locked(use_path(scene.store, K_NEW), shared=True):  # two labs use it at once
        assert busy_keys(scene.store, bases) == frozenset({K_NEW})
        assert prune(scene.conn, scene.store, plan, said.append, scene.cache) == [
            f"debian13-base-{K_OLD}"]
    assert said == [f"kept debian13-base-{K_NEW}: an `oslab up` builds or uses it now"]
    assert (scene.store / K_NEW / "manifest.json").is_file()


def test_a_base_a_save_needs_is_kept(scene: Scene, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A save's disks are overlays on a base (and its nodes boot the base's kernel): no prune,
    not even with --all, removes it while the save lives."""
    saves = tmp_path / "saves"
    (saves / "s1").mkdir(parents=True)
    old = f"{scene.cache.path}/debian13-base-{K_OLD}"
    (saves / "s1" / "manifest.json").write_text(json.dumps({
        "format": 1, "name": "s1", "lab": "lab9", "nodes": [], "files": {},
        "distro": "debian13", "release": "epoxy", "created": "2026-12-07T10:00:00+00:00",
        "bases": [{"path": f"{old}.qcow2", "file": "", "sha256": ""},
                  {"path": f"{old}.vmlinuz", "file": "", "sha256": ""}]}))
    monkeypatch.setenv("OSLAB_SAVES_DIR", str(saves))
    bases, found = gather(scene.conn, scene.store, scene.cache)
    plan = {d.base.name: d for d in prune_plan(bases, found, frozenset(), keep_newest=False)}
    assert not plan[f"debian13-base-{K_OLD}"].remove
    assert plan[f"debian13-base-{K_OLD}"].reason == "used by save:s1"
    assert plan[f"debian13-base-{K_NEW}"].remove  # the same age, no save: it goes
    (saves / "s1" / "manifest.json").unlink()  # the save is deleted: the base may go
    bases, found = gather(scene.conn, scene.store, scene.cache)
    assert {d.base.name for d in prune_plan(bases, found, frozenset(), False) if d.remove} == {
        f"debian13-base-{K_OLD}", f"debian13-base-{K_NEW}"}
