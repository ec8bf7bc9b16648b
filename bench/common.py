"""Shared pieces of the benchmarks: test labs of the testlinux guest, driven by the real CLI."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.conftest import lab_spec_text  # noqa: E402


class BenchLab:
    def __init__(self, nodes: int, subnet: int, **lab_extra: object) -> None:
        self.name = f"bch{secrets.token_hex(3)}"
        self.home = Path(tempfile.mkdtemp(prefix=f"oslab-{self.name}-"))
        self.spec = self.home / "lab.toml"
        iso = os.environ["OSLAB_TEST_ISO"]
        self.spec.write_text(lab_spec_text(self.name, iso, nodes, subnet, **lab_extra))
        self.env = dict(os.environ, XDG_STATE_HOME=str(self.home / "state"),
                        XDG_CACHE_HOME=str(self.home / "cache"))
        self.nodes = ["ctl"] + [f"cmp{i}" for i in range(1, nodes)]

    def oslab(self, *args: str) -> tuple[float, str]:
        start = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "oslab", "-f", str(self.spec), *args],
                              env=self.env, capture_output=True, text=True, timeout=3600)
        took = time.monotonic() - start
        if proc.returncode != 0:
            raise SystemExit(f"oslab {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
        return took, proc.stdout

    def destroy(self) -> None:
        subprocess.run([sys.executable, "-m", "oslab", "-f", str(self.spec), "destroy", "--yes"],
                       env=self.env, capture_output=True, timeout=600)
        shutil.rmtree(self.home, ignore_errors=True)


def guest_iso() -> str:
    if not os.environ.get("OSLAB_TEST_ISO"):
        out = subprocess.run([str(REPO / "tests/guest/build.sh")], capture_output=True,
                             text=True, check=True)
        os.environ["OSLAB_TEST_ISO"] = out.stdout.strip().splitlines()[-1]
    return os.environ["OSLAB_TEST_ISO"]
