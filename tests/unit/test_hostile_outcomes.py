"""Round two's hostile inputs that are not an error row (issue 24): `check` and `up` judging
a lab alike, a warning where oslab leaves a thing alone, oslab's own names still its own. The
error rows are in test_hostile_inputs.py."""

from __future__ import annotations

import json
import os

import libvirt
import pytest

from oslab.snapshots.checkpoint import Checkpoints
from oslab.snapshots.snapshot import LabSnapshots, SnapshotError
from tests.unit.test_bad_inputs import DEFAULT, EMPTY_HOST, World, one_node_host, tree, world
from tests.unit.test_hostile_inputs import (
    DEBIAN,
    IMAGES,
    MANIFEST,
    cached_base,
    iso_path,
    with_image,
)

__all__ = ["world"]  # the fixture, for the tests here


def host(world: World) -> str:
    path = world.root / "cwd" / "host.xml"
    path.write_text(EMPTY_HOST)
    return f"test://{path}"


def test_check_and_up_judge_the_verify_image_alike(world: World) -> None:
    """One validation for both, and one rule for a relative path: the spec's directory, from
    whatever directory oslab runs in."""
    labs = world.root / "labs"
    (labs / "img").mkdir(parents=True)
    (labs / "img" / "inst.qcow2").write_bytes(b"QFI\xfb")
    spec = labs / "lab.toml"
    spec.write_text(with_image("img/inst.qcow2"))
    uri = host(world)
    before = tree(world.root)
    line = (f"verify-image: [verify] image: the instance image {labs}/img/inst.qcow2 has no "
            f"manifest {labs}/img/inst.qcow2.json")
    check = world.run("-f", str(spec), "--uri", uri, "check")
    assert check.returncode == 1
    assert f"block  {line}" in check.stdout.splitlines()
    up = world.run("-f", str(spec), "--uri", uri, "up")
    assert up.returncode == 2
    assert f"  - {line}" in up.stderr.splitlines()
    assert tree(world.root) == before
    (labs / "img" / "inst.qcow2.json").write_text(json.dumps(MANIFEST))
    check = world.run("-f", str(spec), "--uri", uri, "check")
    assert (f"   ok  verify-image: instances boot {labs}/img/inst.qcow2 (as cirros, qcow2)"
            in check.stdout.splitlines()), check.stdout


def test_a_relative_iso_path_starts_at_the_spec(world: World) -> None:
    labs = world.root / "labs"
    labs.mkdir()
    (labs / "boot.iso").write_bytes(b"an ISO")
    (labs / "lab.toml").write_text(iso_path("boot.iso"))
    check = world.run("-f", str(labs / "lab.toml"), "--uri", host(world), "check")
    assert f"   ok  iso: the installer ISO is {labs}/boot.iso" in check.stdout.splitlines()


def test_an_iso_never_blocks_a_debian_lab(world: World) -> None:
    """Debian nodes boot base images: [iso] is ignored with a warning, by check and by up."""
    text = DEBIAN + '\n[iso]\npath = "/nonexistent/boot.iso"\n'
    spec = world.spec(text)
    uri = host(world)
    before = tree(world.root)
    check = world.run("-f", spec, "--uri", uri, "check")
    assert (" warn  iso: debian13 nodes boot base images built on this host; [iso] is not used"
            in check.stdout.splitlines())
    assert not [line for line in check.stdout.splitlines() if line.startswith("block")]
    assert check.returncode == 0, check.stdout
    # up on the same lab without its compute node: refused for that alone, not for the ISO
    lab = world.spec(DEBIAN[:DEBIAN.index('[[nodes]]\nname = "compute1"')]
                     + '\n[iso]\npath = "/nonexistent/boot.iso"\n', "nocompute.toml")
    up = world.run("-f", lab, "--uri", uri, "up")
    assert up.returncode == 2
    assert "  - roles: the lab has no compute node" in up.stderr
    assert "iso" not in up.stderr
    assert tree(world.root) == {**before, "cwd/nocompute.toml": tree(world.root)[
        "cwd/nocompute.toml"]}


def test_prune_leaves_a_linked_cache_entry_alone(world: World) -> None:
    """A cache entry that is a symbolic link is not followed, renamed or removed: a warning
    says it was skipped; the real base beside it is pruned."""
    cached_base(1)(world)
    elsewhere = world.root / "other" / "base"
    elsewhere.mkdir()
    (elsewhere / "manifest.json").write_text(json.dumps(
        {"name": "debian13-base-" + "b" * 16, "inputs": {"distro": "debian13", "role": "base"},
         "built_at": 2}))
    link = world.root / IMAGES / ("b" * 16)
    link.symlink_to(elsewhere)
    result = world.run("--uri", "test:///default", "images", "--prune", "--all")
    assert result.returncode == 0, result.stderr
    assert (f"warning: skipped {link}: a symbolic link, not a base oslab built; left in place"
            in result.stderr.splitlines())
    assert "removed 1 base image(s)" in result.stdout
    assert link.is_symlink() and link.resolve() == elsewhere
    assert (elsewhere / "manifest.json").is_file()
    assert sorted(p.name for p in (world.root / IMAGES).iterdir()) == ["b" * 16]


@pytest.mark.skipif(os.geteuid() != 0, reason="mknod needs root")
def test_init_force_never_replaces_a_device(world: World) -> None:
    """A twin of /dev/null in the scratch world, never the host's own: without the fix this
    test replaced the device it names."""
    device = world.root / "cwd" / "null"
    os.mknod(device, 0o666 | 0o020000, os.makedev(1, 3))  # S_IFCHR: /dev/null's twin
    before = tree(world.root)
    result = world.run("init", "--force", str(device))
    assert result.returncode == 2
    assert result.stderr.splitlines()[0] == (
        f"error: {device} is not a regular file; oslab init writes a new file or, with "
        "--force, replaces a regular one")
    assert tree(world.root) == before


def test_checkpoints_take_the_reserved_names_users_cannot(world: World) -> None:
    """oslab's own path (Checkpoints, LabSnapshots.take_reserved) takes and retakes auto-*;
    the user's (LabSnapshots.take, `oslab snapshot`) is refused it before libvirt is asked."""
    conn = libvirt.open(f"test://{one_node_host(world)}")
    try:
        said: list[str] = []
        checkpoints = Checkpoints(conn, "lab", say=said.append)
        assert checkpoints.take("os") is not None
        assert checkpoints.take("os") is not None  # a rerun replaces it
        snaps = LabSnapshots(conn, "lab")
        with pytest.raises(SnapshotError, match=r"^snapshot names starting with 'auto-' are "):
            snaps.take("auto-os")
        with pytest.raises(ValueError):
            snaps.take_reserved("mine")  # a bug, not the user's: the internal path is exact
        snaps.take("mine")
        assert sorted(s.name for s in snaps.snapshots()) == ["auto-os", "mine"]
    finally:
        conn.close()


def test_packages_on_a_centos_lab_are_a_warning(world: World) -> None:
    spec = world.spec(DEFAULT + '\n[packages]\nsource = "local"\n')
    check = world.run("-f", spec, "--uri", host(world), "check")
    assert check.returncode == 0, check.stdout
    assert (" warn  packages: centos-stream9 nodes install from their distro's repositories; "
            "[packages] is for Debian labs and is not used") in check.stdout.splitlines()
