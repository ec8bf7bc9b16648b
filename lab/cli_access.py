"""Access from the host's own tools: `oslab ssh-config` and `oslab inventory`
(``oslab.access.client_config``), and `oslab openrc` with its clouds.yaml
(``oslab.install.openrc``, ``oslab.install.clouds_yaml``)."""

from __future__ import annotations

from pathlib import Path

import click

from oslab.access.client_config import FORMATS, LabAccess, NodeAccess, inventory
from oslab.access.client_config import ssh_config as render_ssh_config
from oslab.cli_options import Options, global_options, pass_options
from oslab.errors import OslabError


def _access(opts: Options, names: tuple[str, ...]) -> LabAccess:
    """The lab's nodes as libvirt knows them (running or not), its key, and its known_hosts
    file, written with every chosen node's pinned host key."""
    from oslab.access.inventory import write_known_hosts
    from oslab.power.decide import read_facts, select

    lab = opts.lab_name()
    state = opts.state()
    nodes = tuple(NodeAccess(f.node, f.role, f.address)
                  for f in select(lab, read_facts(opts.connect(), lab), names))
    targets = [state.target(n.node, n.address) for n in nodes]
    if any(t is None for t in targets):
        raise OslabError(f"lab {lab} has no SSH keys in {state.dir}",
                         hint="they are made by `oslab up` on this host; pass the lab's spec "
                              "with -f, or the right --lab")
    found = [t for t in targets if t is not None]
    known = write_known_hosts(state, found)
    return LabAccess(lab, nodes, found[0].key_path, known)


@click.command("ssh-config")
@global_options
@click.argument("nodes", nargs=-1)
@click.option("--path", "path_only", is_flag=True,
              help="Write the config into the lab's state directory and print its path, for "
                   "`ssh -F \"$(oslab ssh-config --path)\" controller`.")
@pass_options
def ssh_config(opts: Options, nodes: tuple[str, ...], path_only: bool) -> None:
    """Print OpenSSH Host blocks for the lab's nodes (all, or NODE...), named like the nodes,
    with their host keys pinned. ssh closes every inherited descriptor first, so it cannot read
    `-F <(oslab ssh-config)`: use --path, or save the output to a file."""
    from oslab.files import write_atomic

    access = _access(opts, nodes)
    text = render_ssh_config(access)
    if not path_only:
        click.echo(text, nl=False)
        return
    path = access.known_hosts.with_name("ssh_config")
    write_atomic(path, text)
    click.echo(str(path))


@click.command("inventory")
@global_options
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="yaml", show_default=True,
              help="Ansible's YAML inventory, the same as JSON, or ini (ini only from a file: "
                   "Ansible cannot read it from a pipe such as <(oslab inventory)).")
@pass_options
def inventory_cmd(opts: Options, fmt: str) -> None:
    """Print an Ansible inventory of the lab: groups controller and compute, both in
    oslab_<lab>; for `ansible -i <(oslab inventory) all -m ping`."""
    click.echo(inventory(_access(opts, ()), fmt), nl=False)


@click.command()
@global_options
@click.argument("who", type=click.Choice(["admin", "demo"]), default="admin")
@click.option("--print", "show", is_flag=True,
              help="Print the file's contents (the password included) instead of its path.")
@click.option("--clouds-yaml", "clouds", is_flag=True,
              help="Write the entries <lab>-admin and <lab>-demo into your clouds.yaml "
                   "instead (every other entry and comment kept; mode 0600), for "
                   "`openstack --os-cloud <lab>-admin`.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="With --clouds-yaml: this file instead of "
                   "$XDG_CONFIG_HOME/openstack/clouds.yaml.")
@pass_options
def openrc(opts: Options, who: str, show: bool, clouds: bool, out: Path | None) -> None:
    """The path of the lab's admin or demo openrc file (or, with --print, its contents); or,
    with --clouds-yaml, the lab's entries merged into your clouds.yaml."""
    from oslab.access.state import LabState
    from oslab.install import clouds_yaml
    from oslab.install import openrc as openrcmod

    if out is not None and not clouds:
        raise click.UsageError("--out goes with --clouds-yaml")
    if show and clouds:
        raise click.UsageError("--print and --clouds-yaml do not go together: the clouds.yaml "
                               "entries are never printed (they hold the passwords)")
    spec = opts.spec()
    state = LabState(spec.name)
    if not clouds:
        click.echo(openrcmod.openrc_command(spec, state, who, show=show).rstrip())
        return
    done = clouds_yaml.write(spec, state, out)
    kept = f"; its other {done.kept} cloud(s) are unchanged" if done.kept else ""
    click.echo(f"wrote {' and '.join(done.names)} into {done.path} (mode 0600: it holds the "
               f"lab's passwords{kept})")
    click.echo(f"use: openstack --os-cloud {done.names[0]} token issue")
    click.echo(f"note: the catalog names the controller `{spec.controller.name}`; for the other "
               f"services from this host it must resolve here ({spec.controller.address} "
               f"{spec.controller.name} in /etc/hosts)")


COMMANDS = (ssh_config, inventory_cmd, openrc)
