"""The reports the `oslab` commands print: what up, plan, render --check, status, snapshot
--list and revert found or did."""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import click

from oslab import up as upflow

if TYPE_CHECKING:
    from oslab.access.inventory import LabStatus
    from oslab.install.model import StepDef
    from oslab.plan import LabPlan
    from oslab.snapshots.checkpoint import Reverted
    from oslab.snapshots.snapshot import LabSnapshot


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
    edited = [(n.node, line) for n in run.nodes for s in n.steps for line in s.edits]
    if edited:
        click.echo("files on the nodes that differed from oslab's, and what it changed:")
        for node, line in edited:
            click.echo(f"  {node}: {line}")
    if run.checkpoints:
        click.echo("checkpoints: " + ", ".join(f"auto-{c}" for c in run.checkpoints))


def print_stopped(done: upflow.Stopped) -> None:
    """`up --until STEP`: where the lab stopped, what to do by hand, how to check it."""
    lab = done.spec.name
    click.echo("")
    click.echo(f"lab {lab}: stopped before {done.until}; every step before it is done.")
    click.echo(f"  snapshot {done.snapshot}: " + ("kept (an earlier run took it; delete it "
               "to take a new one)" if done.snapshot_kept else "taken")
               + f"; `oslab --lab {lab} revert {done.snapshot}` brings this point back")
    click.echo(f"  next: {done.next_step} on {', '.join(done.nodes)} "
               f"(`oslab --lab {lab} ssh {done.nodes[0]}`)")
    click.echo(f"  the install guide: {done.page}")
    oslab = ("oslab" if done.spec.source.startswith("<")
             else f"oslab -f {shlex.quote(done.spec.source)}")
    # the guide's KEYSTONE_DBPASS, GLANCE_PASS, ...: the lab's own, or the rest will not match
    click.echo(f"  its passwords: the lab's, in the files `{oslab} render --out DIR` writes "
               "(0600)")
    if done.check:
        click.echo(f"  then check it: `oslab --lab {lab} verify --only {done.check}`")
    click.echo(f"  `{oslab} up` goes on from there when you are done")


def print_verified(done: upflow.Verified) -> None:
    from oslab.summary import render_summary

    click.echo("")
    click.echo(render_summary(done.spec, done.report, done.times,
                              key_path=done.key_path))


def print_plan(done: LabPlan) -> None:
    """`oslab plan`: the provision plan, where the install plan's facts came from, the plan."""
    from oslab.install.planned import render as render_plan
    from oslab.provisioning.decide import render as render_provision

    spec = done.spec
    if done.provision is not None:
        click.echo(f"provision plan for lab {spec.name}: {done.provision_source}")
        click.echo(render_provision(done.provision))
    if done.live:
        click.echo(f"install plan for lab {spec.name}: facts read from the nodes now")
    elif done.fresh:
        click.echo(f"install plan for lab {spec.name}: fresh (blank nodes assumed; nothing "
                   "read from them)")
    else:
        click.echo(f"install plan for lab {spec.name}: the lab is not running "
                   f"({done.why_not_live}), so this plans for blank nodes (fresh)")
    vts = ", ".join(f"{n}={v}" for n, v in done.virt_types.items()) or "no compute nodes"
    click.echo(f"virt types: {vts} ({done.virt_types_source})")
    click.echo("")
    click.echo(render_plan(done.plan), nl=False)


def check_rendered(release: str, steps: Mapping[str, Sequence[StepDef]]) -> bool:
    """`render --check`: each problem as ``<node>/<path>:LINE: error|warning: ...``, and a
    count; whether no file has an error (the files stay written, to be read at those lines)."""
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
    return not errors


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")



def print_status(st: LabStatus) -> None:
    """`oslab status`: the lab's nodes, networks and volumes as a table."""
    if st.empty:
        click.echo(f"lab {st.lab}: nothing in libvirt")
        return
    click.echo(f"lab {st.lab}")
    click.echo(f"  {'NODE':<12} {'ROLE':<11} {'ADDRESS':<15} {'STATE':<9} {'PHASE':<10} "
               f"{'VIRT':<5} SSH")
    for n in st.nodes:
        click.echo(f"  {n.node:<12} {n.role:<11} {n.address:<15} {n.state:<9} {n.phase:<10} "
                   f"{n.virt_type:<5} {n.ssh}")
    for net in st.networks:
        click.echo(f"  network {net['name']} ({net['kind']}, "
                   f"{'active' if net['active'] else 'inactive'})")
    for v in st.volumes:
        click.echo(f"  volume  {v['name']} ({v['capacity'] / 2**30:.1f} GiB, "
                   f"{v['allocation'] / 2**20:.0f} MiB used)")


def print_snapshots(lab: str, found: Sequence[LabSnapshot]) -> None:
    """`oslab snapshot --list`: each snapshot, then each node's part of it."""
    if not found:
        click.echo(f"lab {lab}: no snapshots")
    for s in found:
        d = s.as_dict()
        click.echo(f"{s.name}  {d['created']}  {s.description}")
        for n in s.nodes:
            click.echo(f"    {n.node:<12} {n.state:<9} {n.progress}")


def print_reverted(name: str, done: Reverted) -> None:
    """`oslab revert`: how long each phase took, and when each node answered again."""
    phases = ", ".join(f"{what} {took:.2f}s" for what, took in done.phases)
    click.echo(f"reverted to {name} in {done.seconds:.1f}s ({phases})")
    for s in done.settled:
        click.echo(f"  {s.node:<12} answers SSH {s.seconds:.2f}s after the resume; "
                   f"clock corrected by {s.skew:.0f}s")
    if not done.settled:
        click.echo("  no node runs in this snapshot")
