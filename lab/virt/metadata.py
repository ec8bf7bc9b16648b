"""oslab's bookkeeping inside libvirt objects: the ``<metadata>`` element.

Every domain and network oslab creates carries an ``<oslab:lab>`` element with the lab name,
the object's kind and role, and the spec digest. ``status``, ``destroy`` and reruns of ``up``
read it back from libvirt; nothing about the objects is cached in a file.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, fields, replace
from enum import StrEnum
from xml.sax.saxutils import escape

NS = "https://oslab.dev/xmlns/lab/1"
PREFIX = "oslab"


class DomainPhase(StrEnum):
    """Where a node's domain is on its way to booting from disk (kept in its metadata)."""

    DEFINED = "defined"  # the install-time definition, not started yet
    INSTALLING = "installing"  # started from the installer
    FINAL = "final"  # redefined to boot from its disk


@dataclass(frozen=True)
class LabMeta:
    lab: str
    kind: str  # "domain" or "network"
    role: str  # node role, or the network kind
    spec: str  # LabSpec.digest()
    node: str = ""
    address: str = ""
    phase: str = ""  # domains: a DomainPhase; read back as the text libvirt holds

    def xml(self) -> str:
        """The element as libvirt stores it (namespace declared on the element)."""
        return f'<{PREFIX}:lab xmlns:{PREFIX}="{NS}">{self.inner_xml()}</{PREFIX}:lab>'

    def inner_xml(self) -> str:
        return "".join(
            _element(_tag(f.name), getattr(self, f.name))
            for f in fields(self)
            if getattr(self, f.name)
        )

    def with_phase(self, phase: DomainPhase) -> LabMeta:
        return replace(self, phase=phase)

    @classmethod
    def from_element(cls, elem: ET.Element) -> LabMeta:
        values = {f.name: (elem.findtext(f"{{{NS}}}{_tag(f.name)}") or "") for f in fields(cls)}
        return cls(**values)

    @classmethod
    def from_object_xml(cls, xml: str) -> LabMeta | None:
        """Read the metadata out of a domain's or network's XML; None when it carries none."""
        root = ET.fromstring(xml)
        elem = root.find(f"metadata/{{{NS}}}lab")
        return None if elem is None else cls.from_element(elem)


def _tag(field_name: str) -> str:
    """The lab name is stored as ``<oslab:name>`` inside ``<oslab:lab>``."""
    return "name" if field_name == "lab" else field_name


def _element(tag: str, text: str) -> str:
    return f"<{PREFIX}:{tag}>{escape(text)}</{PREFIX}:{tag}>"
