"""Build the recorded outputs that need services the tests cannot run (nova, neutron, cinder,
glance), by running the release's own client code over API-shaped bodies.

Each fixture is produced by the real ``openstack`` command class of python-openstackclient
(7.5.0 for Epoxy): its ``take_action`` and cliff's ``-f json`` formatter, with the SDK (or
cinderclient) resource built from a response body shaped as in the service's API reference;
only the HTTP round trip is replaced. Run it with the Python of the keystone test venv
(``tests/keystone/setup.sh`` prints it):

    "$(tests/keystone/setup.sh)/bin/python" tests/unit/recorded/build_from_client.py

It rewrites the ``*.json`` / ``*.txt`` files listed in BUILT below in this directory.
"""

from __future__ import annotations

import io
import json
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
NS = types.SimpleNamespace

CTL = "controller"
CMP = "compute1"
NOW = "2025-06-02T10:15:30.000000"


def run(command_cls: Any, argv: list[str], client_manager: Any) -> str:
    """The command's -f json output for ``argv`` (its arguments after the command name)."""
    out = io.StringIO()
    app = NS(stdout=out, stderr=sys.stderr, client_manager=client_manager,
             options=NS(debug=False), api_version={})
    cmd = command_cls(app, None)
    args = cmd.get_parser("openstack").parse_args([*argv, "-f", "json"])
    cmd.run(args)
    return out.getvalue()


# -- compute service list -----------------------------------------------------------------------

def compute_services(down: bool) -> str:
    from openstack.compute.v2.service import Service
    from openstackclient.compute.v2 import service

    rows = [("nova-conductor", CTL, "internal"), ("nova-scheduler", CTL, "internal"),
            ("nova-compute", CMP, "nova")]
    bodies = [{"id": f"8f0a6a7e-5d3c-4c1e-9a8b-00000000000{i}", "binary": b, "host": h,
               "zone": z, "status": "enabled", "state": "down" if down and b == "nova-compute"
               else "up", "updated_at": NOW, "disabled_reason": None, "forced_down": False}
              for i, (b, h, z) in enumerate(rows, 1)]
    compute = NS(services=lambda host=None, binary=None: [Service.existing(**b) for b in bodies])
    return run(service.ListService, [],
               NS(sdk_connection=NS(compute=compute)))


# -- network agent list -------------------------------------------------------------------------

def network_agents(dead: bool) -> str:
    from openstack.network.v2.agent import Agent
    from openstackclient.network.v2 import network_agent

    rows = [("Metadata agent", CTL, None, "neutron-metadata-agent"),
            ("DHCP agent", CTL, "nova", "neutron-dhcp-agent"),
            ("Open vSwitch agent", CTL, None, "neutron-openvswitch-agent"),
            ("L3 agent", CTL, "nova", "neutron-l3-agent"),
            ("Open vSwitch agent", CMP, None, "neutron-openvswitch-agent")]
    bodies = [{"id": f"3b2c9f4e-1111-4e6b-8c1d-00000000000{i}", "agent_type": t, "host": h,
               "availability_zone": z, "alive": not (dead and h == CMP), "admin_state_up": True,
               "binary": b, "topic": "N/A", "configurations": {}}
              for i, (t, h, z, b) in enumerate(rows, 1)]
    network = NS(agents=lambda **kw: [Agent.existing(**b) for b in bodies])
    return run(network_agent.ListNetworkAgent, [], NS(network=network))


# -- volume service list ------------------------------------------------------------------------

def volume_services(down: bool) -> str:
    from cinderclient import api_versions
    from cinderclient.v3.services import Service
    from openstackclient.volume.v3 import service

    rows = [("cinder-scheduler", CTL, "nova"), ("cinder-volume", f"{CTL}@lvm", "nova")]
    bodies = [{"binary": b, "host": h, "zone": z, "status": "enabled",
               "state": "down" if down and b == "cinder-volume" else "up", "updated_at": NOW,
               "disabled_reason": None} for b, h, z in rows]
    client = NS(api_version=api_versions.APIVersion("3.0"),
                services=NS(list=lambda host=None, binary=None: [
                    Service(None, b, loaded=True) for b in bodies]))
    return run(service.ListService, [], NS(volume=client))


# -- image show ---------------------------------------------------------------------------------

IMAGE_ID = "6c1a4a0e-7f3b-4d7e-9a51-2f0c2b1d9e11"


def image_show(status: str) -> str:
    from openstack.image.v2.image import Image
    from openstackclient.image.v2 import image

    body = {"id": IMAGE_ID, "name": "oslab-verify-cirros", "status": status,
            "container_format": "bare", "disk_format": "qcow2", "visibility": "public",
            "min_disk": 0, "min_ram": 0, "protected": False, "tags": [],
            "owner": "0e0c6a1c5a2b4b7f9d3e2f1a0b9c8d7e", "os_hidden": False,
            "created_at": "2025-06-02T10:16:02Z", "updated_at": "2025-06-02T10:16:05Z",
            "file": f"/v2/images/{IMAGE_ID}/file", "schema": "/v2/schemas/image",
            "size": 21692416 if status == "active" else None,
            "virtual_size": 117440512 if status == "active" else None,
            "checksum": "87617e24a5e6a2a5a1d1b1e1b3b4c5d6" if status == "active" else None,
            "os_hash_algo": "sha512" if status == "active" else None}
    img = Image.existing(**body)
    client = NS(find_image=lambda name, ignore_missing=False: img)
    return run(image.ShowImage, [IMAGE_ID], NS(image=client))


