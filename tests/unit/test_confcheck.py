"""oslab.install.confcheck against the committed Epoxy option schema (no network)."""

from __future__ import annotations

import pytest

from oslab.install.confcheck import Problem, check_ini, load_schema

RELEASE = "epoxy"


def check(text: str, filename: str = "nova.conf") -> list[Problem]:
    return check_ini(text, load_schema(RELEASE, filename), f"/etc/test/{filename}")


def only(problems: list[Problem], option: str) -> Problem:
    found = [p for p in problems if p.option == option]
    assert len(found) == 1, problems
    return found[0]


def errors(problems: list[Problem]) -> list[Problem]:
    return [p for p in problems if p.severity == "error"]


# --- correct files from the Epoxy install guide (RDO) --------------------------

NOVA_CONTROLLER = """\
[DEFAULT]
enabled_apis = osapi_compute,metadata
transport_url = rabbit://openstack:RABBIT_PASS@controller:5672/
my_ip = 10.0.0.11

[api]
auth_strategy = keystone

[api_database]
connection = mysql+pymysql://nova:NOVA_DBPASS@controller/nova_api

[database]
connection = mysql+pymysql://nova:NOVA_DBPASS@controller/nova

[keystone_authtoken]
www_authenticate_uri = http://controller:5000/
auth_url = http://controller:5000/
memcached_servers = controller:11211
auth_type = password
project_domain_name = Default
user_domain_name = Default
project_name = service
username = nova
password = NOVA_PASS

[service_user]
send_service_user_token = true
auth_url = http://controller:5000/identity
auth_type = password
project_domain_name = Default
project_name = service
user_domain_name = Default
username = nova
password = NOVA_PASS

[vnc]
enabled = true
server_listen = $my_ip
server_proxyclient_address = $my_ip

[glance]
api_servers = http://controller:9292

[oslo_concurrency]
lock_path = /var/lib/nova/tmp

[placement]
region_name = RegionOne
project_domain_name = Default
project_name = service
auth_type = password
user_domain_name = Default
auth_url = http://controller:5000/v3
username = placement
password = PLACEMENT_PASS

[neutron]
auth_url = http://controller:5000
auth_type = password
project_domain_name = Default
user_domain_name = Default
region_name = RegionOne
project_name = service
username = neutron
password = NEUTRON_PASS
service_metadata_proxy = true
metadata_proxy_shared_secret = METADATA_SECRET

[cinder]
os_region_name = RegionOne
"""

NOVA_COMPUTE = """\
[DEFAULT]
enabled_apis = osapi_compute,metadata
transport_url = rabbit://openstack:RABBIT_PASS@controller
my_ip = 10.0.0.31

[api]
auth_strategy = keystone

[keystone_authtoken]
www_authenticate_uri = http://controller:5000/
auth_url = http://controller:5000/
memcached_servers = controller:11211
auth_type = password
project_domain_name = Default
user_domain_name = Default
project_name = service
username = nova
password = NOVA_PASS

[vnc]
enabled = true
server_listen = 0.0.0.0
server_proxyclient_address = $my_ip
novncproxy_base_url = http://controller:6080/vnc_auto.html

[glance]
api_servers = http://controller:9292

[oslo_concurrency]
lock_path = /var/lib/nova/tmp

[placement]
region_name = RegionOne
project_domain_name = Default
project_name = service
auth_type = password
user_domain_name = Default
auth_url = http://controller:5000/v3
username = placement
password = PLACEMENT_PASS

[libvirt]
virt_type = qemu
"""

KEYSTONE = """\
[database]
connection = mysql+pymysql://keystone:KEYSTONE_DBPASS@controller/keystone

[token]
provider = fernet
"""

