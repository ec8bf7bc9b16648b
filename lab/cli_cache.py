"""oslab's caches: `oslab images` (the base images) and the saved labs: `oslab save`,
`oslab saved`, `oslab import`, and `up --from-saved` (``oslab.saves``)."""

from __future__ import annotations

import datetime as dt
import functools
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from oslab.access.state import LabState
from oslab.cli_boundary import Exit
from oslab.cli_options import Options, global_options, pass_options
from oslab.errors import OslabError
from oslab.files import read_small_if_any, write_atomic
from oslab.report import Reporter

if TYPE_CHECKING:
    from oslab.install.verify import Report

LAST_VERIFY = "last-verify.txt"


def remember_verification(state: LabState, report: Report) -> None:
    """The table of the lab's last verification, kept for the manifest of its next save."""
    from oslab.summary import render_table

    if state.owned:
        when = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        ok = "passed" if report.ok else "FAILED"
        write_atomic(state.dir / LAST_VERIFY, f"verified {when}: {ok}\n{render_table(report)}\n")


def _say(line: str) -> None:
    Reporter().lab(line)


def _rebase(disk: Path, base: Path) -> None:
    """Point an imported disk at its base's new place (only the header changes)."""
    from oslab.images import common

    argv = ["qemu-img", "rebase", "-u", "-f", "qcow2", "-b", str(base), "-F", "qcow2", str(disk)]
    common.run(argv, lambda _line: None, f"pointing {disk.name} at its base",
               hint="scripts/setup-host.sh installs qemu-utils")


@click.command()
@global_options
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--prune", is_flag=True, help="Remove the bases no volume or domain uses.")
@click.option("--dry-run", is_flag=True, help="With --prune: say what would go, remove nothing.")
@click.option("--all", "all_", is_flag=True,
              help="With --prune: remove the newest unused base of each distro and role too.")
@pass_options
def images(opts: Options, as_json: bool, prune: bool, dry_run: bool, all_: bool) -> None:
    """List the cached base images (size, age, the labs using them), or prune them."""
    from oslab.images.common import debian_cache
    from oslab.images.inventory import busy_keys, gather, prune_plan, table, users
    from oslab.images.inventory import prune as do_prune

    if (dry_run or all_) and not prune:
        raise OslabError("--dry-run and --all only go with --prune",
                         hint="add --prune, or drop them to list the bases")
    conn = opts.connect()
    store = debian_cache() / "images"
    bases, found = gather(conn, store,
                          say=lambda line: click.echo(f"warning: {line}", err=True))
    if not prune:
        now = time.time()
        if as_json:
            click.echo(json.dumps([b.as_dict(users(b, found), now) for b in bases], indent=2))
            return
        if not bases:
            click.echo(f"no cached base images (pool oslab-images, {store})")
            return
        click.echo("\n".join(table(bases, found, now)))
        return
    plan = prune_plan(bases, found, busy_keys(store, bases), keep_newest=not all_)
    if not as_json:
        for d in plan:
            verb = ("would remove" if dry_run else "remove") if d.remove else "keep"
            click.echo(f"{verb} {d.base.name}: {d.reason}")
    removed = [] if dry_run else do_prune(conn, store, plan,
                                          functools.partial(click.echo, err=True))
    if as_json:
        click.echo(json.dumps({"plan": [{"name": d.base.name, "remove": d.remove,
                                         "reason": d.reason} for d in plan],
                               "removed": removed, "dry_run": dry_run}, indent=2))
    elif not dry_run:
        click.echo(f"removed {len(removed)} base image(s)")


@click.command()
@global_options
@click.argument("name")
@click.option("--export", "export_to", type=click.Path(dir_okay=False, path_type=Path),
              metavar="FILE", help="Also write the save as a portable archive FILE (zstd).")
@pass_options
def save(opts: Options, name: str, export_to: Path | None) -> None:
    """Save the whole lab (disks, memory, spec, keys) as NAME, to bring back with
    `oslab up --from-saved NAME`."""
    from oslab import spec_file
    from oslab.saves import store
    from oslab.saves.save import Saver

    if opts.lab and not opts.file:
        raise OslabError("`oslab save` needs the lab's spec: the save keeps it to rebuild the "
                         "lab's networks", hint="pass it with -f FILE")
    spec = opts.spec()
    text = (Path(opts.file).read_text() if opts.file else spec_file.default_spec_text())
    state = LabState(spec.name)
    last = read_small_if_any(state.dir / LAST_VERIFY, 1 << 20, "the last verification",
                             "remove it") or b""
    saver = Saver(opts.connect(), spec, text, state, store.saves_root(), _say)
    done = saver.save(name, last.decode(errors="replace"))
    click.echo(f"saved lab {spec.name} as {name} in {done.seconds:.0f}s (running nodes paused "
               f"{done.paused_s:.0f}s): {done.bytes / 1e9:.2f} GB in {done.save.path}")
    click.echo(f"note: {store.SECRETS_NOTE}")
    if export_to is not None:
        _export(done.save, export_to)


def _export(save_obj: object, out: Path) -> None:
    from oslab.saves import archive, store

    assert isinstance(save_obj, store.Save)
    result = archive.export(save_obj.path, out, _say)
    click.echo(f"exported {save_obj.name} to {result.path}: {result.bytes / 1e9:.2f} GB in "
               f"{result.seconds:.0f}s (it holds the lab's secrets; mode 0600)")


