"""The Debian mirror this host's apt already uses, read from its apt sources.

Only the host's apt talks to the archive, so the default mirror for building a repository is
the one in the host's own sources: deb822 ``*.sources`` files and one-line ``sources.list``
files. Parsing is a pure function of the files' texts; ``host_mirror()`` reads them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from oslab.errors import HostError

APT_ETC = Path("/etc/apt")
# Debian's release suites and codenames; "-updates", "-backports" and "-security" suites are
# separate archives layered on the main one and never its root.
DEBIAN_SUITES = frozenset({
    "oldoldstable", "oldstable", "stable", "testing", "unstable", "sid", "experimental",
    "buster", "bullseye", "bookworm", "trixie", "forky", "duke",
})
_OPTIONS = re.compile(r"^\[[^\]]*\]\s*")


@dataclass(frozen=True)
class Source:
    """One ``deb`` entry: a URI with one suite and its components."""

    uri: str
    suite: str
    components: tuple[str, ...]


def parse_one_line(text: str) -> list[Source]:
    """``deb [options] URI SUITE COMPONENT...`` lines; ``deb-src`` and comments are skipped."""
    out = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line.startswith("deb "):
            continue
        rest = _OPTIONS.sub("", line[4:].strip())
        parts = rest.split()
        if len(parts) >= 2:
            out.append(Source(parts[0], parts[1], tuple(parts[2:])))
    return out


def parse_deb822(text: str) -> list[Source]:
    """Stanzas of ``Types``/``URIs``/``Suites``/``Components``; ``Enabled: no`` is skipped."""
    out: list[Source] = []
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = ""
        for raw in stanza.splitlines():
            if raw.startswith("#") or not raw.strip():
                continue
            if raw[0] in " \t" and key:
                fields[key] += " " + raw.strip()
                continue
            key, _, value = raw.partition(":")
            key = key.strip().lower()
            fields[key] = value.strip()
        if "deb" not in fields.get("types", "").split():
            continue
        if fields.get("enabled", "yes").lower() == "no":
            continue
        components = tuple(fields.get("components", "").split())
        for uri in fields.get("uris", "").split():
            out.extend(Source(uri, suite, components)
                       for suite in fields.get("suites", "").split())
    return out


def debian_mirror(sources: Iterable[Source]) -> str | None:
    """The first source that is a Debian release suite with ``main``, as a URI without a
    trailing slash; None when there is none."""
    for src in sources:
        if src.suite in DEBIAN_SUITES and "main" in src.components:
            return src.uri.rstrip("/")
    return None


def read_host_sources(etc: Path = APT_ETC) -> list[Source]:
    """Every ``deb`` entry of the host's apt configuration, in apt's order."""
    found: list[Source] = []
    main_list = etc / "sources.list"
    if main_list.is_file():
        found += parse_one_line(main_list.read_text(errors="replace"))
    parts = etc / "sources.list.d"
    if parts.is_dir():
        for path in sorted(parts.iterdir()):
            if path.suffix == ".list":
                found += parse_one_line(path.read_text(errors="replace"))
            elif path.suffix == ".sources":
                found += parse_deb822(path.read_text(errors="replace"))
    return found


def host_mirror(etc: Path = APT_ETC) -> str:
    mirror = debian_mirror(read_host_sources(etc))
    if mirror is None:
        raise HostError(
            f"no Debian mirror in this host's apt sources ({etc}/sources.list, "
            f"{etc}/sources.list.d/*.sources)",
            hint="set [packages] mirror in the lab spec to a Debian mirror's URL")
    return mirror
