"""Provisioning decided from facts: what `oslab up --stage provision` would create or change.

The installer's shape (``oslab.install.ops``) for the libvirt side: :func:`read_facts` reads
what exists (the lab's networks, its pool and volumes, each node's domain with the phase in its
oslab metadata), :func:`decide` is a pure function from those facts to one decision per object,
each with its reason, and the provisioner applies them. ``oslab plan`` renders the same
decisions, from libvirt's state, or for a blank host (:meth:`ProvisionFacts.blank`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum

from oslab.distro import NodeOs
from oslab.networks import network_def
from oslab.spec import LabSpec
from oslab.virt.definitions import (
    INSTALLER_INITRD,
    INSTALLER_ISO,
    INSTALLER_KERNEL,
    domain_name,
    node_volumes,
    oemdrv_volume_name,
    pool_dir,
    seed_volume_name,
)
from oslab.virt.handles import Domain
from oslab.virt.lab_objects import INACTIVE, DomainState, LabObjects, state_name
from oslab.virt.metadata import DomainPhase, LabMeta

# -- facts ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NetworkFact:
    name: str
    exists: bool
    active: bool = False


@dataclass(frozen=True)
class PoolFact:
    exists: bool
    active: bool = False


@dataclass(frozen=True)
class DomainFact:
    """A node's domain as libvirt has it: its oslab metadata and whether it runs."""

    phase: str  # a DomainPhase, as the text libvirt holds
    spec: str  # the digest of the spec it was built from
    active: bool
    state: DomainState


@dataclass(frozen=True)
class ProvisionFacts:
    networks: tuple[NetworkFact, ...]
    pool: PoolFact
    volumes: frozenset[str] | None  # the pool's volumes; None: the pool is inactive (unlisted)
    domains: Mapping[str, DomainFact] = field(default_factory=dict)  # node name -> its domain

    @classmethod
    def blank(cls, spec: LabSpec) -> ProvisionFacts:
        """A host without any of the lab's objects."""
        return cls(tuple(NetworkFact(network_def(spec, n).name, False) for n in spec.networks),
                   PoolFact(False), frozenset())


def domain_fact(dom: Domain) -> DomainFact:
    meta = LabMeta.from_object_xml(dom.XMLDesc(INACTIVE))
    assert meta is not None  # LabObjects.domain refuses a domain without oslab's metadata
    return DomainFact(meta.phase, meta.spec, bool(dom.isActive()), state_name(dom))


def read_facts(objs: LabObjects, spec: LabSpec) -> ProvisionFacts:
    """The lab's objects as libvirt has them now. Objects with the lab's names that are not
    the lab's are refused here (OwnershipError), before anything is decided."""
    pool = objs.pool()
    networks = []
    for net in spec.networks:
        name = network_def(spec, net).name
        found = objs.network(name)
        networks.append(NetworkFact(name, found is not None,
                                    found is not None and bool(found.isActive())))
    domains = {}
    for node in spec.nodes:
        dom = objs.domain(domain_name(spec.name, node.name))
        if dom is not None:
            domains[node.name] = domain_fact(dom)
    volumes: frozenset[str] | None = frozenset()
    if pool is not None:
        volumes = (frozenset(v.name() for v in pool.listAllVolumes(0)) if pool.isActive()
                   else None)
    pool_fact = PoolFact(pool is not None, pool is not None and bool(pool.isActive()))
    return ProvisionFacts(tuple(networks), pool_fact, volumes, domains)


# -- decisions -----------------------------------------------------------------------------------


class Verb(StrEnum):
    CREATE = "create"
    START = "start"
    UPLOAD = "upload"
    PREPARE = "prepare"
    DEFINE = "define"
    INSTALL = "install"  # start the installer
    AWAIT_INSTALL = "wait for the install"
    BOOT = "boot"
    RESUME = "resume"
    RESTORE = "restore"  # from its saved memory (`oslab suspend`), then its clock put right
    REFUSE = "refuse"


@dataclass(frozen=True)
class Decision:
    """What provisioning does to one object, and why. No verbs: nothing to do."""

    subject: str  # "network lab-mgmt", "volume ctl-system.qcow2", "domain lab-ctl", ...
    verbs: tuple[Verb, ...]
    reason: str

    @property
    def changes(self) -> bool:
        return bool(self.verbs)

    def line(self) -> str:
        return f"{self.subject}: {', '.join(self.verbs) or 'none'} ({self.reason})"


@dataclass(frozen=True)
class NodeDecisions:
    node: str
    volumes: tuple[Decision, ...]
    domain: Decision
    has_domain: bool
    needs_install: bool  # no domain yet, or its install has not finished
    install_started: bool  # its installer runs or ran (its kickstart disk is in use)

    @property
    def decisions(self) -> tuple[Decision, ...]:
        return (*self.volumes, self.domain)


@dataclass(frozen=True)
class ProvisionPlan:
    lab: str
    shared: tuple[Decision, ...]  # networks, pool, installer media or base images
    nodes: tuple[NodeDecisions, ...]

    def node(self, name: str) -> NodeDecisions:
        return next(n for n in self.nodes if n.node == name)

    def only(self, name: str) -> ProvisionPlan:
        """The shared objects and node ``name``'s."""
        return replace(self, nodes=tuple(n for n in self.nodes if n.node == name))

    @property
    def decisions(self) -> tuple[Decision, ...]:
        return (*self.shared, *(d for n in self.nodes for d in n.decisions))

    @property
    def changes(self) -> int:
        return sum(1 for d in self.decisions if d.changes)


def different_spec(fact: DomainFact, digest: str) -> str:
    return f"built from a different spec ({fact.spec}, now {digest})"


