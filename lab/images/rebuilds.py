"""``oslab up --fresh-image`` for Debian's base images and the golden bases alike.

A rebuild puts a new stamp into its inputs, so it gets a new key and the base that existing
overlays use stays where it is. A ``<key>.current`` file in the images directory names the latest
rebuild; later runs choose it while it is still cached, else the base of the plain inputs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar


class Stamped(Protocol):
    """The inputs of a cached base: a frozen dataclass with a rebuild stamp and a key."""

    __dataclass_fields__: ClassVar[dict[str, Any]]

    @property
    def rebuild(self) -> str: ...

    def key(self) -> str: ...


S = TypeVar("S", bound=Stamped)


def new_stamp() -> str:
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + f".{time.time_ns() % 10**9}"


def pointer(directory: Path, inputs: Stamped) -> Path:
    """The file naming the latest rebuild of ``inputs`` (of their plain form)."""
    return directory / f"{replace(inputs, rebuild='').key()}.current"


def choose(inputs: S, fresh: bool, directory: Path, is_cached: Callable[[S], bool]) -> S:
    """What to build or use for ``inputs``: with ``fresh``, a new rebuild stamp; else the
    latest rebuild while ``is_cached`` says it is, else ``inputs`` themselves."""
    if fresh:
        return replace(inputs, rebuild=new_stamp())
    path = pointer(directory, inputs)
    if path.is_file():
        latest = replace(inputs, rebuild=path.read_text().strip())
        if is_cached(latest):
            return latest
    return inputs


def remember(inputs: Stamped, directory: Path) -> None:
    """Make a rebuild the one later runs choose (atomically: a reader sees the old or the new)."""
    if not inputs.rebuild:
        return
    path = pointer(directory, inputs)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(inputs.rebuild + "\n")
    tmp.rename(path)