# -- server show --------------------------------------------------------------------------------

SERVER_ID = "2d7c8f0e-9b1a-4c3d-8e5f-a1b2c3d4e5f6"


def server_show(status: str) -> str:
    from openstack.compute.v2.server import Server
    from openstack.image.v2.image import Image
    from openstackclient.compute.v2 import server

    body: dict[str, Any] = {
        "id": SERVER_ID, "name": "oslab-verify-vm", "status": status,
        "tenant_id": "0e0c6a1c5a2b4b7f9d3e2f1a0b9c8d7e",
        "user_id": "5f1e2d3c4b5a69788796a5b4c3d2e1f0",
        "created": "2025-06-02T10:17:00Z", "updated": "2025-06-02T10:17:41Z",
        "hostId": "" if status == "ERROR" else "c2a8b0f4e1d3",
        "image": {"id": IMAGE_ID, "links": []},
        "flavor": {"vcpus": 1, "ram": 128, "disk": 1, "ephemeral": 0, "swap": 0,
                   "original_name": "m1.nano", "extra_specs": {}},
        "addresses": {} if status == "ERROR" else {"oslab-verify-selfservice": [
            {"version": 4, "addr": "172.16.1.23", "OS-EXT-IPS:type": "fixed",
             "OS-EXT-IPS-MAC:mac_addr": "fa:16:3e:4d:2a:11"}]},
        "key_name": "oslab-verify-key", "metadata": {}, "config_drive": "",
        "OS-DCF:diskConfig": "MANUAL", "OS-EXT-AZ:availability_zone": "nova",
        "OS-EXT-SRV-ATTR:host": None if status == "ERROR" else CMP,
        "OS-EXT-SRV-ATTR:hypervisor_hostname": None if status == "ERROR" else CMP,
        "OS-EXT-SRV-ATTR:instance_name": "instance-00000001",
        "OS-EXT-STS:power_state": 0 if status == "ERROR" else 1,
        "OS-EXT-STS:task_state": None,
        "OS-EXT-STS:vm_state": "error" if status == "ERROR" else "active",
        "OS-SRV-USG:launched_at": None if status == "ERROR" else "2025-06-02T10:17:40.000000",
        "OS-SRV-USG:terminated_at": None, "accessIPv4": "", "accessIPv6": "",
        "progress": 0, "locked": False, "description": None, "tags": [],
        "os-extended-volumes:volumes_attached": [],
        "security_groups": [{"name": "default"}] if status != "ERROR" else None,
    }
    if status == "ERROR":
        body["fault"] = {
            "code": 500, "created": "2025-06-02T10:17:41Z",
            "message": "No valid host was found. There are not enough hosts available.",
            "details": "Traceback (most recent call last):\n  File \"/usr/lib/python3.9/"
                       "site-packages/nova/conductor/manager.py\", line 1580, in "
                       "schedule_and_build_instances\n    host_lists = self._schedule_instances("
                       "context, request_specs[0],\nnova.exception.NoValidHost: No valid host was "
                       "found. There are not enough hosts available.\n"}
    srv = Server.existing(**body)
    img = Image.existing(id=IMAGE_ID, name="oslab-verify-cirros")
    compute = NS(find_server=lambda name, ignore_missing=False, details=True: srv,
                 get_server=lambda sid: srv)
    image_client = NS(get_image=lambda iid: img)
    return run(server.ShowServer, [SERVER_ID],
               NS(compute=compute, sdk_connection=NS(compute=compute), image=image_client))


# -- volume show --------------------------------------------------------------------------------

VOLUME_ID = "9e8d7c6b-5a49-4382-a1b0-c9d8e7f6a5b4"


def volume_show(status: str) -> str:
    from cinderclient.v3.volumes import Volume
    from openstackclient.volume.v3 import volume

    attachments = [] if status != "in-use" else [{
        "id": VOLUME_ID, "attachment_id": "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
        "volume_id": VOLUME_ID, "server_id": SERVER_ID, "host_name": CMP,
        "device": "/dev/vdb", "attached_at": "2025-06-02T10:19:12.000000"}]
    body = {"id": VOLUME_ID, "name": "oslab-verify-vol", "status": status, "size": 1,
            "availability_zone": "nova", "bootable": "false", "encrypted": False,
            "multiattach": False, "attachments": attachments, "description": None,
            "created_at": "2025-06-02T10:18:40.000000", "updated_at": "2025-06-02T10:19:12.000000",
            "metadata": {}, "volume_type": "__DEFAULT__", "snapshot_id": None,
            "source_volid": None, "consistencygroup_id": None, "replication_status": None,
            "os-vol-host-attr:host": f"{CTL}@lvm#lvm", "os-vol-mig-status-attr:migstat": None,
            "os-vol-mig-status-attr:name_id": None,
            "os-vol-tenant-attr:tenant_id": "0e0c6a1c5a2b4b7f9d3e2f1a0b9c8d7e",
            "user_id": "5f1e2d3c4b5a69788796a5b4c3d2e1f0", "links": []}
    vol = Volume(None, dict(body), loaded=True)
    client = NS(volumes=NS(get=lambda vid: vol))
    return run(volume.ShowVolume, [VOLUME_ID], NS(volume=client))


