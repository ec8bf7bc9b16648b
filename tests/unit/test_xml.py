"""libvirt XML: rendered from templates, compared with golden files, and accepted by libvirt.

Golden files live in tests/unit/golden/xml; regenerate them with OSLAB_REGEN_GOLDEN=1 and
review the diff. Each test defines its XML on its own libvirt test-driver connection, opened
from a scenario file, which proves libvirt accepts it.
"""

from __future__ import annotations

import os
from pathlib import Path

import libvirt
import pytest

from oslab import spec as specmod
from oslab import spec_file
from oslab.networks import network_def
from oslab.virt.definitions import PoolDef, VolumeDef, domain_def, node_volumes
from oslab.virt.metadata import DomainPhase, LabMeta

GOLDEN = Path(__file__).parent / "golden" / "xml"
SCENARIO = """<node>
  <cpu><mode>1</mode><nodes>1</nodes><sockets>1</sockets><cores>4</cores><threads>1</threads>
  <active>4</active><mhz>2000</mhz><model>x86_64</model></cpu>
  <memory>16777216</memory>
</node>
"""


def golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("OSLAB_REGEN_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert text == path.read_text(), f"{name} differs from its golden file"


@pytest.fixture
def conn(tmp_path: Path) -> libvirt.virConnect:
    scenario = tmp_path / "scenario.xml"
    scenario.write_text(SCENARIO)
    c = libvirt.open(f"test://{scenario}")
    yield c
    c.close()


SPEC = spec_file.load_default()


@pytest.mark.parametrize("kind", ["management", "provider"])
def test_network_xml(conn: libvirt.virConnect, kind: str) -> None:
    net = next(n for n in SPEC.networks if n.kind == kind)
    xml = network_def(SPEC, net).xml()
    golden(f"network-{kind}.xml", xml)
    defined = conn.networkDefineXML(xml)
    back = defined.XMLDesc(0)
    assert LabMeta.from_object_xml(back) == network_def(SPEC, net).meta
    if kind == "management":
        for node in SPEC.nodes:
            assert f"mac='{SPEC.mac(node, 0)}'" in back and f"ip='{node.address}'" in back
        assert "<forward mode='nat'/>" in back
    else:
        assert "<dhcp>" not in back


def test_isolated_provider_has_no_forward() -> None:
    spec = spec_file.parse(spec_file.default_spec_text().replace(
        'mode = "nat"\n\n[[nodes]]', 'mode = "isolated"\n\n[[nodes]]'))
    assert "<forward" not in network_def(spec, spec.provider).xml()


def define_storage(conn: libvirt.virConnect, tmp_path: Path) -> None:
    pool_xml = PoolDef("oslab", tmp_path / "pool").xml()
    golden("pool.xml", pool_xml.replace(str(tmp_path), "TMP"))
    pool = conn.storagePoolDefineXML(pool_xml, 0)
    pool.create(0)
    for node in SPEC.nodes:
        for vol in node_volumes(node):
            pool.createXML(vol.xml(), 0)
        pool.createXML(VolumeDef(f"{node.name}-oemdrv.iso", 1 << 20, "raw").xml(), 0)
    pool.createXML(VolumeDef("installer.iso", 1 << 20, "raw").xml(), 0)


def test_volume_xml() -> None:
    golden("volume-system.xml", node_volumes(SPEC.node("controller"))[0].xml())
    sizes = [v.capacity for v in node_volumes(SPEC.node("controller"))]
    assert sizes == [40 << 30, 20 << 30]


@pytest.mark.parametrize("virt_type", list(specmod.VirtType))
@pytest.mark.parametrize("node_name", ["controller", "compute1"])
def test_domain_xml_install_and_final(conn: libvirt.virConnect, tmp_path: Path,
                                      virt_type: specmod.VirtType, node_name: str) -> None:
    define_storage(conn, tmp_path)
    node = SPEC.node(node_name)
    d = domain_def(SPEC, node, virt_type=virt_type, console_log=Path("/state/logs/c.log"),
                   kernel="/pool/installer-vmlinuz", initrd="/pool/installer-initrd.img",
                   iso_label="CentOS-Stream-9-BaseOS-x86_64")
    install, final = d.xml(), d.final().xml()
    golden(f"domain-{node_name}-{virt_type}-install.xml", install)
    golden(f"domain-{node_name}-{virt_type}-final.xml", final)
    assert "inst.ks=hd:LABEL=OEMDRV:/ks.cfg" in install
    assert "inst.stage2=hd:LABEL=CentOS-Stream-9-BaseOS-x86_64" in install
    assert "<kernel>" not in final and "cdrom" not in final and '<boot dev="hd"/>' in final
    # libvirt's test driver accepts both shapes, and keeps our metadata
    dom = conn.defineXML(install)
    assert LabMeta.from_object_xml(dom.XMLDesc(0)).phase == "defined"  # type: ignore[union-attr]
    dom = conn.defineXML(d.final().redefinition(dom.UUIDString(), DomainPhase.FINAL).xml())
    meta = LabMeta.from_object_xml(dom.XMLDesc(0))
    assert meta is not None and meta.phase == "final" and meta.node == node_name
    assert meta.address == str(node.address) and meta.spec == SPEC.digest()
    macs = [SPEC.mac(node, 0), SPEC.mac(node, 1)]
    assert all(m in dom.XMLDesc(0) for m in macs)
    if virt_type == "kvm":
        assert "host-passthrough" in final
