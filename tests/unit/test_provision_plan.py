"""Provisioning decided from facts (oslab.provisioning.decide).

Tests are data, as for the installer's ops: facts in, decisions out with their exact reasons.
The facts reader runs on libvirt's test driver, opened from a scenario file per test, with the
lab's objects made by oslab's own LabObjects.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import libvirt
import pytest

from oslab import spec_file
from oslab.distro import NodeOs
from oslab.errors import OwnershipError
from oslab.networks import network_def
from oslab.provisioning.decide import (
    Decision,
    DomainFact,
    NetworkFact,
    PoolFact,
    ProvisionFacts,
    Verb,
    decide,
    decide_domain,
    decide_image_domain,
    read_facts,
    render,
)
from oslab.virt.definitions import PoolDef, VolumeDef, domain_def, node_volumes
from oslab.virt.lab_objects import LabObjects

SPEC = spec_file.load_default()  # lab "oslab": controller (two disks) and compute1
DIGEST = SPEC.digest()
SCENARIO = """<node>
  <cpu><mode>1</mode><nodes>1</nodes><sockets>1</sockets><cores>4</cores><threads>1</threads>
  <active>4</active><mhz>2000</mhz><model>x86_64</model></cpu>
  <memory>16777216</memory>
</node>
"""


def final(state: str = "running", active: bool = True) -> DomainFact:
    return DomainFact("final", DIGEST, active, state)


# -- one domain: its fact in, its decision out -------------------------------------------------

DOMAIN_CASES = [
    # (fact, the decision's line)
    (None, "domain d: define, install, boot (absent)"),
    (DomainFact("defined", DIGEST, False, "shut off"),
     "domain d: install, boot (phase defined, shut off)"),
    (DomainFact("defined", DIGEST, True, "running"),
     "domain d: wait for the install, boot (phase defined, running)"),
    (DomainFact("installing", DIGEST, True, "running"),
     "domain d: wait for the install, boot (phase installing, running)"),
    (DomainFact("installing", DIGEST, False, "shut off"),
     "domain d: wait for the install, boot (phase installing, shut off)"),
    (final("shut off", False), "domain d: boot (phase final, shut off)"),
    (final("paused"), "domain d: resume (phase final, paused)"),
    # `oslab suspend` saved its memory: restored, then its clock put right
    (final("suspended", False), "domain d: restore (phase final, suspended)"),
    (final("running"), "domain d: none (phase final, running)"),
    (DomainFact("final", "0123456789abcdef", True, "running"),
     f"domain d: refuse (built from a different spec (0123456789abcdef, now {DIGEST}))"),
]


@pytest.mark.parametrize(("fact", "line"), DOMAIN_CASES)
def test_domain_decision(fact: DomainFact | None, line: str) -> None:
    assert decide_domain("domain d", fact, DIGEST).line() == line


def test_an_image_node_is_defined_final_and_booted_without_an_install() -> None:
    assert decide_image_domain("domain d", None, DIGEST).line() == \
        "domain d: define, boot (absent)"
    assert decide_image_domain("domain d", final("shut off", False), DIGEST).verbs == \
        (Verb.BOOT,)


# -- the whole lab -------------------------------------------------------------------------------


ACTIVE_POOL = PoolFact(True, True)


def facts(*, nets: tuple[bool, bool] = (True, True), pool: PoolFact = ACTIVE_POOL,
          volumes: frozenset[str] | None = frozenset(),
          domains: dict[str, DomainFact] | None = None) -> ProvisionFacts:
    return ProvisionFacts(
        (NetworkFact("oslab-mgmt", True, nets[0]), NetworkFact("oslab-prov", True, nets[1])),
        pool, volumes, domains or {})


EVERY_VOLUME = frozenset({"controller-system.qcow2", "controller-disk1.qcow2",
                          "controller-oemdrv.iso", "compute1-system.qcow2",
                          "compute1-oemdrv.iso", "installer.iso"})
FINISHED = {"controller": final(), "compute1": final()}

LAB_CASES = [
    ("blank host", ProvisionFacts.blank(SPEC), NodeOs.KICKSTART, [
        "network oslab-mgmt: create (absent)",
        "network oslab-prov: create (absent)",
        "pool oslab: create (absent; at /var/lib/libvirt/images/oslab-oslab)",
        "installer media (installer.iso, installer-vmlinuz, installer-initrd.img): upload "
        "(to install controller, compute1; each kept when there at the same size)",
        "volume controller-system.qcow2: create (absent)",
        "volume controller-disk1.qcow2: create (absent)",
        "volume controller-oemdrv.iso: upload (its kickstart; the install has not started)",
        "domain oslab-controller: define, install, boot (absent)",
        "volume compute1-system.qcow2: create (absent)",
        "volume compute1-oemdrv.iso: upload (its kickstart; the install has not started)",
        "domain oslab-compute1: define, install, boot (absent)",
    ]),
    ("finished lab", facts(volumes=EVERY_VOLUME, domains=FINISHED), NodeOs.KICKSTART, [
        "network oslab-mgmt: none (active)",
        "network oslab-prov: none (active)",
        "pool oslab: none (active)",
        "installer media (installer.iso, installer-vmlinuz, installer-initrd.img): none "
        "(every node is installed)",
        "volume controller-system.qcow2: none (present)",
        "volume controller-disk1.qcow2: none (present)",
        "volume controller-oemdrv.iso: none (its install has started)",
        "domain oslab-controller: none (phase final, running)",
        "volume compute1-system.qcow2: none (present)",
        "volume compute1-oemdrv.iso: none (its install has started)",
        "domain oslab-compute1: none (phase final, running)",
    ]),
    ("after a host reboot: inactive network and pool, nodes shut off",
     facts(nets=(False, True), pool=PoolFact(True, False), volumes=None,
           domains={"controller": final("shut off", False),
                    "compute1": DomainFact("installing", DIGEST, False, "shut off")}),
     NodeOs.KICKSTART, [
         "network oslab-mgmt: start (inactive)",
         "network oslab-prov: none (active)",
         "pool oslab: start (inactive)",
         "installer media (installer.iso, installer-vmlinuz, installer-initrd.img): upload "
         "(to install compute1; each kept when there at the same size)",
         "volume controller-system.qcow2: create (unless present: the pool is inactive, so it "
         "was not listed)",
         "volume controller-disk1.qcow2: create (unless present: the pool is inactive, so it "
         "was not listed)",
         "volume controller-oemdrv.iso: none (its install has started)",
         "domain oslab-controller: boot (phase final, shut off)",
         "volume compute1-system.qcow2: create (unless present: the pool is inactive, so it "
         "was not listed)",
         "volume compute1-oemdrv.iso: none (its install has started)",
         "domain oslab-compute1: wait for the install, boot (phase installing, shut off)",
     ]),
    ("image nodes: one defined, one missing",
     facts(volumes=frozenset({"controller-system.qcow2", "controller-disk1.qcow2",
                              "controller-seed.iso"}),
           domains={"controller": final("paused")}),
     NodeOs.IMAGE, [
         "network oslab-mgmt: none (active)",
         "network oslab-prov: none (active)",
         "pool oslab: none (active)",
         "base images: prepare (built, or reused from the image cache, for compute1)",
         "volume controller-system.qcow2: none (its domain exists)",
         "volume controller-disk1.qcow2: none (its domain exists)",
         "volume controller-seed.iso: none (its domain exists)",
         "domain oslab-controller: resume (phase final, paused)",
         "volume compute1-system.qcow2: create (absent; an overlay on its base image)",
         "volume compute1-seed.iso: upload (absent; its NoCloud seed)",
         "domain oslab-compute1: define, boot (absent)",
     ]),
]


@pytest.mark.parametrize(("facts_in", "node_os", "lines"),
                         [c[1:] for c in LAB_CASES], ids=[c[0] for c in LAB_CASES])
def test_lab_decisions(facts_in: ProvisionFacts, node_os: NodeOs, lines: list[str]) -> None:
    plan = decide(SPEC, facts_in, node_os)
    assert [d.line() for d in plan.decisions] == lines


def test_what_the_provisioner_reads_from_the_decisions() -> None:
    plan = decide(SPEC, facts(domains={"controller": DomainFact("installing", DIGEST, True,
                                                                "running")}),
                  NodeOs.KICKSTART)
    ctl, cmp1 = plan.node("controller"), plan.node("compute1")
    assert (ctl.has_domain, ctl.needs_install, ctl.install_started) == (True, True, True)
    assert (cmp1.has_domain, cmp1.needs_install, cmp1.install_started) == (False, True, False)


def test_render_counts_the_changes_and_only_keeps_one_node() -> None:
    text = render(decide(SPEC, ProvisionFacts.blank(SPEC), NodeOs.KICKSTART)
                  .only("compute1"))
    assert "controller" not in text.replace("to install controller, compute1", "")
    assert text.endswith("  node compute1\n"
                         "    volume compute1-system.qcow2: create (absent)\n"
                         "    volume compute1-oemdrv.iso: upload (its kickstart; the install "
                         "has not started)\n"
                         "    domain oslab-compute1: define, install, boot (absent)\n"
                         "  7 objects to create or change, then every node is waited for until "
                         "it answers SSH\n")
    done = decide(SPEC, facts(volumes=EVERY_VOLUME, domains=FINISHED), NodeOs.KICKSTART)
    assert render(done).endswith("  no changes: every object is there and every node runs\n")
    assert Decision("x", (), "why").line() == "x: none (why)"


# -- facts read from libvirt's test driver ------------------------------------------------------


class _Network:
    """The test driver's network, whose XMLDesc refuses the INACTIVE flag real libvirt takes."""

    def __init__(self, net: Any) -> None:
        self._net = net

    def XMLDesc(self, _flags: int = 0) -> str:
        return str(self._net.XMLDesc(0))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._net, name)


