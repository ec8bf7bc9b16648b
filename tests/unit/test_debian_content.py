"""The install content for a Debian 13 lab: the same checks as for CentOS, and Debian's own.

Every oslo.config file passes the Epoxy option schema, every guarded command ``bash -n`` and
shellcheck, ``oslab plan --fresh`` and ``oslab render`` work, and the plan of the two-node
debian13 lab is golden (``tests/unit/golden/plan/debian13.txt``, regenerate with
OSLAB_REGEN_GOLDEN=1 and review). Debian's traps: debconf answers before any package, the
noVNC choice before nova-consoleproxy installs, uwsgi with one process, start timeouts that
suit TCG, the monolithic libvirtd, nova-compute.conf's virt type.
"""

from __future__ import annotations

import configparser
import hashlib
import os
import posixpath
import re
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from oslab import spec_file
from oslab.access.state import LabState
from oslab.cli import cli
from oslab.distro import Family
from oslab.install import debian
from oslab.install.confcheck import available_schemas, check_ini, format_problem, load_schema
from oslab.install.model import FileSpec, Guarded, InstallContext, StepDef
from oslab.install.services import steps_for
from oslab.install.services.layer import DEBIAN, EL, LAYERS
from oslab.spec import LabSpec

GOLDEN = Path(__file__).parent / "golden" / "plan" / "debian13.txt"
PLACEHOLDER = re.compile(r"\{password:([a-z0-9_]+)\}")
UWSGI_UNITS = {"keystone", "placement-api", "nova-api", "nova-api-metadata", "neutron-api",
               "cinder-api"}
OPENSTACK_UNITS = UWSGI_UNITS | {
    "glance-api", "nova-scheduler", "nova-conductor", "nova-novncproxy", "nova-compute",
    "neutron-rpc-server", "neutron-openvswitch-agent", "neutron-dhcp-agent",
    "neutron-metadata-agent", "neutron-l3-agent", "cinder-scheduler", "cinder-volume"}


def spec_text() -> str:
    return spec_file.default_spec_text().replace('distro = "centos-stream9"',
                                                 'distro = "debian13"')


def debian_spec() -> LabSpec:
    return spec_file.parse(spec_text(), source="debian13.toml")


def fake_password(key: str) -> str:
    return "p" + hashlib.sha256(key.encode()).hexdigest()[:20]


def plan(spec: LabSpec | None = None, virt: str = "qemu") -> dict[str, list[StepDef]]:
    spec = spec or debian_spec()
    return steps_for(InstallContext(spec=spec, password=fake_password,
                                    virt_types={n.name: virt for n in spec.nodes
                                                if n.is_compute}))


def files(steps: dict[str, list[StepDef]]) -> list[tuple[str, StepDef, FileSpec]]:
    return [(n, s, f) for n, lst in steps.items() for s in lst for f in s.files]


def commands(steps: dict[str, list[StepDef]]) -> list[tuple[str, StepDef, Guarded]]:
    return [(n, s, c) for n, lst in steps.items() for s in lst for c in s.commands]


def one_file(steps: dict[str, list[StepDef]], node: str, path: str) -> FileSpec:
    found = [f for n, _, f in files(steps) if n == node and f.path == path]
    assert len(found) == 1, (node, path, len(found))
    return found[0]


def step_of(steps: dict[str, list[StepDef]], node: str, name: str) -> StepDef:
    return next(s for s in steps[node] if s.name == name)


# -- the layer ----------------------------------------------------------------------------------


def test_both_families_name_the_same_roles() -> None:
    assert set(LAYERS) == set(Family)
    assert set(EL.packages) == set(DEBIAN.packages)
    assert set(EL.units) == set(DEBIAN.units)
    assert set(EL.paths) == set(DEBIAN.paths)


def test_a_debian_lab_uses_debian_names_only() -> None:
    steps = plan()
    packages = {p for lst in steps.values() for s in lst for p in s.packages}
    units = {u for lst in steps.values() for s in lst for u in s.services}
    assert not [p for p in packages if p.startswith("openstack-") and p not in (
        "openstack-dashboard", "openstack-dashboard-apache")]
    assert not {"httpd", "chronyd", "openvswitch", "target", "libvirtd.service"} & units
    assert not [u for u in units if u.startswith("openstack-") or u.startswith("virt")]
    assert not [f.path for _, _, f in files(steps) if f.path.startswith(("/etc/httpd/",
                                                                        "/etc/sysconfig/"))]


# -- order: debconf, then packages; services a command needs run first --------------------------


