"""`oslab verify`: parsers on recorded client output, rows and rendering, the resource ledger
and its teardown order, openrc files and the end-of-`up` summary (no lab needed)."""

from __future__ import annotations

import io
import ipaddress
import json
import re
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from oslab import spec_file, summary
from oslab.access.ssh import Result
from oslab.access.state import LabState
from oslab.errors import OslabError
from oslab.install import openrc, verify
from oslab.install.boot import BOOT_STATE, BOOT_WAIT
from oslab.install.services.layer import DEBIAN, EL, Layer
from oslab.install.verify import Status, connections, parsers
from oslab.install.verify.checklist import GROUPS, PREFIX, selected_groups
from oslab.install.verify.cloud import allocation_pool, self_service_cidr
from oslab.install.verify.horizon import Page
from oslab.install.verify.runner import CLIENT_DIR, VOLUME_BUSY, client_script, osc
from oslab.spec import Scope

REC = Path(__file__).resolve().parent / "recorded"


def rec(name: str) -> str:
    return (REC / name).read_text()


# -- parsers ----------------------------------------------------------------------------------


def test_compute_services() -> None:
    good = parsers.parse_compute_services(rec("compute_service_list.json"), EL)
    assert good.ok and "nova-compute on compute1" in good.details
    bad = parsers.parse_compute_services(rec("compute_service_list_down.json"), EL)
    assert not bad.ok
    assert bad.details == "nova-compute on compute1 is down"
    assert "compute1" in bad.hint and "nova" in bad.hint


@pytest.mark.parametrize(("layer", "hints"), [
    (EL, ("journalctl -u openstack-nova-compute on compute1;",
          "journalctl -u openstack-cinder-volume -u openstack-cinder-scheduler;",
          "systemctl status httpd on", "/var/log/httpd/error_log on",
          "/etc/openstack-dashboard/local_settings (", "(systemctl status httpd)")),
    # the e2e lab's broken nova-compute was hinted as openstack-nova-compute on Debian
    (DEBIAN, ("journalctl -u nova-compute on compute1;",
              "journalctl -u cinder-volume -u cinder-scheduler;",
              "systemctl status apache2 on", "/var/log/apache2/error.log on",
              "/etc/openstack-dashboard/local_settings.d/_9990_oslab.py (",
              "(systemctl status keystone)")),
])
def test_hints_name_the_distros_units_and_paths(layer: Layer, hints: tuple[str, ...]) -> None:
    no_keystone = Result("openstack token issue", 1, "", "Failed to discover available "
                         "identity versions when contacting http://controller:5000/v3.")
    got = [parsers.parse_compute_services(rec("compute_service_list_down.json"), layer).hint,
           parsers.parse_volume_services(rec("volume_service_list_down.json"), layer).hint,
           parsers.parse_dashboard(0, "Connection refused", layer).hint,
           parsers.parse_dashboard(500, "", layer).hint,
           parsers.parse_dashboard(200, "<html>It works!</html>", layer).hint,
           parsers.explain(no_keystone, "token issue", layer).hint]
    for hint, want in zip(got, hints, strict=True):
        assert want in hint


@pytest.mark.parametrize(("layer", "binary", "unit"), [
    (EL, "nova-conductor", "openstack-nova-conductor"),
    (EL, "nova-scheduler", "openstack-nova-scheduler"),
    (EL, "neutron-server", "neutron-server"),
    (DEBIAN, "nova-conductor", "nova-conductor"),
    (DEBIAN, "cinder-scheduler", "cinder-scheduler"),
    (DEBIAN, "nova-api", "nova-api"),  # not nova-api-metadata, which only ends like it
    (EL, "no-such-binary", "no-such-binary"),
])
def test_unit_of(layer: Layer, binary: str, unit: str) -> None:
    assert layer.unit_of(binary) == unit


def test_compute_services_missing_binary() -> None:
    rows = [r for r in json.loads(rec("compute_service_list.json"))
            if r["Binary"] != "nova-compute"]
    v = parsers.parse_compute_services(json.dumps(rows), EL)
    assert not v.ok and "no nova-compute registered" in v.details


def test_network_agents() -> None:
    good = parsers.parse_network_agents(rec("network_agent_list.json"))
    assert good.ok and good.details == "5 agents alive"
    bad = parsers.parse_network_agents(rec("network_agent_list_dead.json"))
    assert not bad.ok
    assert bad.details == "not alive: Open vSwitch agent on compute1"
    assert "neutron-openvswitch-agent" in bad.hint
    assert not parsers.parse_network_agents("[]").ok


def test_volume_services() -> None:
    assert parsers.parse_volume_services(rec("volume_service_list.json"), EL).ok
    bad = parsers.parse_volume_services(rec("volume_service_list_down.json"), EL)
    assert not bad.ok and bad.details == "cinder-volume on controller@lvm is down"
    assert "cinder-volumes" in bad.hint


def test_upgrade_check() -> None:
    good = parsers.parse_upgrade_check(rec("upgrade_check_success.txt"), 0)
    assert good.ok and good.details == "3 checks"
    bad = parsers.parse_upgrade_check(rec("upgrade_check_failure.txt"), 2,
                                     "nova-status upgrade check")
    assert not bad.ok and bad.details == "Cells v2: Failure"
    assert "nova-status upgrade check" in bad.hint
    missing = parsers.parse_upgrade_check("", 127, "nova-status upgrade check")
    assert not missing.ok and "exited 127" in missing.details


def test_catalog_and_endpoints_complete() -> None:
    for parse, name in ((parsers.parse_catalog, "catalog_list.json"),
                        (parsers.parse_endpoints, "endpoint_list.json")):
        v = parse(rec(name))
        assert v.ok, v
        assert v.details == "6 services with public/internal/admin endpoints"


def test_catalog_and_endpoints_partial() -> None:
    for parse, name in ((parsers.parse_catalog, "catalog_list_partial.json"),
                        (parsers.parse_endpoints, "endpoint_list_partial.json")):
        v = parse(rec(name))
        assert not v.ok
        assert v.details == ("network (neutron) is missing; volumev3 (cinder) has no admin "
                             "endpoint")
        assert "cinder, neutron" in v.hint and "endpoint create" in v.hint


def test_catalog_expected_is_a_parameter() -> None:
    v = parsers.parse_catalog(rec("catalog_list.json"), {"object-store": "swift"})
    assert not v.ok and v.details == "object-store (swift) is missing"


def test_token() -> None:
    assert parsers.parse_token(rec("token_issue.json")).ok
    assert not parsers.parse_token("{}").ok


def test_not_json() -> None:
    with pytest.raises(verify.CheckFailed, match="not JSON: Traceback"):
        parsers.parse_compute_services("Traceback (most recent call last):\n...", EL)


def test_server() -> None:
    ok = parsers.parse_server(rec("server_show_active.json"))
    assert (ok.status, ok.host, ok.fixed_ips) == ("ACTIVE", "compute1", ["172.16.1.23"])
    err = parsers.parse_server(rec("server_show_error.json"))
    assert err.status == "ERROR" and err.host == ""
    assert err.fault == "500 No valid host was found. There are not enough hosts available."


def test_volume_attachment() -> None:
    sid = parsers.parse_server(rec("server_show_active.json"))
    server_id = json.loads(rec("server_show_active.json"))["id"]
    assert sid.status == "ACTIVE"
    assert parsers.parse_volume_attachment(rec("volume_show_in_use.json"), server_id) == "/dev/vdb"
    assert parsers.parse_volume_attachment(rec("volume_show_available.json"), server_id) is None
    assert parsers.field_of(rec("volume_show_in_use.json"), "status", "v") == "in-use"


