"""A flat Debian package repository on the host, built from packages the host's apt fetched.

apt runs with its own configuration under the cache (its own sources, lists, archive cache and
an empty dpkg status), so it resolves the closure of a package set for the suite from an empty
system with ``--no-install-recommends``, and downloads it without touching the host's apt
state. The closure always holds every ``Essential`` and ``Priority: required`` package, which
is what mmdebstrap needs to bootstrap from the repository. ``apt-ftparchive`` then indexes the
debs into a flat repository whose Release names the suite as ``Suite`` and ``Codename``
(mmdebstrap ignores a flat repository without them).

Repositories are cached by the hash of their inputs (suite, mirror, package set); the apt state
and its archive of downloaded debs are shared per (suite, mirror), so a larger set downloads
only what it adds.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from oslab.errors import CommandError
from oslab.images.common import Say, debian_cache, digest, env, locked, run

KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
FORMAT = 1  # bump when the repository layout changes
# What mmdebstrap's "required" variant installs, and apt to install the rest with.
BOOTSTRAP_PATTERNS = ("?essential", "?priority(required)", "apt")


@dataclass(frozen=True)
class RepoInputs:
    suite: str
    mirror: str
    packages: tuple[str, ...]  # sorted, unique

    @classmethod
    def of(cls, suite: str, mirror: str, packages: tuple[str, ...] | list[str]) -> RepoInputs:
        return cls(suite, mirror.rstrip("/"), tuple(sorted(set(packages))))

    def key(self) -> str:
        return digest({"format": FORMAT, "suite": self.suite, "mirror": self.mirror,
                       "packages": self.packages})


@dataclass(frozen=True)
class Planned:
    """One package apt would install: ``Inst NAME (VERSION SUITE [ARCH])``."""

    name: str
    version: str
    arch: str

    @property
    def deb_name(self) -> str:
        """The file apt's archive keeps it as (an epoch's ':' is escaped as '%3a')."""
        return f"{self.name}_{self.version.replace(':', '%3a')}_{self.arch}.deb"


_INST = re.compile(r"^Inst (?P<name>\S+) (?:\[[^\]]*\] )?"
                   r"\((?P<version>\S+) .*\[(?P<arch>[^\]]+)\]\)")


def parse_simulation(text: str) -> list[Planned]:
    """The packages of ``apt-get install --simulate`` output (its ``Inst`` lines)."""
    out = []
    for line in text.splitlines():
        m = _INST.match(line)
        if m:
            out.append(Planned(m["name"], m["version"], m["arch"]))
    return out


@dataclass(frozen=True)
class Repo:
    path: Path  # the directory with the debs, Packages and Release
    inputs: RepoInputs

    @property
    def file_uri(self) -> str:
        return f"file://{self.path}"

    def debs(self) -> list[Path]:
        return sorted(self.path.glob("*.deb"))


def host_arch() -> str:
    out = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True,
                         check=True)
    return out.stdout.strip()


def apt_conf(root: Path, suite: str, arch: str) -> str:
    return env.get_template("apt.conf.j2").render(root=root, suite=suite, arch=arch)


def sources_list(mirror: str, suite: str, keyring: str = KEYRING) -> str:
    return env.get_template("sources.list.j2").render(mirror=mirror, suite=suite,
                                                      keyring=keyring)


def release_options(suite: str) -> list[str]:
    """apt-ftparchive options for the flat repository's Release file."""
    fields = {"Origin": "oslab", "Label": "oslab", "Suite": suite, "Codename": suite,
              "Components": "main", "Description": f"oslab local repository for {suite}"}
    return [f"-oAPT::FTPArchive::Release::{k}={v}" for k, v in fields.items()]


class AptRoot:
    """apt's own state for one (suite, mirror), under the cache."""

    def __init__(self, suite: str, mirror: str, base: Path | None = None) -> None:
        self.suite = suite
        self.mirror = mirror
        self.dir = (base or debian_cache()) / "apt" / f"{suite}-{digest({'m': mirror})}"

    @property
    def config(self) -> Path:
        return self.dir / "apt.conf"

    @property
    def archives(self) -> Path:
        return self.dir / "cache" / "archives"

    def prepare(self) -> None:
        for sub in ("state", "lists/partial", "cache/archives/partial"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        (self.dir / "status").write_text("")  # nothing installed: resolve from an empty system
        self.config.write_text(apt_conf(self.dir, self.suite, host_arch()))
        (self.dir / "sources.list").write_text(sources_list(self.mirror, self.suite))

    def apt_get(self, *args: str) -> list[str]:
        return ["apt-get", "-q", "-y", "-o", "DPkg::Lock::Timeout=600", *args]

    @property
    def environ(self) -> dict[str, str]:
        return {"APT_CONFIG": str(self.config), "DEBIAN_FRONTEND": "noninteractive"}


def build_repo(inputs: RepoInputs, say: Say, base: Path | None = None) -> Repo:
    """The flat repository for ``inputs``, from the cache or built now."""
    cache = base or debian_cache()
    path = cache / "repos" / inputs.key()
    repo = Repo(path, inputs)
    with locked(cache / "repos" / f"{inputs.key()}.lock"):
        if (path / "Release").is_file():
            say(f"package repository {path.name}: cached ({len(repo.debs())} debs)")
            return repo
        start = time.monotonic()
        apt = AptRoot(inputs.suite, inputs.mirror, cache)
        with locked(apt.dir.with_suffix(".lock")):
            apt.prepare()
            run(apt.apt_get("update"), say, f"apt update for {inputs.suite}",
                env_extra=apt.environ,
                hint="check that this host's apt reaches the mirror (or set [packages] mirror)")
            install = apt.apt_get("install", "--no-install-recommends", *BOOTSTRAP_PATTERNS,
                                  *inputs.packages)
            sim = subprocess.run([*install, "--simulate"], capture_output=True, text=True,
                                 env=dict(os.environ, **apt.environ), check=False)
            if sim.returncode != 0:
                raise CommandError([*install, "--simulate"], sim.returncode,
                                   sim.stdout + sim.stderr, where="resolve the package closure",
                                   hint=f"a package may not exist in {inputs.suite}")
            closure = parse_simulation(sim.stdout)
            run([*install, "--download-only"], say,
                f"download the closure of {len(inputs.packages)} packages "
                f"({len(closure)} debs)", env_extra=apt.environ)
            tmp = path.with_name(path.name + ".tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            for pkg in closure:
                os.link(apt.archives / pkg.deb_name, tmp / pkg.deb_name)
        index(tmp, inputs.suite, say)
        tmp.rename(path)
        size = sum(d.stat().st_size for d in repo.debs())
        say(f"package repository {path.name}: {len(repo.debs())} debs, {size / 1e6:.0f} MB, "
            f"in {time.monotonic() - start:.1f}s")
        return repo


def index(path: Path, suite: str, say: Say) -> None:
    """Write the flat repository's Packages and a Release that names the suite."""
    run(["apt-ftparchive", "packages", "."], say, "index the debs (apt-ftparchive packages)",
        stdout=path / "Packages", cwd=path)
    run(["apt-ftparchive", *release_options(suite), "release", "."], say,
        "write the Release file", stdout=path / "Release.tmp", cwd=path)
    (path / "Release.tmp").rename(path / "Release")