@click.command()
@global_options
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--delete", "delete", metavar="NAME", help="Remove save NAME.")
@click.option("--export", "export_name", nargs=2, metavar="NAME FILE",
              help="Write save NAME as a portable archive FILE.")
@pass_options
def saved(opts: Options, as_json: bool, delete: str | None,
          export_name: tuple[str, str] | None) -> None:
    """List the saved labs (oslab's cache of saves), or remove or export one."""
    from oslab.saves import store

    root = store.saves_root()
    if delete is not None:
        _delete(opts, root, delete)
        return
    if export_name:
        _export(store.read_save(root, export_name[0]), Path(export_name[1]))
        return
    saves, problems = store.list_saves(root)
    if as_json:
        click.echo(json.dumps({"root": str(root), "saves": [s.summary() for s in saves],
                               "problems": problems}, indent=1))
        return
    click.echo(f"{'SAVE':<24} {'LAB':<16} {'CREATED':<26} {'GB':>6}  NODES")
    for s in saves:
        info = s.summary()
        nodes = ", ".join(f"{n['node']} ({'memory' if n['memory'] else n['state']})"
                          for n in info["nodes"])
        click.echo(f"{s.name:<24} {s.lab:<16} {info['created']:<26} "
                   f"{info['bytes'] / 1e9:>6.2f}  {nodes}")
    for line in problems:
        click.echo(f"not a save: {line}", err=True)
    if not saves:
        click.echo(f"no saves in {root}: `oslab save NAME` makes one")


def _delete(opts: Options, root: Path, name: str) -> None:
    from oslab.images.inventory import uses
    from oslab.saves import store

    save = store.read_save(root, name)
    inside = str(save.path) + "/"
    users = sorted({u.by for u in uses(opts.connect()) if u.path.startswith(inside)})
    if users:
        raise store.SaveError(f"save {name} is in use by {', '.join(users)}: their disks are "
                              "overlays on it", hint="destroy those labs first")
    saves = store.leaning_on(save, store.list_saves(root)[0])
    if saves:
        raise store.SaveError(f"save {name} is in use by save(s) {', '.join(saves)}: their "
                              "disks are overlays on it (a lab made from it, saved again)",
                              hint="delete those saves first")
    store.delete(root, name)
    click.echo(f"removed save {name}")


@click.command("import")
@click.argument("archive", type=click.Path(dir_okay=False, exists=True, path_type=Path))
def import_cmd(archive: Path) -> None:
    """Add a save exported from another host (`oslab save NAME --export FILE`)."""
    from oslab.saves import archive as archivemod
    from oslab.saves import store

    root = store.saves_root()
    made = not root.exists()
    store.ensure_root(root)
    try:
        result = archivemod.import_archive(archive, root, _say, _rebase)
    except BaseException:
        if made:  # a refused archive leaves nothing behind, not even the saves root
            store.remove_tree(root)
        raise
    click.echo(f"imported save {result.name} into {result.path}: {result.bytes / 1e9:.2f} GB "
               f"in {result.seconds:.0f}s; `oslab up --from-saved {result.name}` makes its lab")


def from_saved(opts: Options, name: str, cold: bool, full_verify: bool) -> None:
    """`oslab up --from-saved NAME`."""
    from oslab.cli_power import print_outcome
    from oslab.lifecycle import Lifecycle
    from oslab.saves import store
    from oslab.saves.restore import Restorer
    from oslab.virt.lab_objects import DomainState

    if opts.file:
        raise OslabError("--from-saved takes no spec: the save carries its own",
                         hint="leave -f out")
    save = store.read_save(store.saves_root(), name)
    lab = opts.lab or save.lab  # another name only with --cold (the refusals say why)
    conn = opts.connect()
    start = time.monotonic()
    out = Restorer(conn, save, _say, lab).restore(cold=cold)
    state = LabState(lab)
    outcomes = []
    for verb, act in (("resume", "running"), ("start", "booted")):
        # restored nodes stand paused: all of them run at once, as `oslab resume` does; the
        # nodes saved shut off (every node with --cold) boot as `oslab start` does
        lifecycle = Lifecycle(conn, lab, state, out.spec)
        wanted = DomainState.PAUSED if verb == "resume" else DomainState.SHUT_OFF
        if any(f.state is wanted for f in lifecycle.facts):
            outcome = lifecycle.resume() if verb == "resume" else lifecycle.start()
            print_outcome(outcome, act)
            outcomes.append(outcome)
    click.echo(f"lab {lab} made from save {name} in {time.monotonic() - start:.0f}s "
               f"(libvirt part {out.seconds:.0f}s); its spec: {out.spec_path} (pass it with -f)")
    if full_verify:
        from oslab.install import verify as verifymod
        from oslab.summary import render_table

        report = verifymod.verify_lab(out.spec, state, say=_say)
        remember_verification(state, report)
        click.echo(render_table(report))
        if not report.ok:
            raise SystemExit(Exit.FAILED)
    if any(not o.ok for o in outcomes):
        raise SystemExit(Exit.FAILED)


COMMANDS = (images, save, saved, import_cmd)