NEUTRON = """\
[DEFAULT]
core_plugin = ml2
service_plugins = router
transport_url = rabbit://openstack:RABBIT_PASS@controller
auth_strategy = keystone
notify_nova_on_port_status_changes = true
notify_nova_on_port_data_changes = true

[database]
connection = mysql+pymysql://neutron:NEUTRON_DBPASS@controller/neutron

[keystone_authtoken]
www_authenticate_uri = http://controller:5000
auth_url = http://controller:5000
memcached_servers = controller:11211
auth_type = password
project_domain_name = Default
user_domain_name = Default
project_name = service
username = neutron
password = NEUTRON_PASS

[nova]
auth_url = http://controller:5000
auth_type = password
project_domain_name = Default
user_domain_name = Default
region_name = RegionOne
project_name = service
username = nova
password = NOVA_PASS

[oslo_concurrency]
lock_path = /var/lib/neutron/tmp
"""

ML2 = """\
[ml2]
type_drivers = flat,vlan,vxlan
tenant_network_types = vxlan
mechanism_drivers = openvswitch,l2population
extension_drivers = port_security

[ml2_type_flat]
flat_networks = provider

[ml2_type_vxlan]
vni_ranges = 1:1000
"""

OVS_AGENT = """\
[ovs]
bridge_mappings = provider:br-provider
local_ip = 10.0.0.11

[agent]
tunnel_types = vxlan
l2_population = true

[securitygroup]
enable_security_group = true
firewall_driver = openvswitch
"""

GLANCE = """\
[DEFAULT]
enabled_backends=fs:file

[database]
connection = mysql+pymysql://glance:GLANCE_DBPASS@controller/glance

[keystone_authtoken]
www_authenticate_uri  = http://controller:5000
auth_url = http://controller:5000
memcached_servers = controller:11211
auth_type = password
project_domain_name = Default
user_domain_name = Default
project_name = service
username = glance
password = GLANCE_PASS

[paste_deploy]
flavor = keystone

[glance_store]
default_backend = fs

[fs]
filesystem_store_datadir = /var/lib/glance/images/

[oslo_limit]
auth_url = http://controller:5000
auth_type = password
user_domain_id = default
username = glance
system_scope = all
password = GLANCE_PASS
endpoint_id = 340be3625e9b4239a6415d034e98aace
region_name = RegionOne
"""

PLACEMENT = """\
[placement_database]
connection = mysql+pymysql://placement:PLACEMENT_DBPASS@controller/placement

[api]
auth_strategy = keystone

[keystone_authtoken]
auth_url = http://controller:5000/v3
memcached_servers = controller:11211
auth_type = password
project_domain_name = Default
user_domain_name = Default
project_name = service
username = placement
password = PLACEMENT_PASS
"""

CINDER = """\
[DEFAULT]
transport_url = rabbit://openstack:RABBIT_PASS@controller
auth_strategy = keystone
my_ip = 10.0.0.41
enabled_backends = lvm
glance_api_servers = http://controller:9292

[database]
connection = mysql+pymysql://cinder:CINDER_DBPASS@controller/cinder

[keystone_authtoken]
www_authenticate_uri = http://controller:5000
auth_url = http://controller:5000
memcached_servers = controller:11211
auth_type = password
project_domain_name = default
user_domain_name = default
project_name = service
username = cinder
password = CINDER_PASS

[oslo_concurrency]
lock_path = /var/lib/cinder/tmp

[lvm]
volume_driver = cinder.volume.drivers.lvm.LVMVolumeDriver
volume_group = cinder-volumes
target_protocol = iscsi
target_helper = lioadm
"""

GOOD = [
    ("nova.conf", NOVA_CONTROLLER),
    ("nova.conf", NOVA_COMPUTE),
    ("keystone.conf", KEYSTONE),
    ("neutron.conf", NEUTRON),
    ("ml2_conf.ini", ML2),
    ("openvswitch_agent.ini", OVS_AGENT),
    ("l3_agent.ini", "[DEFAULT]\ninterface_driver = openvswitch\n"),
    (
        "dhcp_agent.ini",
        "[DEFAULT]\ninterface_driver = openvswitch\n"
        "dhcp_driver = neutron.agent.linux.dhcp.Dnsmasq\nenable_isolated_metadata = true\n",
    ),
    (
        "metadata_agent.ini",
        "[DEFAULT]\nnova_metadata_host = controller\n"
        "metadata_proxy_shared_secret = METADATA_SECRET\n",
    ),
    ("glance-api.conf", GLANCE),
    ("placement.conf", PLACEMENT),
    ("cinder.conf", CINDER),
]


