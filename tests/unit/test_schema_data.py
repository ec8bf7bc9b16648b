"""Sanity of the committed option schema, install/schema/epoxy/*.json."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import pytest

from oslab.install.confcheck.schema import OptSpec, Schema, available_schemas, load_schema

RELEASE = "epoxy"

# file -> (service distribution, its Epoxy series)
FILES = {
    "keystone.conf": ("keystone", "27."),
    "glance-api.conf": ("glance", "30."),
    "placement.conf": ("openstack-placement", "13."),
    "nova.conf": ("nova", "31."),
    "neutron.conf": ("neutron", "26."),
    "ml2_conf.ini": ("neutron", "26."),
    "openvswitch_agent.ini": ("neutron", "26."),
    "l3_agent.ini": ("neutron", "26."),
    "dhcp_agent.ini": ("neutron", "26."),
    "metadata_agent.ini": ("neutron", "26."),
    "cinder.conf": ("cinder", "26."),
}

# the option types confcheck knows how to check
KNOWN_TYPES = {
    "string",
    "boolean",
    "integer",
    "port",
    "float",
    "list",
    "dict",
    "range",
    "ip",
    "hostname",
    "host_address",
    "host_domain",
    "uri",
}

# sections that take keystoneauth's password plugin options
AUTH_SECTIONS = {
    "nova.conf": ["keystone_authtoken", "placement", "neutron", "cinder", "service_user"],
    "neutron.conf": ["keystone_authtoken", "nova", "placement"],
    "cinder.conf": ["keystone_authtoken", "nova", "service_user"],
    "glance-api.conf": ["keystone_authtoken"],
    "placement.conf": ["keystone_authtoken"],
}
PASSWORD_PLUGIN = [
    "auth_type",
    "auth_url",
    "username",
    "password",
    "project_name",
    "user_domain_name",
    "project_domain_name",
]


def raw(filename: str) -> dict[str, Any]:
    path = resources.files("oslab.install").joinpath("schema", RELEASE, filename + ".json")
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def opt(filename: str, section: str, option: str) -> OptSpec:
    return load_schema(RELEASE, filename).sections[section][option]


def all_specs(schema: Schema) -> list[OptSpec]:
    specs: list[OptSpec] = []
    tables = list(schema.sections.values())
    for rule in schema.dynamic:
        tables.extend(rule.templates.values())
    for table in tables:
        for spec in table.values():
            specs.append(spec)
            if spec.item is not None:
                specs.append(spec.item)
    return specs


def test_exactly_the_expected_files() -> None:
    assert available_schemas(RELEASE) == sorted(FILES)


@pytest.mark.parametrize("filename", sorted(FILES))
def test_header_records_the_generating_versions(filename: str) -> None:
    data = raw(filename)
    assert data["format"] == 1
    assert data["release"] == RELEASE
    assert data["file"] == filename
    dist, series = FILES[filename]
    assert data["generated_by"][dist].startswith(series)
    assert data["generated_by"]["oslo.config"].startswith("9.")
    assert data["namespaces"], "the generator namespaces are recorded"
    if filename in AUTH_SECTIONS:
        assert "keystoneauth1" in data["generated_by"]


@pytest.mark.parametrize("filename", sorted(FILES))
def test_data_is_compact_and_checkable(filename: str) -> None:
    text = resources.files("oslab.install").joinpath("schema", RELEASE, filename + ".json")
    assert '"help"' not in text.read_text(encoding="utf-8")
    schema = load_schema(RELEASE, filename)
    assert "DEFAULT" in schema.sections
    specs = all_specs(schema)
    assert specs
    assert {spec.type for spec in specs} <= KNOWN_TYPES
    # few options escape checking (project-specific types)
    assert sum(spec.unchecked is not None for spec in specs) <= 3


def test_total_size_is_small() -> None:
    folder = resources.files("oslab.install").joinpath("schema", RELEASE)
    size = sum(
        len(entry.read_bytes()) for entry in folder.iterdir() if entry.name.endswith(".json")
    )
    assert size < 400_000


def test_nova_sections() -> None:
    sections = set(load_schema(RELEASE, "nova.conf").sections)
    assert {
        "DEFAULT",
        "api",
        "api_database",
        "database",
        "glance",
        "keystone_authtoken",
        "libvirt",
        "neutron",
        "oslo_concurrency",
        "oslo_messaging_rabbit",
        "placement",
        "scheduler",
        "service_user",
        "vnc",
    } <= sections


def test_nova_libvirt_virt_type_choices() -> None:
    spec = opt("nova.conf", "libvirt", "virt_type")
    assert spec.type == "string"
    assert spec.choices is not None
    assert {"kvm", "qemu"} <= set(spec.choices)
    assert "kvmm" not in spec.choices


def test_nova_types_that_the_seeds_get_wrong() -> None:
    assert opt("nova.conf", "vnc", "server_listen").type == "host_address"
    assert opt("nova.conf", "vnc", "server_proxyclient_address").type == "host_address"
    assert opt("nova.conf", "vnc", "novncproxy_base_url").type == "uri"
    assert opt("nova.conf", "DEFAULT", "osapi_compute_listen_port").type == "port"
    workers = opt("nova.conf", "DEFAULT", "osapi_compute_workers")
    assert (workers.type, workers.min) == ("integer", 1)
    assert opt("nova.conf", "database", "connection").format == "url"
    assert opt("nova.conf", "DEFAULT", "transport_url").format == "url"


def test_keystone_token_provider_includes_fernet() -> None:
    spec = opt("keystone.conf", "token", "provider")
    assert spec.choices is not None
    assert "fernet" in spec.choices
    assert spec.entry_points == "keystone.token.provider"
    assert "uuid" not in spec.choices  # removed in Rocky


def test_keystone_authtoken_options_and_aliases() -> None:
    schema = load_schema(RELEASE, "nova.conf")
    section = schema.sections["keystone_authtoken"]
    assert {"www_authenticate_uri", "memcached_servers", "auth_url"} <= set(section)
    assert ("keystone_authtoken", "auth_uri") in section["www_authenticate_uri"].deprecated_names
    assert schema.aliases[("keystone_authtoken", "auth_uri")] == (
        "keystone_authtoken",
        "www_authenticate_uri",
    )
    assert section["memcached_servers"].type == "list"


@pytest.mark.parametrize(
    ("filename", "section"),
    [(f, s) for f, sections in sorted(AUTH_SECTIONS.items()) for s in sections],
)
def test_auth_sections_take_the_password_plugin(filename: str, section: str) -> None:
    schema = load_schema(RELEASE, filename)
    assert section in schema.auth_sections
    assert set(PASSWORD_PLUGIN) <= set(schema.sections[section])
    assert schema.sections[section]["auth_url"].required
    assert schema.auth_plugin == "password"


def test_glance_multi_store() -> None:
    schema = load_schema(RELEASE, "glance-api.conf")
    store = schema.sections["glance_store"]
    assert {"default_backend", "stores", "default_store"} <= set(store)
    assert schema.sections["DEFAULT"]["enabled_backends"].type == "dict"
    (rule,) = schema.dynamic
    assert rule.owner == ("DEFAULT", "enabled_backends")
    assert rule.item == "name:type"
    assert {"file", "http", "rbd", "swift", "cinder"} <= set(rule.templates)
    assert "filesystem_store_datadir" in rule.templates["file"]
    assert "rbd_store_pool" in rule.templates["rbd"]
    assert rule.aliases["glance.store.rbd.store"] == "rbd"
    for reserved in ("os_glance_staging_store", "os_glance_tasks_store"):
        assert "filesystem_store_datadir" in schema.sections[reserved]
    # store sections are dynamic, never fixed sections
    assert "file" not in schema.sections


def test_cinder_backends() -> None:
    schema = load_schema(RELEASE, "cinder.conf")
    backend = schema.sections["backend_defaults"]
    assert {"volume_driver", "volume_group", "target_helper", "target_protocol"} <= set(backend)
    rules = {rule.owner: rule for rule in schema.dynamic}
    rule = rules[("DEFAULT", "enabled_backends")]
    assert (rule.item, rule.like_section) == ("name", "backend_defaults")


def test_neutron_ml2_and_agents() -> None:
    ml2 = load_schema(RELEASE, "ml2_conf.ini").sections["ml2"]
    mechanisms = ml2["mechanism_drivers"].item
    assert mechanisms is not None and mechanisms.choices is not None
    assert {"openvswitch", "l2population"} <= set(mechanisms.choices)
    types = ml2["type_drivers"].item
    assert types is not None and types.choices is not None
    assert {"flat", "vlan", "vxlan"} <= set(types.choices)
    ovs = load_schema(RELEASE, "openvswitch_agent.ini").sections
    assert ovs["ovs"]["local_ip"].type == "ip"
    assert ovs["ovs"]["bridge_mappings"].type == "list"
    core = opt("neutron.conf", "DEFAULT", "core_plugin")
    assert core.choices is not None and "ml2" in core.choices and core.class_path_ok
    for agent in ("l3_agent.ini", "dhcp_agent.ini"):
        driver = opt(agent, "DEFAULT", "interface_driver")
        assert driver.choices is not None and "openvswitch" in driver.choices


def test_placement_database_connection_is_required() -> None:
    spec = opt("placement.conf", "placement_database", "connection")
    assert spec.required
    assert spec.format == "url"
