"""The lifecycle commands: `oslab stop`, `start`, `suspend` and `resume` (``oslab.lifecycle``)."""

from __future__ import annotations

import click

from oslab import spec as specmod
from oslab.access.state import LabState
from oslab.cli_boundary import Exit
from oslab.cli_options import Options, global_options, pass_options
from oslab.lifecycle import Lifecycle, PowerOutcome, lifecycle_for


def _lifecycle(opts: Options, stop_timeout: float | None = None) -> Lifecycle:
    """The addressed lab, with its spec when one is at hand: -f, or the built-in lab when no
    --lab names another."""
    spec: specmod.LabSpec | None = opts.spec() if opts.file or not opts.lab else None
    return lifecycle_for(opts.connect(), opts.lab_name(), spec, stop_timeout)


def _rescue(opts: Options) -> list[str]:
    """The nodes a killed `oslab save` left shut off, restored from the memory it holds."""
    from oslab.report import Reporter
    from oslab.saves.save import rescue
    from oslab.saves.store import saves_root

    lab = opts.lab_name()
    back = rescue(opts.connect(), lab, LabState(lab), saves_root(), Reporter().lab)
    for node in back:
        click.echo(f"  {node:<12} restored from an interrupted save's memory")
    return back


def print_outcome(out: PowerOutcome, verb: str) -> None:
    from oslab.summary import render_table

    plan = out.plan
    if not plan.changes:
        click.echo(f"lab {plan.lab}: nothing to {plan.command}: "
                   + "; ".join(m.line() for m in plan.moves))
        return
    for what in out.started:
        click.echo(f"started {what}")
    ready = {r.node: r for r in out.ready}
    for d in out.done:
        line = f"  {d.node:<12} {d.act:<9} {d.seconds:6.1f}s"
        r = ready.get(d.node)
        if r is not None:
            line += f"  SSH after {r.ssh_s:.0f}s, ready after {r.boot_s:.0f}s"
            if r.note:
                line += f" ({r.note})"
        if d.note:
            line += f"  warning: {d.note}"
        click.echo(line)
    if out.services is not None:
        click.echo(render_table(out.services))
    elif out.services_note and plan.command in ("start", "resume"):
        click.echo(f"OpenStack services: {out.services_note}")
    click.echo(f"lab {plan.lab} {verb} in {out.seconds:.0f}s")


def _done(out: PowerOutcome, verb: str) -> None:
    """Print the outcome; exit FAILED when a service did not report up."""
    print_outcome(out, verb)
    if not out.ok:
        raise SystemExit(Exit.FAILED)


NODES = click.argument("nodes", nargs=-1, metavar="[NODE]...")
NO_WAIT = click.option("--no-wait", is_flag=True,
                       help="Do not wait for the OpenStack services to report up.")


@click.command()
@global_options
@NODES
@click.option("--timeout", type=click.IntRange(10, 3600), default=600, show_default=True,
              help="Seconds a node gets to shut down cleanly before it is powered off hard.")
@pass_options
def stop(opts: Options, nodes: tuple[str, ...], timeout: int) -> None:
    """Shut the lab's nodes down cleanly (all, or NODE...): compute nodes first."""
    _done(_lifecycle(opts, timeout).stop(nodes), "stopped")


@click.command()
@global_options
@NODES
@NO_WAIT
@pass_options
def start(opts: Options, nodes: tuple[str, ...], no_wait: bool) -> None:
    """Boot the lab's nodes (all, or NODE...), controllers first; wait until each has booted
    and every OpenStack service reports up."""
    _rescue(opts)
    _done(_lifecycle(opts).start(nodes, wait_services=not no_wait), "started")


@click.command()
@global_options
@pass_options
def suspend(opts: Options) -> None:
    """Save every node's memory to disk at one moment; the nodes then use no memory."""
    _done(_lifecycle(opts).suspend(), "suspended")


@click.command()
@global_options
@NO_WAIT
@pass_options
def resume(opts: Options, no_wait: bool) -> None:
    """Bring a suspended lab back from its saved memory, every node at once, clocks set."""
    if _rescue(opts):
        return
    _done(_lifecycle(opts).resume(wait_services=not no_wait), "resumed")


COMMANDS = (stop, start, suspend, resume)
