"""`oslab up --stage provision`: from a spec to kickstarted nodes that answer SSH.

Every decision is read from libvirt each time (which objects exist, each domain's phase in its
metadata, whether it runs), so a rerun after an interruption, even ``kill -9``, continues where
the lab is and creates nothing twice. A finished lab reruns with zero changes.

A node moves through phases kept in its domain's metadata:
``defined`` (install-time XML, not started yet) → ``installing`` (started from the installer)
→ powered off → ``final`` (redefined to boot from disk) → running and answering SSH.

The decisions are the installer's shape: ``oslab.provisioning.decide`` reads the facts from libvirt
and decides, purely, what each object needs and why (what `oslab plan` shows); the provisioner
applies those decisions. Each node's domain is decided again from its facts just before it is
acted on.
"""

from __future__ import annotations

import functools
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from oslab.access.ssh import wait_ready
from oslab.access.state import LabState, cache_root
from oslab.distro import Distro, NodeOs, distro_for, node_os
from oslab.downloads import download
from oslab.downloads import iso as isomod
from oslab.downloads.iso import InstallerMedia
from oslab.errors import OslabError, ProvisionError
from oslab.kickstart.render import kickstarts, oemdrv_iso
from oslab.networks import network_def
from oslab.provisioning.decide import (
    ProvisionPlan,
    Verb,
    decide,
    decide_domain,
    decide_image_domain,
    domain_fact,
    read_facts,
)
from oslab.report import Reporter, tail
from oslab.spec import LabSpec, Node, VirtType
from oslab.virt.definitions import (
    INSTALLER_INITRD,
    INSTALLER_ISO,
    INSTALLER_KERNEL,
    DomainDef,
    PoolDef,
    domain_def,
    domain_name,
    image_domain_def,
    node_volumes,
    oemdrv_volume_name,
    pool_dir,
)
from oslab.virt.handles import Connection, Domain
from oslab.virt.lab_objects import INACTIVE, LabObjects, libvirt_calls, state_name, wait_for
from oslab.virt.metadata import DomainPhase, LabMeta

if TYPE_CHECKING:
    from oslab.images.nodes import Bake
    from oslab.images.serve import RepoServer


# What must hold on a node before it counts as ready. A node booted from a base image answers
# SSH while cloud-init is still applying its seed, and cloud-init then restarts sshd (for
# ssh_pwauth): on its first boot, ready means cloud-init has finished. boot-finished is written
# again only at the end of every later boot, after multi-user.target, which waits for every
# OpenStack service to start (more than 15 minutes for a controller under TCG); the per-instance
# semaphore of the last module of the first boot (scripts_user) stays, so a node booted again
# is ready as soon as SSH answers.
SEEDED = ("test -e /var/lib/cloud/instance/boot-finished || "
          "test -e /var/lib/cloud/instance/sem/config_scripts_user")
READY_PROBE = {NodeOs.KICKSTART: "true", NodeOs.IMAGE: SEEDED, NodeOs.GOLDEN: SEEDED}


@dataclass
class NodeOutcome:
    node: str
    address: str
    virt_type: str
    changed: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class ProvisionResult:
    nodes: list[NodeOutcome]
    changed: list[str]
    seconds: float

    @property
    def change_count(self) -> int:
        return len(self.changed) + sum(len(n.changed) for n in self.nodes)


def combined(errors: list[Exception], hint: str) -> Exception:
    """One error for the failures of parallel nodes: the only one as it is, or all of them in
    one ProvisionError (chained to the first that is not an OslabError, for --debug)."""
    if len(errors) == 1:
        return errors[0]
    lines = [str(e) if isinstance(e, OslabError) else f"{type(e).__name__}: {e}" for e in errors]
    error = ProvisionError("\n".join(lines), hint=hint)
    error.__cause__ = next((e for e in errors if not isinstance(e, OslabError)), None)
    return error


def install_timeout(spec: LabSpec, distro: type[Distro], virt_type: VirtType) -> int:
    if spec.install_timeout_s:
        return spec.install_timeout_s
    # Under plain qemu (TCG) an install takes several times longer than under kvm.
    return distro.install_timeout_s * (1 if virt_type == VirtType.KVM else 4)


