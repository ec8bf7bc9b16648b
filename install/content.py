"""Wiring between the CLI, the service content and the engine.

The content is a function ``(ctx: InstallContext) -> dict[str, list[StepDef]]`` (node name →
that node's ordered steps): oslab's own is ``oslab.install.services.steps_for``, and the CLI's
options carry the one to use. This module builds its ``InstallContext`` (virt types read on the
compute nodes, or the host's own choice when the nodes are not there), and writes every file the
installer would put on each node (``oslab render``), the kickstart included.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from oslab.access import ssh
from oslab.access.ssh import NodeConn, Target
from oslab.access.state import LabState
from oslab.errors import OslabError
from oslab.files import write_atomic
from oslab.install import facts
from oslab.install.model import InstallContext, StepDef, check_nodes
from oslab.kickstart.render import kickstarts
from oslab.spec import LabSpec, VirtType

KICKSTART_NAME = "ks.cfg"  # at the root of the node's OEMDRV disk

Content = Callable[[InstallContext], dict[str, list[StepDef]]]
"""The install content: each node's ordered steps for a lab (``oslab.install.services``)."""


def lab_steps(spec: LabSpec, state: LabState, virt_types: Mapping[str, str],
              content: Content) -> dict[str, list[StepDef]]:
    """``content``'s steps for the lab, with its passwords and the compute nodes' virt types."""
    ctx = InstallContext(spec=spec, password=state.password, virt_types=dict(virt_types))
    steps = content(ctx)
    check_nodes(spec, steps)
    return steps


def host_virt_types(spec: LabSpec, virt_type: str) -> dict[str, str]:
    return {n.name: virt_type for n in spec.nodes if n.is_compute}


def read_virt_types(spec: LabSpec, targets: Mapping[str, Target], host_virt_type: str,
                    connect: Callable[[Target], NodeConn] = ssh.connect) -> dict[str, str]:
    """Each compute node's own vmx/svm answer (``kvm`` or ``qemu``), read over SSH.

    When this host runs the nodes under qemu (``host_virt_type``), every compute node gets
    qemu without asking it: qemu's emulated CPU may list svm or vmx (TCG's ``max`` model lists
    svm), but a kvm guest nested in an emulated CPU is not what nova should be told to start.
    """
    if host_virt_type == VirtType.QEMU:
        return host_virt_types(spec, VirtType.QEMU)
    computes = [n.name for n in spec.nodes if n.is_compute]

    def one(node: str) -> str:
        if node not in targets:
            raise OslabError(f"node {node} is not running", hint="`oslab status`")
        conn = connect(targets[node])
        try:
            fact = facts.virt_type()
            result = conn.run(fact.command, timeout=fact.timeout)
            return fact.parse(result.stdout, result.stderr, result.returncode)
        finally:
            conn.close()

    with ThreadPoolExecutor(max_workers=max(1, len(computes))) as pool:
        return dict(zip(computes, pool.map(one, computes), strict=True))


def prepare_out(out: Path) -> Path:
    """``out`` made (with its parents) and proven writable, as an absolute path; checked
    before anything else is made, so a bad ``--out`` leaves no keys or state behind."""
    try:
        out = out.resolve()
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as exc:
        raise OslabError(f"cannot write into the output directory {out}: "
                         f"{exc.strerror or exc}",
                         hint="pass --out a directory you can write (it is made if missing)"
                         ) from exc
    return out


def export(spec: LabSpec, state: LabState, steps: Mapping[str, Sequence[StepDef]],
           out: Path) -> list[Path]:
    """Write ``out/<node>/<path on the node>`` for every file of every step, and
    ``out/<node>/ks.cfg`` (kickstart distros). Secret files (and the kickstart: it holds the
    node's private host key) are written 0600, the others 0644. Returns the paths written."""
    written: list[Path] = []
    out = prepare_out(out)
    for node, text in kickstarts(spec, state).items():
        path = out / node / KICKSTART_NAME
        write_atomic(path, text, 0o600, base=out)
        written.append(path)
    for node, lst in steps.items():
        for step in lst:
            for f in step.files:
                rel = f.path.lstrip("/")
                if not f.path.startswith("/") or ".." in Path(rel).parts or not rel:
                    raise OslabError(f"step {step.name}: file path {f.path!r} is not absolute",
                                     hint="this is a bug in the install content")
                path = out / node / rel
                write_atomic(path, f.content, 0o600 if f.secret else 0o644, base=out)
                written.append(path)
    return written