def test_debconf_answers_and_apt_lists_come_before_any_package() -> None:
    for node, lst in plan().items():
        names = [s.name for s in lst]
        first_package = next(i for i, s in enumerate(lst) if s.packages)
        assert names.index("env.apt") < first_package, node
        apt = lst[names.index("env.apt")]
        assert apt.files[0].content.endswith(debian.debconf_selections() + "\n")
        applied = apt.commands[0]
        assert "debconf-set-selections /var/lib/oslab/debconf-selections" in applied.run
        assert applied.check.startswith("cmp -s ")
        assert apt.commands[1].check == debian.stale_policy_check()


def test_novnc_is_chosen_before_nova_consoleproxy_installs() -> None:
    lst = plan()["controller"]
    names = [s.name for s in lst]
    default = step_of(plan(), "controller", "nova.console-type")
    assert default.files[0].path == "/etc/default/nova-consoleproxy"
    assert "NOVA_CONSOLE_PROXY_TYPE=novnc\n" in default.files[0].content
    installs = next(i for i, s in enumerate(lst) if "nova-consoleproxy" in s.packages)
    assert names.index("nova.console-type") < installs
    assert "nova-novncproxy" in lst[installs].services


@pytest.mark.parametrize("spec_factory", [debian_spec])
def test_ovs_vsctl_runs_only_after_openvswitch_switch_was_started(spec_factory: type) -> None:
    seen = 0
    for node, lst in plan(spec_factory()).items():
        for i, step in enumerate(lst):
            if any("ovs-vsctl" in c.check + c.run for c in step.commands):
                seen += 1
                assert "openvswitch-switch" in {u for s in lst[:i] for u in s.services}, node
    assert seen == 2


# -- speed under TCG: one worker, timeouts -----------------------------------------------------


def test_every_api_under_uwsgi_runs_one_process_and_one_thread() -> None:
    steps = plan()
    seen = set()
    for _, step, f in files(steps):
        if not f.path.endswith("-uwsgi.ini"):
            continue
        ini = configparser.ConfigParser(strict=False, interpolation=None)
        ini.read_string(f.content)
        section = ini["uwsgi"]
        assert (section["processes"], section["threads"]) == ("1", "1"), f.path
        assert section["name"] in step.services, (f.path, step.name)
        assert section["wsgi-file"].startswith("/usr/bin/")
        seen.add(section["name"])
    assert seen == UWSGI_UNITS


def test_workers_are_one_in_every_config_that_has_them() -> None:
    steps = plan()
    text = {f.path: f.content for n, _, f in files(steps) if n == "controller"}
    assert re.search(r"^\[DEFAULT\]\n(?:.*\n)*?workers = 1$", text["/etc/glance/glance-api.conf"],
                     re.M)
    nova = text["/etc/nova/nova.conf"]
    assert re.search(r"^\[conductor\]\nworkers = 1$", nova, re.M)
    assert re.search(r"^\[scheduler\]\nworkers = 1$", nova, re.M)
    neutron = text["/etc/neutron/neutron.conf"]
    for option in ("api_workers", "rpc_workers", "rpc_state_report_workers"):
        assert re.search(rf"^{option} = 1$", neutron, re.M), option
    assert "metadata_workers = 1" in text["/etc/neutron/metadata_agent.ini"]


def test_every_openstack_unit_gets_a_start_timeout_and_a_reload() -> None:
    steps = plan()
    covered = set()
    for _, lst in steps.items():
        for step in lst:
            dropins = {f.path.split("/")[4].removesuffix(".service.d"): f for f in step.files
                       if f.path.startswith("/etc/systemd/system/")
                       and f.path.endswith("/oslab-tcg.conf")}
            for unit, f in dropins.items():
                assert unit in step.services, (step.name, unit)
                assert f.content.endswith("[Service]\nTimeoutStartSec=1800\n")
            if dropins:
                reload = [c for c in step.commands if c.run == "systemctl daemon-reload"]
                assert len(reload) == 1 and all(f"{u}.service" in reload[0].check
                                                for u in dropins), step.name
                assert "TimeoutStartUSec" in reload[0].check and "30min" in reload[0].check
            covered |= set(dropins)
    assert covered == OPENSTACK_UNITS


# -- Debian's packages and paths ----------------------------------------------------------------