def test_image_and_fip_fields() -> None:
    assert parsers.field_of(rec("image_show_active.json"), "status", "i") == "active"
    assert parsers.field_of(rec("image_show_queued.json"), "status", "i") == "queued"
    assert parsers.field_of(rec("floating_ip_create.json"), "floating_ip_address",
                           "f") == "203.0.113.187"
    with pytest.raises(verify.CheckFailed, match="no 'nope'"):
        parsers.field_of(rec("image_show_active.json"), "nope", "image show")


def test_console() -> None:
    login = rec("console_log_login.txt")
    assert parsers.parse_console(login).ok
    keys = parsers.console_host_keys(login)
    assert len(keys) == 1 and keys[0].startswith("ssh-ed25519 ")
    booting = parsers.parse_console(rec("console_log_booting.txt"))
    assert not booting.ok and "last lines:" in booting.details
    assert parsers.console_host_keys(rec("console_log_booting.txt")) == []
    assert parsers.parse_console("").details.endswith("the console log is empty")


def test_host_keys_prefer_ed25519() -> None:
    text = ("-----BEGIN SSH HOST KEY KEYS-----\nssh-rsa AAAA root@x\n"
            "ecdsa-sha2-nistp256 BBBB root@x\nssh-ed25519 CCCC root@x\n"
            "-----END SSH HOST KEY KEYS-----\n")
    assert [k.split()[0] for k in parsers.console_host_keys(text)] == [
        "ssh-ed25519", "ecdsa-sha2-nistp256", "ssh-rsa"]


def test_partitions() -> None:
    assert parsers.parse_partitions(rec("proc_partitions_vdb.txt"), "/dev/vdb").ok
    bad = parsers.parse_partitions(rec("proc_partitions.txt"), "/dev/vdb")
    assert not bad.ok and "vdb not in /proc/partitions" in bad.details


def test_dashboard() -> None:
    assert parsers.parse_dashboard(200, rec("horizon_login.html"), EL).ok
    assert parsers.parse_dashboard(200, rec("horizon_login_debian13.html"), DEBIAN).ok
    assert not parsers.parse_dashboard(200, "<html>It works!</html>", EL).ok
    v = parsers.parse_dashboard(500, "", EL)
    assert not v.ok and "error_log" in v.hint
    assert "nothing answers" in parsers.parse_dashboard(0, "Connection refused", EL).details


@pytest.mark.parametrize(("name", "details", "hint"), [
    ("error_auth_401.txt", "authentication failed", "oslab openrc admin --print"),
    ("error_keystone_down.txt", "cannot reach keystone", "systemctl status httpd"),
    ("error_service_down.txt", "cannot reach http://127.0.0.1:8774/v2.1/os-services",
     "is that service running"),
    ("error_endpoint_not_found.txt", "public endpoint for network service in RegionOne "
     "region not found", "not in the catalog"),
])
def test_explain_recorded_errors(name: str, details: str, hint: str) -> None:
    failure = parsers.explain(Result("openstack x", 1, "", rec(name)), "x", EL)
    assert details in failure.details
    assert hint in failure.hint


# -- pure helpers --------------------------------------------------------------------------------


def test_allocation_pool_avoids_gateway() -> None:
    net = ipaddress.IPv4Network("203.0.113.0/24")
    start, end = allocation_pool(net, ipaddress.IPv4Address("203.0.113.1"))
    assert (str(start), str(end)) == ("203.0.113.127", "203.0.113.254")
    small = ipaddress.IPv4Network("10.9.1.0/29")
    start, end = allocation_pool(small, ipaddress.IPv4Address("10.9.1.1"))
    assert ipaddress.IPv4Address("10.9.1.1") < start <= end < small.broadcast_address
    high_gw = allocation_pool(net, ipaddress.IPv4Address("203.0.113.200"))
    assert str(high_gw[0]) == "203.0.113.201"


def test_self_service_cidr_avoids_lab_networks() -> None:
    spec = spec_file.load_default()
    assert str(self_service_cidr(spec)) == "172.16.1.0/24"
    text = spec_file.default_spec_text().replace('cidr = "203.0.113.0/24"',
                                                 'cidr = "172.16.0.0/16"')
    assert str(self_service_cidr(spec_file.parse(text))) == "192.168.111.0/24"


def test_osc_command() -> None:
    assert osc("demo", "server list -f json") == \
        ". /root/demo-openrc && openstack server list -f json"


def test_local_runner(tmp_path: Path) -> None:
    r = connections.LocalRunner(cwd=tmp_path).run("echo hi; echo oops >&2; exit 3", timeout=10,
                                             secrets=["oops"])
    assert (r.returncode, r.stdout, r.stderr) == (3, "hi\n", "***\n")
    with pytest.raises(OslabError, match="timed out"):
        connections.LocalRunner().run("sleep 5", timeout=0.2)


def test_local_runner_takes_stdin_and_logs_as_a_session_does() -> None:
    log = io.StringIO()
    r = connections.LocalRunner().run("cat; echo oops >&2", timeout=10, stdin="hi\n",
                                 secrets=["oops"], log=log)
    assert (r.command, r.stdout, r.stderr) == ("cat; echo *** >&2", "hi\n", "***\n")
    assert log.getvalue() == "$ cat; echo *** >&2\nhi\n! ***\n# exit 0\n"


# -- a whole run against a fake controller ------------------------------------------------------

IMAGE = "6c1a4a0e-7f3b-4d7e-9a51-2f0c2b1d9e11"
SERVER = "2d7c8f0e-9b1a-4c3d-8e5f-a1b2c3d4e5f6"
VOLUME = "9e8d7c6b-5a49-4382-a1b0-c9d8e7f6a5b4"
FIP_ID = "f1e2d3c4-b5a6-4978-8695-a4b3c2d1e0f9"