# -- floating ip create, network show -----------------------------------------------------------

def floating_ip_create() -> str:
    from openstack.network.v2.floating_ip import FloatingIP
    from openstack.network.v2.network import Network
    from openstackclient.network.v2 import floating_ip

    net = Network.existing(id="b7e3c2a1-0f9e-4d8c-b7a6-958473625140", name="provider")
    body = {"id": "f1e2d3c4-b5a6-4978-8695-a4b3c2d1e0f9", "floating_ip_address": "203.0.113.187",
            "floating_network_id": net.id, "fixed_ip_address": None, "port_id": None,
            "router_id": None, "status": "DOWN", "description": "oslab-verify",
            "project_id": "0e0c6a1c5a2b4b7f9d3e2f1a0b9c8d7e", "tags": [], "dns_domain": "",
            "dns_name": "", "port_details": None, "qos_policy_id": None, "revision_number": 0,
            "created_at": "2025-06-02T10:18:02Z", "updated_at": "2025-06-02T10:18:02Z"}
    fip = FloatingIP.existing(**body)
    network = NS(find_network=lambda name, ignore_missing=False: net,
                 create_ip=lambda **attrs: fip)
    identity = NS()
    return run(floating_ip.CreateFloatingIP,
               ["--description", "oslab-verify", "provider"],
               NS(network=network, identity=identity,
                  is_network_endpoint_enabled=lambda: True))


def network_show_provider() -> str:
    from openstack.network.v2.network import Network
    from openstackclient.network.v2 import network

    body = {"id": "b7e3c2a1-0f9e-4d8c-b7a6-958473625140", "name": "provider",
            "admin_state_up": True, "status": "ACTIVE", "shared": True,
            "router:external": True, "provider:network_type": "flat",
            "provider:physical_network": "provider", "provider:segmentation_id": None,
            "subnets": ["5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d"], "mtu": 1500,
            "availability_zone_hints": [], "availability_zones": ["nova"],
            "ipv4_address_scope": None, "ipv6_address_scope": None, "is_default": False,
            "port_security_enabled": True, "project_id": "0e0c6a1c5a2b4b7f9d3e2f1a0b9c8d7e",
            "qos_policy_id": None, "revision_number": 3, "tags": [], "description": "",
            "dns_domain": "", "l2_adjacency": True,
            "created_at": "2025-06-02T10:16:20Z", "updated_at": "2025-06-02T10:16:25Z"}
    net = Network.existing(**body)
    client = NS(find_network=lambda name, ignore_missing=False: net)
    return run(network.ShowNetwork, ["provider"],
               NS(network=client, is_network_endpoint_enabled=lambda: True))


def network_list_physnet(found: bool) -> str:
    from openstack.network.v2.network import Network
    from openstackclient.network.v2 import network

    nets = [Network.existing(id="b7e3c2a1-0f9e-4d8c-b7a6-958473625140", name="provider",
                             subnets=["5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d"])] if found else []
    client = NS(networks=lambda **filters: nets)
    return run(network.ListNetwork, ["--provider-physical-network", "provider"],
               NS(network=client, identity=NS(), is_network_endpoint_enabled=lambda: True))


BUILT: dict[str, Callable[[], str]] = {
    "compute_service_list.json": lambda: compute_services(down=False),
    "compute_service_list_down.json": lambda: compute_services(down=True),
    "network_agent_list.json": lambda: network_agents(dead=False),
    "network_agent_list_dead.json": lambda: network_agents(dead=True),
    "volume_service_list.json": lambda: volume_services(down=False),
    "volume_service_list_down.json": lambda: volume_services(down=True),
    "image_show_active.json": lambda: image_show("active"),
    "image_show_queued.json": lambda: image_show("queued"),
    "server_show_active.json": lambda: server_show("ACTIVE"),
    "server_show_error.json": lambda: server_show("ERROR"),
    "volume_show_available.json": lambda: volume_show("available"),
    "volume_show_in_use.json": lambda: volume_show("in-use"),
    "floating_ip_create.json": floating_ip_create,
    "network_show_provider.json": network_show_provider,
    "network_list_physnet.json": lambda: network_list_physnet(found=True),
    "network_list_physnet_empty.json": lambda: network_list_physnet(found=False),
}


def main() -> None:
    only = set(sys.argv[1:])
    for name, build in BUILT.items():
        if only and name not in only:
            continue
        text = build()
        json.loads(text)  # it is JSON, as the client printed it
        (HERE / name).write_text(text)
        print(f"wrote {name}")


if __name__ == "__main__":
    main()