@pytest.mark.parametrize(
    ("filename", "text"), GOOD, ids=[f"{name}-{i}" for i, (name, _) in enumerate(GOOD)]
)
def test_install_guide_files_pass(filename: str, text: str) -> None:
    assert check(text, filename) == []


def test_good_file_with_one_mistake_is_caught() -> None:
    # guards the test above: the same files are checked, not skipped
    text = NOVA_COMPUTE.replace("virt_type = qemu", "virt_type = qemu2")
    problem = only(check(text), "virt_type")
    assert problem.section == "libvirt"
    assert problem.line == text.splitlines().index("virt_type = qemu2") + 1


# --- the seeds' mistakes -------------------------------------------------------


def test_commented_my_ip_as_server_listen_fails() -> None:
    problems = check("[DEFAULT]\nmy_ip = 10.0.0.11\n\n[vnc]\nserver_listen = #my_ip\n")
    problem = only(problems, "server_listen")
    assert (problem.section, problem.line, problem.severity) == ("vnc", 5, "error")
    assert "'#my_ip'" in problem.message
    assert "host address" in problem.message


def test_interpolated_my_ip_is_checked_after_substitution() -> None:
    good = "[DEFAULT]\nmy_ip = 10.0.0.11\n[vnc]\nserver_listen = $my_ip\n"
    assert check(good) == []
    braced = "[DEFAULT]\nmy_ip = 10.0.0.11\n[vnc]\nserver_proxyclient_address = ${my_ip}\n"
    assert check(braced) == []
    bad = "[DEFAULT]\nmy_ip = 10.0.0.11/24\n[vnc]\nserver_listen = $my_ip\n"
    problem = only(check(bad), "server_listen")
    assert "'10.0.0.11/24'" in problem.message
    assert "from '$my_ip'" in problem.message


def test_interpolation_follows_references() -> None:
    text = (
        "[DEFAULT]\nmy_ip = 10.0.0.11\n[vnc]\nserver_proxyclient_address = $my_ip\n"
        "server_listen = $server_proxyclient_address\n"
    )
    assert check(text) == []
    looped = (
        "[vnc]\nserver_listen = $server_proxyclient_address\n"
        "server_proxyclient_address = $server_listen\n"
    )
    assert {p.option for p in check(looped)} == {"server_listen", "server_proxyclient_address"}


def test_reference_to_unset_option_is_not_guessed() -> None:
    # my_ip exists but is not set here: its default (the host's IP) would be used
    assert check("[vnc]\nserver_listen = $my_ip\n") == []


def test_reference_to_no_option_fails() -> None:
    problem = only(check("[vnc]\nserver_listen = $my_ipp\n"), "server_listen")
    assert "$my_ipp" in problem.message
    assert problem.severity == "error"


def test_dollar_in_password_must_be_escaped() -> None:
    text = "[keystone_authtoken]\npassword = pa$word\n"
    assert "$word" in only(check(text), "password").message
    assert check("[keystone_authtoken]\npassword = pa$$word\n") == []
    assert check("[keystone_authtoken]\npassword = pa\\$word\n") == []


def test_auth_uri_where_auth_url_is_meant() -> None:
    text = """\
[keystone_authtoken]
auth_uri = http://controller:5000
memcached_servers = controller:11211
auth_type = password
project_domain_name = Default
user_domain_name = Default
project_name = service
username = nova
password = NOVA_PASS
"""
    problems = check(text)
    alias = only(problems, "auth_uri")
    assert alias.line == 2
    assert alias.severity == "error"
    assert "did you mean auth_url?" in alias.message
    assert "auth_uri is a deprecated alias of www_authenticate_uri" in alias.message
    missing = only(problems, "auth_url")
    assert missing.severity == "error"
    assert "required" in missing.message


