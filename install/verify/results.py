"""What a check concludes and how it is recorded: a parser's :class:`Verdict`, one
:class:`Row` per check in a :class:`Report`, and :class:`CheckFailed`, which fails a row
with what was seen and what to look at.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Status(StrEnum):
    PASS = "pass"
    FAIL = "FAIL"
    SKIP = "skip"


@dataclass(frozen=True)
class Verdict:
    """What a parser concluded from one command's output."""

    ok: bool
    details: str
    hint: str = ""


@dataclass(frozen=True)
class Row:
    name: str
    status: Status
    seconds: float
    details: str = ""
    hint: str = ""


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # resources left in place (--keep)

    @property
    def ok(self) -> bool:
        return all(r.status is not Status.FAIL for r in self.rows)

    @property
    def failed(self) -> list[Row]:
        return [r for r in self.rows if r.status is Status.FAIL]

    @property
    def seconds(self) -> float:
        return sum(r.seconds for r in self.rows)


class CheckFailed(Exception):
    """A check failed: ``details`` says what was seen, ``hint`` what to look at."""

    def __init__(self, details: str, hint: str = "") -> None:
        super().__init__(details)
        self.details = details
        self.hint = hint
