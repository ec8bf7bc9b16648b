"""Every file the installer writes, rendered for the built-in default lab, checked for real.

oslo.config files against the Epoxy option schema (``oslab.install.confcheck``), Horizon's
``local_settings`` by Python's compiler, the httpd snippets for their grants, ``/etc/hosts``
for every node, secrets for where they may appear, and every guarded command by ``bash -n``
and ``shellcheck``.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from oslab.install.confcheck import available_schemas, check_ini, format_problem, load_schema
from oslab.install.model import FileSpec, Guarded, InstallContext, StepDef
from oslab.install.services import steps_for
from oslab.spec_file import load_default

PLACEHOLDER = re.compile(r"\{password:([a-z0-9_]+)\}")
# Every oslo.config file of the default lab: (node, path).
INI_FILES = {
    ("controller", "/etc/keystone/keystone.conf"),
    ("controller", "/etc/glance/glance-api.conf"),
    ("controller", "/etc/placement/placement.conf"),
    ("controller", "/etc/nova/nova.conf"),
    ("compute1", "/etc/nova/nova.conf"),
    ("controller", "/etc/neutron/neutron.conf"),
    ("compute1", "/etc/neutron/neutron.conf"),
    ("controller", "/etc/neutron/plugins/ml2/ml2_conf.ini"),
    ("controller", "/etc/neutron/plugins/ml2/openvswitch_agent.ini"),
    ("compute1", "/etc/neutron/plugins/ml2/openvswitch_agent.ini"),
    ("controller", "/etc/neutron/l3_agent.ini"),
    ("controller", "/etc/neutron/dhcp_agent.ini"),
    ("controller", "/etc/neutron/metadata_agent.ini"),
    ("controller", "/etc/cinder/cinder.conf"),
}
# Options the Epoxy guide sets although they are deprecated for removal: (file, section, option).
DEPRECATED_BUT_IN_THE_GUIDE = {
    ("nova.conf", "api", "auth_strategy"),
    ("nova.conf", "glance", "api_servers"),
}
# Owner, group and mode as the RDO packages ship each file.
OWNERSHIP = {
    "/etc/keystone/keystone.conf": ("root", "keystone", 0o640),
    "/etc/glance/glance-api.conf": ("root", "glance", 0o640),
    "/etc/placement/placement.conf": ("root", "placement", 0o640),
    "/etc/nova/nova.conf": ("root", "nova", 0o640),
    "/etc/neutron/neutron.conf": ("root", "neutron", 0o640),
    "/etc/neutron/plugins/ml2/ml2_conf.ini": ("root", "neutron", 0o640),
    "/etc/neutron/plugins/ml2/openvswitch_agent.ini": ("root", "neutron", 0o640),
    "/etc/neutron/l3_agent.ini": ("root", "neutron", 0o640),
    "/etc/neutron/dhcp_agent.ini": ("root", "neutron", 0o640),
    "/etc/neutron/metadata_agent.ini": ("root", "neutron", 0o640),
    "/etc/cinder/cinder.conf": ("root", "cinder", 0o640),
    "/etc/openstack-dashboard/local_settings": ("root", "apache", 0o640),
    "/root/admin-openrc": ("root", "root", 0o600),
    "/root/demo-openrc": ("root", "root", 0o600),
    "/etc/hosts": ("root", "root", 0o644),
}


class Passwords:
    """Distinct fake passwords, recorded so the tests can look for them."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def __call__(self, key: str) -> str:
        return self.values.setdefault(key, "p" + hashlib.sha256(key.encode()).hexdigest()[:20])


def render(virt: str) -> tuple[dict[str, list[StepDef]], Passwords]:
    passwords = Passwords()
    spec = load_default()
    ctx = InstallContext(spec=spec, password=passwords,
                         virt_types={n.name: virt for n in spec.nodes if n.is_compute})
    return steps_for(ctx), passwords


@pytest.fixture(scope="module", params=["kvm", "qemu"])
def rendered(request: pytest.FixtureRequest) -> tuple[dict[str, list[StepDef]], Passwords]:
    return render(request.param)


def all_files(steps: dict[str, list[StepDef]]) -> Iterator[tuple[str, FileSpec]]:
    for node, node_steps in steps.items():
        for step in node_steps:
            for spec in step.files:
                yield node, spec