def decide_domain(subject: str, fact: DomainFact | None, digest: str) -> Decision:
    """What the node's domain goes through, from its fact read now: defined, installed, then
    booted. Every node is then waited for until it answers SSH."""
    if fact is None:
        return Decision(subject, (Verb.DEFINE, Verb.INSTALL, Verb.BOOT), "absent")
    if fact.spec != digest:
        return Decision(subject, (Verb.REFUSE,), different_spec(fact, digest))
    why = f"phase {fact.phase}, {fact.state}"
    if fact.phase == DomainPhase.DEFINED and not fact.active:
        return Decision(subject, (Verb.INSTALL, Verb.BOOT), why)
    if fact.phase in (DomainPhase.DEFINED, DomainPhase.INSTALLING):
        return Decision(subject, (Verb.AWAIT_INSTALL, Verb.BOOT), why)
    if fact.state == DomainState.SAVED:
        return Decision(subject, (Verb.RESTORE,), why)
    if not fact.active:
        return Decision(subject, (Verb.BOOT,), why)
    if fact.state == DomainState.PAUSED:
        return Decision(subject, (Verb.RESUME,), why)
    return Decision(subject, (), why)


def decide_image_domain(subject: str, fact: DomainFact | None, digest: str) -> Decision:
    """A node booting a base image is defined in its final shape: no install."""
    if fact is None:
        return Decision(subject, (Verb.DEFINE, Verb.BOOT), "absent")
    return decide_domain(subject, fact, digest)


def _volume(name: str, volumes: frozenset[str] | None, what: str = "") -> Decision:
    suffix = f"; {what}" if what else ""
    if volumes is None:
        return Decision(f"volume {name}", (Verb.CREATE,),
                        "unless present: the pool is inactive, so it was not listed" + suffix)
    if name in volumes:
        return Decision(f"volume {name}", (), "present")
    return Decision(f"volume {name}", (Verb.CREATE,), "absent" + suffix)


def decide(spec: LabSpec, facts: ProvisionFacts, node_os: NodeOs) -> ProvisionPlan:
    """Every provisioning decision, in the order the provisioner applies them."""
    digest = spec.digest()
    shared = []
    for net in facts.networks:
        subject = f"network {net.name}"
        if not net.exists:
            shared.append(Decision(subject, (Verb.CREATE,), "absent"))
        elif not net.active:
            shared.append(Decision(subject, (Verb.START,), "inactive"))
        else:
            shared.append(Decision(subject, (), "active"))
    pool = facts.pool
    if not pool.exists:
        shared.append(Decision(f"pool {spec.name}", (Verb.CREATE,), f"absent; at {pool_dir(spec)}"))
    elif not pool.active:
        shared.append(Decision(f"pool {spec.name}", (Verb.START,), "inactive"))
    else:
        shared.append(Decision(f"pool {spec.name}", (), "active"))
    image = node_os.overlays
    nodes = []
    for node in spec.nodes:
        fact = facts.domains.get(node.name)
        subject = f"domain {domain_name(spec.name, node.name)}"
        domain = (decide_image_domain if image else decide_domain)(subject, fact, digest)
        needs_install = fact is None or fact.phase != DomainPhase.FINAL
        started = fact is not None and (fact.active or fact.phase != DomainPhase.DEFINED)
        volumes: list[Decision] = []
        if image:
            for i, vol in enumerate(node_volumes(node)):
                what = "an overlay on its base image" if i == 0 else ""
                volumes.append(_volume(vol.name, facts.volumes, what) if fact is None
                               else Decision(f"volume {vol.name}", (), "its domain exists"))
            seed = seed_volume_name(node)
            volumes.append(
                Decision(f"volume {seed}", (), "its domain exists") if fact is not None
                else Decision(f"volume {seed}", (), "present")
                if facts.volumes is not None and seed in facts.volumes
                else Decision(f"volume {seed}", (Verb.UPLOAD,), "absent; its NoCloud seed"))
        else:
            volumes += [_volume(v.name, facts.volumes) for v in node_volumes(node)]
            oemdrv = f"volume {oemdrv_volume_name(node)}"
            volumes.append(Decision(oemdrv, (), "its install has started") if started
                           else Decision(oemdrv, (Verb.UPLOAD,),
                                         "its kickstart; the install has not started"))
        nodes.append(NodeDecisions(node.name, tuple(volumes), domain, fact is not None,
                                   needs_install, started))
    if image:
        missing = [n.node for n in nodes if not n.has_domain]
        how = ("installed once by the installer in a builder domain and generalised, or reused "
               "from the image cache," if node_os is NodeOs.GOLDEN
               else "built, or reused from the image cache,")
        shared.append(
            Decision("base images", (Verb.PREPARE,), f"{how} for {', '.join(missing)}")
            if missing else Decision("base images", (), "every node has its domain"))
    else:
        pending = [n.node for n in nodes if n.needs_install]
        media = f"installer media ({INSTALLER_ISO}, {INSTALLER_KERNEL}, {INSTALLER_INITRD})"
        shared.append(
            Decision(media, (Verb.UPLOAD,),
                     f"to install {', '.join(pending)}; each kept when there at the same size")
            if pending else Decision(media, (), "every node is installed"))
    return ProvisionPlan(spec.name, tuple(shared), tuple(nodes))


# -- rendering -----------------------------------------------------------------------------------


def render(plan: ProvisionPlan) -> str:
    out = [f"  {d.line()}" for d in plan.shared]
    for node in plan.nodes:
        out.append(f"  node {node.node}")
        out += [f"    {d.line()}" for d in node.decisions]
    changes = plan.changes
    out.append(f"  {changes} object{'s' if changes != 1 else ''} to create or change, then "
               "every node is waited for until it answers SSH" if changes
               else "  no changes: every object is there and every node runs")
    return "\n".join(out) + "\n"
