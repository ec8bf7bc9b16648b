"""The ledger of the resources a verification creates, in creation order, kept in the lab's
state dir so that a run that died is cleaned up by the next one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from oslab.files import write_atomic


@dataclass(frozen=True)
class Created:
    """A resource the verification made; ``delete`` (openstack arguments) removes it."""

    kind: str
    ref: str  # ID (or name)
    who: str
    delete: str

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "ref": self.ref, "who": self.who, "delete": self.delete}


class Ledger:
    """Resources in creation order; persisted to ``path`` (if given) after every change."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self.items: list[Created] = []

    @classmethod
    def load(cls, path: Path) -> list[Created]:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return []
        return [Created(**item) for item in data if isinstance(item, dict)]

    def add(self, item: Created) -> None:
        self.items.append(item)
        self._save()

    def remove(self, item: Created) -> None:
        self.items.remove(item)
        self._save()

    def teardown_order(self) -> list[Created]:
        return list(reversed(self.items))

    def _save(self) -> None:
        if self.path is None:
            return
        if not self.items:
            self.path.unlink(missing_ok=True)
            return
        write_atomic(self.path, json.dumps([i.as_dict() for i in self.items], indent=1) + "\n")
