"""The `oslab` command line: the click commands, which parse their arguments and print.

The global options are in cli_options, the error boundary that runs the group is in
cli_boundary, and the longer reports of `up` and `render --check` are in cli_print.
"""

from __future__ import annotations

import json
import math
import os
import shlex
import stat
import sys
from pathlib import Path
from typing import Any

import click

from oslab import (
    cli_access,
    cli_boundary,
    cli_cache,
    cli_learn,
    cli_power,
    cli_print,
    spec_file,
)
from oslab import spec as specmod
from oslab import up as upflow
from oslab.access.state import LabState
from oslab.cli_boundary import Exit
from oslab.cli_options import Options, global_options, lab_node, pass_options
from oslab.errors import Failed, OslabError
from oslab.install.verify.checklist import GROUPS as VERIFY_GROUPS

# how long `oslab ssh` gives a node to finish the SSH handshake: under TCG in its boot storm a
# node sends its banner after tens of seconds, and a user would rather wait than retry
SSH_PATIENCE_S = 60.0


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@global_options
def cli() -> None:
    """Build a complete OpenStack lab on this host with libvirt."""


@cli.command()
@global_options
@click.argument("path", default="lab.toml", type=click.Path(dir_okay=False))
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@click.option("--distro", type=click.Choice(list(spec_file.SPEC_FILES)), default="centos-stream9",
              show_default=True, help="The nodes' distro (debian13: Debian's own Epoxy).")
def init(path: str, force: bool, distro: str) -> None:
    """Write the built-in default lab spec as a commented TOML file to edit."""
    from oslab.files import write_atomic

    if not path.strip():
        raise OslabError("the path is empty", hint="oslab init lab.toml")
    p = Path(path)
    if not p.parent.is_dir():
        raise OslabError(f"cannot write {p}: the directory {p.parent} does not exist",
                         hint=f"make it first (mkdir -p {shlex.quote(str(p.parent))}), or give "
                              "another path")
    try:
        mode: int | None = p.lstat().st_mode
    except FileNotFoundError:
        mode = None
    if mode is not None and not stat.S_ISREG(mode):
        kind = "a symbolic link" if stat.S_ISLNK(mode) else "not a regular file"
        raise OslabError(f"{p} is {kind}; oslab init writes a new file or, with --force, "
                         "replaces a regular one", hint="give the path of a new file, such as "
                                                        "lab.toml")
    if mode is not None and not force:
        raise OslabError(f"{p} exists already", hint="pass --force to overwrite it")
    write_atomic(p, spec_file.default_spec_text(distro))
    click.echo(f"wrote {p}; edit it, then run: oslab -f {shlex.quote(str(p))} up")


@cli.command()
@global_options
@click.option("--stage", type=click.Choice(upflow.STAGES), default="all", show_default=True,
              help="Check for `oslab up --stage STAGE`.")
@pass_options
def check(opts: Options, stage: str) -> None:
    """Host preflight: can this host run the lab?"""
    from oslab import preflight, resolve
    from oslab.virt.definitions import pool_dir

    spec = opts.spec()
    try:
        conn = opts.connect()
    except OslabError:
        conn = None
    findings = resolve.host_check(spec, conn, opts.uri, pool_dir(spec), stage).findings
    for f in findings:
        click.echo(f"{f.severity.value:>5}  {f.check}: {f.message}")
        if f.hint and f.severity is not preflight.Severity.OK:
            click.echo(f"       hint: {f.hint}")
    if preflight.blocking(findings):
        raise SystemExit(Exit.FAILED)
    click.echo("host is ready for `oslab up`")


@cli.command()
@global_options
@click.option("--stage", type=click.Choice(upflow.STAGES), default="all", show_default=True,
              help="Stop after this stage.")
@click.option("--from", "from_step", metavar="STEP",
              help="Rerun install step STEP and every step after it fully (guarded commands "
                   "run whatever their checks say, files are uploaded, services restarted).")
@click.option("--until", "until", metavar="STEP",
              help="Install every step before STEP (a step, or a service such as glance), "
                   "take the snapshot before-STEP and stop, for you to install STEP by hand; "
                   "a later `oslab up` goes on.")
@click.option("--no-checkpoints", is_flag=True,
              help="Do not take the installer's automatic auto-<phase> snapshots.")
@click.option("--from-saved", "from_saved", metavar="SAVE",
              help="Make the lab from save SAVE (`oslab saved`): its disks as overlays, its "
                   "memory restored, no boot; --cold boots the saved disks instead (and with "
                   "--lab NEWNAME makes it a lab of another name).")
