"""The install guide's steps for Epoxy, as data for the engine: on CentOS Stream 9 with RDO's
packages, and on Debian 13 with Debian's (a per-family layer names the packages, units and
paths; the configs are the same).

``steps_for(ctx)`` maps each node name to its ordered steps. Steps on one node run in list
order; ``after`` names a step (on any node) that must be done first, and is used only where a
real dependency crosses nodes: compute nodes install their packages and Open vSwitch in
parallel with the controller, and wait only to start nova-compute (for the conductor) and the
Neutron agent (for neutron-server). The controller waits for them to discover hosts and to
see the agents.

Areas: environment (every node), infra, keystone, glance, placement, nova, neutron, horizon,
cinder, one module each. Checkpoints: "infra", "identity" (keystone, glance, placement),
"compute" (nova with host discovery), "network" (neutron).
"""

from __future__ import annotations

from oslab.install.model import InstallContext, StepDef
from oslab.install.services import (
    cinder,
    environment,
    glance,
    horizon,
    infra,
    keystone,
    neutron,
    nova,
    placement,
)
from oslab.install.services._base import Site
from oslab.spec import Node, Role, Scope

__all__ = ["steps_for"]


def _controller(site: Site, node: Node) -> list[StepDef]:
    steps = [
        *environment.steps(site, node),
        *infra.steps(site),
        *keystone.steps(site),
    ]
    if site.spec.scope is Scope.IDENTITY:
        return steps
    steps += [
        *glance.steps(site),
        *placement.steps(site),
        *nova.controller_steps(site),
    ]
    if site.computes:
        steps.append(nova.discover(site))
    steps += [
        *neutron.controller_steps(site),
        neutron.agents(site),
        *horizon.steps(site),
        *cinder.steps(site),
    ]
    return steps


def _compute(site: Site, node: Node) -> list[StepDef]:
    if site.spec.scope is Scope.IDENTITY:
        return environment.steps(site, node)
    return [
        *environment.steps(site, node),
        nova.compute_packages(site),
        *neutron.bridge_steps(site, node),
        nova.compute(site, node),
        neutron.compute(site, node),
    ]


def steps_for(ctx: InstallContext) -> dict[str, list[StepDef]]:
    """Each node's ordered steps, for the lab in ``ctx``."""
    site = Site(ctx)
    return {
        node.name: _controller(site, node) if node.role is Role.CONTROLLER
        else _compute(site, node)
        for node in ctx.spec.nodes
    }
