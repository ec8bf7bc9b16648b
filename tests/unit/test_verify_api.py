"""The services rows over REST (oslab.install.verify.api): the APIs' answers, as their API
references show them, mapped to the client's JSON and judged by verify's own parsers; the
endpoint taken from a token's catalog with its host replaced by the controller's address.
Keystone itself answers in tests/integration/test_keystone_verify.py."""

from __future__ import annotations

from typing import Any

import pytest

from oslab.install.openrc import credentials
from oslab.install.services.layer import DEBIAN
from oslab.install.verify.api import LISTINGS, client_json, endpoint, token_request
from oslab.install.verify.health import PARSERS


def service(binary: str, host: str, state: str = "up", status: str = "enabled") -> dict[str, Any]:
    # nova's GET /os-services and cinder's GET /v3/{project_id}/os-services (microversion 3.0)
    return {"id": 1, "binary": binary, "host": host, "zone": "internal", "status": status,
            "state": state, "updated_at": "2026-12-07T08:00:00.000000",
            "disabled_reason": None}


def agent(kind: str, binary: str, host: str, alive: bool = True,
          admin_up: bool = True) -> dict[str, Any]:
    # neutron's GET /v2.0/agents
    return {"id": "0a1b", "agent_type": kind, "binary": binary, "host": host, "alive": alive,
            "admin_state_up": admin_up, "topic": "N/A", "configurations": {},
            "availability_zone": None, "heartbeat_timestamp": "2026-12-07 08:00:00"}


NOVA_UP = {"services": [service("nova-conductor", "controller"),
                        service("nova-scheduler", "controller"),
                        service("nova-compute", "compute1")]}
AGENTS = [agent("Open vSwitch agent", "neutron-openvswitch-agent", "controller"),
          agent("DHCP agent", "neutron-dhcp-agent", "controller"),
          agent("L3 agent", "neutron-l3-agent", "controller"),
          agent("Metadata agent", "neutron-metadata-agent", "controller"),
          agent("Open vSwitch agent", "neutron-openvswitch-agent", "compute1")]

CASES = [
    ("compute: all up", "compute services", NOVA_UP, True, "3 up; nova-compute on compute1"),
    ("compute: nova-compute down", "compute services",
     {"services": [*NOVA_UP["services"][:2], service("nova-compute", "compute1", "down")]},
     False, "nova-compute on compute1 is down"),
    ("compute: a disabled one down is fine", "compute services",
     {"services": [*NOVA_UP["services"], service("nova-compute", "old", "down", "disabled")]},
     True, "4 up; nova-compute on compute1, old"),
    ("compute: none registered yet", "compute services", {"services": []}, False,
     "no nova-conductor registered; no nova-scheduler registered; no nova-compute registered"),
    ("agents: all alive", "network agents", {"agents": AGENTS}, True, "5 agents alive"),
    ("agents: one dead", "network agents",
     {"agents": [*AGENTS[:4], agent("Open vSwitch agent", "neutron-openvswitch-agent",
                                    "compute1", alive=False)]},
     False, "not alive: Open vSwitch agent on compute1"),
    ("agents: one admin down", "network agents",
     {"agents": [*AGENTS[:4], {**AGENTS[4], "admin_state_up": False}]},
     False, "admin down: Open vSwitch agent on compute1"),
    ("volume: up", "volume services",
     {"services": [service("cinder-scheduler", "controller"),
                   service("cinder-volume", "controller@lvm")]}, True, "2 up"),
    ("volume: cinder-volume down", "volume services",
     {"services": [service("cinder-scheduler", "controller"),
                   service("cinder-volume", "controller@lvm", "down")]},
     False, "cinder-volume on controller@lvm is down"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_an_api_answer_gets_the_services_rows_verdict(case: tuple[Any, ...]) -> None:
    _id, row, answer, ok, details = case
    verdict = PARSERS[row](client_json(LISTINGS[row], answer), DEBIAN)
    assert (verdict.ok, verdict.details) == (ok, details)


def test_an_answer_without_its_list_is_refused() -> None:
    for bad in ({"error": "x"}, [], {"services": "x"}):
        with pytest.raises(ValueError, match="no 'services' list"):
            client_json(LISTINGS["compute services"], bad)


CATALOG = [  # a project-scoped token's catalog (keystone fills in the project id)
    {"type": "identity", "name": "keystone", "endpoints": [
        {"interface": "public", "region": "RegionOne", "url": "http://controller:5000/v3/"}]},
    {"type": "compute", "name": "nova", "endpoints": [
        {"interface": "internal", "region": "RegionOne", "url": "http://internal:8774/v2.1"},
        {"interface": "public", "region": "RegionOne", "url": "http://controller:8774/v2.1"}]},
    {"type": "network", "name": "neutron", "endpoints": [
        {"interface": "public", "region": "RegionOne", "url": "http://controller:9696"}]},
    {"type": "volumev3", "name": "cinderv3", "endpoints": [
        {"interface": "public", "region": "RegionOne",
         "url": "http://controller:8776/v3/5d1e9fa6c6e24d0e8d1f5f4b8b0e6a2c"}]},
]


def test_endpoints_by_the_controller_s_address() -> None:
    got = {kind: endpoint(CATALOG, kind, "10.0.0.11") for kind in
           ("compute", "network", "volumev3", "image")}
    assert got == {"compute": "http://10.0.0.11:8774/v2.1",
                   "network": "http://10.0.0.11:9696",
                   "volumev3": "http://10.0.0.11:8776/v3/5d1e9fa6c6e24d0e8d1f5f4b8b0e6a2c",
                   "image": None}
    assert {k: LISTINGS[k].kind for k in LISTINGS} == {
        "compute services": "compute", "network agents": "network",
        "volume services": "volumev3"}


def test_the_token_request_is_the_admin_s_project_scoped_password_login() -> None:
    body = token_request(credentials("admin"), "s3cret")
    assert body == {"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"name": "Default"}, "password": "s3cret"}}},
        "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}}