@click.option("--cold", is_flag=True, help="With --from-saved: boot, do not restore memory.")
@click.option("--verify", "full_verify", is_flag=True,
              help="With --from-saved: the full `oslab verify`, not only its services rows.")
@click.option("--fresh-image", is_flag=True,
              help="Build new base images for the nodes made in this run instead of using the "
                   "cached ones (existing nodes keep theirs; later runs use the new ones).")
@pass_options
def up(opts: Options, stage: str, from_step: str | None, until: str | None,
       no_checkpoints: bool, from_saved: str | None, cold: bool, full_verify: bool,
       fresh_image: bool) -> None:
    """Build the lab (or finish building it): provision the nodes, then install OpenStack."""
    if from_saved is not None:
        return cli_cache.from_saved(opts, from_saved, cold, full_verify)
    if cold or full_verify:
        raise OslabError("--cold and --verify go with --from-saved",
                         hint="`oslab verify` verifies a lab; --from-saved names a save")
    for given, flag in ((from_step, "--from"), (until, "--until")):
        if given is not None and not given.strip():
            raise OslabError(f"{flag} is empty",
                             hint="name an install step; `oslab plan` lists them")
    options = upflow.UpOptions(stage=stage, from_step=from_step, until=until,
                               checkpoints=not no_checkpoints, fresh_image=fresh_image)
    for done in upflow.run(opts, options):
        if isinstance(done, upflow.Provisioned):
            cli_print.print_provisioned(done)
        elif isinstance(done, upflow.Installed):
            cli_print.print_installed(done)
        elif isinstance(done, upflow.Stopped):
            cli_print.print_stopped(done)
        else:
            cli_print.print_verified(done)
            cli_cache.remember_verification(opts.state(), done.report)
            if not done.report.ok:
                raise Failed("verification failed: see the rows above",
                             hint="fix what the failed rows point at, then `oslab verify`; "
                                  "`oslab snapshot --list` shows the checkpoints to revert to")


@cli.command()
@global_options
@click.option("--node", help="Only this node's steps (and objects).")
@click.option("--fresh", is_flag=True,
              help="Plan the install for blank nodes without reading anything (no libvirt, "
                   "no SSH, so no provision plan).")
@click.option("--virt-type", type=click.Choice([t.value for t in specmod.VirtType]),
              help="Plan as if every compute node chose this virt type.")
@pass_options
def plan(opts: Options, node: str | None, fresh: bool, virt_type: str | None) -> None:
    """Show what provisioning would create or change, then each node's install steps in
    order, and the commands each would run now."""
    from oslab.plan import plan_lab

    cli_print.print_plan(plan_lab(opts, node=node, fresh=fresh, virt_type=virt_type))


@cli.command()
@global_options
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Directory to write DIR/<node>/<path on the node> into.")
@click.option("--virt-type", type=click.Choice([t.value for t in specmod.VirtType]),
              help="Render as if every compute node chose this virt type "
                   "(default: this host's choice).")
@click.option("--check", "check_configs", is_flag=True,
              help="Then check every service config against the release's option schema; "
                   "exit 1 if one has an error (an unknown option, an invalid value).")
@pass_options
def render(opts: Options, out_dir: str, virt_type: str | None, check_configs: bool) -> None:
    """Write every file the installer would put on each node (kickstart included); needs no
    running lab. Files holding secrets are written 0600."""
    from oslab import resolve
    from oslab.install import content

    if not out_dir.strip():
        raise OslabError("--out is empty", hint="oslab render --out DIR (it is made if missing)")
    spec = opts.spec()
    state = LabState(spec.name).check()
    out = content.prepare_out(Path(out_dir))  # before any key or state is made
    virt_types, _ = resolve.virt_types(spec, {}, forced=virt_type)
    steps = content.lab_steps(spec, state, virt_types, opts.install_content())
    written = content.export(spec, state, steps, out)
    for n in spec.nodes:
        count = sum(1 for p in written if p.parts[len(out.parts)] == n.name)
        click.echo(f"  {n.name:<12} {count} files in {out / n.name}")
    chosen = "/".join(sorted(set(virt_types.values()))) or "none: no compute node"
    click.echo(f"wrote {len(written)} files (compute virt type {chosen}); files with "
               "secrets and the kickstarts (ks.cfg, on the node's OEMDRV disk) are mode 0600")
    if check_configs and not cli_print.check_rendered(spec.release, steps):
        raise SystemExit(Exit.FAILED)


