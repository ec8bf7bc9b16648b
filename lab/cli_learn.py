"""Learning by doing (issue 23): `oslab lint` reads the config files on the nodes, as a person
installing by hand left them, and checks them (``oslab.install.lint``); `oslab exercise` breaks
the lab in one of the ways people do and checks the repair (``oslab.exercising``)."""

from __future__ import annotations

from typing import Any

import click

from oslab.access.state import LabState
from oslab.cli_boundary import Exit
from oslab.cli_options import Options, global_options, pass_options
from oslab.errors import OslabError


@click.command()
@global_options
@click.argument("node", required=False)
@click.option("--service", metavar="SERVICE",
              help="Only this service's files (keystone, glance, nova, ...).")
@click.option("--diff", "show_diff", is_flag=True,
              help="Also show, option by option, how each file differs from oslab's.")
@click.option("--no-logins", "no_logins", is_flag=True,
              help="Do not ask Keystone whether each service user's name and password work.")
@pass_options
def lint(opts: Options, node: str | None, service: str | None, show_diff: bool,
         no_logins: bool) -> None:
    """Check the config files on the lab's nodes: the release's option schema, line by line,
    the rules across files (my_ip, the metadata secret, the controller's URLs), and whether
    each service user can log in to Keystone; exit 1 on an error. Never prints a password."""
    from oslab import resolve
    from oslab.access.ssh import mask
    from oslab.install import confdiff, content
    from oslab.install.lint import lint as findings_of
    from oslab.install.lint import read_files, try_logins

    spec, state = _built(opts)
    names = [n.name for n in spec.nodes]
    if node is not None and node not in names:
        raise OslabError(f"lab {spec.name} has no node {node!r}", hint="nodes: " + ", ".join(names))
    virt_types, _ = resolve.virt_types(spec, {})
    steps = content.lab_steps(spec, state, virt_types, opts.install_content())
    services = sorted({s.name.split(".")[0] for lst in steps.values() for s in lst})
    if service is not None and service not in services:
        raise OslabError(f"no service is named {service!r}",
                         hint="services: " + ", ".join(services))
    wanted = {n: [f for s in lst if service in (None, s.name.split(".")[0]) for f in s.files]
              for n, lst in steps.items() if node in (None, n)}
    secrets = state.known_passwords()

    def masked(text: str) -> str:
        return mask(text, secrets)

    files, absent = read_files(spec, state, {n: [f.path for f in specs]
                                             for n, specs in wanted.items()})
    ours = {(n, f.path): f.content for n, specs in wanted.items() for f in specs}
    missing = [f"{n}:{p}" for n, p in absent]
    found = findings_of(spec, files, masked, None if no_logins else
                        lambda tried: try_logins(spec, state, tried))
    for finding in found:
        click.echo(str(finding))
    if show_diff:
        for (name, path), text in files.items():
            for line in confdiff.changes(path, text, ours[(name, path)], masked):
                click.echo(f"{name}: {line}")
    for where in missing:
        click.echo(f"{where}: not there yet (its install step has not run)")
    errors = sum(f.severity == "error" for f in found)
    click.echo(f"lint: {len(files)} files on {len({n for n, _p in files})} nodes: "
               f"{errors} errors, {len(found) - errors} warnings")
    if errors:
        raise SystemExit(Exit.FAILED)



@click.group()
def exercise() -> None:
    """Break-and-fix exercises: a real fault on the lab, the error you would meet, hints, and
    checks that say when it is fixed. Start one on a built lab; it is undone by reverting."""


@exercise.command("list")
@global_options
@pass_options
def exercise_list(opts: Options) -> None:
    """The exercises, and which ones this lab can run."""
    from oslab.exercising import Progress
    from oslab.install.exercise import refusal
    from oslab.install.exercises import CATALOG

    spec = opts.spec()
    progress = Progress.load(LabState(spec.name))
    for ex in CATALOG:
        why = refusal(ex, spec)
        mark = "*" if progress is not None and progress.name == ex.name else " "
        click.echo(f"{mark} {ex.name:<24} {ex.service:<10} "
                   + (ex.task if why is None else f"(not on this lab: {why.split('; ')[-1]})"))
    if progress is not None:
        click.echo(f"\n* in progress since {progress.started}"
                   + (" (solved)" if progress.solved else ""))


def _begin(opts: Options) -> tuple[Any, Any, Any]:
    from oslab.exercising import Runner
    from oslab.report import Reporter

    spec, state = _built(opts)
    return spec, state, Runner(spec, state, Reporter().lab)


def _built(opts: Options) -> tuple[Any, LabState]:
    """The lab's spec and state, refused when it was not built on this host (no SSH keys)."""
    spec = opts.spec()
    state = LabState(spec.name).check()
    if state.target(spec.controller.name, str(spec.controller.address)) is None:
        raise OslabError(f"lab {spec.name} has no SSH keys on this host: it was not built here",
                         hint="`oslab up` builds it; check -f and --lab")
    return spec, state


