"""What is checked: the check groups in the order they run and per lab scope, the services
the catalog must have, and the names and places of the resources the checks create.
"""

from __future__ import annotations

from oslab.errors import OslabError
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
# What a group's checks use from earlier groups (their resources), so ``--only`` runs those too.
NEEDS: dict[str, tuple[str, ...]] = {"instance": ("image", "network"), "volume": ("instance",)}
SCOPE_SERVICES: dict[Scope, tuple[str, ...]] = {Scope.ALL: tuple(EXPECTED_SERVICES),
                                                 Scope.IDENTITY: ("identity",)}


def expected_services(scope: Scope) -> dict[str, str]:
    """The catalog's service types (and their service names) a lab of ``scope`` must have."""
    return {kind: EXPECTED_SERVICES[kind] for kind in SCOPE_SERVICES[scope]}


def selected_groups(scope: Scope, only: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The groups to run, in their order: every group of ``scope``, or ``only`` and what they
    need. A group outside the scope is an error with a hint (it checks what was not
    installed)."""
    allowed = SCOPE_GROUPS[scope]
    if not only:
        return allowed
    wanted: set[str] = set()
    todo = list(only)
    while todo:
        group = todo.pop()
        if group not in wanted:
            wanted.add(group)
            todo.extend(NEEDS.get(group, ()))
    outside = [g for g in GROUPS if g in wanted and g not in allowed]
    unknown = sorted(wanted.difference(GROUPS))
    if unknown or outside:
        what = f"unknown check group(s): {', '.join(unknown)}" if unknown else (
            f"a lab of scope {scope.value!r} has no {', '.join(outside)} to check")
        raise OslabError(what, hint="choose from: " + ", ".join(allowed))
    return tuple(g for g in GROUPS if g in wanted)
