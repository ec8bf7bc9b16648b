"""When a services row stops waiting. A service that just started reports down until its first
heartbeat, so the ``compute services``, ``network agents`` and ``volume services`` rows ask
again for up to their settle time (600 s under TCG). A unit that systemd has marked ``failed``
will not report up however long the row waits, so the row ends at once and says which unit
failed on which node, and the ``journalctl`` command that shows why.

The facts are ``systemctl show`` of the row's units on every node (:func:`.facts.unit_states`),
named by the lab's distro layer; the decision (:func:`give_up`) is a pure function of them.
Only ``failed`` ends the wait: ``activating`` (starting, or a restart pending) will change,
``active`` is a service that has not reported yet, and ``inactive`` is also what a unit shows
while its start job waits in the queue of a node that is still booting.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from oslab.install.facts import UnitState
from oslab.install.verify.results import Verdict


@dataclass(frozen=True)
class ServicesRow:
    """A row that waits for services to report up: the listing it asks, the binaries that
    report in it (their units per distro come from :meth:`Layer.unit_of`), and what it waits
    for, in words."""

    name: str
    listing: str  # ``openstack LISTING``
    binaries: tuple[str, ...]
    waiting: str


SERVICES_ROWS = (
    ServicesRow("compute services", "compute service list -f json",
                ("nova-conductor", "nova-scheduler", "nova-compute"),
                "every compute service to report up"),
    ServicesRow("network agents", "network agent list -f json",
                ("neutron-openvswitch-agent", "neutron-dhcp-agent", "neutron-l3-agent",
                 "neutron-metadata-agent"),
                "every network agent to report alive"),
    ServicesRow("volume services", "volume service list -f json",
                ("cinder-scheduler", "cinder-volume"), "every volume service to report up"),
)

# node -> unit -> what systemd says of it there (a node that could not be asked is left out)
NodeUnits = Mapping[str, Mapping[str, UnitState]]


def failed_units(states: NodeUnits) -> dict[str, list[UnitState]]:
    """The units systemd gave up, by node (in the order the nodes and units were asked)."""
    failed = {node: [s for s in units.values() if s.failed] for node, units in states.items()}
    return {node: units for node, units in failed.items() if units}


def give_up(listed: Verdict, states: NodeUnits) -> Verdict | None:
    """None while waiting can still help (the listing passed, or no unit behind it has
    failed); else the row's final verdict: the failed units and where, what the listing said,
    and the ``journalctl`` command on each node."""
    failed = failed_units(states)
    if listed.ok or not failed:
        return None
    said = [f"{s.unit} failed on {node}" + (f" ({s.result})" if s.result not in ("", "success")
                                            else "")
            for node, units in failed.items() for s in units]
    them = "it" if len(said) == 1 else "them"
    journals = [f"`oslab ssh {node} -- journalctl -b -u {' -u '.join(s.unit for s in units)}`"
                for node, units in failed.items()]
    return Verdict(False, f"systemd says {', '.join(said)}: it will not start {them} again by "
                          f"itself, so waiting longer cannot help; {listed.details}",
                   f"{'; '.join(journals)} shows why; once fixed, `systemctl restart` "
                   f"{them} there and run `oslab verify --only services`")