@dataclass
class FakeCloud:
    """Answers the controller's commands from recorded output; remembers what it was asked."""

    server_file: str = "server_show_active.json"
    auth_fails: bool = False
    commands: list[str] = field(default_factory=list)
    puts: dict[str, bytes] = field(default_factory=dict)
    volume: str = "available"

    def run(self, command: str, *, timeout: float, secrets: object = (),
            log: object = None) -> Result:
        self.commands.append(command)
        out, rc, err = self.answer(command)
        return Result(command, rc, out, err)

    def put(self, path: str, data: bytes, *, timeout: float) -> None:
        self.puts[path] = data

    def answer(self, c: str) -> tuple[str, int, str]:
        if self.auth_fails and "openstack" in c:
            return "", 1, rec("error_auth_401.txt")
        plain: list[tuple[str, Callable[[], str]]] = [
            ("token issue", lambda: rec("token_issue.json")),
            ("catalog list", lambda: rec("catalog_list.json")),
            ("endpoint list", lambda: rec("endpoint_list.json")),
            ("compute service list", lambda: rec("compute_service_list.json")),
            ("network agent list", lambda: rec("network_agent_list.json")),
            ("volume service list", lambda: rec("volume_service_list.json")),
            ("upgrade check", lambda: rec("upgrade_check_success.txt")),
            ("image create", lambda: json.dumps({"id": IMAGE})),
            ("image show", lambda: rec("image_show_active.json")),
            ("network list --provider", lambda: rec("network_list_physnet_empty.json")),
            ("network create --share", lambda: json.dumps({"id": "net-provider"})),
            ("subnet create --network net-provider",
             lambda: json.dumps({"id": "subnet-provider"})),
            ("network create oslab-verify-selfservice", lambda: json.dumps({"id": "net-self"})),
            ("subnet create --network net-self", lambda: json.dumps({"id": "subnet-self"})),
            ("router create", lambda: json.dumps({"id": "router-1"})),
            ("security group create", lambda: json.dumps({"id": "sg-1"})),
            ("keypair create", lambda: json.dumps({"name": "oslab-verify-key",
                                                   "fingerprint": "aa:bb"})),
            ("server create", lambda: json.dumps({"id": SERVER})),
            ("server show", lambda: rec(self.server_file)),
            ("console log show", lambda: rec("console_log_login.txt")),
            ("floating ip create", lambda: rec("floating_ip_create.json")),
            ("volume create", lambda: json.dumps({"id": VOLUME})),
            ("volume show", lambda: rec(f"volume_show_{self.volume.replace('-', '_')}.json")),
            ("tail -n 15 /var/log/nova", lambda: "ERROR nova.compute.manager boom\n"),
            ("tail -n 5 /var/log/httpd/error_log",
             lambda: "[wsgi:error] Traceback\n[wsgi:error] KeyError: 'region'\n"),
        ]
        if "flavor show" in c:
            return "", 1, "No Flavor found for m1.nano"
        if "volume show" in c and c.endswith("-f value -c status"):
            return f"{self.volume}\n", 0, ""
        if "server add volume" in c:
            self.volume = "in-use"
        if "server remove volume" in c:
            self.volume = "available"
        for key, make in plain:
            if key in c:
                return make(), 0, ""
        return "", 0, ""


@dataclass
class FakeGuest:
    cloud: FakeCloud

    def run(self, command: str, *, timeout: float, secrets: object = ()) -> Result:
        name = "proc_partitions_vdb.txt" if self.cloud.volume == "in-use" else \
            "proc_partitions.txt"
        return Result(command, 0, rec(name), "")


DEMO_PASSWORD = "DemoPassw0rd"


@dataclass
class FakeWeb:
    """Horizon as recorded from a real one (tests/unit/recorded/horizon_*): the login page; a
    POST with the demo password lands on the project page, any other gets the login page with
    its alert; the instances page (``instances_status``: an error instead) once logged in."""

    instances_status: int = 200
    logged_in: bool = False
    honour_next: bool = True  # a login goes on to the form's ``next`` (Django's LoginView)
    posted: list[dict[str, str]] = field(default_factory=list)
    got: list[str] = field(default_factory=list)

    def get(self, url: str, timeout: float) -> Page:
        self.got.append(url)
        if "/auth/login/" in url or not self.logged_in:
            return Page(200, rec("horizon_login_debian13.html"), url)
        return self.instances(url)

    def instances(self, url: str) -> Page:
        if self.instances_status != 200:
            return Page(self.instances_status, "<title>Server Error (500)</title>", url)
        return Page(200, rec("horizon_instances_debian13.html"), url)

    def post(self, url: str, fields: Mapping[str, str], timeout: float) -> Page:
        self.posted.append(dict(fields))
        if fields.get("password") == DEMO_PASSWORD and fields.get("username") == "demo":
            self.logged_in = True
            if self.honour_next and fields.get("next", "").endswith("/project/instances/"):
                return self.instances(url.replace("auth/login/", "project/instances/"))
            return Page(200, rec("horizon_project_debian13.html"),
                        url.replace("auth/login/", "project/"))
        return Page(200, rec("horizon_login_refused_debian13.html"), url)


def make_lab(cloud: FakeCloud, tmp_path: Path, *, http_status: int = 200,
             ledger: bool = True, web: FakeWeb | None = None) -> verify.Lab:
    image = tmp_path / "cirros.img"
    image.write_bytes(b"QFI\xfb fake")
    clock = [0.0]

    def sleep(s: float) -> None:
        clock[0] += s

    host = FakeCloud()
    return verify.Lab(
        spec=spec_file.load_default(), controller=cloud, computes={"compute1": cloud},
        host=host, guest=lambda address, key: FakeGuest(cloud), image=lambda: image,
        public_key="ssh-ed25519 AAAAC3Nza oslab-oslab",
        http=lambda url, t: (http_status, rec("horizon_login.html")),
        web=lambda: web or FakeWeb(), demo_password=DEMO_PASSWORD,
        ledger_path=tmp_path / "verify-resources.json" if ledger else None,
        timeouts=verify.Timeouts(poll=1.0), clock=lambda: clock[0], sleep=sleep)


# newest first: what depends on a resource goes before it
EXPECTED_TEARDOWN = [
    f"volume delete {VOLUME}",
    f"floating ip delete {FIP_ID}",
    f"server delete --wait {SERVER}",
    "flavor delete m1.nano",
    "keypair delete oslab-verify-key",
    "security group delete sg-1",
    "router remove subnet router-1 subnet-self",
    "router unset --external-gateway router-1",
    "router delete router-1",
    "subnet delete subnet-self",
    "network delete net-self",
    "subnet delete subnet-provider",
    "network delete net-provider",
    f"image delete {IMAGE}",
]


def deletes(commands: list[str]) -> list[str]:
    out = []
    for c in commands:
        m = re.search(r"openstack ((?:\S+ )*?(?:delete|unset|remove) .*)$", c)
        if m:
            out.append(m.group(1))
    return out


def test_full_run_passes_and_cleans_up_in_reverse(tmp_path: Path) -> None:
    cloud = FakeCloud()
    report = verify.Verifier(make_lab(cloud, tmp_path)).run()
    assert report.ok, summary.render_table(report)
    names = [r.name for r in report.rows]
    assert names == [
        "identity: admin token", "identity: demo token", "catalog", "endpoints",
        "compute services", "network agents", "volume services", "nova-status upgrade check",
        "placement-status upgrade check", "image: cirros active",
        "network: provider (flat, physnet provider)",
        "network: self-service, router, security group, keypair", "instance: boot cirros",
        "instance: console login prompt", "instance: floating IP, ping, SSH",
        "volume: attach, see, detach", "dashboard", "dashboard: demo logs in, the instances page",
        "cleanup"]
    teardown = deletes(cloud.commands)
    # the check detached the volume itself, so the teardown starts with the volume
    assert teardown[0] == f"server remove volume {SERVER} {VOLUME}"
    assert teardown[1:] == EXPECTED_TEARDOWN
    assert not (tmp_path / "verify-resources.json").exists()
    provider = next(c for c in cloud.commands if "subnet create --network net-provider" in c)
    assert "--gateway 203.0.113.1 " in provider
    assert "--allocation-pool start=203.0.113.127,end=203.0.113.254" in provider
    assert cloud.puts["/var/tmp/oslab-verify-cirros.img"].startswith(b"QFI")
    assert cloud.puts["/var/tmp/oslab-verify-key.pub"] == b"ssh-ed25519 AAAAC3Nza oslab-oslab\n"
    assert any(". /root/demo-openrc && openstack server create" in c for c in cloud.commands)
    assert report.rows[-1].details == "14 resources removed"


# ledger entries verify never writes: each would put its delete on the controller's shell
HOSTILE_LEDGERS = [
    [{"kind": "server", "ref": "x", "who": "demo", "delete": "server delete x; reboot"}],
    [{"kind": "server", "ref": "x", "who": "demo", "delete": "server delete $(reboot)"}],
    [{"kind": "server", "ref": "x", "who": "demo", "delete": "server delete x\nreboot"}],
    [{"kind": "server", "ref": "x", "who": "root", "delete": "server delete x"}],
    [{"kind": "server", "ref": "x", "who": "demo", "delete": "server delete x", "more": ""}],
    [{"kind": "server", "ref": "x y", "who": "demo", "delete": "server delete x"}],
    {"kind": "server"},
    [["server"]],
]


