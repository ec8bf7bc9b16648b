"""The ledger of the resources a verification creates, in creation order, kept in the lab's
state dir so that a run that died is cleaned up by the next one.

A ledger that cannot be read is an error, never an empty list: the resources it lists may
still be in the cloud, and the next run would write over the file. The error names the file,
what can still be read of it (:func:`salvage`) and how to clear it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, fields
from pathlib import Path

from oslab.errors import OslabError
from oslab.files import read_small_if_any, write_atomic
from oslab.install import openrc
from oslab.install.verify.checklist import PREFIX

# one "field": "string" pair of an entry, read out of a ledger that is no longer JSON
_FIELD = re.compile(r'"(kind|ref|who|delete)"\s*:\s*"((?:[^"\\]|\\.)*)"')
SHOWN = 20  # the hint lists this many of the resources a damaged ledger names


@dataclass(frozen=True)
class Created:
    """A resource the verification made; ``delete`` (openstack arguments) removes it."""

    kind: str
    ref: str  # ID (or name)
    who: str
    delete: str

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "ref": self.ref, "who": self.who, "delete": self.delete}

    def said(self) -> str:
        """The resource and, where known, how to delete it by hand."""
        how = (f" (`openstack {self.delete}` as {self.who})"
               if _safe_delete(self.delete) and self.who in openrc.USERS else "")
        return f"{self.kind or 'resource'} {self.ref}{how}"


def salvage(text: str) -> list[Created]:
    """What a damaged ledger may still name: every entry with a ``ref``, its other fields
    where they can be read ("" where not), read field by field so that a truncated or
    hand-edited file still gives what it holds."""
    found = []
    for chunk in text.split("{")[1:]:
        values = dict(_FIELD.findall(chunk.split("}")[0]))
        if values.get("ref"):
            found.append(Created(**{f.name: values.get(f.name, "") for f in fields(Created)}))
    return found


def damaged(path: Path, reason: str, text: str) -> OslabError:
    """The error of a ledger that cannot be read: the file, why, what it may name, and how to
    clear it."""
    named = salvage(text)
    if named:
        shown = ", ".join(c.said() for c in named[:SHOWN])
        more = f" and {len(named) - SHOWN} more" if len(named) > SHOWN else ""
        may = f"it may name: {shown}{more}; delete those still in the cloud"
    else:
        may = ("it names no resource oslab can read; look for verify's in the cloud "
               f"(named {PREFIX}-*: `openstack server list`, `volume list`, `network list`, "
               "`image list`) and delete them")
    return OslabError(
        f"the verify ledger {path} cannot be read ({reason}): the resources of the run that "
        "wrote it may still be in the cloud, and this run would forget them",
        hint=f"{may} (`oslab openrc admin` and `oslab openrc demo` give the credentials), then "
             f"remove {path} and run `oslab verify` again")


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
    return bool(_KIND.fullmatch(item["kind"]) and _REF.fullmatch(item["ref"])
                and item["who"] in openrc.USERS and _safe_delete(item["delete"]))


def _safe_delete(delete: str) -> bool:
    """``delete`` is an `openstack` command line verify writes: nothing a shell reads."""
    words = delete.split(" ")
    return 2 <= len(words) <= 8 and all(_WORD.fullmatch(w) for w in words)


class Ledger:
    """Resources in creation order; persisted to ``path`` (if given) after every change."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self.items: list[Created] = []

    @classmethod
    def load(cls, path: Path) -> list[Created]:
        """The entries of the ledger at ``path`` ([] when there is none). Each entry's delete
        command runs on the controller, so a ledger that is not one verify writes (not a
        regular file, too large, not JSON, or an entry verify would not write) is refused,
        never run: it raises :func:`damaged`, naming what can still be read of it."""
        raw = read_small_if_any(path, MAX_LEDGER_BYTES, "the verify ledger",
                                f"remove {path} once the resources it names are gone")
        if raw is None:
            return []
        text = raw.decode(errors="replace")
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError) as exc:  # not UTF-8, not JSON, or nested too deep
            raise damaged(path, f"not JSON: {exc}", text) from exc
        if not isinstance(data, list) or not all(_entry(item) for item in data):
            raise damaged(path, "not a list of the resources verify creates", text)
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
