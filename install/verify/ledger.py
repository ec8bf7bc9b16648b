"""The ledger of the resources a verification creates, in creation order, kept in the lab's
state dir so that a run that died is cleaned up by the next one.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from oslab.errors import OslabError
from oslab.files import read_small, write_atomic
from oslab.install import openrc
from oslab.install.verify.checklist import PREFIX


@dataclass(frozen=True)
class Created:
    """A resource the verification made; ``delete`` (openstack arguments) removes it."""

    kind: str
    ref: str  # ID (or name)
    who: str
    delete: str

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "ref": self.ref, "who": self.who, "delete": self.delete}


MAX_LEDGER_BYTES = 1 << 20  # a run creates a dozen resources
_KIND = re.compile(r"[a-z][a-z ]{0,31}")
_REF = re.compile(r"[A-Za-z0-9._-]{1,255}")
# words of an `openstack` command line: names, IDs and options, nothing a shell reads
_WORD = re.compile(r"[A-Za-z0-9._:-]{1,255}")


def _entry(item: object) -> bool:
    """``item`` is an entry verify writes: its delete is safe in a shell command."""
    if not (isinstance(item, dict) and set(item) == {"kind", "ref", "who", "delete"}
            and all(isinstance(v, str) for v in item.values())):
        return False
    words = item["delete"].split(" ")
    return bool(_KIND.fullmatch(item["kind"]) and _REF.fullmatch(item["ref"])
                and item["who"] in openrc.USERS and 2 <= len(words) <= 8
                and all(_WORD.fullmatch(w) for w in words))


class Ledger:
    """Resources in creation order; persisted to ``path`` (if given) after every change."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self.items: list[Created] = []

    @classmethod
    def load(cls, path: Path) -> list[Created]:
        """What an earlier run left, as it wrote it. Each entry's delete command runs on the
        controller, so an entry that is not one verify writes is refused, never run."""
        hint = (f"it lists what an earlier `oslab verify` left in the cloud; remove it (rm "
                f"{path}), delete the {PREFIX}-* resources by hand (`oslab openrc admin`), "
                "then rerun")
        try:
            data = json.loads(read_small(path, MAX_LEDGER_BYTES, "the verify ledger", hint))
        except (ValueError, RecursionError) as exc:
            raise OslabError(f"the verify ledger {path} is damaged: {exc}", hint=hint) from exc
        if not isinstance(data, list) or not all(_entry(item) for item in data):
            raise OslabError(f"the verify ledger {path} is damaged: not a list of the "
                             "resources verify creates", hint=hint)
        return [Created(**item) for item in data]

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
