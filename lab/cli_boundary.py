"""The one place an error becomes ``error:`` (and ``hint:``) and an exit code (:class:`Exit`)."""

from __future__ import annotations

import os
import sys
from enum import IntEnum

import click

from oslab.cli_options import Options
from oslab.errors import Failed, OslabError


class Exit(IntEnum):
    """oslab's exit codes, the one table of them. The printers return outcomes; the commands
    turn a failed one into FAILED, and an error into its code here."""

    OK = 0
    FAILED = 1  # it ran and found something not working: check, verify, render --check, start
    ERROR = 2  # it could not do what was asked: a bad spec or option, a refusal with a hint
    BUG = 70  # an unexpected exception: a bug in oslab (sysexits' EX_SOFTWARE)
    INTERRUPTED = 130  # Ctrl-C, or a prompt aborted
    BROKEN_PIPE = 141  # the reader of the output went away (`| head`)


def run(group: click.Group, args: list[str] | None = None) -> None:
    """The one error boundary: every failure ends as ``error:`` (and ``hint:``) and a non-zero
    exit; a traceback only with --debug. ``args``: the command line (default: sys.argv's)."""
    opts = Options()
    try:
        group.main(args, standalone_mode=False, obj=opts, prog_name="oslab")
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(Exit.INTERRUPTED)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        if opts.debug:
            raise
        _error(exc.format_message(), _usage_hint(exc))
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted; rerun `oslab up` to continue where it stopped", err=True)
        sys.exit(Exit.INTERRUPTED)
    except BrokenPipeError:  # the reader (`| head`) went away: nothing more to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(Exit.BROKEN_PIPE)
    except Exception as exc:  # the boundary: one error line, never a traceback
        if opts.debug:
            raise
        message, hint, code = _describe(exc)
        _error(message, hint)
        sys.exit(code)


def _error(message: str, hint: str | None) -> None:
    click.echo(f"error: {message}", err=True)
    if hint:
        click.echo(f"hint: {hint}", err=True)


def _usage_hint(exc: click.ClickException) -> str:
    ctx = getattr(exc, "ctx", None)
    path = ctx.command_path if ctx is not None else "oslab"
    return f"`{path} --help` lists the arguments and options"


def _describe(exc: Exception) -> tuple[str, str | None, Exit]:
    """(message, hint, exit code) of an error that reached the boundary."""
    if isinstance(exc, OslabError):
        return exc.message, exc.hint, Exit.FAILED if isinstance(exc, Failed) else Exit.ERROR
    if isinstance(exc, OSError) and exc.strerror:
        # the host refused a file operation oslab did not expect to fail
        where = f"{exc.filename}: " if exc.filename else ""
        return (f"{where}{exc.strerror}",
                "check the path's permissions and free space; rerun with --debug to see where",
                Exit.ERROR)
    return (f"internal error: {type(exc).__name__}: {exc}",
            "this is a bug in oslab; rerun with --debug for the traceback and report it",
            Exit.BUG)
