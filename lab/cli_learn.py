"""Learning by doing (issue 23): `oslab lint` reads the config files on the nodes, as a person
installing by hand left them, and checks them (``oslab.install.lint``)."""

from __future__ import annotations

import shlex

import click

from oslab.access.state import LabState
from oslab.cli_boundary import Exit
from oslab.cli_options import Options, global_options, pass_options
from oslab.errors import OslabError

ABSENT = 3  # the exit code of the read below when the file is not there


@click.command()
@global_options
@click.argument("node", required=False)
@click.option("--service", metavar="SERVICE",
              help="Only this service's files (keystone, glance, nova, ...).")
@click.option("--diff", "show_diff", is_flag=True,
              help="Also show, option by option, how each file differs from oslab's.")
@pass_options
def lint(opts: Options, node: str | None, service: str | None, show_diff: bool) -> None:
    """Check the config files on the lab's nodes: the release's option schema, line by line,
    and the rules across files (my_ip, the metadata secret, the controller's URLs); exit 1 on
    an error. Never prints a password."""
    from oslab import resolve
    from oslab.access.ssh import Session, mask
    from oslab.install import confdiff, content
    from oslab.install.lint import lint as findings_of

    spec = opts.spec()
    state = LabState(spec.name).check()
    if state.target(spec.controller.name, str(spec.controller.address)) is None:
        raise OslabError(f"lab {spec.name} has no SSH keys on this host: it was not built here",
                         hint="`oslab up` builds it; check -f and --lab")
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

    files: dict[tuple[str, str], str] = {}
    ours: dict[tuple[str, str], str] = {}
    missing: list[str] = []
    for name, specs in wanted.items():
        if not specs:
            continue
        with Session(state.spec_target(spec.node(name)), connect_timeout=60.0) as session:
            for f in specs:
                q = shlex.quote(f.path)
                read = session.run(f"if [ -e {q} ]; then head -c {confdiff.MAX_READ} {q}; "
                                   f"else exit {ABSENT}; fi", timeout=120.0, secrets=secrets)
                if read.returncode == ABSENT:
                    missing.append(f"{name}:{f.path}")
                elif not read.ok:
                    raise OslabError(f"{name}: cannot read {f.path}: {masked(read.stderr)[:200]}",
                                     hint="check the node (`oslab ssh NODE`)")
                else:
                    files[(name, f.path)] = read.stdout
                    ours[(name, f.path)] = f.content
    found = findings_of(spec, files, masked)
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


COMMANDS = (lint,)
