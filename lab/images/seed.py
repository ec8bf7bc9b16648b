"""A node's identity at first boot: a cloud-init NoCloud seed, a ``cidata`` ISO.

The seed gives the hostname, the lab's time zone (``lab.timezone``, which a kickstarted node
gets from the kickstart's ``timezone`` command; cloud-init's timezone module applies it before
the node counts as ready), the static address of the management NIC (matched by its MAC)
with the gateway and DNS, root's authorized key (the lab's key), and the node's host key that
oslab generated and pins, so there is no trust on first use. The provider NIC is left
unconfigured for Open vSwitch; ``/etc/hosts`` is the install content's. The node's apt source
points at the lab's package source (the local repository oslab serves, or a mirror).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import pycdlib

from oslab.images.common import env
from oslab.spec import LabSpec, Node, PackageSource

LABEL = "cidata"
LOCAL_REPO_PORT = 8801  # the local repository's HTTP port on the management gateway


@dataclass(frozen=True)
class SeedInput:
    spec: LabSpec
    node: Node
    authorized_key: str  # the lab's public key (OpenSSH one line)
    host_private: str  # the node's ed25519 host key, OpenSSH PEM
    host_public: str
    mirror: str  # the Debian mirror for source = "mirror"
    # grow the root partition to the disk (a golden base's disk is the smallest node's);
    # a Debian image's root is the whole disk: its file system alone grows
    growpart: bool = False


def apt_source(spec: LabSpec, mirror: str, suite: str) -> str:
    """The node's deb822 apt source: the local flat repository on the gateway, or a mirror."""
    if spec.packages.source is PackageSource.LOCAL:
        uri = f"http://{spec.management.gateway}:{LOCAL_REPO_PORT}/"
        return env.get_template("local.sources.j2").render(uri=uri, suite="./", components="",
                                                           trusted=True)
    return env.get_template("local.sources.j2").render(uri=mirror, suite=suite,
                                                       components="main", trusted=False)


def seed_files(seed: SeedInput, suite: str) -> dict[str, str]:
    """The seed's three files, by name; with no ``suite`` (not a Debian node), no apt
    source."""
    spec, node = seed.spec, seed.node
    gateway = str(spec.management.gateway)
    common = {"node": node.name, "lab": spec.name, "nameservers": [gateway]}
    return {
        "meta-data": env.get_template("meta-data.j2").render(
            instance_id=f"{spec.name}-{node.name}-{spec.digest()}", **common),
        "user-data": env.get_template("user-data.j2").render(
            authorized_key=seed.authorized_key, host_private=seed.host_private.strip(),
            host_public=seed.host_public,
            apt_source=apt_source(spec, seed.mirror, suite) if suite else "",
            growpart="auto" if seed.growpart else "off", timezone=spec.timezone, **common),
        "network-config": env.get_template("network-config.j2").render(
            mac=spec.mac(node, 0), provider_mac=spec.mac(node, 1),
            address=f"{node.address}/{spec.management.cidr.prefixlen}",
            gateway=gateway, nameservers=[gateway]),
    }


def write_seed(files: dict[str, str], dest: Path) -> Path:
    """The ``cidata`` ISO with ``files`` (Joliet and Rock Ridge names, as cloud-init reads)."""
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=3, joliet=3, rock_ridge="1.09", vol_ident=LABEL)
    for i, (name, text) in enumerate(sorted(files.items())):
        data = text.encode()
        iso.add_fp(io.BytesIO(data), len(data), f"/SEED{i};1", rr_name=name,
                   joliet_path=f"/{name}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    iso.write(str(dest))
    iso.close()
    return dest
