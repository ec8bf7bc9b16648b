"""`oslab up`: the host check, then the lab's stages in order (provision, install, verify),
with the installer's automatic checkpoints and the time each stage took.

:func:`run` yields each finished stage's result as it comes, so that the CLI prints a stage's
summary before the next stage begins; it neither parses options nor prints.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from oslab import spec as specmod
from oslab.access.state import LabState
from oslab.errors import OslabError

if TYPE_CHECKING:
    from oslab.install.content import Content
    from oslab.install.engine import RunResult
    from oslab.install.model import StepDef
    from oslab.install.verify import Report
    from oslab.provisioning.provisioner import ProvisionResult
    from oslab.snapshots.checkpoint import Checkpoints
    from oslab.virt.handles import Connection

STAGES = ("provision", "install", "verify", "all")


class LabAccess(Protocol):
    """What `up` needs of the CLI's global options: the spec, libvirt and the install content."""

    uri: str

    def spec(self) -> specmod.LabSpec: ...

    def connect(self) -> Any: ...

    def install_content(self) -> Content: ...


@dataclass(frozen=True)
class UpOptions:
    """`oslab up`'s own options: ``stage`` is the last stage to run (one of :data:`STAGES`)."""

    stage: str = "all"
    from_step: str | None = None  # rerun this install step and every one after it fully
    checkpoints: bool = True  # the installer's automatic auto-<phase> snapshots
    fresh_image: bool = False  # new base images for the nodes made in this run
    until: str | None = None  # stop before this install step (or service), for the user

    def __post_init__(self) -> None:
        for given, flag in ((self.from_step, "--from"), (self.until, "--until")):
            if given and not self.install:
                raise OslabError(f"{flag} names an install step, but --stage provision stops "
                                 "before the install", hint="drop --stage provision")

    @property
    def install(self) -> bool:
        return self.stage != "provision"

    @property
    def verify(self) -> bool:
        return self.stage in ("verify", "all")


@dataclass(frozen=True)
class Provisioned:
    spec: specmod.LabSpec
    result: ProvisionResult


@dataclass(frozen=True)
class Installed:
    spec: specmod.LabSpec
    result: RunResult


@dataclass(frozen=True)
class Stopped:
    """`up --until STEP` stopped before STEP: what comes next, where, and how to check it."""

    spec: specmod.LabSpec
    until: str
    next_step: str  # the first step of what --until names
    nodes: tuple[str, ...]  # where it runs
    page: str  # the install guide's page for it
    check: str  # the `oslab verify --only` group that proves it ("" for none of its own)
    snapshot: str  # the lab-wide snapshot taken before it
    snapshot_kept: bool  # an earlier run took it; it was kept, not replaced


@dataclass(frozen=True)
class Verified:
    spec: specmod.LabSpec
    report: Report
    times: dict[str, float]  # seconds per stage, in the order they ran
    key_path: Path  # the lab's SSH private key


Stage = Provisioned | Installed | Stopped | Verified


