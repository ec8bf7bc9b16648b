"""``oslab up --fresh-image`` for Debian's base images and the golden bases alike.

A rebuild puts a new stamp into its inputs, so it gets a new key and the base that existing
overlays use stays where it is. A ``<key>.current`` file in the images directory names the latest
rebuild; later runs choose it while it is still cached, else the base of the plain inputs.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar

from oslab.errors import OslabError
from oslab.files import read_small, write_atomic

STAMP = re.compile(r"[0-9]{8}T[0-9]{6}\.[0-9]{1,9}")  # what new_stamp makes


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
    if os.path.lexists(path):
        latest = replace(inputs, rebuild=read_stamp(path))
        if is_cached(latest):
            return latest
    return inputs


def read_stamp(path: Path) -> str:
    """The rebuild stamp in ``path``, as :func:`new_stamp` made it (a small regular file)."""
    hint = f"remove {path}: the next `oslab up` uses the base of the plain inputs"
    text = read_small(path, 4096, "the rebuild pointer", hint).decode(errors="replace").strip()
    if not STAMP.fullmatch(text):
        raise OslabError(f"the rebuild pointer {path} is damaged: {text[:40]!r} is not a "
                         "rebuild stamp", hint=hint)
    return text


def remember(inputs: Stamped, directory: Path) -> None:
    """Make a rebuild the one later runs choose (atomically: a reader sees the old or the new)."""
    if not inputs.rebuild:
        return
    path = pointer(directory, inputs)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, inputs.rebuild + "\n")
