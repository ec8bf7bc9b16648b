"""The Debian 13 labs of the integration tests, as edits of the suite's lab spec text, and the
package repositories they need, built on the host before the tests enter their namespace.

Only the host's apt may reach Debian's archive (the network rule), and the tests run inside a
network namespace that reaches nothing. So ``python -m tests.debian_specs [SPEC...]``, run by
scripts/test.sh and scripts/e2e.sh in the root namespace, builds (or finds cached) the package
repository of every Debian lab the tests make, and of each SPEC file given. A repository is
cached by its inputs (suite, mirror, package set), so `oslab up` inside the namespace then
finds it; base images build from it there, with no network.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path


def identity_spec(text: str) -> str:
    """A one-node lab of the suite (lab_spec_text) as test_debian_identity's Debian 13 lab:
    scope identity, its packages baked into the base image."""
    text = text.replace('distro = "testlinux"', 'distro = "debian13"\nscope = "identity"')
    text = text.replace("memory_mib = 384", "memory_mib = 3072")
    text = text.replace("vcpus = 1", "vcpus = 2")
    text = text.replace("disk_gib = 2", "disk_gib = 8")
    text = text.replace("boot_timeout_s = 300", "boot_timeout_s = 900")
    return text + '\n[packages]\nsource = "local"\nbake = true\n'


def image_spec(text: str) -> str:
    """A lab of the suite as test_debian_image's Debian 13 lab: a base image without role
    packages, the local repository served to the nodes."""
    text = text.replace('distro = "testlinux"', 'distro = "debian13"')
    text = text.replace("memory_mib = 384", "memory_mib = 768")
    text = text.replace("boot_timeout_s = 300", "boot_timeout_s = 900")
    return text + '\n[packages]\nsource = "local"\nbake = false\n'


def suite_specs() -> list[str]:
    from tests.conftest import lab_spec_text

    def base(nodes: int) -> str:
        return lab_spec_text("prefetch", "/nonexistent.iso", nodes, 64)

    return [identity_spec(base(1)), image_spec(base(2))]


def fetch(texts: list[str]) -> None:
    """Build (or find) the package repository of each lab spec text."""
    from oslab import preflight, spec_file
    from oslab.access.state import LabState
    from oslab.resolve import lab_repository

    virt_type = preflight.choose_virt_type()[0].virt_type
    with tempfile.TemporaryDirectory(prefix="oslab-prefetch-") as state:
        # the install content makes the lab's passwords as it lists the packages: not the
        # user's state
        os.environ["XDG_STATE_HOME"] = state
        for text in texts:
            spec = spec_file.parse(text)
            repo = lab_repository(spec, LabState(spec.name), virt_type,
                                  lambda line: print(f"debian repos: {line}", flush=True))
            if repo is not None:
                print(f"debian repos: {spec.name} ({virt_type}): {repo.path}", flush=True)


def main(argv: list[str]) -> int:
    fetch(suite_specs() + [Path(p).read_text() for p in argv])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