@pytest.mark.parametrize("entries", HOSTILE_LEDGERS)
def test_a_ledger_verify_did_not_write_is_refused_not_run(tmp_path: Path,
                                                          entries: object) -> None:
    (tmp_path / "verify-resources.json").write_text(json.dumps(entries))
    cloud = FakeCloud()
    with pytest.raises(OslabError) as err:
        verify.Verifier(make_lab(cloud, tmp_path)).run(only=("identity",))
    assert err.value.message.startswith(
        f"the verify ledger {tmp_path}/verify-resources.json cannot be read (not a list of "
        "the resources verify creates): ")
    assert "reboot" not in (err.value.hint or "")  # never offered to be run by hand either
    assert not deletes(cloud.commands)
    assert not any("reboot" in c for c in cloud.commands)


def test_keep_leaves_resources_and_the_next_run_sweeps_them(tmp_path: Path) -> None:
    cloud = FakeCloud()
    report = verify.Verifier(make_lab(cloud, tmp_path), keep=True).run()
    assert report.ok
    assert report.rows[-1].status is Status.SKIP and "--keep" in report.rows[-1].details
    assert deletes(cloud.commands) == [f"server remove volume {SERVER} {VOLUME}"]
    assert len(report.kept) == 14 and report.kept[0] == f"volume {VOLUME}"
    ledger = json.loads((tmp_path / "verify-resources.json").read_text())
    assert ledger[0] == {"kind": "image", "ref": IMAGE, "who": "admin",
                         "delete": f"image delete {IMAGE}"}
    again = FakeCloud()
    said: list[str] = []
    lab2 = replace(make_lab(again, tmp_path), say=said.append)
    report2 = verify.Verifier(lab2).run(only=("identity",))
    assert report2.rows[0].name == "cleanup of an earlier run"
    assert report2.rows[0].details == "14 resources removed"
    assert deletes(again.commands) == EXPECTED_TEARDOWN
    # each delete is said as it starts (under TCG the sweep took 25 min)
    progress = [line for line in said if line.startswith("verify: deleting ")]
    assert progress[0] == f"verify: deleting volume {VOLUME} (1 of 14)"
    assert len(progress) == 14 and progress[-1].endswith("(14 of 14)")
    assert "verify: an earlier run left 14 resources in the cloud: deleting them first" in said


@dataclass
class DetachingCloud(FakeCloud):
    """A volume that detaches slowly (``detaching`` for ``polls`` looks after the detach), or
    never (``stuck``: its server was deleted while it detached), and that cinder will not
    delete while it is attaching, detaching or in use."""

    volume: str = "in-use"
    polls: int = 3
    stuck: bool = False

    def answer(self, c: str) -> tuple[str, int, str]:
        if "server remove volume" in c and self.volume != "in-use":
            # what nova said on the e2e lab to a volume a stopped run left attaching
            return "", 1, ("Invalid volume: Invalid input received: Invalid volume: Unable to "
                           "detach volume. Volume status must be 'in-use' and attach_status "
                           "must be 'attached' to detach. (HTTP 400)")
        if "server remove volume" in c:
            self.volume = "detaching"
            return "", 0, ""
        if "volume show" in c and c.endswith("-c status") and self.volume == "detaching":
            if self.polls == 0 and not self.stuck:
                self.volume = "available"
            self.polls -= 1
        if "volume delete" in c and self.volume in VOLUME_BUSY:
            return "", 1, ("Invalid volume: Volume status must be available or error or "
                           "error_restoring or error_extending or error_managing and must not "
                           "be migrating, attached, belong to a group, have snapshots, awaiting "
                           "a transfer, or be disassociated from snapshots after volume "
                           "transfer. (HTTP 400)")
        if "volume set --state available --detached" in c:
            self.volume = "available"
        return super().answer(c)


def left_attached(tmp_path: Path) -> None:
    """The ledger of a run that stopped with its volume attached (creation order)."""
    (tmp_path / "verify-resources.json").write_text(json.dumps([
        {"kind": "volume", "ref": VOLUME, "who": "demo", "delete": f"volume delete {VOLUME}"},
        {"kind": "attachment", "ref": VOLUME, "who": "demo",
         "delete": f"server remove volume {SERVER} {VOLUME}"}]))


GOOD = json.dumps([{"kind": "image", "ref": IMAGE, "who": "admin",
                    "delete": f"image delete {IMAGE}"}])
DAMAGED_LEDGERS = [
    # what the file holds, why it cannot be read, what the hint says it may name
    (GOOD[:-1] + f', {{"kind": "server", "ref": "{SERVER}", "who": "de', "not JSON: ",
     f"it may name: image {IMAGE} (`openstack image delete {IMAGE}` as admin), server "
     f"{SERVER}; delete those still in the cloud"),
    (json.dumps([{"kind": "volume", "ref": VOLUME}]),
     "not a list of the resources verify creates",
     f"it may name: volume {VOLUME}; delete those"),
    (GOOD[1:-1], "not a list of the resources verify creates",  # an object, not a list
     f"it may name: image {IMAGE} (`openstack image delete {IMAGE}` as admin); delete"),
    ("\udcff\x00 garbage", "not JSON: ", "it names no resource oslab can read; look for "
     "verify's in the cloud (named oslab-verify-*: `openstack server list`"),
]


@pytest.mark.parametrize(("text", "reason", "hint"), DAMAGED_LEDGERS,
                         ids=["truncated", "entry-without-fields", "not-a-list", "garbage"])
def test_a_damaged_ledger_stops_the_run_and_says_what_it_may_name(
        tmp_path: Path, text: str, reason: str, hint: str) -> None:
    """Not an empty list, which forgot the resources of the run that wrote it: the run stops
    before it makes anything (or writes over the file), naming the file and what it may hold."""
    path = tmp_path / "verify-resources.json"
    data = text.encode(errors="surrogateescape")
    path.write_bytes(data)
    cloud = FakeCloud()
    with pytest.raises(OslabError) as info:
        verify.Verifier(make_lab(cloud, tmp_path)).run()
    assert info.value.message.startswith(f"the verify ledger {path} cannot be read ({reason}")
    assert info.value.message.endswith("may still be in the cloud, and this run would forget "
                                       "them")
    assert info.value.hint is not None and info.value.hint.startswith(hint)
    assert info.value.hint.endswith(f"then remove {path} and run `oslab verify` again")
    assert cloud.commands == [] and path.read_bytes() == data


@pytest.mark.parametrize(("volume", "stuck", "polls", "reset"), [
    ("in-use", False, 4, False),  # detached after a few looks
    ("in-use", True, 181, True),  # detaching for good: waited its 600 s, then reset
    ("attaching", False, 0, True),  # the detach refused: nothing to wait for, reset at once
])
def test_a_volume_is_deleted_after_its_detach_or_reset_when_it_stays_busy(
        tmp_path: Path, volume: str, stuck: bool, polls: int, reset: bool) -> None:
    left_attached(tmp_path)
    cloud = DetachingCloud(volume=volume, stuck=stuck)
    report = verify.Verifier(make_lab(cloud, tmp_path)).run(only=("identity",))
    assert report.rows[0].name == "cleanup of an earlier run"
    assert report.rows[0].status is Status.PASS, report.rows[0].details
    done = [c.split("openstack ")[1] for c in cloud.commands if "openstack volume " in c or
            "openstack server remove" in c]
    # the delete waits for the detach, instead of failing on a detaching volume
    waited = [f"volume show {VOLUME} -f value -c status"] * polls
    resetting = [f"volume set --state available --detached {VOLUME}",
                 f"volume delete {VOLUME}"] if reset else []
    assert done == [f"server remove volume {SERVER} {VOLUME}", *waited,
                    f"volume delete {VOLUME}", *resetting]
    assert all(". /root/admin-openrc" in c for c in cloud.commands if "--detached" in c)


