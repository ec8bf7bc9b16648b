"""The install content (``oslab.install.services``): names, order, dependencies, the traps.

The steps are rendered for the built-in default lab (one controller, one compute node) and
for variants (two compute nodes, no Cinder disk). A small scheduler runs the steps the way
the engine may: each node in list order, a step with ``after`` only once those steps are done
on every node that has them, nodes in parallel.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from oslab.install.model import FileSpec, Guarded, InstallContext, StepDef, Where
from oslab.install.services import steps_for
from oslab.install.services._base import IDENTITY_TOOL, identity_tool, restart_for
from oslab.spec import LabSpec, Role
from oslab.spec_file import load_default

PLACEHOLDER = re.compile(r"\{password:([a-z0-9_]+)\}")
STEP_NAME = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*\.[a-z0-9]+(?:-[a-z0-9]+)*$")
# The password keys the content may ask for: stable names, one per secret.
KNOWN_KEYS = {
    "mariadb_root", "rabbit_openstack", "metadata_secret", "horizon_secret_key",
    "keystone_admin", "keystone_demo",
    "db_keystone", "db_glance", "db_placement", "db_nova", "db_neutron", "db_cinder",
    "svc_glance", "svc_placement", "svc_nova", "svc_neutron", "svc_cinder",
}


def fake_password(key: str) -> str:
    return "p" + hashlib.sha256(key.encode()).hexdigest()[:20]


class Recorder:
    def __init__(self) -> None:
        self.keys: set[str] = set()

    def __call__(self, key: str) -> str:
        self.keys.add(key)
        return fake_password(key)


def plan(spec: LabSpec | None = None, virt: str = "kvm",
         password: Recorder | None = None) -> dict[str, list[StepDef]]:
    spec = spec or load_default()
    virt_types = {n.name: virt for n in spec.nodes if n.is_compute}
    return steps_for(InstallContext(spec=spec, password=password or Recorder(),
                                    virt_types=virt_types))


def two_computes() -> LabSpec:
    spec = load_default()
    first = next(n for n in spec.nodes if n.is_compute)
    second = replace(first, name="compute2", address=first.address + 1)
    return replace(spec, nodes=(*spec.nodes, second))


def no_cinder_disk() -> LabSpec:
    spec = load_default()
    nodes = tuple(replace(n, extra_disks_gib=()) if n.role is Role.CONTROLLER else n
                  for n in spec.nodes)
    return replace(spec, nodes=nodes)


def commands(steps: dict[str, list[StepDef]]) -> Iterator[tuple[str, StepDef, Guarded]]:
    for node, node_steps in steps.items():
        for step in node_steps:
            for command in step.commands:
                yield node, step, command


def files(steps: dict[str, list[StepDef]]) -> Iterator[tuple[str, StepDef, FileSpec]]:
    for node, node_steps in steps.items():
        for step in node_steps:
            for spec in step.files:
                yield node, step, spec


def file_of(steps: dict[str, list[StepDef]], node: str, path: str) -> FileSpec:
    found = [f for n, _, f in files(steps) if n == node and f.path == path]
    assert len(found) == 1, f"{path} on {node}: {len(found)} files"
    return found[0]


def ini_section(text: str, section: str) -> dict[str, str]:
    """The options of ``[section]`` (last value wins), parsed line by line."""
    options: dict[str, str] = {}
    current = None
    for line in text.splitlines():
        if line.startswith("["):
            current = line.strip()[1:-1]
        elif current == section and "=" in line and not line.startswith(("#", ";")):
            key, value = line.split("=", 1)
            options[key.strip()] = value.strip()
    return options


def schedule(steps: dict[str, list[StepDef]]) -> list[tuple[str, str]]:
    """(node, step) in an order the engine could run them; fails on a deadlock."""
    position = dict.fromkeys(steps, 0)
    holders: dict[str, set[str]] = {}
    for node, node_steps in steps.items():
        for step in node_steps:
            holders.setdefault(step.name, set()).add(node)
    done: set[tuple[str, str]] = set()
    order: list[tuple[str, str]] = []
    while any(position[n] < len(s) for n, s in steps.items()):
        progressed = False
        for node, node_steps in steps.items():
            while position[node] < len(node_steps):
                step = node_steps[position[node]]
                if not all((holder, name) in done for name in step.after
                           for holder in holders[name]):
                    break
                done.add((node, step.name))
                order.append((node, step.name))
                position[node] += 1
                progressed = True
        stuck = {n: s[position[n]].name for n, s in steps.items() if position[n] < len(s)}
        assert progressed or not stuck, f"deadlock: waiting steps {stuck}"
    return order


@pytest.fixture(params=["kvm", "qemu"])
def default_plan(request: pytest.FixtureRequest) -> dict[str, list[StepDef]]:
    return plan(virt=request.param)


# -- names and dependencies -------------------------------------------------------------------


def test_every_node_gets_steps_in_spec_order() -> None:
    spec = load_default()
    steps = plan(spec)
    assert list(steps) == [n.name for n in spec.nodes]
    assert all(steps.values())


@pytest.mark.parametrize("spec_factory", [load_default, two_computes, no_cinder_disk])
def test_step_names_are_unique_dotted_and_consistent(spec_factory: Callable[[], LabSpec]) -> None:
    steps = plan(spec_factory())
    where: dict[str, Where] = {}
    for node, node_steps in steps.items():
        names = [s.name for s in node_steps]
        assert len(names) == len(set(names)), f"duplicate step names on {node}"
        for step in node_steps:
            assert STEP_NAME.match(step.name), step.name
            assert step.title
            assert where.setdefault(step.name, step.where) is step.where, step.name
    for name, kind in where.items():
        on = {n for n, s in steps.items() if any(x.name == name for x in s)}
        if kind is Where.ALL:
            assert on == set(steps), name
        roles = {Role.CONTROLLER: Where.CONTROLLER, Role.COMPUTE: Where.COMPUTE}
        for node in spec_factory().nodes:
            if node.name in on and kind is not Where.ALL:
                assert roles[node.role] is kind, f"{name} on {node.name}"


@pytest.mark.parametrize("spec_factory", [load_default, two_computes, no_cinder_disk])
def test_after_names_exist_and_nothing_deadlocks(spec_factory: Callable[[], LabSpec]) -> None:
    steps = plan(spec_factory())
    names = {s.name for node_steps in steps.values() for s in node_steps}
    for node_steps in steps.values():
        for step in node_steps:
            for name in step.after:
                assert name in names, f"{step.name} waits for unknown step {name}"
                assert name != step.name
    order = schedule(steps)
    assert len(order) == sum(len(s) for s in steps.values())


def test_compute_nodes_install_packages_without_waiting_for_the_controller() -> None:
    steps = plan()
    compute = steps["compute1"]
    first_wait = next(i for i, s in enumerate(compute) if s.after)
    before = compute[:first_wait]
    packages = {p for s in before for p in s.packages}
    assert {"openstack-nova-compute", "openstack-neutron-openvswitch",
            "centos-release-openstack-epoxy"} <= packages
    waits = {s.name: s.after for s in compute if s.after}
    assert waits == {"nova.compute": ("nova.controller",),
                     "neutron.compute": ("neutron.controller",)}


def _index(order: list[tuple[str, str]], node: str, name: str) -> int:
    return order.index((node, name))


def test_order_sanity(default_plan: dict[str, list[StepDef]]) -> None:
    order = schedule(default_plan)
    controller = [s.name for s in default_plan["controller"]]

    def at(name: str, node: str = "controller") -> int:
        return _index(order, node, name)

    # the environment first, then the infrastructure, then keystone
    assert controller[:5] == ["env.hosts", "env.chrony-server", "env.crb", "env.rdo",
                              "env.client"]
    assert at("env.crb") < at("env.rdo") < at("env.client")
    for infra in ("mariadb.install", "mariadb.secure", "rabbitmq.user", "memcached.install",
                  "etcd.install"):
        assert at(infra) < at("keystone.install")
    assert at("mariadb.install") < at("mariadb.secure")
    # keystone (and its service project) before every service's user and endpoints
    for area in ("glance", "placement", "nova", "neutron", "cinder"):
        assert at("keystone.projects") < at(f"{area}.keystone") < at(
            f"{area}.controller" if area in ("nova", "neutron", "cinder") else f"{area}.install")
    assert at("keystone.openrc") < at("keystone.projects")
    # placement before nova; nova-compute after the conductor, discovery after nova-compute
    assert at("placement.install") < at("nova.controller")
    assert at("nova.controller") < at("nova.compute", "compute1") < at("nova.discover")
    # Open vSwitch bridge before the agents; the agents' check after the compute agent
    assert at("neutron.provider-bridge") < at("neutron.controller")
    assert at("neutron.provider-bridge", "compute1") < at("neutron.compute", "compute1")
    assert at("neutron.controller") < at("neutron.compute", "compute1") < at("neutron.agents")
    # cinder-volume only once its volume group exists
    assert at("cinder.lvm") < at("cinder.controller")


def test_databases_exist_before_their_sync(default_plan: dict[str, list[StepDef]]) -> None:
    sync = re.compile(r"(db_sync|db sync|api_db sync|db-manage .*upgrade|map_cell0|create_cell)")
    for node, node_steps in default_plan.items():
        seen: set[str] = set()
        for step in node_steps:
            seen |= {d.name for d in step.databases}  # databases come before commands
            for command in step.commands:
                if sync.search(command.run):
                    service = step.name.split(".")[0]
                    assert service in seen, f"{step.name}: {command.description} on {node}"
    nova_dbs = {d.name for s in default_plan["controller"] for d in s.databases
                if d.user == "nova"}
    assert nova_dbs == {"nova_api", "nova", "nova_cell0"}


def test_checkpoints_close_their_phase(default_plan: dict[str, list[StepDef]]) -> None:
    marked = {(n, s.name): s.checkpoint for n, steps in default_plan.items() for s in steps
              if s.checkpoint}
    assert all(node == "controller" for node, _ in marked)
    by_phase = {c: name for (_, name), c in marked.items()}
    assert by_phase == {"infra": "etcd.install", "identity": "placement.install",
                        "compute": "nova.discover", "network": "neutron.agents"}
    assert len(marked) == 4
    # On the controller, each phase's steps lie between the previous checkpoint and its own.
    phases = {
        "infra": {"env", "mariadb", "rabbitmq", "memcached", "etcd"},
        "identity": {"keystone", "glance", "placement"},
        "compute": {"nova"},
        "network": {"neutron"},
    }
    controller = default_plan["controller"]
    start = 0
    for phase, areas in phases.items():
        mark = next(i for i, s in enumerate(controller) if s.checkpoint == phase)
        assert {s.name.split(".")[0] for s in controller[start:mark + 1]} <= areas, phase
        start = mark + 1
    # The compute and network phases span the compute nodes: their checkpoint waits for the
    # last step of that phase there (each compute node's earlier steps run before it).
    for phase, last in (("compute", "nova.compute"), ("network", "neutron.compute")):
        step = next(s for s in controller if s.checkpoint == phase)
        assert last in step.after
        area = last.split(".")[0]
        for node, node_steps in default_plan.items():
            if node == "controller":
                continue
            names = [s.name for s in node_steps]
            assert all(names.index(n) <= names.index(last) for n in names
                       if n.split(".")[0] == area), (node, phase)
    order = schedule(default_plan)
    assert order.index(("compute1", "nova.compute")) < order.index(("controller",
                                                                     "nova.discover"))


# -- passwords --------------------------------------------------------------------------------


def test_passwords_come_from_stable_keys() -> None:
    first, second = Recorder(), Recorder()
    plan(password=first)
    plan(password=second)
    assert first.keys == second.keys
    assert first.keys <= KNOWN_KEYS, first.keys - KNOWN_KEYS
    placeholders = {k for _, _, c in commands(plan()) for text in (c.check, c.run)
                    for k in PLACEHOLDER.findall(text)}
    assert placeholders <= KNOWN_KEYS, placeholders - KNOWN_KEYS
    assert {"mariadb_root", "rabbit_openstack", "keystone_admin"} <= placeholders
    assert {"metadata_secret", "db_keystone", "svc_nova"} <= first.keys


def test_commands_never_hold_a_password_value() -> None:
    values = [fake_password(k) for k in KNOWN_KEYS]
    for node, step, command in commands(plan()):
        for text in (command.description, command.check, command.run):
            assert not any(v in text for v in values), f"{node} {step.name}: {text}"


def test_databases_use_the_db_password_keys() -> None:
    for node_steps in plan().values():
        for step in node_steps:
            for db in step.databases:
                assert db.password_key == f"db_{db.user}"


# -- the classic traps ------------------------------------------------------------------------


def test_vnc_server_listen_is_my_ip_not_a_comment(default_plan: dict[str, list[StepDef]]) -> None:
    controller = file_of(default_plan, "controller", "/etc/nova/nova.conf").content
    assert ini_section(controller, "vnc")["server_listen"] == "$my_ip"
    assert ini_section(controller, "vnc")["server_proxyclient_address"] == "$my_ip"
    compute = file_of(default_plan, "compute1", "/etc/nova/nova.conf").content
    vnc = ini_section(compute, "vnc")
    assert vnc["server_listen"] == "0.0.0.0"
    assert vnc["server_proxyclient_address"] == "$my_ip"
    assert vnc["novncproxy_base_url"] == "http://10.0.0.11:6080/vnc_auto.html"
    for _, _, spec in files(default_plan):
        assert not re.search(r"^\s*\w+\s*=\s*#", spec.content, re.M), spec.path


def test_auth_url_everywhere_and_never_auth_uri(default_plan: dict[str, list[StepDef]]) -> None:
    authtoken = 0
    for node, _, spec in files(default_plan):
        assert not re.search(r"^\s*auth_uri\s*=", spec.content, re.M), f"{node} {spec.path}"
        section = ini_section(spec.content, "keystone_authtoken")
        if section:
            authtoken += 1
            assert section["auth_url"].startswith("http://controller:5000"), spec.path
            assert section["auth_type"] == "password"
    assert authtoken == 6  # glance, placement, nova (controller and compute), neutron, cinder
    nova = file_of(default_plan, "controller", "/etc/nova/nova.conf").content
    assert ini_section(nova, "keystone_authtoken")["www_authenticate_uri"] == (
        "http://controller:5000/")


def test_nova_conf_is_complete(default_plan: dict[str, list[StepDef]]) -> None:
    for node in ("controller", "compute1"):
        text = file_of(default_plan, node, "/etc/nova/nova.conf").content
        placement = ini_section(text, "placement")
        assert placement == {
            "auth_url": "http://controller:5000/v3", "auth_type": "password",
            "project_domain_name": "Default", "user_domain_name": "Default",
            "region_name": "RegionOne", "project_name": "service", "username": "placement",
            "password": fake_password("svc_placement"),
        }
        assert ini_section(text, "cinder") == {"os_region_name": "RegionOne"}
        assert ini_section(text, "DEFAULT")["my_ip"] == str(
            load_default().node(node).address)
        assert ini_section(text, "neutron")["username"] == "neutron"
        assert ini_section(text, "service_user")["send_service_user_token"] == "true"
    controller = ini_section(
        file_of(default_plan, "controller", "/etc/nova/nova.conf").content, "neutron")
    assert controller["service_metadata_proxy"] == "true"
    assert controller["metadata_proxy_shared_secret"] == fake_password("metadata_secret")
    metadata = file_of(default_plan, "controller", "/etc/neutron/metadata_agent.ini").content
    assert ini_section(metadata, "DEFAULT")["metadata_proxy_shared_secret"] == (
        fake_password("metadata_secret"))


@pytest.mark.parametrize("virt", ["kvm", "qemu"])
def test_virt_type_comes_from_the_node(virt: str) -> None:
    steps = plan(virt=virt)
    text = file_of(steps, "compute1", "/etc/nova/nova.conf").content
    assert ini_section(text, "libvirt") == {"virt_type": virt}
    assert "[libvirt]" not in file_of(steps, "controller", "/etc/nova/nova.conf").content


def test_missing_virt_type_is_an_error() -> None:
    with pytest.raises(ValueError, match="compute1"):
        steps_for(InstallContext(spec=load_default(), password=fake_password, virt_types={}))


def test_mariadb_limit_nofile_drop_in() -> None:
    steps = plan()
    step = next(s for s in steps["controller"] if s.name == "mariadb.install")
    drop_in = next(f for f in step.files if f.path.startswith(
        "/etc/systemd/system/mariadb.service.d/"))
    assert re.search(r"^\[Service\]\nLimitNOFILE=(\d+)$", drop_in.content, re.M)
    limit = int(re.findall(r"LimitNOFILE=(\d+)", drop_in.content)[0])
    cnf = next(f for f in step.files if f.path == "/etc/my.cnf.d/openstack.cnf").content
    assert "bind-address = 10.0.0.11" in cnf
    connections = int(re.findall(r"max_connections = (\d+)", cnf)[0])
    assert connections == 4096 and limit > 2 * connections
    reload = [c for c in step.commands if "daemon-reload" in c.run]
    assert len(reload) == 1 and "LimitNOFILE" in reload[0].check
    assert step.services == ("mariadb",)


def test_placement_httpd_grants_usr_bin() -> None:
    conf = file_of(plan(), "controller", "/etc/httpd/conf.d/00-placement-api.conf").content
    block = re.search(r"<Directory /usr/bin>(.*?)</Directory>", conf, re.S)
    assert block and "Require all granted" in block.group(1)
    assert "WSGIScriptAlias / /usr/bin/placement-api" in conf
    assert "Listen 8778" in conf


def test_no_policy_json_is_shipped() -> None:
    steps = plan()
    assert not [f.path for _, _, f in files(steps) if f.path.endswith("policy.json")]
    moved = [c for _, s, c in commands(steps) if s.name == "placement.install"
             and "policy.json" in c.check]
    assert moved and moved[0].check == "test ! -e /etc/placement/policy.json"


def test_httpd_servername_is_a_conf_d_file_never_sed() -> None:
    steps = plan()
    servername = file_of(steps, "controller", "/etc/httpd/conf.d/oslab-servername.conf")
    assert "ServerName controller" in servername.content
    for _, _, command in commands(steps):
        assert not re.search(r"\bsed\b", command.run), command.run
    assert not [f for _, _, f in files(steps) if f.path == "/etc/httpd/conf/httpd.conf"]


def test_openrc_files_are_secret_and_private() -> None:
    steps = plan()
    for path, user in (("/root/admin-openrc", "admin"), ("/root/demo-openrc", "demo")):
        spec = file_of(steps, "controller", path)
        assert spec.secret and spec.mode == 0o600 and spec.owner == "root"
        assert f"export OS_USERNAME={user}" in spec.content
        assert "export OS_AUTH_URL=http://controller:5000/v3" in spec.content
    keystone = [c for _, s, c in commands(steps) if s.name.endswith(".keystone")]
    assert keystone and all(c.env_file == "/root/admin-openrc" for c in keystone)


def identity_documents(steps: dict[str, list[StepDef]], mode: str) -> list[dict[str, Any]]:
    """The JSON documents the content hands to oslab-identity (``check`` or ``ensure``)."""
    docs = []
    for _, _, c in commands(steps):
        text = c.check if mode == "check" else c.run
        if f"{IDENTITY_TOOL} {mode} <<'JSON'\n" in text:
            docs.append(json.loads(text.split("<<'JSON'\n", 1)[1].split("\nJSON", 1)[0]))
    return docs


def test_endpoints_on_the_guides_ports() -> None:
    steps = plan()
    services = {s["type"]: s for d in identity_documents(steps, "ensure")
                for s in d.get("services", [])}
    assert {kind: (s["url"], s["region"]) for kind, s in services.items()} == {
        "image": ("http://controller:9292", "RegionOne"),
        "placement": ("http://controller:8778", "RegionOne"),
        "compute": ("http://controller:8774/v2.1", "RegionOne"),
        "network": ("http://controller:9696", "RegionOne"),
        "volumev3": ("http://controller:8776/v3/%(project_id)s", "RegionOne"),
    }
    # oslab-identity makes the three endpoints of each
    assert 'INTERFACES = ("public", "internal", "admin")' in identity_tool().content
    created = " ".join(c.run for _, _, c in commands(steps))
    assert "--bootstrap-public-url http://controller:5000/v3/" in created
    assert "35357" not in created


@pytest.mark.parametrize("distro", ["centos-stream9", "debian13"])
def test_the_controller_has_the_placement_client_plugin(distro: str) -> None:
    """The install guide checks Placement with `openstack resource class list`: without
    osc-placement the client knows no such command."""
    steps = plan(replace(load_default(), distro=distro))
    by_node = {node: {p for s in lst for p in s.packages} for node, lst in steps.items()}
    assert "python3-osc-placement" in by_node["controller"]


@pytest.mark.parametrize("distro", ["centos-stream9", "debian13"])
def test_service_users_roles_and_nova_carries_the_service_role(distro: str) -> None:
    """cinder deletes the attachment of an in-use volume (nova's detach) only for a service
    token with the ``service`` role (OSSA-2023-003); with admin alone every detach of the e2e
    lab failed with ConflictNovaUsingAttachment (HTTP 409)."""
    docs = identity_documents(plan(replace(load_default(), distro=distro)), "ensure")
    grants = {(u["name"], u["project"], u["role"]) for d in docs for u in d.get("users", [])}
    services = {"glance", "placement", "nova", "neutron", "cinder"}
    assert grants == ({(user, "service", "admin") for user in services}
                      | {("nova", "service", "service"), ("demo", "demo", "member")})
    # the role is ensured by the document that grants it, not assumed from bootstrap
    assert any("service" in d.get("roles", []) and any(u["role"] == "service"
                                                       for u in d.get("users", []))
               for d in docs)


def test_provider_bridge_finds_the_nic_by_mac() -> None:
    spec = load_default()
    steps = plan(spec)
    for node in spec.nodes:
        bridge = [c for _, s, c in commands({node.name: steps[node.name]})
                  if s.name == "neutron.provider-bridge"]
        assert len(bridge) == 1
        mac = spec.mac(node, 1)
        assert mac in bridge[0].check and mac in bridge[0].run
        assert "add-port br-provider" in bridge[0].run
        # a NIC that is a port but down (after a reboot) is not done: the run brings it up
        assert bridge[0].check.endswith('ip -o link show dev "$nic" | grep -q "[<,]UP[,>]"')
        assert 'ip link set dev "$nic" up' in bridge[0].run
    ovs = file_of(steps, "compute1", "/etc/neutron/plugins/ml2/openvswitch_agent.ini").content
    assert ini_section(ovs, "ovs") == {"bridge_mappings": "provider:br-provider",
                                       "local_ip": "10.0.0.31"}
    assert ini_section(ovs, "securitygroup")["firewall_driver"] == "openvswitch"


def test_cinder_lvm_on_the_extra_disk() -> None:
    steps = plan()
    lvm = next(s for s in steps["controller"] if s.name == "cinder.lvm")
    vg = [c for c in lvm.commands if "vgcreate" in c.run]
    assert vg and vg[0].check == "vgs cinder-volumes >/dev/null 2>&1"
    assert "pvcreate --yes /dev/vdb && vgcreate cinder-volumes /dev/vdb" in vg[0].run
    assert "target" in lvm.services
    assert any(f.path == "/etc/lvm/lvmlocal.conf" and "a|^/dev/vdb$|" in f.content
               for f in lvm.files)
    cinder = next(s for s in steps["controller"] if s.name == "cinder.controller")
    assert "openstack-cinder-volume" in cinder.services
    # the LVM statistics every 10 min: at the default minute they ran back to back under TCG
    conf = next(f for f in cinder.files if f.path == "/etc/cinder/cinder.conf").content
    assert ini_section(conf, "DEFAULT")["backend_stats_polling_interval"] == "600"


def test_without_a_cinder_disk_there_is_no_volume_service() -> None:
    steps = plan(no_cinder_disk())
    names = [s.name for s in steps["controller"]]
    assert "cinder.lvm" not in names
    cinder = next(s for s in steps["controller"] if s.name == "cinder.controller")
    assert "openstack-cinder-volume" not in cinder.services
    assert "enabled_backends" not in cinder.files[0].content


def test_two_compute_nodes_are_both_discovered_and_awaited() -> None:
    steps = plan(two_computes())
    assert set(steps) == {"controller", "compute1", "compute2"}
    discover = next(s for s in steps["controller"] if s.name == "nova.discover")
    assert "compute1" in discover.commands[0].check
    assert "compute2" in discover.commands[0].check
    agents = next(s for s in steps["controller"] if s.name == "neutron.agents")
    assert "-e 'compute2 neutron-openvswitch-agent'" in agents.commands[0].check
    nova2 = file_of(steps, "compute2", "/etc/nova/nova.conf").content
    assert ini_section(nova2, "DEFAULT")["my_ip"] == "10.0.0.32"


def test_controller_only_lab_has_no_compute_waits() -> None:
    spec = load_default()
    controller_only = replace(spec, nodes=tuple(n for n in spec.nodes if not n.is_compute))
    steps = plan(controller_only)
    assert list(steps) == ["controller"]
    names = [s.name for s in steps["controller"]]
    assert "nova.discover" not in names
    schedule(steps)


def test_every_service_is_started_where_the_guide_starts_it() -> None:
    started: dict[str, set[str]] = {}
    for node, node_steps in plan().items():
        for step in node_steps:
            started.setdefault(node, set()).update(step.services)
    assert started["controller"] >= {
        "chronyd", "mariadb", "rabbitmq-server", "memcached", "etcd", "httpd",
        "openstack-glance-api", "openstack-nova-api", "openstack-nova-scheduler",
        "openstack-nova-conductor", "openstack-nova-novncproxy", "openvswitch",
        "neutron-server", "neutron-openvswitch-agent", "neutron-dhcp-agent",
        "neutron-metadata-agent", "neutron-l3-agent", "openstack-cinder-api",
        "openstack-cinder-scheduler", "openstack-cinder-volume", "target",
    }
    assert started["compute1"] == {"chronyd", "openstack-nova-compute", "openvswitch",
                                   "neutron-openvswitch-agent"} | EL9_LIBVIRT


def test_the_package_exports_only_steps_for() -> None:
    import oslab.install.services as services

    assert services.__all__ == ["steps_for"]
    assert services.steps_for is steps_for


@pytest.mark.parametrize("spec_factory", [load_default, two_computes, no_cinder_disk])
def test_the_engine_accepts_the_step_graph(spec_factory: Callable[[], LabSpec]) -> None:
    graph = pytest.importorskip("oslab.install.graph")
    graph.check(plan(spec_factory()))


def test_non_idempotent_runs_guard_themselves() -> None:
    """The engine runs a command without its check when forced (``oslab up --from``): a run
    that would create a duplicate (service, endpoint, cell, volume group) checks first."""
    for _, step, command in commands(plan()):
        if re.search(r"(service|endpoint) create|create_cell|vgcreate|lvmdevices --adddev",
                     command.run):
            assert command.run.startswith(command.check + " || "), (step.name, command.run)
        if re.search(r"openstack (project|user|role) create", command.run):
            assert "--or-show" in command.run, command.run


# -- services a command needs are running before it -------------------------------------------


def _started_before(node_steps: list[StepDef], index: int) -> set[str]:
    """The services started by the steps before ``index`` on one node (a step's own services
    start after its commands, so they do not count for its commands)."""
    return {s for step in node_steps[:index] for s in step.services}


@pytest.mark.parametrize("spec_factory", [load_default, two_computes])
def test_ovs_vsctl_runs_only_after_openvswitch_was_started(
        spec_factory: Callable[[], LabSpec]) -> None:
    seen = 0
    for node, node_steps in plan(spec_factory()).items():
        for i, step in enumerate(node_steps):
            for command in step.commands:
                if "ovs-vsctl" in command.check + command.run:
                    seen += 1
                    assert "openvswitch" in _started_before(node_steps, i), (
                        f"{node}: {step.name} runs ovs-vsctl before openvswitch is started")
    assert seen == len(spec_factory().nodes)


# EL9's libvirt is built with modular daemons (libvirt.spec: with_modular_daemons when
# rhel >= 9; %post daemon-driver-qemu runs %systemd_post virtqemud.socket virtqemud-ro.socket
# virtqemud-admin.socket virtqemud.service), RDO's openstack-nova-compute requires the
# modular driver packages (qemu, nodedev, nwfilter, secret, storage-core), and
# virtqemud.service conflicts with libvirtd.service.
EL9_LIBVIRT = {"virtqemud.socket", "virtqemud-ro.socket", "virtqemud-admin.socket",
               "virtlogd.socket", "virtnodedevd.socket", "virtnwfilterd.socket",
               "virtsecretd.socket", "virtstoraged.socket"}


@pytest.mark.parametrize("spec_factory", [load_default, two_computes])
def test_el9_compute_nodes_use_the_modular_libvirt_daemons(
        spec_factory: Callable[[], LabSpec]) -> None:
    steps = plan(spec_factory())
    for node in spec_factory().nodes:
        services = {s for step in steps[node.name] for s in step.services}
        packages = {p for step in steps[node.name] for p in step.packages}
        assert "libvirtd" not in services and "libvirtd.service" not in services, node.name
        assert "libvirt-daemon" not in packages, node.name  # the package of libvirtd
        if node.is_compute:
            assert services >= EL9_LIBVIRT, node.name
            names = [s.name for s in steps[node.name]]
            started = next(i for i, s in enumerate(steps[node.name])
                           if "virtqemud.socket" in s.services)
            assert started < names.index("nova.compute") or (
                steps[node.name][started].name == "nova.compute"
                and steps[node.name][started].services[-1] == "openstack-nova-compute")


# files a step writes that no service of a later step reads at start-up
NOT_READ_BY_A_SERVICE = {"/etc/hosts", "/var/lib/oslab/debconf-selections", IDENTITY_TOOL,
                         "/root/admin-openrc", "/root/demo-openrc"}


@pytest.mark.parametrize("distro", ["centos-stream9", "debian13"])
def test_a_config_written_before_its_service_step_restarts_it(distro: str) -> None:
    """A step restarts its services only for its own files: a config file that an earlier
    step writes (keystone.conf, before db_sync) needs a restart_for guard in the step that
    runs its reader, or a changed config never reaches the running service."""
    spec = replace(load_default(), distro=distro)
    for node, steps in plan(spec).items():
        for i, step in enumerate(steps):
            if step.services:
                continue
            for f in step.files:
                if f.path in NOT_READ_BY_A_SERVICE:
                    continue
                guards = [g.description for later in steps[i + 1:] for g in later.commands
                          if g.description.endswith(f" runs with the current {f.path}")]
                assert guards, f"{node}: {step.name} writes {f.path}; nothing restarts its reader"


@pytest.mark.parametrize(("active", "started", "changed", "restarts"), [
    (False, "", 100, False),  # not running: the step's services start it
    (True, "@200", 100, False),  # started after the change
    (True, "@100", 200, True),  # started before it
])
def test_restart_for_restarts_a_unit_that_started_before_the_change(
        tmp_path: Path, active: bool, started: str, changed: int, restarts: bool) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    systemctl = bin_dir / "systemctl"
    # a stand-in systemctl: is-active, and show -p ActiveEnterTimestamp --value
    systemctl.write_text(f'#!/bin/sh\ncase "$1" in is-active) exit {0 if active else 3};; '
                         f'show) echo "{started}";; esac\n')
    systemctl.chmod(0o755)
    conf = tmp_path / "keystone.conf"
    conf.write_text("[cache]\n")
    os.utime(conf, (changed, changed))
    guard = restart_for("keystone", str(conf))
    done = subprocess.run(["bash", "-c", guard.check], env={"PATH": f"{bin_dir}:/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=10)
    assert (done.returncode != 0) == restarts, done.stderr
    assert guard.run == "systemctl restart keystone"
