"""What the image builders share: templates, the cache layout, commands with their timing."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined

from oslab.access.state import cache_root
from oslab.errors import CommandError, HostError
from oslab.files import open_append

env = Environment(loader=PackageLoader("oslab.images", "templates"), undefined=StrictUndefined,
                  autoescape=False, keep_trailing_newline=True)
env.filters["quote"] = shlex.quote

Say = Callable[[str], None]


def debian_cache() -> Path:
    return cache_root() / "debian"


def digest(inputs: Mapping[str, object]) -> str:
    """A short hash of a build's inputs: the cache key of a repo or an image."""
    blob = json.dumps(inputs, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


LOCK_HINT = "remove it (oslab makes its lock files itself), then rerun"


@contextmanager
def locked(path: Path, shared: bool = False) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (made if missing): one builder per cache entry; or
    a shared one: many users, no remover."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open_append(path, "the lock file", LOCK_HINT) as f:
        fcntl.flock(f, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def run(argv: Sequence[str], say: Say, what: str, *,
        env_extra: Mapping[str, str] | None = None, hint: str | None = None,
        stdout: Path | None = None, cwd: Path | None = None) -> float:
    """Run ``argv``, print ``what`` and its time when it ends; returns the seconds taken.
    ``stdout`` sends standard output to a file. A failure carries the exact command line and
    the tail of its output."""
    start = time.monotonic()
    say(f"{what} ...")
    environ = dict(os.environ, **(env_extra or {}))
    if shutil.which(argv[0]) is None:
        raise HostError(f"{what}: {argv[0]} is not installed",
                        hint="run scripts/setup-host.sh (it installs mmdebstrap, apt-utils, "
                             "e2fsprogs and qemu-utils)")
    if stdout is None:
        proc = subprocess.run(list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              env=environ, cwd=cwd, check=False)
    else:
        with stdout.open("wb") as out:
            proc = subprocess.run(list(argv), stdout=out, stderr=subprocess.PIPE, env=environ,
                                  cwd=cwd, check=False)
    seconds = time.monotonic() - start
    if proc.returncode != 0:
        text = (proc.stdout if stdout is None else proc.stderr).decode(errors="replace")
        raise CommandError(argv, proc.returncode, text, hint=hint, where=what)
    say(f"{what}: done in {seconds:.1f}s")
    return seconds
