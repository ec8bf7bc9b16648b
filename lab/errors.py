"""One exception root for oslab: every error says what is wrong and what to do."""

from __future__ import annotations

import shlex
from collections.abc import Sequence


class OslabError(Exception):
    """An error the user can act on: ``message`` says what, ``hint`` says how to fix it."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class Failed(OslabError):
    """What was asked ran, and found the lab not working: a verification with failed rows
    (exit 1, where any other OslabError exits 2; see ``cli_boundary.Exit``)."""


class SpecError(OslabError):
    """The lab spec is invalid."""


class HostError(OslabError):
    """The host cannot run the lab as asked."""


class OwnershipError(OslabError):
    """An object carries the lab's name but not its metadata."""


class ProvisionError(OslabError):
    """A node failed to install or boot."""


class CommandError(OslabError):
    """A command failed; carries the exact command line (secrets masked) and exit code."""

    def __init__(
        self,
        argv: Sequence[str] | str,
        returncode: int,
        stderr: str = "",
        hint: str | None = None,
        where: str = "",
    ) -> None:
        self.command = argv if isinstance(argv, str) else shlex.join(argv)
        self.returncode = returncode
        self.stderr = stderr
        tail = "\n".join(stderr.rstrip().splitlines()[-15:])
        prefix = f"{where}: " if where else ""
        message = f"{prefix}command failed with exit code {returncode}: {self.command}"
        if tail:
            message += "\n" + "\n".join("  | " + line for line in tail.splitlines())
        super().__init__(message, hint)
