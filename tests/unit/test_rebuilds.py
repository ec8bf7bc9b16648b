"""`--fresh-image` stamps and the `.current` pointer, shared by Debian images and golden bases."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from oslab.errors import OslabError
from oslab.images import rebuilds


@dataclass(frozen=True)
class Inputs:
    name: str
    rebuild: str = ""

    def key(self) -> str:
        return self.name + (f"+{self.rebuild}" if self.rebuild else "")


def test_a_rebuild_is_chosen_while_cached_and_not_after(tmp_path: Path) -> None:
    plain = Inputs("base")
    have: set[str] = {plain.key()}

    def is_cached(i: Inputs) -> bool:
        return i.key() in have

    assert rebuilds.choose(plain, False, tmp_path, is_cached) == plain
    fresh = rebuilds.choose(plain, True, tmp_path, is_cached)
    assert fresh.rebuild and fresh.key() != plain.key()
    assert rebuilds.choose(plain, True, tmp_path, is_cached).rebuild != fresh.rebuild
    rebuilds.remember(fresh, tmp_path)
    assert rebuilds.choose(plain, False, tmp_path, is_cached) == plain, "not cached yet"
    have.add(fresh.key())
    assert rebuilds.choose(plain, False, tmp_path, is_cached) == fresh
    assert [p.name for p in tmp_path.iterdir()] == ["base.current"]
    have.discard(fresh.key())  # pruned: back to the plain base
    assert rebuilds.choose(plain, False, tmp_path, is_cached) == plain


def test_plain_inputs_leave_no_pointer(tmp_path: Path) -> None:
    rebuilds.remember(Inputs("base"), tmp_path / "images")
    assert not (tmp_path / "images").exists()


# (what the pointer holds, the error's message after "the rebuild pointer <path> ")
BAD_POINTERS = [
    (b"\xff\xfe\n", "is damaged: '\ufffd\ufffd' is not a rebuild stamp"),
    (b"x\ny\n", "is damaged: 'x\\ny' is not a rebuild stamp"),
    (b"20260101T000000.1" + b"0" * 5000, "is larger than 4 KiB"),
    (None, "is not a regular file"),  # a FIFO: never waited on
]


@pytest.mark.parametrize(("data", "problem"), BAD_POINTERS)
def test_a_damaged_pointer_is_an_error(tmp_path: Path, data: bytes | None, problem: str) -> None:
    path = tmp_path / "base.current"
    if data is None:
        os.mkfifo(path)
    else:
        path.write_bytes(data)
    with pytest.raises(OslabError) as err:
        rebuilds.choose(Inputs("base"), False, tmp_path, lambda _i: True)
    assert err.value.message == f"the rebuild pointer {path} {problem}"
    assert err.value.hint == f"remove {path}: the next `oslab up` uses the base of the plain inputs"