def test_auth_uri_next_to_auth_url_is_only_a_deprecation() -> None:
    text = (
        "[keystone_authtoken]\nauth_uri = http://controller:5000\n"
        "auth_url = http://controller:5000\nauth_type = password\n"
    )
    problem = only(check(text), "auth_uri")
    assert problem.severity == "warning"
    assert "deprecated alias of www_authenticate_uri" in problem.message


def test_virt_type_typo_fails_with_suggestion() -> None:
    problem = only(check("[libvirt]\nvirt_type = kvmm\n"), "virt_type")
    assert problem.severity == "error"
    assert "did you mean kvm?" in problem.message
    assert check("[libvirt]\nvirt_type = kvm\n") == []


def test_unknown_option_with_suggestion() -> None:
    problem = only(check("[libvirt]\nvirt_typ = kvm\n"), "virt_typ")
    assert problem.severity == "error"
    assert "unknown option virt_typ" in problem.message
    assert "did you mean virt_type?" in problem.message


def test_option_in_the_wrong_section_names_the_right_one() -> None:
    # the upstream install guide puts auth_strategy into [service_user]
    problem = only(check("[service_user]\nauth_strategy = keystone\n"), "auth_strategy")
    assert "[api]" in problem.message


def test_unknown_section_with_suggestion() -> None:
    problems = check("[placment]\nauth_url = http://controller:5000\n")
    assert len(problems) == 1
    assert problems[0].section == "placment"
    assert problems[0].line == 1
    assert "did you mean [placement]?" in problems[0].message


@pytest.mark.parametrize("value", ["0", "-3", "many", "2.5"])
def test_integer_out_of_range_or_not_an_integer(value: str) -> None:
    problem = only(check(f"[DEFAULT]\nosapi_compute_workers = {value}\n"), "osapi_compute_workers")
    assert problem.severity == "error"


def test_integer_in_range_passes() -> None:
    assert check("[DEFAULT]\nosapi_compute_workers = 4\n") == []


@pytest.mark.parametrize("value", ["65536", "-1", "http", "8774/tcp"])
def test_bad_port(value: str) -> None:
    problem = only(
        check(f"[DEFAULT]\nosapi_compute_listen_port = {value}\n"), "osapi_compute_listen_port"
    )
    assert "port" in problem.message


def test_good_port_passes() -> None:
    assert check("[DEFAULT]\nosapi_compute_listen_port = 8774\n") == []


@pytest.mark.parametrize(
    "value", ["controller:6080/vnc_auto.html", "/vnc_auto.html", "http://", "http://[zz]:6080/"]
)
def test_bad_uri(value: str) -> None:
    problem = only(check(f"[vnc]\nnovncproxy_base_url = {value}\n"), "novncproxy_base_url")
    assert "URI" in problem.message


@pytest.mark.parametrize(
    ("section", "option", "value"),
    [
        ("database", "connection", "mysql+pymysql//nova:NOVA_DBPASS@controller/nova"),
        ("database", "connection", "controller/nova"),
        ("DEFAULT", "transport_url", "openstack:RABBIT_PASS@controller"),
        ("keystone_authtoken", "auth_url", "controller:5000"),
        ("keystone_authtoken", "www_authenticate_uri", "http://controller :5000"),
    ],
)
def test_bad_url_in_string_options(section: str, option: str, value: str) -> None:
    problem = only(check(f"[{section}]\n{option} = {value}\n"), option)
    assert "not a URL" in problem.message


@pytest.mark.parametrize(
    "value",
    [
        "mysql+pymysql://nova:NOVA_DBPASS@controller/nova",
        "sqlite:////var/lib/nova/nova.sqlite",
        "rabbit://openstack:RABBIT_PASS@controller:5672/",
    ],
)
def test_good_urls_pass(value: str) -> None:
    assert check(f"[database]\nconnection = {value}\n[DEFAULT]\ntransport_url = {value}\n") == []