def all_commands(steps: dict[str, list[StepDef]]) -> Iterator[tuple[str, StepDef, Guarded]]:
    for node, node_steps in steps.items():
        for step in node_steps:
            for command in step.commands:
                yield node, step, command


def one_file(steps: dict[str, list[StepDef]], node: str, path: str) -> FileSpec:
    found = [f for n, f in all_files(steps) if n == node and f.path == path]
    assert len(found) == 1, (node, path)
    return found[0]


# -- oslo.config files against the release's schema -------------------------------------------


def test_every_ini_file_passes_the_epoxy_schema(
        rendered: tuple[dict[str, list[StepDef]], Passwords]) -> None:
    steps, _ = rendered
    schemas = set(available_schemas("epoxy"))
    checked = set()
    problems = []
    deprecated = set()
    for node, spec in all_files(steps):
        name = posixpath.basename(spec.path)
        if name not in schemas:
            continue
        checked.add((node, spec.path))
        schema = load_schema("epoxy", name)
        problems += [format_problem(p)
                     for p in check_ini(spec.content, schema, f"{node}:{spec.path}")]
        strict = check_ini(spec.content, schema, spec.path, warn_deprecated_for_removal=True)
        deprecated |= {(name, p.section, p.option) for p in strict}
    assert checked == INI_FILES
    assert problems == []
    # The guide still sets these two; nova deprecated both for removal in 21.0.0 (Ussuri) and
    # still reads them in Epoxy. Any other option deprecated for removal is a finding.
    assert deprecated == DEPRECATED_BUT_IN_THE_GUIDE


def test_the_schema_check_would_catch_the_traps() -> None:
    """The check above is not vacuous: the classic mistakes fail it."""
    steps, _ = render("kvm")
    nova = one_file(steps, "controller", "/etc/nova/nova.conf").content
    schema = load_schema("epoxy", "nova.conf")
    broken = nova.replace("server_listen = $my_ip", "server_listen = #my_ip")
    assert any("server_listen" in p.message for p in check_ini(broken, schema, "nova.conf"))
    broken = re.sub(r"(\[keystone_authtoken\]\n(?:.*\n)*?)auth_url", r"\1auth_uri", nova)
    assert any(p.severity == "error" for p in check_ini(broken, schema, "nova.conf"))
    broken = nova.replace("[placement]", "[placment]")
    assert check_ini(broken, schema, "nova.conf")


# -- the other files --------------------------------------------------------------------------


def test_local_settings_is_python_with_the_guides_settings(
        rendered: tuple[dict[str, list[StepDef]], Passwords]) -> None:
    steps, passwords = rendered
    spec = one_file(steps, "controller", "/etc/openstack-dashboard/local_settings")
    code = compile(spec.content, spec.path, "exec")
    settings: dict[str, object] = {}
    exec(code, settings)  # only literals: the file imports nothing
    assert settings["OPENSTACK_HOST"] == "controller"
    assert settings["OPENSTACK_KEYSTONE_URL"] == "http://controller:5000/v3"
    assert settings["OPENSTACK_KEYSTONE_MULTIDOMAIN_SUPPORT"] is True
    assert settings["OPENSTACK_API_VERSIONS"] == {"identity": 3, "image": 2, "volume": 3}
    assert settings["OPENSTACK_KEYSTONE_DEFAULT_DOMAIN"] == "Default"
    assert settings["OPENSTACK_KEYSTONE_DEFAULT_ROLE"] == "member"
    assert settings["WEBROOT"] == "/dashboard/"
    assert settings["TIME_ZONE"] == "UTC"
    hosts = settings["ALLOWED_HOSTS"]
    assert isinstance(hosts, list) and "10.0.0.11" in hosts and "controller" in hosts
    assert settings["SESSION_ENGINE"] == "django.contrib.sessions.backends.cache"
    assert settings["CACHES"] == {"default": {
        "BACKEND": "django.core.cache.backends.memcached.PyMemcacheCache",
        "LOCATION": "controller:11211"}}
    assert settings["SECRET_KEY"] == passwords.values["horizon_secret_key"]


def _directory_blocks(conf: str) -> dict[str, str]:
    return dict(re.findall(r"<Directory ([^>]+)>(.*?)</Directory>", conf, re.S))