class _TestDriver:
    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def networkLookupByName(self, name: str) -> _Network:
        return _Network(self._conn.networkLookupByName(name))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[Any]:
    scenario = tmp_path / "scenario.xml"
    scenario.write_text(SCENARIO)
    c = libvirt.open(f"test://{scenario}")
    yield _TestDriver(c)
    c.close()


def test_facts_of_a_host_without_the_lab(conn: Any) -> None:
    assert read_facts(LabObjects(conn, SPEC.name), SPEC) == ProvisionFacts.blank(SPEC)


def test_facts_read_from_libvirt(conn: Any, tmp_path: Path) -> None:
    objs = LabObjects(conn, SPEC.name)
    objs.ensure_network(network_def(SPEC, SPEC.management))
    conn.networkDefineXML(network_def(SPEC, SPEC.provider).xml())  # defined, not started
    objs.ensure_pool(PoolDef(SPEC.name, tmp_path / "pool"))
    for vol in node_volumes(SPEC.node("controller")):
        objs.ensure_volume(vol)
    objs.ensure_volume(VolumeDef("installer.iso", 1 << 20, "raw"))
    ctl = SPEC.node("controller")
    d = domain_def(SPEC, ctl, virt_type="qemu", console_log=tmp_path / "c.log",
                   kernel="/k", initrd="/i", iso_label="L")
    dom = conn.defineXML(d.xml())
    dom.create()
    conn.defineXML(d.redefinition(dom.UUIDString(), "installing").xml())

    got = read_facts(objs, SPEC)
    assert got.networks == (NetworkFact("oslab-mgmt", True, True),
                            NetworkFact("oslab-prov", True, False))
    assert got.pool == PoolFact(True, True)
    assert got.volumes == frozenset({"controller-system.qcow2", "controller-disk1.qcow2",
                                     "installer.iso"})
    assert got.domains == {"controller": DomainFact("installing", DIGEST, True, "running")}
    plan = decide(SPEC, got, NodeOs.KICKSTART)
    assert plan.node("controller").domain.line() == \
        "domain oslab-controller: wait for the install, boot (phase installing, running)"

    conn.storagePoolLookupByName(SPEC.name).destroy()
    assert read_facts(objs, SPEC).volumes is None  # an inactive pool's volumes are not listed


def test_a_foreign_object_with_the_labs_name_is_refused_while_reading(conn: Any) -> None:
    conn.networkDefineXML("<network><name>oslab-mgmt</name></network>")
    with pytest.raises(OwnershipError, match="network oslab-mgmt exists with no oslab metadata"):
        read_facts(LabObjects(conn, SPEC.name), SPEC)