@cli.command()
@global_options
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_options
def status(opts: Options, as_json: bool) -> None:
    """Show the lab's nodes, networks and volumes, read from libvirt."""
    from oslab.access.inventory import gather

    st = gather(opts.connect(), opts.lab_name(), opts.state())
    if as_json:
        click.echo(json.dumps(st.as_dict(), indent=2))
        return
    cli_print.print_status(st)


@cli.command()
@global_options
@click.option("--yes", is_flag=True, help="Do not ask.")
@click.option("--dry-run", is_flag=True, help="List what would be deleted, delete nothing.")
@pass_options
def destroy(opts: Options, yes: bool, dry_run: bool) -> None:
    """Remove everything oslab made for the lab, and nothing else."""
    from oslab.access.inventory import destroy as do_destroy
    from oslab.access.inventory import destroy_plan, gather

    conn = opts.connect()
    lab = opts.lab_name()
    state = LabState(lab)
    plan = destroy_plan(gather(conn, lab, state, probe_ssh=False))
    if not plan:
        click.echo(f"lab {lab}: nothing to remove")
        if state.dir.exists() and not state.owned:
            click.echo(f"warning: left in place: {state.dir} has no oslab marker", err=True)
        return
    click.echo(f"lab {lab}: {'would remove' if dry_run else 'removing'}:")
    for line in plan:
        click.echo(f"  - {line}")
    if dry_run:
        return
    if not yes and not sys.stdin.isatty():
        raise OslabError("destroy asks before it removes anything, and there is no terminal "
                         "to ask on", hint="pass --yes to remove it all, or --dry-run to list it")
    if not yes and not click.confirm("remove all of this?", default=False):
        raise SystemExit(Exit.FAILED)
    for warning in do_destroy(conn, lab, state):
        click.echo(f"warning: {warning}", err=True)
    click.echo(f"lab {lab} destroyed (the ISO cache is kept)")


@cli.command(context_settings={"ignore_unknown_options": True})
@global_options
@click.argument("node")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@pass_options
def ssh(opts: Options, node: str, command: tuple[str, ...]) -> None:
    """SSH to NODE as root; with COMMAND, run it and exit with its code."""
    from oslab.access.inventory import write_known_hosts
    from oslab.access.ssh import Session
    from oslab.virt.lab_objects import DomainState

    status_, target = lab_node(opts, node)
    if status_.state != DomainState.RUNNING:
        raise OslabError(f"node {node} is not running ({status_.state})",
                         hint=f"`oslab --lab {opts.lab_name()} start {node}` boots it; "
                                 "`oslab status` shows the nodes")
    if command:
        with Session(target, connect_timeout=SSH_PATIENCE_S) as s:
            # as long as the command runs, as ssh does (an upgrade, a db_sync under TCG)
            result = s.run(shlex.join(command) if len(command) > 1 else command[0],
                           on_line=click.echo, timeout=math.inf)
            sys.stderr.write(result.stderr)
            raise SystemExit(result.returncode)
    known = write_known_hosts(opts.state(), [target])
    os.execvp("ssh", ["ssh", "-i", str(target.key_path), "-o", f"UserKnownHostsFile={known}",
                      "-o", "StrictHostKeyChecking=yes", "-o", "IdentitiesOnly=yes",
                      "-o", f"ConnectTimeout={SSH_PATIENCE_S:.0f}",
                      f"root@{target.address}"])


@cli.command()
@global_options
@click.argument("node")
@pass_options
def console(opts: Options, node: str) -> None:
    """Attach to NODE's serial console (leave with Ctrl-])."""
    status_, _target = lab_node(opts, node)
    os.execvp("virsh", ["virsh", "-c", opts.uri, "console", status_.name])


