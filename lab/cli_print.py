"""What `oslab up` and `oslab render --check` print about what they did."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import click

from oslab import up as upflow
from oslab.errors import OslabError

if TYPE_CHECKING:
    from oslab.install.model import StepDef


def print_provisioned(done: upflow.Provisioned) -> None:
    spec, result = done.spec, done.result
    click.echo("")
    if result.change_count == 0:
        click.echo(f"lab {spec.name}: no changes; every node answers SSH.")
    else:
        click.echo(f"lab {spec.name}: provisioned in {result.seconds:.0f}s "
                   f"({result.change_count} changes).")
    for n in result.nodes:
        click.echo(f"  {n.node:<12} {n.address:<15} {n.virt_type:<5} oslab ssh {n.node}")


def print_installed(done: upflow.Installed) -> None:
    spec, run = done.spec, done.result
    click.echo("")
    if run.change_count == 0:
        click.echo(f"lab {spec.name}: install: no changes; every step is done.")
    else:
        click.echo(f"lab {spec.name}: installed in {run.seconds:.0f}s ({run.changed_steps} "
                   f"steps changed, {run.change_count} commands).")
    for n in run.nodes:
        click.echo(f"  {n.node:<12} {n.changed_steps} steps changed, {n.commands} commands")
    if run.checkpoints:
        click.echo("checkpoints: " + ", ".join(f"auto-{c}" for c in run.checkpoints))


def print_verified(done: upflow.Verified) -> None:
    from oslab.summary import render_summary

    click.echo("")
    click.echo(render_summary(done.spec, done.report, done.times,
                              key_path=done.key_path))
    if not done.report.ok:
        raise OslabError("verification failed: see the rows above",
                         hint="fix what the failed rows point at, then `oslab verify`; "
                              "`oslab snapshot --list` shows the checkpoints to revert to")



def check_rendered(release: str, steps: Mapping[str, Sequence[StepDef]]) -> None:
    """`render --check`: each problem as ``<node>/<path>:LINE: error|warning: ...``, a count,
    and exit 1 if there is an error (the files stay written, to be read at those lines)."""
    from oslab.install.confcheck import check_configs, format_problem

    files = {f"{node}{f.path}": f.content for node, lst in steps.items()
             for step in lst for f in step.files}
    checked, problems = check_configs(files, release)
    for problem in problems:
        click.echo(format_problem(problem))
    errors = sum(p.severity == "error" for p in problems)
    warnings = len(problems) - errors
    click.echo(f"checked {len(checked)} service configs against the {release} option schema: "
               f"{_count(errors, 'error')}, {_count(warnings, 'warning')}")
    if errors:
        raise SystemExit(1)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")

