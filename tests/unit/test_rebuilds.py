"""`--fresh-image` stamps and the `.current` pointer, shared by Debian images and golden bases."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

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
