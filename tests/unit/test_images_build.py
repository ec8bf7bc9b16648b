"""What a failed base-image build leaves mounted is found, so removing its work tree never walks
into the repository that mmdebstrap's hook bind-mounted into the chroot."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import cast

import pytest

from oslab.errors import OslabError
from oslab.images.build import (
    BASE_PACKAGES,
    FORMAT,
    ImageInputs,
    build_image,
    chosen_inputs,
    mount_points_below,
)
from oslab.images.common import digest
from oslab.images.repo import Repo, RepoInputs

MOUNTINFO = """\
22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda rw
98 22 254:1 /r/ab /w/oslab-image-x/root/root/.cache/oslab/debian/repos/ab ro - ext4 /dev/vda ro
99 22 0:52 / /w/oslab-image-x/root/proc rw - proc proc rw
100 99 0:53 / /w/oslab-image-x/root/proc/sys/fs/binfmt_misc rw - binfmt_misc b rw
101 22 0:54 / /w/oslab-image-xy rw - tmpfs t rw
102 22 0:55 / /w/oslab\\040image/root rw - tmpfs t rw
"""


@pytest.mark.parametrize(("path", "expected"), [
    ("/w/oslab-image-x", ["/w/oslab-image-x/root/root/.cache/oslab/debian/repos/ab",
                          "/w/oslab-image-x/root/proc/sys/fs/binfmt_misc",
                          "/w/oslab-image-x/root/proc"]),
    ("/w/oslab image", ["/w/oslab image/root"]),
    ("/w/elsewhere", []),
])
def test_mounts_a_failed_build_left_are_found_deepest_first(path: str,
                                                             expected: list[str]) -> None:
    assert mount_points_below(Path(path), MOUNTINFO) == expected


INPUTS = ImageInputs("debian13", "trixie", "base", "r1")


def test_an_unset_rebuild_stamp_keeps_the_old_keys() -> None:
    """Bases built before --fresh-image existed keep their key; a stamp makes a new one."""
    old = digest({"format": FORMAT, "base": BASE_PACKAGES, "distro": "debian13",
                  "suite": "trixie", "role": "base", "repo": "r1", "packages": (),
                  "preseed": "", "files": ()})
    assert INPUTS.key() == old
    assert replace(INPUTS, rebuild="s1").key() not in (old, replace(INPUTS, rebuild="s2").key())


def cached(cache: Path, inputs: ImageInputs) -> None:
    (cache / "images" / inputs.key()).mkdir(parents=True)
    (cache / "images" / inputs.key() / "manifest.json").write_text("{}")


def test_later_runs_use_the_latest_fresh_image(tmp_path: Path) -> None:
    said: list[str] = []
    repo = cast(Repo, None)  # a cached image never reads the repository
    cached(tmp_path, INPUTS)
    assert chosen_inputs(INPUTS, False, tmp_path) == INPUTS
    fresh = chosen_inputs(INPUTS, True, tmp_path)
    assert fresh.rebuild and fresh.key() != INPUTS.key()
    assert chosen_inputs(INPUTS, False, tmp_path) == INPUTS, "not built yet: not chosen"
    cached(tmp_path, fresh)
    image = build_image(repo, fresh, said.append, tmp_path)  # publishes the rebuild
    assert (image.inputs, image.dir) == (fresh, tmp_path / "images" / fresh.key())
    assert said[-1] == f"base image debian13-base-{fresh.key()}: cached"
    assert chosen_inputs(INPUTS, False, tmp_path) == fresh
    # the fresh one pruned: back to the base of the plain inputs
    (tmp_path / "images" / fresh.key() / "manifest.json").unlink()
    assert chosen_inputs(INPUTS, False, tmp_path) == INPUTS


def test_a_build_leaves_no_work_tree_nor_one_a_killed_build_left(tmp_path: Path) -> None:
    """The work tree is named by the image's key: a build killed with it (kill -9, a power
    loss) left it behind, and the next build of that image removes it, as a failed build
    removes its own (and its unfinished image). Real mmdebstrap, on an empty repository: it
    fails in seconds."""
    empty = tmp_path / "repo"
    empty.mkdir()
    stale = tmp_path / "images" / f"{INPUTS.key()}.work"
    (stale / "root" / "usr").mkdir(parents=True)
    (stale / "root" / "usr" / "big").write_bytes(b"\0" * 4096)
    said: list[str] = []
    with pytest.raises(OslabError) as info:
        build_image(Repo(empty, RepoInputs.of("trixie", "http://deb.debian.org/debian", [])),
                    INPUTS, said.append, tmp_path)
    assert "mmdebstrap trixie for base" in info.value.message
    # only the lock file, which is how builds of one image take turns
    assert [p.name for p in (tmp_path / "images").iterdir()] == [f"{INPUTS.key()}.lock"]
