"""What is printed at the end of a run: the verification table (`oslab verify`) and
`oslab up`'s summary (nodes, dashboard, credentials, the table, the time per stage)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from oslab.install.verify.cloud import dashboard_url
from oslab.install.verify.results import Report, Status
from oslab.spec import LabSpec


def render_table(report: Report) -> str:
    """The verification table: one row per check; a failure says what to look at."""
    name_w = max([len("check")] + [len(r.name) for r in report.rows])
    lines = [f"{'check':<{name_w}}  {'result':<6}  {'time':>7}  details"]
    indent = " " * (name_w + 2 + 6 + 2 + 7 + 2)
    for r in report.rows:
        first, *rest = (r.details or "").splitlines() or [""]
        lines.append(f"{r.name:<{name_w}}  {r.status.value:<6}  {r.seconds:>6.1f}s  {first}"
                     .rstrip())
        lines.extend(indent + line for line in rest)
        if r.status is Status.FAIL and r.hint:
            lines.append(f"{indent}look at: {r.hint}")
    passed = sum(r.status is Status.PASS for r in report.rows)
    failed = len(report.failed)
    skipped = sum(r.status is Status.SKIP for r in report.rows)
    lines.append(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else "")
                 + f" in {report.seconds:.0f}s")
    if report.kept:
        lines.append("kept (--keep): " + ", ".join(report.kept))
    return "\n".join(lines)


def render_summary(spec: LabSpec, report: Report | None, stages: Mapping[str, float],
                   key_path: Path | None = None) -> str:
    """What `oslab up` prints at the end: nodes, dashboard, credentials, SSH, the verification
    table and the time per stage. Never a password: it says how to get one."""
    lines = [f"lab {spec.name}: OpenStack {spec.release}"]
    lines.append("nodes:")
    for n in spec.nodes:
        lines.append(f"  {n.name:<12} {n.role.value:<10} {n.address!s:<15} "
                     f"oslab ssh {n.name}")
    lines.append(f"dashboard:       {dashboard_url(spec)}  (domain Default, user admin or demo)")
    lines.append("admin password:  oslab openrc admin --print")
    lines.append("openrc files:    oslab openrc admin  /  oslab openrc demo  (path; "
                 ". it, then `openstack token issue`)")
    # the catalog's endpoints name the controller, which only the nodes resolve
    lines.append(f"                 the other services need `{spec.controller.address} "
                 f"{spec.controller.name}` in this host's /etc/hosts")
    ssh = f"oslab ssh {spec.controller.name}"
    if key_path is not None:
        ssh += f"   or   ssh -i {key_path} root@{spec.controller.address}"
    lines.append(f"ssh:             {ssh}")
    if report is not None:
        lines.append("verification:")
        lines.extend("  " + line for line in render_table(report).splitlines())
    if stages:
        lines.append("time per stage:")
        lines.extend(f"  {stage:<10} {seconds:>7.0f}s" for stage, seconds in stages.items())
        lines.append(f"  {'total':<10} {sum(stages.values()):>7.0f}s")
    return "\n".join(lines)