@pytest.mark.parametrize("value", ["true", "False", "YES", "no", "on", "Off", "1", "0"])
def test_oslo_boolean_spellings_pass(value: str) -> None:
    assert check(f"[DEFAULT]\ndebug = {value}\n") == []


@pytest.mark.parametrize("value", ["ture", "y", "2", "enabled", ""])
def test_other_booleans_fail(value: str) -> None:
    assert "boolean" in only(check(f"[DEFAULT]\ndebug = {value}\n"), "debug").message


def test_float_minimum() -> None:
    assert check("[DEFAULT]\ncpu_allocation_ratio = 4.0\n") == []
    only(check("[DEFAULT]\ncpu_allocation_ratio = -1.5\n"), "cpu_allocation_ratio")


def test_list_items_are_checked() -> None:
    assert check("[DEFAULT]\nenabled_apis = osapi_compute, metadata\n") == []
    problem = only(check("[DEFAULT]\nenabled_apis = osapi_compute,ec2\n"), "enabled_apis")
    assert "'ec2'" in problem.message


def test_ip_option() -> None:
    assert check("[ovs]\nlocal_ip = 10.0.0.11\n", "openvswitch_agent.ini") == []
    problem = only(check("[ovs]\nlocal_ip = compute1\n", "openvswitch_agent.ini"), "local_ip")
    assert "IP address" in problem.message


def test_driver_names() -> None:
    problem = only(check("[token]\nprovider = uuid\n", "keystone.conf"), "provider")
    assert "fernet" in problem.message
    problem = only(
        check("[ml2]\nmechanism_drivers = linuxbridge,l2population\n", "ml2_conf.ini"),
        "mechanism_drivers",
    )
    assert "'linuxbridge'" in problem.message
    # neutron also loads these by class path
    good = "[DEFAULT]\ninterface_driver = neutron.agent.linux.interface.OVSInterfaceDriver\n"
    assert check(good, "l3_agent.ini") == []
    only(check("[DEFAULT]\ninterface_driver = ovs\n", "l3_agent.ini"), "interface_driver")


# --- deprecation, repetition, parsing -------------------------------------------


def test_deprecated_name_is_a_warning() -> None:
    problem = only(
        check("[keystone_authtoken]\nmemcache_servers = controller:11211\n"), "memcache_servers"
    )
    assert problem.severity == "warning"
    assert "memcached_servers" in problem.message


def test_deprecated_for_removal_only_on_request() -> None:
    text = "[glance]\napi_servers = http://controller:9292\n"
    assert check(text) == []
    schema = load_schema(RELEASE, "nova.conf")
    problems = check_ini(text, schema, "nova.conf", warn_deprecated_for_removal=True)
    problem = only(problems, "api_servers")
    assert problem.severity == "warning"
    assert "deprecated for removal" in problem.message


def test_repeated_single_valued_option_warns() -> None:
    problem = only(check("[libvirt]\nvirt_type = kvm\nvirt_type = qemu\n"), "virt_type")
    assert (problem.line, problem.severity) == (3, "warning")


def test_repeated_multi_valued_option_is_fine() -> None:
    text = (
        '[pci]\nalias = {"name": "a1", "vendor_id": "8086", "product_id": "154d"}\n'
        'alias = {"name": "a2", "vendor_id": "8086", "product_id": "10ed"}\n'
    )
    assert check(text) == []


def test_comments_continuations_and_section_case() -> None:
    text = """\
# a comment
; another comment
[VNC]
enabled = true
  # indented: a continuation line, not a comment
[libvirt]
virt_type: kvm
"""
    problems = check(text)
    # "true\n# indented: ..." is no boolean: oslo joins continuation lines
    problem = only(problems, "enabled")
    assert problem.section == "vnc"
    assert len(problems) == 1


def test_quoted_values_are_unquoted() -> None:
    assert check('[libvirt]\nvirt_type = "kvm"\n') == []


