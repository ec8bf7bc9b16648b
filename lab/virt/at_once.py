"""One libvirt operation on every node of a lab at once (pause, snapshot, save, restore,
resume), with every node's error kept: none is lost to the first."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import libvirt

from oslab.errors import OslabError
from oslab.virt.lab_objects import virt_error

T = TypeVar("T")
R = TypeVar("R")


def each(fn: Callable[[T], R], items: Sequence[T]) -> list[tuple[T, R | BaseException]]:
    """``fn`` on every item at once; each item with its result, or the libvirt or oslab error
    it raised (any other exception is a bug, and is raised)."""
    def guarded(item: T) -> R | BaseException:
        try:
            return fn(item)
        except (libvirt.libvirtError, OslabError) as exc:
            return exc
    with ThreadPoolExecutor(max_workers=max(1, len(items))) as pool:
        return list(zip(items, pool.map(guarded, items), strict=True))


def every(fn: Callable[[T], R], items: Sequence[T], *, who: Callable[[T], str],
          doing: Callable[[T], str], error: type[OslabError], hint: str) -> list[R]:
    """``fn`` on every item at once, and its results; when any fails, ``error`` naming each
    failure (``who: what libvirt said while doing``) with the first failure's own hint, else
    ``hint``."""
    results: list[R] = []
    errors: list[str] = []
    first_hint = ""
    for item, got in each(fn, items):
        if isinstance(got, libvirt.libvirtError):
            errors.append(f"{who(item)}: {virt_error(got, doing(item)).message}")
        elif isinstance(got, OslabError):
            errors.append(f"{who(item)}: {got.message}")
            first_hint = first_hint or got.hint or ""
        else:
            results.append(got)  # type: ignore[arg-type]  # not an exception: fn's result
    if errors:
        raise error("; ".join(errors), hint=first_hint or hint)
    return results