def run(lab: LabAccess, options: UpOptions) -> Iterator[Stage]:
    """Build the lab (or finish building it) up to ``options.stage``. Every input that can be
    wrong is checked before anything is made; the host check's blockers stop it there."""
    from oslab import preflight, resolve
    from oslab.provisioning.provisioner import Provisioner
    from oslab.report import Reporter
    from oslab.virt.definitions import pool_dir

    spec = lab.spec()
    if options.fresh_image:
        from oslab.distro import node_os
        if not node_os(spec).overlays:
            raise OslabError(f"--fresh-image: lab {spec.name} ({spec.distro}) installs its "
                             "nodes from the installer, not from a cached base image",
                             hint="drop --fresh-image, or set `golden = true` under [lab] "
                                  "so its nodes are overlays on a cached base")
    # a typo in --from or --until must not wait for the provisioning
    from oslab.install import graph

    if options.from_step:
        _check_step(spec, options.from_step, lab.install_content(), graph.forced_from)
    if options.until:
        _check_step(spec, options.until, lab.install_content(), graph.until)
    conn = lab.connect()
    # exactly `oslab check`'s checks (the [verify] image's too): one validation for both
    host = resolve.host_check(spec, conn, lab.uri, pool_dir(spec), options.stage)
    findings, choice = host.findings, host.virt
    blockers = preflight.blockers(findings)
    if blockers:
        raise OslabError("the host cannot run this lab:\n" + "\n".join(
            f"  - {f.check}: {f.message}" + (f"\n    hint: {f.hint}" if f.hint else "")
            for f in blockers), hint="fix the above, then rerun; `oslab check` shows them all")
    state = LabState(spec.name).ensure()
    reporter = Reporter(logs={n.name: state.log_path(n.name) for n in spec.nodes})
    for f in findings:
        if f.severity is preflight.Severity.WARN:
            reporter.lab(f"warning: {f.check}: {f.message}")
    reporter.lab(f"lab {spec.name} from {spec.source}: {len(spec.nodes)} nodes, "
                 f"virt type {choice.virt_type} ({'; '.join(choice.reasons)})")
    bake = resolve.bake(spec, state, choice.virt_type, lab.install_content())
    result = Provisioner(spec, conn, state, reporter, choice.virt_type, bake,
                         fresh_image=options.fresh_image).run()
    yield Provisioned(spec, result)
    if not options.install:
        return
    from oslab.snapshots.checkpoint import Checkpoints

    times = {"provision": result.seconds}
    checkpoints = Checkpoints(conn, spec.name, enabled=options.checkpoints, say=reporter.lab)
    if result.change_count:
        checkpoints.take("os", "the OS is installed")
    started = time.monotonic()
    installed, following = _install(spec, state, reporter, options, checkpoints,
                                    choice.virt_type, lab.install_content())
    times["install"] = time.monotonic() - started
    yield Installed(spec, installed)
    if options.until:
        yield _stop_before(conn, spec, options.until, following, reporter)
        return
    if not options.verify:
        return
    from oslab.install import verify as verifymod

    started = time.monotonic()
    report = verifymod.verify_lab(spec, state, say=reporter.lab)
    times["verify"] = time.monotonic() - started
    if report.ok:
        checkpoints.take("verified", "the cloud works")
    yield Verified(spec, report, times, state.ssh_key().private_path)


def _check_step(spec: specmod.LabSpec, name: str, steps_for: Content,
                cut: Callable[[dict[str, list[StepDef]], str], object]) -> None:
    """Refuse ``--from NAME`` or ``--until NAME`` when ``cut`` (``graph.forced_from`` or
    ``graph.until``) finds nothing of that name in the install steps (the names do not depend
    on the virt type, nor on the passwords, so neither is read or made here)."""
    from oslab.install import content
    from oslab.install.model import InstallContext

    ctx = InstallContext(spec=spec, password=lambda _name: "x",
                         virt_types=content.host_virt_types(spec, specmod.VirtType.QEMU))
    cut(steps_for(ctx), name)


def _install(spec: specmod.LabSpec, state: LabState, reporter: Any, options: UpOptions,
             checkpoints: Checkpoints, host_virt_type: str,
             steps_for: Content) -> tuple[RunResult, list[tuple[str, str]]]:
    """The install stage: the content's steps on every node, by the engine; with --until,
    only those before it, and the step instances that come next."""
    from oslab import resolve
    from oslab.install import content, graph
    from oslab.install.engine import Engine

    targets = {n.name: state.spec_target(n) for n in spec.nodes}
    virt_types, _ = resolve.virt_types(spec, targets, host_virt_type)
    steps = content.lab_steps(spec, state, virt_types, steps_for)
    following: list[tuple[str, str]] = []
    if options.until:
        steps, following = graph.until(steps, options.until)
    engine = Engine(spec, state, targets, steps, reporter=reporter,
                    checkpoints=checkpoints if checkpoints.enabled else None)
    return engine.run(from_step=options.from_step), following


def _stop_before(conn: Connection, spec: specmod.LabSpec, until: str,
                 following: list[tuple[str, str]], reporter: Any) -> Stopped:
    """The lab-wide snapshot ``before-UNTIL`` (one an earlier run took is kept), and what the
    user does next."""
    from oslab.distro import RELEASES
    from oslab.install.guide import lesson
    from oslab.snapshots.snapshot import LabSnapshots

    name = f"before-{until}"
    snaps = LabSnapshots(conn, spec.name)
    kept = any(s.name == name for s in snaps.snapshots())
    if not kept:
        result = snaps.take(name, f"oslab up --until {until}: every step before {until}")
        reporter.lab(f"snapshot {name} taken in {result.seconds:.1f}s")
    step = following[0][1]
    found = lesson(step, RELEASES[spec.release].version)
    return Stopped(spec, until, step, tuple(n for n, _ in following), found.page, found.check,
                   name, kept)