class Provisioner:
    def __init__(self, spec: LabSpec, conn: Connection, state: LabState, reporter: Reporter,
                 virt_type: VirtType, bake: Bake, fresh_image: bool = False) -> None:
        self.spec = spec
        self.conn = conn
        self.state = state
        self.report = reporter
        self.virt_type = virt_type
        self.bake = bake  # what a Debian lab's base images carry (oslab.resolve.bake)
        self.distro = distro_for(spec.distro)
        self.node_os = node_os(spec)
        self.objs = LabObjects(conn, spec.name)
        self.fresh_image = fresh_image  # `up --fresh-image`: new bases for the new nodes
        self.changed: list[str] = []
        # set when the run is interrupted (Ctrl-C): each node's wait stops at its next poll
        self.stopping = threading.Event()
        self.server: RepoServer | None = None  # the local package repository, while oslab runs

    # -- the whole stage --------------------------------------------------------------------

    @libvirt_calls("provisioning the lab")
    def run(self) -> ProvisionResult:
        start = time.monotonic()
        plan = self.check_existing()
        if self.node_os is NodeOs.IMAGE:
            return self.run_image(start, plan)
        if self.node_os is NodeOs.GOLDEN:
            return self.run_golden(start, plan)
        ks = kickstarts(self.spec, self.state)  # all validated before any VM starts
        self.ensure_shared()
        pending = [n for n in self.spec.nodes if plan.node(n.name).needs_install]
        media = self.installer_media() if pending else None
        unstarted = [n for n in pending if not plan.node(n.name).install_started]
        for node in self.spec.nodes:
            for vol in node_volumes(node):
                if self.objs.ensure_volume(vol):
                    self.changed.append(f"volume {vol.name}")
        with tempfile.TemporaryDirectory(prefix="oslab-ks-") as tmp:
            for node in unstarted:
                path = oemdrv_iso(ks[node.name], Path(tmp) / f"{node.name}.iso")
                if self.objs.volume(oemdrv_volume_name(node)) is None:
                    self.changed.append(f"volume {oemdrv_volume_name(node)}")
                self.objs.upload(oemdrv_volume_name(node), path, replace=True)
        return self.every_node(lambda n: self.node(n, media), start)

    def run_image(self, start: float, plan: ProvisionPlan) -> ProvisionResult:
        """Nodes booting a base image built on the host: overlays, seeds, direct kernel boot."""
        from oslab.images.nodes import ImageNodes

        self.ensure_shared()
        images = ImageNodes(self.spec, self.conn, self.state, self.objs, self.report.lab,
                            self.bake, fresh_image=self.fresh_image)
        missing = [n for n in self.spec.nodes if not plan.node(n.name).has_domain]
        bases = images.bases(missing)
        definitions = {}
        for node in missing:
            base = bases[node.name]
            self.changed += images.volumes(node, base)
            definitions[node.name] = image_domain_def(
                self.spec, node, virt_type=self.virt_type,
                console_log=self.state.console_log_path(node.name),
                kernel=base.kernel, initrd=base.initrd, cmdline=base.cmdline)
        self.server = images.serve()
        return self.every_node(lambda n: self.node(n, None, definitions.get(n.name)), start)

    def run_golden(self, start: float, plan: ProvisionPlan) -> ProvisionResult:
        """Nodes as overlays on a golden base that the installer installed once (cached),
        each with its NoCloud seed, booting from disk."""
        from oslab.images.build import images_dir, use_path
        from oslab.images.common import locked
        from oslab.images.golden import chosen, golden_base, golden_inputs
        from oslab.images.nodes import overlay_volumes, seed_volume
        from oslab.images.pool import ImageCache

        self.ensure_shared()
        missing = [n for n in self.spec.nodes if not plan.node(n.name).has_domain]
        definitions = {}
        if missing:
            inputs = chosen(golden_inputs(self.spec), self.fresh_image, ImageCache(self.conn))
            # held until every overlay exists, so no prune removes the base meanwhile
            with locked(use_path(images_dir(), inputs.key()), shared=True):
                base = golden_base(self, inputs)
                for node in missing:
                    self.changed += overlay_volumes(self.objs, node, base)
                    self.changed += seed_volume(self.objs, self.state, self.spec, node, "", "",
                                                growpart=True)
                    definitions[node.name] = image_domain_def(
                        self.spec, node, virt_type=self.virt_type,
                        console_log=self.state.console_log_path(node.name),
                        kernel="", initrd="", cmdline="")
        elif self.fresh_image:
            self.report.lab("--fresh-image: every node exists and keeps its base, so no base "
                            "is installed again (destroy the lab first)")
        return self.every_node(lambda n: self.node(n, None, definitions.get(n.name)), start)

    def every_node(self, one: Callable[[Node], NodeOutcome], start: float) -> ProvisionResult:
        """``one`` on every node in parallel; every node's error is reported."""
        with ThreadPoolExecutor(max_workers=len(self.spec.nodes)) as pool:
            futures = [pool.submit(one, n) for n in self.spec.nodes]
            outcomes: list[NodeOutcome] = []
            errors: list[Exception] = []
            try:
                for fut in futures:
                    try:
                        outcomes.append(fut.result())
                    except Exception as exc:  # every node's failure is reported, none is lost
                        errors.append(exc)
            except BaseException:  # Ctrl-C: the pool waits for its threads; stop their waits
                self.stopping.set()
                raise
        if errors:
            raise combined(errors, hint="see the logs in " + str(self.state.dir / "logs"))
        return ProvisionResult(outcomes, self.changed, time.monotonic() - start)

    def check_existing(self) -> ProvisionPlan:
        """Read the lab's objects from libvirt and decide what each needs. Refuse foreign
        objects with the lab's names (while reading), and domains built from another spec."""
        plan = decide(self.spec, read_facts(self.objs, self.spec), self.node_os)
        for node in plan.nodes:
            if Verb.REFUSE in node.domain.verbs:
                raise self.refused(node.node, node.domain.reason)
        return plan

    def refused(self, node: str, reason: str) -> OslabError:
        return OslabError(
            f"node {node} was {reason}",
            hint=f"run `oslab --lab {self.spec.name} destroy` to rebuild the lab from "
                 "this spec, or restore the spec it was built from")

    def ensure_shared(self) -> None:
        for net in self.spec.networks:
            nd = network_def(self.spec, net)
            if self.objs.ensure_network(nd):
                self.changed.append(f"network {nd.name}")
                self.report.lab(f"network {nd.name} ({net.cidr}, {net.mode.value}) is up")
        if self.objs.ensure_pool(PoolDef(self.spec.name, pool_dir(self.spec))):
            self.changed.append(f"pool {self.spec.name}")
            self.report.lab(f"storage pool {self.spec.name} at {pool_dir(self.spec)}")

    def installer_media(self) -> InstallerMedia:
        """Upload the installer ISO, kernel and initrd into the pool."""
        iso_path = download.fetch(self.spec.installer_iso, cache_root() / "iso",
                                  download.text_progress("installer ISO"))
        label = isomod.read_label(iso_path)
        self.report.lab(f"installer ISO {iso_path} (label {label})")
        for name, source in ((INSTALLER_ISO, iso_path),):
            if self.objs.volume(name) is None:
                self.changed.append(f"volume {name}")
            self.objs.upload(name, source)
        with tempfile.TemporaryDirectory(prefix="oslab-boot-") as tmp:
            kernel, initrd = isomod.extract_boot_files(
                iso_path, self.distro.kernel_path, self.distro.initrd_path, Path(tmp))
            kvol = self.objs.upload(INSTALLER_KERNEL, kernel)
            ivol = self.objs.upload(INSTALLER_INITRD, initrd)
        return InstallerMedia(kvol.path(), ivol.path(), label)

    # -- one node -----------------------------------------------------------------------------

    def meta(self, dom: Domain) -> LabMeta:
        meta = LabMeta.from_object_xml(dom.XMLDesc(INACTIVE))
        assert meta is not None
        return meta

    def definition(self, node: Node, media: InstallerMedia | None) -> DomainDef:
        media = media or InstallerMedia("", "", "")
        return domain_def(self.spec, node, virt_type=self.virt_type,
                          console_log=self.state.console_log_path(node.name),
                          kernel=media.kernel, initrd=media.initrd, iso_label=media.label)

    def node(self, node: Node, media: InstallerMedia | None,
             image: DomainDef | None = None) -> NodeOutcome:
        with libvirt_calls(f"provisioning node {node.name}"):
            return self._node(node, media, image)

    def _node(self, node: Node, media: InstallerMedia | None,
              image: DomainDef | None = None) -> NodeOutcome:
        start = time.monotonic()
        out = NodeOutcome(node.name, str(node.address), self.virt_type)
        name = domain_name(self.spec.name, node.name)
        say = functools.partial(self.report.node, node.name)
        dom: Domain = self.objs.domain(name)  # None until the decision defines it
        decide_node = decide_image_domain if self.node_os.overlays else decide_domain
        decision = decide_node(f"domain {name}", None if dom is None else domain_fact(dom),
                               self.spec.digest())
        for verb in decision.verbs:
            if verb is Verb.REFUSE:
                raise self.refused(node.name, decision.reason)
            if verb is Verb.DEFINE:
                assert media is not None or image is not None
                definition = image or self.definition(node, media)
                console = self.state.console_log_path(node.name)
                console.parent.mkdir(parents=True, exist_ok=True)
                dom = self.conn.defineXML(definition.xml())
                out.changed.append("domain defined")
                say(f"defined {name} ({self.virt_type}, {node.memory_mib} MiB, "
                    f"{node.vcpus} vCPU)")
            elif verb in (Verb.INSTALL, Verb.AWAIT_INSTALL):
                assert media is not None
                self.install(node, dom, self.meta(dom).phase, media, out.changed)
            elif verb is Verb.BOOT:
                dom.create()
                out.changed.append("started")
                say("booting from disk")
            elif verb is Verb.RESUME:
                dom.resume()
                out.changed.append("resumed")
                say("resumed")
            elif verb is Verb.RESTORE:
                dom.create()  # libvirt restores its saved memory
                out.changed.append("restored")
                say("restored from its saved memory (`oslab suspend`)")
        say(f"waiting for SSH at {node.address}")
        target = self.state.spec_target(node)
        ok, reason = wait_ready(target, self.spec.boot_timeout_s,
                                on_wait=self.ticker(node.name, "waiting for SSH"),
                                probe=READY_PROBE[self.node_os])
        if not ok:
            raise ProvisionError(
                f"{node.name}: no SSH at {node.address} after {self.spec.boot_timeout_s}s "
                f"({reason}); the serial console ends with:\n"
                + tail(self.state.console_log_path(node.name)),
                hint=f"look at `oslab console {node.name}`; rerun `oslab up` to continue")
        if Verb.RESTORE in decision.verbs:  # its memory brought its old clock back
            from oslab.snapshots.checkpoint import settle
            skew = settle({node.name: target})[0].skew
            say(f"clock was {skew:.0f}s off, now set")
        out.seconds = time.monotonic() - start
        say(f"ready: ssh root@{node.address} (oslab ssh {node.name})")
        return out

    def install(self, node: Node, dom: Domain, phase: str, media: InstallerMedia,
                changed: list[str], then: str = "now boots from disk") -> None:
        say = functools.partial(self.report.node, node.name)
        definition = self.definition(node, media)
        console = self.state.console_log_path(node.name)
        if not dom.isActive() and phase == DomainPhase.DEFINED:
            console.parent.mkdir(parents=True, exist_ok=True)
            console.write_bytes(b"")
            dom.create()
            changed.append("install started")
            say("install started (unattended kickstart)")
        if phase == DomainPhase.DEFINED:
            # Record that the installer runs, so a rerun waits for it instead of restarting it.
            installing = definition.redefinition(dom.UUIDString(), DomainPhase.INSTALLING)
            self.conn.defineXML(installing.xml())
        else:
            say("install already under way; waiting for it")
        limit = install_timeout(self.spec, self.distro, self.virt_type)
        done = wait_for(lambda: not dom.isActive(), limit, interval=2.0,
                        on_tick=self.ticker(node.name, "installing"))
        if not done:
            raise ProvisionError(
                f"{node.name}: the install did not finish within {limit}s "
                f"(the domain is still {state_name(dom)}); the serial console ends with:\n"
                + tail(console),
                hint=f"watch it with `oslab console {node.name}`, raise lab.install_timeout_s, "
                     "or `oslab destroy` and retry")
        text = console.read_text(errors="replace") if console.exists() else ""
        failed = [p for p in self.distro.install_failures if p in text]
        if failed:
            raise ProvisionError(
                f"{node.name}: the install failed ({failed[0]!r} on the console):\n"
                + tail(console),
                hint=f"the kickstart is in the OEMDRV disk; `oslab destroy` then `oslab up` "
                     f"retries; full console log: {console}")
        final = definition.final().redefinition(dom.UUIDString(), DomainPhase.FINAL)
        self.conn.defineXML(final.xml())
        changed.append("installed")
        say(f"install finished and powered off; {then}")

    def ticker(self, node: str, what: str) -> Any:
        last = [0.0]

        def tick(elapsed: float, reason: object = None) -> None:
            if self.stopping.is_set():
                raise ProvisionError(f"{node}: interrupted while {what}")
            if elapsed - last[0] >= 30:
                last[0] = elapsed
                why = f": {reason}" if reason else ""
                self.report.node(node, f"{what} ({elapsed:.0f}s{why})")
        return tick
