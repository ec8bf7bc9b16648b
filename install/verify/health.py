"""The health checks: a token for admin and demo, the catalog and its endpoints, compute
services, network agents, volume services and the ``upgrade check`` commands.
"""

from __future__ import annotations

from collections.abc import Callable

from oslab.install import facts, openrc
from oslab.install.facts import FactError, UnitState
from oslab.install.services.layer import Layer
from oslab.install.verify.parsers import (
    parse_catalog,
    parse_compute_services,
    parse_endpoints,
    parse_network_agents,
    parse_token,
    parse_upgrade_check,
    parse_volume_services,
)
from oslab.install.verify.results import CheckFailed, Verdict
from oslab.install.verify.runner import CheckRunner
from oslab.install.verify.settle import SERVICES_ROWS, ServicesRow, give_up

# by the services row's name: its parser, given the lab's distro layer for the hints
PARSERS: dict[str, Callable[[str, Layer], Verdict]] = {
    "compute services": parse_compute_services,
    "network agents": lambda text, _layer: parse_network_agents(text),
    "volume services": parse_volume_services,
}


class HealthChecks(CheckRunner):
    """Is every service up and registered?"""

    # -- 1. service health --

    def check_identity(self) -> None:
        for who in (openrc.ADMIN, openrc.DEMO):
            with self.row(f"identity: {who} token", "identity") as d:
                d.append(parse_token(self.openstack("token issue -f json", who,
                                                    f"{who}: token issue")).details)

    def check_catalog(self) -> None:
        if not self.needs("catalog", "catalog", "identity"):
            return
        self.simple("catalog", "catalog", "catalog list -f json",
                    lambda t: parse_catalog(t, self.lab.expected))
        self.simple("endpoints", "catalog", "endpoint list -f json",
                    lambda t: parse_endpoints(t, self.lab.expected))

    def check_services(self) -> None:
        g = "services"
        if not self.needs("services", g, "identity"):
            return
        for services in SERVICES_ROWS:
            self.services_row(services)
        if self.lab.api is not None:  # only whether they report up, asked from this host
            return
        for command in ("nova-status upgrade check", "placement-status upgrade check"):
            with self.row(command, g) as d:
                result = self.sh(command)
                verdict = parse_upgrade_check(result.stdout, result.returncode, command)
                if not verdict.ok:
                    raise CheckFailed(verdict.details, verdict.hint)
                d.append(verdict.details)

    def listed(self, services: ServicesRow) -> Verdict:
        """The row's listing and what its parser says of it: from the client on the
        controller, or over REST from this host (``Lab.api``)."""
        parse = PARSERS[services.name]
        if self.lab.api is None:
            return parse(self.openstack(services.listing, openrc.ADMIN, services.name),
                         self.layer)
        got = self.lab.api.listing(services.name)
        return got if isinstance(got, Verdict) else parse(got, self.layer)

    def services_row(self, services: ServicesRow) -> None:
        """The listing and its verdict, asked again until it passes or the settle time has
        gone (a service that just started reports down), unless systemd on a node says a
        unit behind it failed (:func:`.settle.give_up`): then the row ends at once."""
        units = tuple(dict.fromkeys(self.layer.unit_of(b) for b in services.binaries))

        def verdict() -> Verdict:
            listed = self.listed(services)
            final = None if listed.ok else give_up(listed, self.unit_states(units))
            if final is not None:
                raise CheckFailed(final.details, final.hint)
            return listed

        with self.row(services.name, "services") as d:
            d.append(self.until(services.waiting, self.t.settle, verdict).details)

    def unit_states(self, units: tuple[str, ...]) -> dict[str, dict[str, UnitState]]:
        """What systemd says of ``units`` on every node. A node that cannot be asked (SSH,
        no systemd) is left out: the row then waits as it would without systemd's word."""
        fact = facts.unit_states(units)
        nodes = {self.lab.spec.controller.name: self.lab.controller, **self.lab.computes}
        states = {}
        for node, conn in nodes.items():
            shown = self.sh(fact.command, fact.timeout, conn)
            try:
                states[node] = fact.parse(shown.stdout, shown.stderr, shown.returncode)
            except FactError:
                continue
        return states

    def simple(self, name: str, group: str, args: str,
               parse: Callable[[str], Verdict]) -> None:
        """One ``openstack`` listing and its verdict."""
        with self.row(name, group) as d:
            verdict = parse(self.openstack(args, openrc.ADMIN, name))
            if not verdict.ok:
                raise CheckFailed(verdict.details, verdict.hint)
            d.append(verdict.details)
