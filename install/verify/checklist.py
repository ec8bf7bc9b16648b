"""What is checked: the check groups in the order they run and per lab scope, the services
the catalog must have, and the names and places of the resources the checks create.
"""

from __future__ import annotations

from oslab.spec import Scope

# The image (cirros by default, or a local one with its manifest) is chosen by
# oslab.install.instance_image.choose; the checks take what they need from the choice.

# service type -> the service that registers it (for messages)
EXPECTED_SERVICES: dict[str, str] = {
    "identity": "keystone", "image": "glance", "placement": "placement",
    "compute": "nova", "network": "neutron", "volumev3": "cinder",
}
INTERFACES = ("public", "internal", "admin")
PHYSNET = "provider"
PREFIX = "oslab-verify"
TAG = PREFIX
SELF_SERVICE_CANDIDATES = ("172.16.1.0/24", "172.16.2.0/24", "192.168.111.0/24")
REMOTE_TMP = "/var/tmp"


# The checks in the order they run; ``Verifier.run(only=...)`` runs a subset.
GROUPS = ("identity", "catalog", "services", "image", "network", "instance", "volume",
          "dashboard")
# What a lab of each scope installs, so what its verification checks and expects in the catalog.
SCOPE_GROUPS: dict[Scope, tuple[str, ...]] = {Scope.ALL: GROUPS,
                                               Scope.IDENTITY: ("identity", "catalog")}
SCOPE_SERVICES: dict[Scope, tuple[str, ...]] = {Scope.ALL: tuple(EXPECTED_SERVICES),
                                                 Scope.IDENTITY: ("identity",)}


def expected_services(scope: Scope) -> dict[str, str]:
    """The catalog's service types (and their service names) a lab of ``scope`` must have."""
    return {kind: EXPECTED_SERVICES[kind] for kind in SCOPE_SERVICES[scope]}
