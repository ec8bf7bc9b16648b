"""The health checks: a token for admin and demo, the catalog and its endpoints, compute
services, network agents, volume services and the ``upgrade check`` commands.
"""

from __future__ import annotations

from collections.abc import Callable

from oslab.install import openrc
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
        settle = self.t.settle
        self.simple("compute services", g, "compute service list -f json",
                    lambda t: parse_compute_services(t, self.layer), settle)
        self.simple("network agents", g, "network agent list -f json", parse_network_agents,
                    settle)
        self.simple("volume services", g, "volume service list -f json",
                    lambda t: parse_volume_services(t, self.layer), settle)
        for command in ("nova-status upgrade check", "placement-status upgrade check"):
            with self.row(command, g) as d:
                result = self.sh(command)
                verdict = parse_upgrade_check(result.stdout, result.returncode, command)
                if not verdict.ok:
                    raise CheckFailed(verdict.details, verdict.hint)
                d.append(verdict.details)

    def simple(self, name: str, group: str, args: str,
               parse: Callable[[str], Verdict], settle: float = 0.0) -> None:
        """One ``openstack`` listing and its verdict; asked again until it passes or
        ``settle`` seconds have gone (a service that just started reports down)."""
        with self.row(name, group) as d:
            d.append(self.until(name, settle,
                                lambda: parse(self.openstack(args, openrc.ADMIN, name))).details)