@pytest.mark.parametrize("virt", ["kvm", "qemu"])
def test_compute_runs_libvirtd_and_nova_compute_conf_has_the_nodes_virt_type(virt: str) -> None:
    steps = plan(virt=virt)
    compute = steps["compute1"]
    packages = step_of(steps, "compute1", "nova.compute-packages")
    assert packages.packages == ("nova-compute", "nova-compute-qemu", "open-iscsi")
    assert packages.services == ("libvirtd", "iscsid.socket")  # iscsid: os-brick attaches volumes
    conf = one_file(steps, "compute1", "/etc/nova/nova-compute.conf")
    assert re.search(rf"^\[libvirt\]\nvirt_type = {virt}$", conf.content, re.M)
    assert (conf.owner, conf.group, conf.mode) == ("root", "nova", 0o640)
    started = {u for s in compute for u in s.services}
    assert started == {"chrony", "logrotate.timer", "libvirtd", "iscsid.socket",
                       "openvswitch-switch", "nova-compute", "neutron-openvswitch-agent"}


def test_controller_services_are_debians_units() -> None:
    started = {u for s in plan()["controller"] for u in s.services}
    assert started == {
        "chrony", "logrotate.timer", "mariadb", "rabbitmq-server", "memcached", "etcd",
        "keystone", "glance-api", "placement-api", "nova-api", "nova-api-metadata",
        "nova-scheduler", "nova-conductor", "nova-novncproxy", "openvswitch-switch",
        "neutron-api", "neutron-rpc-server", "neutron-openvswitch-agent", "neutron-dhcp-agent",
        "neutron-metadata-agent", "neutron-l3-agent", "apache2", "tgt", "cinder-api",
        "cinder-scheduler", "cinder-volume"}


def test_debian_paths_of_the_infrastructure() -> None:
    steps = plan()
    cnf = one_file(steps, "controller", "/etc/mysql/mariadb.conf.d/99-openstack.cnf").content
    assert "bind-address = 10.0.0.11" in cnf  # after 50-server.cnf's 127.0.0.1
    memcached = one_file(steps, "controller", "/etc/memcached.conf").content
    assert re.search(r"^-l 127\.0\.0\.1,::1,10\.0\.0\.11$", memcached, re.M)
    assert re.search(r"^-u memcache$", memcached, re.M)
    etcd = one_file(steps, "controller", "/etc/default/etcd").content
    assert 'ETCD_LISTEN_CLIENT_URLS="http://10.0.0.11:2379"' in etcd
    chrony = one_file(steps, "compute1", "/etc/chrony/chrony.conf").content
    assert "keyfile /etc/chrony/chrony.keys" in chrony and "leapsectz" not in chrony
    assert re.findall(r"^(?:server|pool) .*$", chrony, re.M) == ["server controller iburst"]


def test_horizon_settings_come_last_and_static_files_follow_the_webroot() -> None:
    steps = plan()
    step = step_of(steps, "controller", "horizon.dashboard")
    settings = one_file(steps, "controller",
                        "/etc/openstack-dashboard/local_settings.d/_9990_oslab.py")
    assert (settings.owner, settings.group, settings.mode) == ("root", "www-data", 0o640)
    values: dict[str, object] = {}
    exec(compile(settings.content, settings.path, "exec"), values)
    assert values["WEBROOT"] == "/dashboard/"
    assert values["POLICY_FILES_PATH"] == "/etc/openstack-dashboard/policy"
    conf = one_file(steps, "controller", "/etc/apache2/conf-available/oslab-dashboard.conf")
    assert re.search(r"^WSGIScriptAlias /dashboard /usr/share/openstack-dashboard/wsgi\.py ",
                     conf.content, re.M)
    assert "Alias /dashboard/static /var/lib/openstack-dashboard/static" in conf.content
    runs = [c.run for c in step.commands]
    assert runs[0] == "a2dissite -q openstack-dashboard-alias-only"
    assert runs[1] == "a2dissite -q default-ssl"
    assert runs[2].startswith("sed -i -e '1i <IfModule mod_ssl.c>'")  # test_node_lifetime
    assert runs[3] == "a2enconf -q oslab-dashboard"
    assert "manage.py compress --force" in runs[4]
    assert step.services == ("apache2", "memcached")


def test_cinder_uses_tgt_as_cinder_volume_ships_it() -> None:
    steps = plan()
    lvm = step_of(steps, "controller", "cinder.lvm")
    assert lvm.packages == ("lvm2", "thin-provisioning-tools", "tgt")
    assert lvm.services == ("tgt",)
    conf = one_file(steps, "controller", "/etc/cinder/cinder.conf").content
    assert re.search(r"^target_helper = tgtadm$", conf, re.M)
    spec = debian_spec()
    no_disk = replace(spec, nodes=tuple(replace(n, extra_disks_gib=()) if not n.is_compute
                                        else n for n in spec.nodes))
    cinder = step_of(plan(no_disk), "controller", "cinder.controller")
    assert "cinder-volume" not in cinder.packages + cinder.services