@dataclass
class UndetachedCloud(FakeCloud):
    """nova's detach fails (the e2e lab: cinder refused nova's token, HTTP 409): the volume
    stays in use and nova-compute logs the error among its minutely warnings."""

    def answer(self, c: str) -> tuple[str, int, str]:
        if "server remove volume" in c:
            return "", 0, ""
        if c.startswith("grep -E ' (ERROR|CRITICAL) "):
            return ("2026-12-02 14:37:53.535 711 ERROR nova.volume.cinder [None req-1] Delete "
                    "attachment failed: ConflictNovaUsingAttachment (HTTP 409)\n"), 0, ""
        return super().answer(c)


def test_a_volume_that_does_not_detach_shows_nova_computes_errors(tmp_path: Path) -> None:
    cloud = UndetachedCloud()
    report = verify.Verifier(make_lab(cloud, tmp_path)).run()
    row = next(r for r in report.rows if r.name == "volume: attach, see, detach")
    assert row.status is Status.FAIL
    assert row.details.startswith("volume still in-use (want available) after ")
    # from the server's own host, not every compute node's whole log tail
    assert row.details.endswith("\nerrors in nova-compute.log on compute1:\n  | 2026-12-02 "
                                "14:37:53.535 711 ERROR nova.volume.cinder [None req-1] Delete "
                                "attachment failed: ConflictNovaUsingAttachment (HTTP 409)")
    assert "nova-compute's errors above" in row.hint


def test_server_error_shows_fault_and_compute_log(tmp_path: Path) -> None:
    cloud = FakeCloud(server_file="server_show_error.json")
    report = verify.Verifier(make_lab(cloud, tmp_path)).run()
    assert not report.ok
    row = next(r for r in report.rows if r.name == "instance: boot cirros")
    assert row.status is Status.FAIL
    assert row.details.startswith("server ERROR: 500 No valid host was found")
    assert "nova-compute.log on compute1:\n  | ERROR nova.compute.manager boom" in row.details
    assert "nova-compute.log" in row.hint
    skipped = {r.name: r.details for r in report.rows if r.status is Status.SKIP}
    assert skipped == {"volume: attach, see, detach": "needs instance"}
    assert report.rows[-1].name == "cleanup" and report.rows[-1].status is Status.PASS
    assert f"server delete --wait {SERVER}" in deletes(cloud.commands)


def test_auth_failure_says_so_and_skips_the_rest(tmp_path: Path) -> None:
    cloud = FakeCloud(auth_fails=True)
    report = verify.Verifier(make_lab(cloud, tmp_path)).run()
    first = report.rows[0]
    assert first.status is Status.FAIL
    assert first.details.startswith("admin: token issue: authentication failed: The request "
                                    "you have made requires authentication. (HTTP 401)")
    assert "oslab openrc admin --print" in first.hint
    assert [r.name for r in report.rows if r.status is Status.SKIP] == [
        "catalog", "services", "image: cirros active", "network: provider and self-service",
        "instance: boot cirros", "volume: attach, see, detach"]
    assert report.rows[-2].name == "dashboard" and report.rows[-2].status is Status.PASS
    # no instance was made: the login row asks only for the instances page
    assert (report.rows[-1].status, report.rows[-1].details) == (
        Status.PASS, "demo: logged in (/dashboard/project/instances/); the instances page")
    assert deletes(cloud.commands) == []


def test_unknown_group(tmp_path: Path) -> None:
    with pytest.raises(OslabError, match="unknown check group"):
        verify.Verifier(make_lab(FakeCloud(), tmp_path)).run(only=("nope",))


# -- rendering ---------------------------------------------------------------------------------


def sample_report() -> verify.Report:
    return verify.Report(rows=[
        verify.Row("identity: admin token", Status.PASS, 2.41, "token for project p"),
        verify.Row("network agents", Status.FAIL, 2.0, "not alive: L3 agent on controller",
                   "journalctl -u neutron-l3-agent"),
        verify.Row("volume: attach, see, detach", Status.SKIP, 0.0, "needs instance"),
    ])


def test_render_table() -> None:
    assert summary.render_table(sample_report()) == "\n".join([
        "check                        result     time  details",
        "identity: admin token        pass       2.4s  token for project p",
        "network agents               FAIL       2.0s  not alive: L3 agent on controller",
        "                                              look at: journalctl -u neutron-l3-agent",
        "volume: attach, see, detach  skip       0.0s  needs instance",
        "1 passed, 1 failed, 1 skipped in 4s",
    ])


def test_render_summary(tmp_path: Path) -> None:
    spec = spec_file.load_default()
    text = summary.render_summary(spec, sample_report(), {"provision": 1312.4, "install": 2400.0,
                                                         "verify": 310.0},
                                 key_path=tmp_path / "id_ed25519")
    lines = text.splitlines()
    assert lines[0] == "lab oslab: OpenStack epoxy"
    assert "  controller   controller 10.0.0.11       oslab ssh controller" in lines
    assert "  compute1     compute    10.0.0.31       oslab ssh compute1" in lines
    assert any(line.startswith("dashboard:       http://10.0.0.11/dashboard/") for line in lines)
    assert "admin password:  oslab openrc admin --print" in lines
    # from the host only Keystone answers until `controller` resolves there (the catalog's name)
    assert any("`openstack token issue`" in line for line in lines)
    assert "                 the other services need `10.0.0.11 controller` in this host's " \
        "/etc/hosts" in lines
    assert "server list" not in text
    assert f"ssh:             oslab ssh controller   or   ssh -i {tmp_path}/id_ed25519 " \
           "root@10.0.0.11" in lines
    assert "  network agents               FAIL       2.0s  not alive: L3 agent on controller" \
        in lines
    assert lines[-4:] == ["  provision     1312s", "  install       2400s", "  verify         310s",
                          "  total         4022s"]
    assert "gocubsgo" not in text


# -- openrc ------------------------------------------------------------------------------------


def test_openrc_render() -> None:
    text = openrc.render("demo", "pa$s w'rd", "http://10.0.0.11:5000/v3", lab="oslab")
    assert "export OS_USERNAME=demo\n" in text
    assert "export OS_PROJECT_NAME=demo\n" in text
    assert "export OS_PASSWORD='pa$s w'\"'\"'rd'\n" in text
    assert "export OS_AUTH_URL=http://10.0.0.11:5000/v3\n" in text
    assert "export OS_IDENTITY_API_VERSION=3\n" in text
    with pytest.raises(OslabError, match="no openrc for 'root'"):
        openrc.render("root", "x", "u")


