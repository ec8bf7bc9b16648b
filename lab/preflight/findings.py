"""The preflight's result model: a finding per check, its severity, and whether any blocks.

Every check returns findings; a finding that is not OK says what is wrong and carries a hint
with the exact fix.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path


class Severity(StrEnum):
    OK = "ok"
    WARN = "warn"
    BLOCK = "block"


@dataclass(frozen=True)
class Finding:
    check: str
    severity: Severity
    message: str
    hint: str | None = None


def blockers(findings: Iterable[Finding]) -> list[Finding]:
    """The findings that stop the lab from being built."""
    return [f for f in findings if f.severity is Severity.BLOCK]


def blocking(findings: Iterable[Finding]) -> bool:
    """True when any finding stops the lab from being built."""
    return bool(blockers(findings))


def read_text(root: Path, rel: str) -> str | None:
    """``rel`` under the filesystem root ``root``, or None when it cannot be read."""
    try:
        return (root / rel).read_text(errors="replace")
    except OSError:
        return None