@cli.command()
@global_options
@click.argument("name", required=False)
@click.option("--description", default="", help="Kept with the snapshot.")
@click.option("--list", "list_", is_flag=True, help="List the lab's snapshots.")
@click.option("--json", "as_json", is_flag=True, help="With --list: machine-readable.")
@click.option("--delete", "delete", metavar="NAME", help="Delete snapshot NAME on every node.")
@pass_options
def snapshot(opts: Options, name: str | None, description: str, list_: bool, as_json: bool,
             delete: str | None) -> None:
    """Snapshot the whole lab at one moment (or --list, --delete NAME)."""
    from oslab.snapshots.snapshot import LabSnapshots, check_name, check_user_name

    given = [f for f, on in (("NAME", name), ("--list", list_), ("--delete", delete is not None))
             if on]
    if len(given) > 1:
        raise OslabError(f"{' and '.join(given)} do not go together",
                         hint="take a snapshot (NAME), list them (--list), or delete one "
                              "(--delete NAME): one at a time")
    if as_json and not list_:
        raise OslabError("--json goes with --list", hint="oslab snapshot --list --json")
    if len(description) > 1000 or not description.isprintable():
        raise OslabError("--description must be one line of at most 1000 printable characters",
                         hint="keep it short; it is stored in each node's snapshot")
    if description and (list_ or delete is not None):
        raise OslabError("--description goes with taking a snapshot",
                         hint="oslab snapshot NAME --description TEXT")
    if not list_ and delete is None and not name:
        raise OslabError("name the snapshot", hint="oslab snapshot NAME, or --list")
    if delete is not None:
        check_name(delete)  # any snapshot of the lab, oslab's own too
    elif name:
        check_user_name(name)  # before libvirt is asked: never one of oslab's names

    snaps = LabSnapshots(opts.connect(), opts.lab_name())
    if list_:
        found = snaps.snapshots()
        if as_json:
            click.echo(json.dumps([s.as_dict() for s in found], indent=2))
            return
        cli_print.print_snapshots(snaps.lab, found)
        return
    if delete is not None:
        nodes = snaps.delete(delete)
        click.echo(f"deleted snapshot {delete} from {', '.join(nodes)}")
        return
    assert name is not None
    result = snaps.take(name, description)
    click.echo(f"snapshot {name} of {', '.join(result.nodes)} taken in {result.seconds:.1f}s; "
               f"the lab was paused for {result.paused_seconds:.2f}s")


@cli.command()
@global_options
@click.argument("name")
@pass_options
def revert(opts: Options, name: str) -> None:
    """Return every node of the lab to snapshot NAME."""
    from oslab.snapshots import checkpoint
    from oslab.snapshots.snapshot import check_name

    check_name(name)
    done = checkpoint.revert(opts.connect(), opts.lab_name(), opts.state(), name)
    cli_print.print_reverted(name, done)


@cli.command()
@global_options
@click.option("--keep", is_flag=True, help="Leave the test resources for you to explore.")
@click.option("--image", "image_path", metavar="PATH",
              help="Boot this local disk image (with its manifest PATH.json) instead of the "
                   "spec's [verify] image or cirros 0.6.3.")
@click.option("--only", "only", metavar="GROUP", multiple=True,
              type=click.Choice(VERIFY_GROUPS),
              help="Run only this check group (repeatable), and the groups it needs: "
                   + ", ".join(VERIFY_GROUPS) + ".")
@pass_options
def verify(opts: Options, keep: bool, image_path: str | None, only: tuple[str, ...]) -> None:
    """Prove the cloud works: services, image, networks, an instance, a volume, the dashboard."""
    from oslab.access.ssh import Target
    from oslab.install import instance_image
    from oslab.install import verify as verifymod
    from oslab.power.decide import read_facts
    from oslab.power.reach import await_ssh
    from oslab.report import Reporter
    from oslab.summary import render_table

    spec = opts.spec()
    image = instance_image.choose(image_path, spec)
    say = Reporter().lab
    conns: list[Any] = []

    def booted(target: Target) -> None:
        """Wait for a node whose domain runs but whose SSH does not answer yet (it boots);
        refuse one whose domain does not run. libvirt is reached on the first call, after
        verify's own checks of its arguments; without it each node gets one try."""
        if not conns:
            try:
                conns.append(opts.connect())
            except OslabError as exc:
                conns.append(None)
                say(f"verify: {exc.message}: a node that still boots is not waited for")
        if conns[0] is not None:
            await_ssh(spec.name, target, float(spec.boot_timeout_s),
                      lambda line: say(f"verify: {target.name}: {line}"),
                      lambda: read_facts(conns[0], spec.name))

    report = verifymod.verify_lab(spec, LabState(spec.name), keep=keep, say=say,
                                  image=image, only=only, booted=booted)
    click.echo(render_table(report))
    if not only:
        cli_cache.remember_verification(LabState(spec.name), report)
    if not report.ok:
        raise SystemExit(Exit.FAILED)


for _command in (*cli_power.COMMANDS, *cli_access.COMMANDS, *cli_cache.COMMANDS,
                 *cli_learn.COMMANDS):
    cli.add_command(_command)


def main() -> None:
    """The `oslab` command: the click group, run inside the one error boundary."""
    cli_boundary.run(cli)