def test_httpd_snippets_grant_what_they_serve(
        rendered: tuple[dict[str, list[StepDef]], Passwords]) -> None:
    steps, _ = rendered
    placement = one_file(steps, "controller", "/etc/httpd/conf.d/00-placement-api.conf")
    blocks = _directory_blocks(placement.content)
    assert "Require all granted" in blocks["/usr/bin"]
    dashboard = one_file(steps, "controller", "/etc/httpd/conf.d/openstack-dashboard.conf")
    assert re.search(r"^WSGIApplicationGroup %\{GLOBAL\}$", dashboard.content, re.M)
    assert re.search(r"^WSGIScriptAlias /dashboard /usr/share/openstack-dashboard/"
                     r"openstack_dashboard/wsgi\.py$", dashboard.content, re.M)
    blocks = _directory_blocks(dashboard.content)
    for folder in ("/usr/share/openstack-dashboard/openstack_dashboard",
                   "/usr/share/openstack-dashboard/static"):
        assert "Require all granted" in blocks[folder]
    servername = one_file(steps, "controller", "/etc/httpd/conf.d/oslab-servername.conf")
    assert re.search(r"^ServerName controller$", servername.content, re.M)
    for _, spec in all_files(steps):
        if spec.path.startswith("/etc/httpd/"):
            assert spec.path.startswith("/etc/httpd/conf.d/") and spec.path.endswith(".conf")
            assert spec.content.count("<Directory") == spec.content.count("</Directory>")


def test_hosts_lists_every_node_on_every_node(
        rendered: tuple[dict[str, list[StepDef]], Passwords]) -> None:
    steps, _ = rendered
    spec = load_default()
    for node in spec.nodes:
        hosts = one_file(steps, node.name, "/etc/hosts").content
        entries = {tuple(line.split()) for line in hosts.splitlines()
                   if line and not line.startswith("#")}
        for other in spec.nodes:
            assert (str(other.address), other.name) in entries
        assert any(e[0] == "127.0.0.1" and "localhost" in e for e in entries)


def test_chrony_controller_serves_the_lab_and_others_follow_it(
        rendered: tuple[dict[str, list[StepDef]], Passwords]) -> None:
    steps, _ = rendered
    server = one_file(steps, "controller", "/etc/chrony.conf").content
    assert re.search(r"^allow 10\.0\.0\.0/24$", server, re.M)
    assert re.search(r"^pool \S+ iburst$", server, re.M)
    client = one_file(steps, "compute1", "/etc/chrony.conf").content
    assert re.findall(r"^(?:server|pool) .*$", client, re.M) == ["server controller iburst"]


def test_infrastructure_files(rendered: tuple[dict[str, list[StepDef]], Passwords]) -> None:
    steps, _ = rendered
    memcached = one_file(steps, "controller", "/etc/sysconfig/memcached").content
    assert 'OPTIONS="-l 127.0.0.1,::1,10.0.0.11"' in memcached
    etcd = one_file(steps, "controller", "/etc/etcd/etcd.conf").content
    assert 'ETCD_INITIAL_CLUSTER="controller=http://10.0.0.11:2380"' in etcd
    assert 'ETCD_LISTEN_CLIENT_URLS="http://10.0.0.11:2379"' in etcd


# -- secrets, ownership -----------------------------------------------------------------------


def test_no_password_in_a_non_secret_file(
        rendered: tuple[dict[str, list[StepDef]], Passwords]) -> None:
    steps, passwords = rendered
    assert len(passwords.values) >= 15
    for node, spec in all_files(steps):
        holds = [k for k, v in passwords.values.items() if v in spec.content]
        if not spec.secret:
            assert holds == [], f"{node}:{spec.path} is not secret but holds {holds}"
        else:
            assert spec.mode & 0o007 == 0, f"{node}:{spec.path} is world-readable"


def test_owner_group_and_mode(rendered: tuple[dict[str, list[StepDef]], Passwords]) -> None:
    steps, _ = rendered
    seen = set()
    for node, spec in all_files(steps):
        assert spec.path.startswith("/") and ".." not in spec.path
        assert spec.content.endswith("\n"), spec.path
        if spec.path in OWNERSHIP:
            seen.add(spec.path)
            assert (spec.owner, spec.group, spec.mode) == OWNERSHIP[spec.path], (
                f"{node}:{spec.path}")
    assert seen == set(OWNERSHIP)