# -- the same checks as CentOS: schema, bash, shellcheck ---------------------------------------


def test_every_ini_file_passes_the_epoxy_schema() -> None:
    steps = plan()
    schemas = set(available_schemas("epoxy"))
    problems = []
    checked = set()
    for node, _, f in files(steps):
        name = posixpath.basename(f.path)
        if name not in schemas:
            continue
        checked.add((node, f.path))
        problems += [format_problem(p) for p in check_ini(f.content, load_schema("epoxy", name),
                                                          f"{node}:{f.path}")]
    assert problems == []
    assert len(checked) == 14
    assert ("compute1", "/etc/nova/nova.conf") in checked


def _scripts(steps: dict[str, list[StepDef]]) -> dict[str, str]:
    out = {}
    for i, (node, step, command) in enumerate(commands(steps)):
        for part in ("check", "run"):
            text = PLACEHOLDER.sub(lambda m: "Dummy" + m.group(1).replace("_", ""),
                                   getattr(command, part))
            out[f"{node}-{step.name}-{i}-{part}.sh"] = text
    return out


def test_every_guarded_command_is_valid_bash_and_passes_shellcheck(tmp_path: Path) -> None:
    scripts = _scripts(plan())
    assert len(scripts) >= 90  # every service's keystone objects are one command (oslab-identity)
    paths = []
    for name, text in scripts.items():
        path = tmp_path / name
        path.write_text("#!/bin/bash\n" + text + "\n")
        result = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
        assert result.returncode == 0, f"{name}: {text}\n{result.stderr}"
        paths.append(str(path))
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (scripts/setup-host.sh installs it)")
    result = subprocess.run(["shellcheck", "-s", "bash", "-f", "gcc", *paths],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


# -- the CLI: plan (golden) and render ---------------------------------------------------------


def test_debian13_lab_fresh_plan_is_golden(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    lab = tmp_path / "debian13.toml"
    lab.write_text(spec_text())
    result = CliRunner().invoke(cli, ["-f", str(lab), "plan", "--fresh", "--virt-type", "qemu"])
    assert result.exception is None, result.output
    text = result.output
    for pw in LabState(debian_spec().name).known_passwords():
        assert pw not in text
    assert "dnf" not in text and "rpm" not in text
    assert "apt-get -o DPkg::Lock::Timeout=600" in text
    if os.environ.get("OSLAB_REGEN_GOLDEN") == "1":
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text(), (
        "`oslab -f <debian13 lab> plan --fresh --virt-type qemu` differs from "
        "tests/unit/golden/plan/debian13.txt: run with OSLAB_REGEN_GOLDEN=1 and review the diff")


def test_render_writes_every_file_and_no_kickstart(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    lab = tmp_path / "debian13.toml"
    lab.write_text(spec_text())
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["-f", str(lab), "render", "--out", str(out),
                                      "--virt-type", "qemu"])
    assert result.exception is None, result.output
    assert not list(out.rglob("ks.cfg"))
    assert (out / "controller/etc/keystone/keystone-uwsgi.ini").is_file()
    assert (out / "compute1/etc/nova/nova-compute.conf").is_file()
    secret = out / "controller/etc/keystone/keystone.conf"
    assert secret.stat().st_mode & 0o777 == 0o600
    written = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    steps = plan(debian_spec())
    assert written == {f"{n}{f.path}" for n, _, f in files(steps)}


def test_cinder_lvm_uses_lvmdevices_only_on_el() -> None:
    """Debian 13's lvm2 ships no lvmdevices command (the devices file is off there): on a real
    node the step stopped with `lvmdevices: command not found`."""
    from tests.unit.test_services import plan as el_plan

    def lvm_runs(steps: dict[str, list[StepDef]]) -> list[str]:
        step = next(s for s in steps["controller"] if s.name == "cinder.lvm")
        return [c.run for c in step.commands]

    debian_runs = lvm_runs(plan())
    assert not [r for r in debian_runs if "lvmdevices" in r]
    assert any("vgcreate cinder-volumes /dev/vdb" in r for r in debian_runs)
    assert any("lvmdevices --adddev /dev/vdb" in r for r in lvm_runs(el_plan()))