def test_openrc_files(tmp_path: Path) -> None:
    spec = spec_file.load_default()
    state = LabState("oslab", root=tmp_path)
    with pytest.raises(OslabError, match=r"^lab oslab has no admin password on this host"):
        openrc.openrc_command(spec, state, "admin")
    assert not state.dir.exists()
    state.password(openrc.ADMIN_PASSWORD_KEY)  # what the install does
    path = openrc.openrc_command(spec, state, "admin")
    assert path == str(tmp_path / "oslab" / "admin-openrc")
    assert stat.S_IMODE(Path(path).stat().st_mode) == 0o600
    password = state.password(openrc.ADMIN_PASSWORD_KEY)
    assert password not in path
    shown = openrc.openrc_command(spec, state, "admin", show=True)
    assert f"export OS_PASSWORD={password}\n" in shown
    assert "export OS_AUTH_URL=http://10.0.0.11:5000/v3\n" in shown
    specs = openrc.file_specs(spec, state.password, url="http://controller:5000/v3")
    assert [(f.path, f.mode, f.secret) for f in specs] == [
        ("/root/admin-openrc", 0o600, True), ("/root/demo-openrc", 0o600, True)]
    assert "OS_AUTH_URL=http://controller:5000/v3" in specs[1].content


def test_openrc_write_all_adds_only_missing_remote_files(tmp_path: Path) -> None:
    spec = spec_file.load_default()
    state = LabState("oslab", root=tmp_path)

    class Node(FakeCloud):
        def answer(self, c: str) -> tuple[str, int, str]:
            return "", 0 if c == "test -f /root/admin-openrc" else 1, ""

    node = Node()
    written = openrc.write_all(spec, state, node)
    assert written == [str(tmp_path / "oslab" / "admin-openrc"),
                       str(tmp_path / "oslab" / "demo-openrc"), "controller:/root/demo-openrc"]
    assert list(node.puts) == ["/root/demo-openrc"]
    assert state.password("keystone_demo").encode() in node.puts["/root/demo-openrc"]


def test_a_local_image_names_the_rows_upload_flavor_and_user(tmp_path: Path) -> None:
    from dataclasses import replace

    from oslab.install.instance_image import InstanceImage
    cloud = FakeCloud()
    image = InstanceImage(label="oslab-instance", user="tester", min_disk_gib=2,
                          min_ram_mib=128, properties=(("hw_disk_bus", "virtio"),))
    report = verify.Verifier(replace(make_lab(cloud, tmp_path), instance=image)).run()
    assert report.ok, summary.render_table(report)
    names = [r.name for r in report.rows]
    assert "image: oslab-instance active" in names and "instance: boot oslab-instance" in names
    upload = next(c for c in cloud.commands if "openstack image create" in c)
    assert upload.endswith("image create --public --disk-format qcow2 --container-format bare "
                           "--min-disk 2 --min-ram 128 --property hw_disk_bus=virtio --file "
                           "/var/tmp/oslab-verify-oslab-instance.img oslab-verify-oslab-instance "
                           "-f json")
    assert any(c.endswith("flavor create --vcpus 1 --ram 128 --disk 2 oslab.128m2g -f json")
               for c in cloud.commands)
    assert "flavor delete oslab.128m2g" in deletes(cloud.commands)
    ssh = next(r for r in report.rows if r.name == "instance: floating IP, ping, SSH")
    assert ssh.details.endswith("SSH as tester with the lab key")


@dataclass
class StartingVolume(FakeCloud):
    """cinder-volume reports down for its first ``down`` listings (it just started)."""

    down: int = 2

    def answer(self, c: str) -> tuple[str, int, str]:
        if "volume service list" in c and self.down:
            self.down -= 1
            return rec("volume_service_list.json").replace(
                '"Host": "controller@lvm",\n    "Zone": "nova",\n    "Status": "enabled",\n'
                '    "State": "up"', '"Host": "controller@lvm",\n    "Zone": "nova",\n'
                '    "Status": "enabled",\n    "State": "down"'), 0, ""
        return super().answer(c)


@pytest.mark.parametrize(("down", "ok"), [(0, True), (2, True), (10_000, False)])
def test_a_service_that_just_started_is_asked_again_until_settle(tmp_path: Path, down: int,
                                                                 ok: bool) -> None:
    cloud = StartingVolume(down=down)
    report = verify.Verifier(make_lab(cloud, tmp_path)).run()
    row = next(r for r in report.rows if r.name == "volume services")
    asked = sum("volume service list" in c for c in cloud.commands)
    if ok:
        assert row.status is Status.PASS
        assert asked == down + 1
    else:
        assert row.status is Status.FAIL
        assert "cinder-volume on controller@lvm is down" in row.details
        # settle 300 s at a 1 s poll (the fake clock): asked about 300 times, then it fails
        assert 290 <= asked <= 302


@pytest.mark.parametrize(("silent", "ok"), [(1, True), (10_000, False)])
def test_the_dashboard_is_asked_again_while_it_starts(tmp_path: Path, silent: int,
                                                      ok: bool) -> None:
    """Django loads on the first request; under TCG that outlasted the first 30 s try."""
    asked: list[float] = []

    def http(url: str, timeout: float) -> tuple[int, str]:
        asked.append(timeout)
        if len(asked) <= silent:
            return 0, "timed out"
        return 200, rec("horizon_login.html")

    lab = make_lab(FakeCloud(), tmp_path)
    lab.http = http
    row = next(r for r in verify.Verifier(lab).run().rows if r.name == "dashboard")
    if ok:
        assert row.status is Status.PASS and row.details.endswith(": login page")
        assert len(asked) == 2
    else:
        assert row.status is Status.FAIL and "nothing answers: timed out" in row.details
        assert 250 <= len(asked) <= 302


DASHBOARD_LOGINS = [
    # (what goes wrong, demo password given, instances page status, status, details, hint)
    ("nothing", DEMO_PASSWORD, 200, Status.PASS,
     f"demo: logged in (/dashboard/project/instances/); the instances page lists {PREFIX}-vm",
     ""),
    ("wrong-password", "not-it", 200, Status.FAIL, "demo: login refused: Invalid credentials.",
     "oslab openrc demo --print"),
    ("instances-500", DEMO_PASSWORD, 500, Status.FAIL,
     "HTTP 500 from /dashboard/project/instances/ (Server Error (500)); "
     "/var/log/httpd/error_log ends: [wsgi:error] Traceback | [wsgi:error] KeyError: 'region'",
     "/var/log/httpd/error_log on the controller"),
    ("no-password", "", 200, Status.SKIP, "no demo password given", ""),
]


@pytest.mark.parametrize(("password", "status", "want", "details", "hint"),
                         [c[1:] for c in DASHBOARD_LOGINS], ids=[c[0] for c in DASHBOARD_LOGINS])
def test_dashboard_login_row(tmp_path: Path, password: str, status: int, want: Status,
                             details: str, hint: str) -> None:
    web = FakeWeb(instances_status=status)
    lab = replace(make_lab(FakeCloud(), tmp_path, web=web), demo_password=password)
    report = verify.Verifier(lab).run()
    row = next(r for r in report.rows if r.name == "dashboard: demo logs in, the instances page")
    assert (row.status, row.details) == (want, details)
    assert hint in row.hint
    if password:
        assert web.posted[0]["csrfmiddlewaretoken"] and web.posted[0]["domain"] == "Default"
        # straight on to the instances page: the project overview is never asked for
        assert web.posted[0]["next"] == "/dashboard/project/instances/"
        assert web.got == ["http://10.0.0.11/dashboard/auth/login/?next=/dashboard/project/"
                           "instances/"]
    assert password == "" or password not in summary.render_table(report)