def test_files_are_unique_per_node(rendered: tuple[dict[str, list[StepDef]], Passwords]) -> None:
    steps, _ = rendered
    paths = [(node, spec.path) for node, spec in all_files(steps)]
    assert len(paths) == len(set(paths))


# -- guarded commands are valid bash ----------------------------------------------------------


def _scripts(steps: dict[str, list[StepDef]]) -> dict[str, str]:
    scripts: dict[str, str] = {}
    for node, step, command in all_commands(steps):
        for part in ("check", "run"):
            text = getattr(command, part)
            text = PLACEHOLDER.sub(lambda m: "Dummy" + m.group(1).replace("_", ""), text)
            assert "{password:" not in text
            slug = re.sub(r"[^a-z0-9]+", "-", f"{node}-{step.name}-{command.description}")
            scripts[f"{slug[:80]}-{len(scripts)}-{part}.sh"] = text
    return scripts


def test_every_guarded_command_is_valid_bash(tmp_path: Path) -> None:
    steps, _ = render("kvm")
    scripts = _scripts(steps)
    assert len(scripts) >= 70  # every service's keystone objects are one command (oslab-identity)
    for name, text in scripts.items():
        path = tmp_path / name
        path.write_text("#!/bin/bash\n" + text + "\n")
        result = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
        assert result.returncode == 0, f"{name}: {text}\n{result.stderr}"


def test_every_guarded_command_passes_shellcheck(tmp_path: Path) -> None:
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (scripts/setup-host.sh installs it)")
    steps, _ = render("qemu")
    paths = []
    for name, text in _scripts(steps).items():
        path = tmp_path / name
        path.write_text("#!/bin/bash\n" + text + "\n")
        paths.append(str(path))
    result = subprocess.run(["shellcheck", "-s", "bash", "-f", "gcc", *paths],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_commands_are_described_and_bounded() -> None:
    steps, _ = render("kvm")
    for node, step, command in all_commands(steps):
        assert command.description and command.check and command.run, (node, step.name)
        assert 0 < command.timeout <= 1800
        waits = re.findall(r"timeout (\d+) bash -c", command.run)
        assert all(int(w) < command.timeout for w in waits), (step.name, command.run)
        client = re.compile(r"\bopenstack (?:[a-z]+ )+(?:list|show|create|add|issue)\b")
        if client.search(command.check) or client.search(command.run):
            assert command.env_file == "/root/admin-openrc", (step.name, command.description)


@pytest.mark.parametrize(("listing", "reported"), [
    # `openstack network agent list -f value -c Host -c Binary` as the client prints it
    ("neutron-openvswitch-agent controller\nneutron-dhcp-agent controller\n"
     "neutron-l3-agent controller\nneutron-metadata-agent controller\n"
     "neutron-openvswitch-agent compute1\n", True),
    ("controller neutron-openvswitch-agent\ncontroller neutron-dhcp-agent\n"   # columns swapped
     "controller neutron-l3-agent\ncontroller neutron-metadata-agent\n"
     "compute1 neutron-openvswitch-agent\n", True),
    ("neutron-openvswitch-agent controller\nneutron-dhcp-agent controller\n"   # no compute1
     "neutron-l3-agent controller\nneutron-metadata-agent controller\n"
     "neutron-metadata-agent controller\n", False),
    ("", False),
])
def test_the_neutron_agents_check_in_a_real_shell(
        rendered: tuple[dict[str, list[StepDef]], Passwords], tmp_path: Path, listing: str,
        reported: bool) -> None:
    """One `openstack` call for every agent; a stand-in client prints ``listing``."""
    steps, _ = rendered
    step = next(s for s in steps["controller"] if s.name == "neutron.agents")
    check = step.commands[0].check
    assert check.count("openstack ") == 1
    client = tmp_path / "openstack"
    (tmp_path / "listing").write_text(listing)
    client.write_text(f"#!/bin/sh\ncat {tmp_path / 'listing'}\n")
    client.chmod(0o755)
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin"}
    done = subprocess.run(["bash", "-c", check], env=env, check=False)
    assert (done.returncode == 0) is reported
