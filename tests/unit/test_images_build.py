"""What a failed base-image build leaves mounted is found, so removing its work tree never walks
into the repository that mmdebstrap's hook bind-mounted into the chroot."""

from __future__ import annotations

from pathlib import Path

import pytest

from oslab.images.build import mount_points_below

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