@exercise.command("start")
@global_options
@click.argument("name")
@pass_options
def exercise_start(opts: Options, name: str) -> None:
    """Take the snapshot exercise-NAME, break the lab, and show what you will see."""
    from oslab.exercising import Progress, refuse, snapshot_name, started_now
    from oslab.install.exercise import ExerciseError, find, resolve
    from oslab.install.exercises import CATALOG
    from oslab.snapshots import checkpoint
    from oslab.snapshots.snapshot import LabSnapshots

    ex = find(CATALOG, name)
    refuse(ex, opts.spec())  # before the lab's state is read: says why on any lab
    spec, state, runner = _begin(opts)
    progress = Progress.load(state)
    if progress is not None and not progress.solved:
        raise ExerciseError(f"exercise {progress.name} is in progress on lab {spec.name}",
                            hint="finish it first: `oslab exercise check`, `giveup` or `reset`")
    snaps = LabSnapshots(opts.connect(), spec.name)
    if progress is not None:  # solved: its snapshot is no longer needed
        _forget(snaps, progress.name)
        Progress.clear(state)
    plan = resolve(ex.fault, spec)
    texts = runner.prepared(plan)  # before the snapshot: a lab not as oslab built it is refused
    _forget(snaps, ex.name)
    taken = snaps.take_reserved(snapshot_name(ex.name), f"before exercise {ex.name}")
    click.echo(f"snapshot {snapshot_name(ex.name)} taken in {taken.seconds:.1f}s")
    Progress(ex.name, started_now()).save(state)
    try:
        runner.apply(plan, texts)
    except BaseException:
        click.echo(f"the fault could not be applied: reverting to {snapshot_name(ex.name)}",
                   err=True)
        checkpoint.revert(opts.connect(), spec.name, state, snapshot_name(ex.name))
        _forget(snaps, ex.name)
        Progress.clear(state)
        raise
    click.echo(f"\nexercise {ex.name} ({ex.service}) started on lab {spec.name}.\n")
    click.echo(f"task:    {ex.task}")
    click.echo(f"symptom: {ex.symptom}")
    click.echo("\nwork on the nodes with `oslab ssh NODE`; `oslab exercise hint` gives a hint "
               "(3 in all), `oslab exercise check` says whether it is solved, `oslab exercise "
               "giveup` shows the fix and puts the lab back.")


def _forget(snaps: Any, name: str) -> None:
    """Delete the snapshot of exercise ``name`` where it is left (nothing when it is not)."""
    from oslab.exercising import snapshot_name

    wanted = snapshot_name(name)
    if any(s.name == wanted for s in snaps.snapshots()):
        snaps.delete(wanted)


@exercise.command("hint")
@global_options
@pass_options
def exercise_hint(opts: Options) -> None:
    """The next hint, each stronger than the last."""
    from oslab.exercising import current
    from oslab.install.exercise import hint

    state = opts.state()
    progress, ex = current(state)
    text, progress.hints = hint(ex, progress.hints)
    progress.save(state)
    click.echo(f"hint {progress.hints} of {len(ex.hints)}: {text}")


@exercise.command("check")
@global_options
@pass_options
def exercise_check(opts: Options) -> None:
    """Run the exercise's checks: solved (exit 0), or what still fails (exit 1)."""
    from oslab.exercising import current
    from oslab.install.exercise import verdict

    _spec, state, runner = _begin(opts)
    progress, ex = current(state)
    results = runner.check(ex)
    for r in results:
        mark = "pass" if r.ok else "skip" if r.skipped else "FAIL"
        click.echo(f"  {mark}  {r.what}" + (f": {r.details}" if r.details else ""))
    outcome = verdict(results)
    if outcome.solved:
        progress.solved = True
        progress.save(state)
        click.echo(f"solved: exercise {ex.name}, with {progress.hints} hint(s). `oslab "
                   "exercise reset` goes back to before it; `start` another when you like.")
        return
    failed = sum(not r.skipped for r in outcome.failing)
    click.echo(f"not solved yet: {failed} check(s) fail. `oslab exercise hint` for a hint.")
    raise SystemExit(Exit.FAILED)


@exercise.command("solve")
@global_options
@pass_options
def exercise_solve(opts: Options) -> None:
    """Apply the exercise's documented fix on the nodes (no revert): `check` then passes."""
    runner, plan, _name = _the_fix(opts)
    runner.change(plan)
    click.echo("applied; `oslab exercise check` to see it pass")


@exercise.command("giveup")
@global_options
@pass_options
def exercise_giveup(opts: Options) -> None:
    """Show the fix, then put the lab back as it was before the exercise."""
    _runner, _plan, name = _the_fix(opts)
    _revert(opts, opts.state(), name)


def _the_fix(opts: Options) -> tuple[Any, Any, str]:
    """Print the exercise's fix, in words and change by change; its runner and plan."""
    from oslab.exercising import current
    from oslab.install.exercise import resolve

    spec, state, runner = _begin(opts)
    _progress, ex = current(state)
    click.echo(f"the fix: {ex.fix_text}")
    plan = resolve(ex.fix, spec)
    for e in plan.edits:
        where = f" in [{e.section}]" if e.section else ""
        click.echo(f"  {e.node}:{e.path}{where}: {e.old.strip()!r} -> {e.new.strip()!r}")
    for run in plan.runs:
        click.echo(f"  {run.node}: {run.command}")
    return runner, plan, ex.name


@exercise.command("reset")
@global_options
@pass_options
def exercise_reset(opts: Options) -> None:
    """Put the lab back as it was before the exercise, and end it."""
    from oslab.exercising import current

    state = opts.state()
    _progress, ex = current(state)
    _revert(opts, state, ex.name)


def _revert(opts: Options, state: LabState, name: str) -> None:
    from oslab import cli_print
    from oslab.exercising import Progress, snapshot_name
    from oslab.snapshots import checkpoint
    from oslab.snapshots.snapshot import LabSnapshots

    snap = snapshot_name(name)
    done = checkpoint.revert(opts.connect(), opts.lab_name(), state, snap)
    cli_print.print_reverted(snap, done)
    LabSnapshots(opts.connect(), opts.lab_name()).delete(snap)
    Progress.clear(state)
    click.echo(f"exercise {name} ended; snapshot {snap} deleted")


COMMANDS = (lint, exercise)