def test_a_login_that_does_not_go_on_asks_for_the_instances_page(tmp_path: Path) -> None:
    web = FakeWeb(honour_next=False)
    report = verify.Verifier(make_lab(FakeCloud(), tmp_path, web=web)).run()
    row = next(r for r in report.rows if r.name == "dashboard: demo logs in, the instances page")
    assert row.status is Status.PASS, row
    assert row.details.startswith("demo: logged in (/dashboard/project/); the instances page")
    assert web.got[-1] == "http://10.0.0.11/dashboard/project/instances/"


@dataclass
class SlowShow(FakeCloud):
    """``show`` times out on the node for its first ``slow`` calls (the e2e controller under
    load: one ``server show`` outlasted 180 s while the instance was still building)."""

    show: str = "server show"
    slow: int = 2

    def answer(self, c: str) -> tuple[str, int, str]:
        if self.show in c and self.slow:
            self.slow -= 1
            return "", -1, "timed out after 180s; stopped it on the node"
        return super().answer(c)


# every poll of the cloud checks: the show it repeats, the row it decides, the polls that fit
# in its timeout at the fake clock's 1 s poll (image_active 300, server_active 600, boot 900,
# volume 180 for each of the two waits)
POLLS = [("image show", "image: ", 300), ("server show", "instance: boot", 600),
         ("console log show", "instance: console", 900), ("volume show", "volume: ", 180)]


@pytest.mark.parametrize(("show", "row_name", "polls"), POLLS, ids=[p[0] for p in POLLS])
@pytest.mark.parametrize(("slow", "ok"), [(2, True), (10_000, False)], ids=["slow", "never"])
def test_a_show_that_times_out_inside_a_poll_is_asked_again(
        tmp_path: Path, show: str, row_name: str, polls: int, slow: int, ok: bool) -> None:
    cloud = SlowShow(show=show, slow=slow)
    report = verify.Verifier(make_lab(cloud, tmp_path)).run()
    row = next(r for r in report.rows if r.name.startswith(row_name))
    asked = sum(show in c for c in cloud.commands)
    if ok:
        assert row.status is Status.PASS, row.details
        assert asked >= slow + 1
    else:
        # never one answer within the poll's timeout: the row says what the last call said
        assert row.status is Status.FAIL and "timed out after 180s" in row.details
        assert polls * 5 // 6 <= asked <= polls + 2


def refused(address: str, host_key: str) -> FakeGuest:
    raise OslabError(f"{address}: connection refused")


def waits_of(name: str, tmp_path: Path) -> list[str]:
    """The progress lines of a run whose wait ``name`` never ends."""
    said: list[str] = []
    lab = replace(make_lab(FakeCloud(), tmp_path), say=said.append)
    if name in ("image show", "server show", "console log show", "volume show"):
        lab = replace(lab, controller=SlowShow(show=name, slow=10_000))
    elif name == "ping":
        lab = replace(lab, host=Silent())
    elif name == "dashboard":
        lab.http = lambda url, t: (0, "timed out")
    elif name == "ssh":
        lab = replace(lab, guest=refused)
    elif name == "partitions":  # the instance never sees the volume
        lab = replace(lab, guest=lambda address, key: FakeGuest(FakeCloud()))
    else:
        lab = replace(lab, controller=StartingVolume(down=10_000))
    verify.Verifier(lab).run()
    return [line.split(" (", 1)[0] + (": " + line.split("): ", 1)[1] if "): " in line else "")
            for line in said if "still waiting" in line]


# each wait, and what it says once a minute (the time left out; what the last look said after
# the colon): before, "still waiting for image show", "for ping", "for ssh", "for dashboard"
WAITS = [
    ("image show", f"image {IMAGE} to become active"),
    ("server show", f"server {SERVER} to become ACTIVE"),
    ("console log show", f"the login prompt on server {SERVER}'s console"),
    ("volume show", f"volume {VOLUME} to become available"),
    ("ping", "floating IP 203.0.113.187 to answer ping from this host"),
    ("ssh", "SSH to cirros@203.0.113.187"),
    ("partitions", "/dev/vdb in the instance's /proc/partitions"),
    ("dashboard", "the dashboard's login page at http://10.0.0.11/dashboard/: nothing answers: "
                  "timed out"),
    ("volume services", "every volume service to report up: cinder-volume on controller@lvm is "
                        "down"),
]


@pytest.mark.parametrize(("name", "said"), WAITS, ids=[w[0] for w in WAITS])
def test_every_wait_says_what_it_waits_for(tmp_path: Path, name: str, said: str) -> None:
    waits = waits_of(name, tmp_path)
    assert waits and waits[0] == f"verify: still waiting for {said}"


@pytest.mark.parametrize(("virt", "command"), [("qemu", 600.0), ("kvm", 180.0), ("none", 180.0),
                                               ("", 180.0)])
def test_commands_get_longer_under_tcg(virt: str, command: float) -> None:
    t = verify.Timeouts.under(virt)
    assert (t.command, t.delete) == (command, 600.0 if virt == "qemu" else 300.0)
    assert t.volume == (600.0 if virt == "qemu" else 180.0)
    assert t.settle == (600.0 if virt == "qemu" else 300.0)
    assert t.server_active == verify.Timeouts().server_active


@dataclass
class SlowAddSubnet(FakeCloud):
    """``router add subnet`` times out on the node, though neutron may have added it."""

    def answer(self, c: str) -> tuple[str, int, str]:
        if "router add subnet" in c:
            return "", -1, "timed out after 180s; stopped it on the node"
        return super().answer(c)


def test_a_router_interface_whose_add_timed_out_is_still_removed(tmp_path: Path) -> None:
    cloud = SlowAddSubnet()
    report = verify.Verifier(make_lab(cloud, tmp_path)).run()
    row = next(r for r in report.rows if r.name.startswith("network: self-service"))
    assert row.status is Status.FAIL and "timed out" in row.details
    done = deletes(cloud.commands)
    assert done.index("router remove subnet router-1 subnet-self") < \
        done.index("router delete router-1") < done.index("subnet delete subnet-self")
    assert "router unset --external-gateway router-1" in done


@dataclass
class Booting(FakeCloud):
    """The controller's systemd says ``state`` (it was just booted again)."""

    state: str = "starting"

    def answer(self, c: str) -> tuple[str, int, str]:
        if c == BOOT_STATE:
            return self.state + "\n", 0, ""
        if c == BOOT_WAIT:
            return "running\n", 0, ""
        return super().answer(c)


@pytest.mark.parametrize(("state", "waits"), [("starting", True), ("initializing", True),
                                              ("running", False), ("degraded", False)])
def test_a_controller_still_booting_is_waited_for_before_any_check(
        tmp_path: Path, state: str, waits: bool) -> None:
    cloud = Booting(state=state)
    said: list[str] = []
    lab = replace(make_lab(cloud, tmp_path), say=said.append)
    report = verify.Verifier(lab).run()
    assert all(r.status is Status.PASS for r in report.rows), report.rows
    assert cloud.commands[0] == BOOT_STATE
    assert (cloud.commands[1] == BOOT_WAIT) == waits
    assert (BOOT_WAIT in cloud.commands) == waits
    waited = [line for line in said if "its boot" in line]
    if waits:
        assert waited[0] == (f"verify: the controller: its boot is still under way (systemd: "
                             f"{state}): waiting for it to finish before verifying")
        assert waited[1].startswith("verify: the controller: its boot finished after")
    else:
        assert waited == []


@dataclass
class NoPing(FakeCloud):
    """A machine without ping (the e2e host and its Debian controller had none)."""

    def answer(self, c: str) -> tuple[str, int, str]:
        if c.startswith("ping ") or " ping " in c:
            return "", 127, "bash: line 1: ping: command not found"
        return super().answer(c)