def test_parse_errors_are_reported_with_lines() -> None:
    problems = check("virt_type = kvm\n[libvirt]\nthis line has no separator\n[]\n")
    assert [p.line for p in problems] == [1, 3, 4]
    assert all(p.severity == "error" for p in problems)


def test_problem_names_the_file() -> None:
    problems = check("[libvirt]\nvirt_type = kvmm\n")
    assert problems[0].file == "/etc/test/nova.conf"


# --- dynamic and auth sections --------------------------------------------------


def test_glance_backend_sections_follow_enabled_backends() -> None:
    base = "[DEFAULT]\nenabled_backends = fs:file, web:http\n[glance_store]\ndefault_backend = fs\n"
    good = base + "[fs]\nfilesystem_store_datadir = /var/lib/glance/images/\n"
    assert check(good, "glance-api.conf") == []
    # an option of another store type is unknown in a file store section
    wrong = base + "[fs]\nrbd_store_pool = images\n"
    assert "rbd_store_pool" in only(check(wrong, "glance-api.conf"), "rbd_store_pool").message
    # a section no backend names is unknown
    stray = base + "[images]\nfilesystem_store_datadir = /srv\n"
    problems = check(stray, "glance-api.conf")
    assert [(p.section, p.option) for p in problems] == [("images", "")]


def test_glance_reserved_stores_and_store_type_aliases() -> None:
    text = (
        "[DEFAULT]\nenabled_backends = fs:file, ceph:glance.store.rbd.Store\n"
        "[fs]\nfilesystem_store_datadir = /srv/images\n"
        "[ceph]\nrbd_store_pool = images\n"
        "[os_glance_staging_store]\nfilesystem_store_datadir = /srv/staging\n"
    )
    assert check(text, "glance-api.conf") == []


@pytest.mark.parametrize("kind", ["fiel", "filesystem"])
def test_glance_unknown_store_type(kind: str) -> None:
    # "filesystem" is a single-store name: glance_store has no such driver entry point
    text = f"[DEFAULT]\nenabled_backends = fs:{kind}\n"
    problem = only(check(text, "glance-api.conf"), "enabled_backends")
    assert f"'{kind}'" in problem.message


def test_cinder_backend_section() -> None:
    bad = CINDER.replace("target_helper = lioadm", "target_helpr = lioadm")
    problem = only(check(bad, "cinder.conf"), "target_helpr")
    assert problem.section == "lvm"
    unlisted = CINDER.replace("enabled_backends = lvm", "enabled_backends = ceph")
    problems = check(unlisted, "cinder.conf")
    assert [(p.section, p.option) for p in problems] == [("lvm", "")]


def test_deprecated_name_in_a_backend_section() -> None:
    text = CINDER + "iscsi_secondary_ip_addresses = 10.0.0.42\n"
    problem = only(check(text, "cinder.conf"), "iscsi_secondary_ip_addresses")
    assert (problem.section, problem.severity) == ("lvm", "warning")
    assert "target_secondary_ip_addresses" in problem.message


def test_required_option_missing() -> None:
    problems = check("[api]\nauth_strategy = keystone\n", "placement.conf")
    problem = only(problems, "connection")
    assert problem.section == "placement_database"
    assert "required" in problem.message


def test_other_auth_plugin_options_are_not_reported() -> None:
    text = (
        "[service_user]\nauth_type = v3applicationcredential\n"
        "auth_url = http://controller:5000/v3\n"
        "application_credential_id = 1234\napplication_credential_secret = s3cret\n"
    )
    assert check(text) == []
    with_password = text.replace("v3applicationcredential", "password")
    assert len(errors(check(with_password))) == 2


def test_load_schema_rejects_unknown_files() -> None:
    with pytest.raises(FileNotFoundError):
        load_schema(RELEASE, "nova-api.conf")
    with pytest.raises(ValueError):
        load_schema(RELEASE, "../epoxy/nova.conf")