def test_a_host_without_ping_is_said_at_once_not_as_no_answer(tmp_path: Path) -> None:
    host = NoPing()
    lab = replace(make_lab(FakeCloud(), tmp_path), host=host)
    report = verify.Verifier(lab).run()
    row = next(r for r in report.rows if r.name == "instance: floating IP, ping, SSH")
    assert row.status is Status.FAIL
    assert row.details == "ping is not installed on this host, so the floating IP could not " \
                          "be tried"
    assert "iputils-ping" in row.hint
    assert sum(c.startswith("ping ") for c in host.commands) == 1  # not polled for 180 s


@dataclass
class Silent(FakeCloud):
    """The floating IP never answers the host's ping."""

    def answer(self, c: str) -> tuple[str, int, str]:
        if c.startswith("ping "):
            return "", 1, ""
        return super().answer(c)


@pytest.mark.parametrize(("controller", "said"), [
    (FakeCloud(), "from the router's namespace on the controller the instance answers"),
    (NoPing(), "ping is not installed on the controller, so the router's side was not tried"),
], ids=["router-answers", "no-ping-on-controller"])
def test_a_silent_floating_ip_says_what_the_router_saw(tmp_path: Path, controller: FakeCloud,
                                                       said: str) -> None:
    lab = replace(make_lab(controller, tmp_path), host=Silent())
    report = verify.Verifier(lab).run()
    row = next(r for r in report.rows if r.name == "instance: floating IP, ping, SSH")
    assert row.status is Status.FAIL and row.details.startswith("no answer to ping ")
    assert said in row.details


SELECTIONS = [
    # scope, --only, the groups that run
    (Scope.ALL, (), GROUPS),
    (Scope.IDENTITY, (), ("identity", "catalog")),
    (Scope.ALL, ("services",), ("services",)),
    (Scope.ALL, ("network",), ("network",)),
    (Scope.ALL, ("instance",), ("image", "network", "instance")),
    (Scope.ALL, ("volume", "identity"), ("identity", "image", "network", "instance", "volume")),
    (Scope.ALL, ("dashboard", "catalog", "dashboard"), ("catalog", "dashboard")),
    (Scope.IDENTITY, ("catalog",), ("catalog",)),
]


@pytest.mark.parametrize(("scope", "only", "groups"), SELECTIONS)
def test_only_runs_the_named_groups_and_what_they_need(scope: Scope, only: tuple[str, ...],
                                                       groups: tuple[str, ...]) -> None:
    assert selected_groups(scope, only) == groups


@pytest.mark.parametrize(("scope", "only", "error"), [
    (Scope.IDENTITY, ("volume",), "a lab of scope 'identity' has no image, network, instance, "
                                  "volume to check"),
    (Scope.ALL, ("nope",), "unknown check group(s): nope"),
])
def test_only_refuses_what_the_lab_cannot_check(scope: Scope, only: tuple[str, ...],
                                                error: str) -> None:
    with pytest.raises(OslabError) as info:
        selected_groups(scope, only)
    assert info.value.message == error
    assert info.value.hint.startswith("choose from: identity, catalog")


@dataclass
class ServerCloud(FakeCloud):
    """A controller whose client server binds its socket on the third look, and served 41
    calls; or never binds."""

    binds: bool = True
    looks: int = 0

    def answer(self, c: str) -> tuple[str, int, str]:
        if c == "test -S /var/lib/oslab/verify/osc.sock":
            self.looks += 1
            return "", 0 if self.binds and self.looks >= 3 else 1, ""
        if c == "cat /var/lib/oslab/verify/osc.served":
            return "41\n", 0, ""
        return super().answer(c)


def test_a_real_labs_calls_go_through_the_client_server_and_it_is_stopped(
        tmp_path: Path) -> None:
    cloud = ServerCloud()
    said: list[str] = []
    lab = replace(make_lab(cloud, tmp_path), client_dir=CLIENT_DIR, say=said.append)
    report = verify.Verifier(lab).run()
    assert report.ok
    first, start = cloud.commands[1:3]
    # the checks begin once the server answers, so every call can go through it
    first_call = next(i for i, c in enumerate(cloud.commands) if "openstack " in c and
                      "ln -s" not in c)
    assert cloud.commands[3:first_call] == ["test -S /var/lib/oslab/verify/osc.sock"] * 3
    assert "verify: the client server answers after 2s" in said
    assert said[-1] == "verify: 41 `openstack` calls went through the client server"
    assert first == "rm -rf /var/lib/oslab/verify && mkdir -p /var/lib/oslab && " \
                    "mkdir -m 0700 /var/lib/oslab/verify /var/lib/oslab/verify/bin"
    assert cloud.puts["/var/lib/oslab/verify/oslab-osc.py"] == client_script()
    assert "ln -s ../oslab-osc.py /var/lib/oslab/verify/bin/openstack" in start
    # on Debian and EL /run is noexec: a shim there was skipped, so the run checks the lookup
    assert 'test "$(PATH=/var/lib/oslab/verify/bin:$PATH command -v openstack)" = ' \
           "/var/lib/oslab/verify/bin/openstack && (setsid python3 " in start
    assert "(setsid python3 /var/lib/oslab/verify/oslab-osc.py serve /var/lib/oslab/verify " \
           in start
    calls = [c for c in cloud.commands if "openstack " in c and "ln -s" not in c]
    assert calls and all(" && PATH=/var/lib/oslab/verify/bin:$PATH openstack " in c
                         for c in calls)
    assert cloud.commands[-1].startswith("test ! -f /var/lib/oslab/verify/osc.pid || kill ")
    assert cloud.commands[-1].endswith("; rm -rf /var/lib/oslab/verify")


def test_a_client_server_that_does_not_answer_in_time_is_said_and_the_calls_go_on(
        tmp_path: Path) -> None:
    cloud = ServerCloud(binds=False)
    said: list[str] = []
    lab = replace(make_lab(cloud, tmp_path), client_dir=CLIENT_DIR, say=said.append)
    report = verify.Verifier(lab).run()
    assert report.ok
    assert cloud.looks == 181  # every second for the command timeout (180 s), then on
    # a long wait says what it waits for, once a minute
    assert [line for line in said if "still waiting" in line] == [
        "verify: still waiting for the client server on the controller to answer (60s of 180s)",
        "verify: still waiting for the client server on the controller to answer (120s of "
        "180s)"]
    assert "verify: the client server did not answer in 180s (see /var/lib/oslab/verify/" \
           "serve.log): calls load the client themselves until it does" in said


@dataclass
class NoExecCloud(FakeCloud):
    """A controller where the shim is not what `openstack` finds (a noexec mount)."""

    def answer(self, c: str) -> tuple[str, int, str]:
        if "command -v openstack" in c:
            return "", 1, ""
        return super().answer(c)


def test_a_client_server_that_cannot_start_is_said_and_the_calls_go_on(tmp_path: Path) -> None:
    cloud = NoExecCloud()
    said: list[str] = []
    lab = replace(make_lab(cloud, tmp_path), client_dir=CLIENT_DIR, say=said.append)
    report = verify.Verifier(lab).run()
    assert report.ok
    assert any(line.startswith("verify: no client server on the controller") and
               line.endswith("each `openstack` call loads the client itself") for line in said)
    assert not any("setsid python3" in c and "serve" in c and "command -v" not in c
                   for c in cloud.commands)
