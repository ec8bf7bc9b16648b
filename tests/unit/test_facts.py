"""Facts are parsed from recorded output (stdout, stderr, exit code), as the nodes print it.

The outputs below are what CentOS Stream 9 (rpm 4.16, systemd 252, MariaDB 10.5), coreutils
and busybox (the test guest) print for these commands.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from oslab.distro import Family
from oslab.install import facts
from oslab.install.facts import FactError, FileState, ServiceState

# -- packages ------------------------------------------------------------------------------------

RPM_SOME_MISSING = """\
mariadb-server-10.5.22-1.el9.x86_64
package python3-PyMySQL is not installed
no package provides openstack-keystone
"""


def test_packages_command_queries_provides_quoted() -> None:
    fact = facts.packages_missing(["mariadb-server", "python3dist(pymysql)"])
    assert fact.command == "rpm -q --whatprovides mariadb-server 'python3dist(pymysql)'"


@pytest.mark.parametrize(("names", "out", "rc", "missing"), [
    (["mariadb-server"], "mariadb-server-10.5.22-1.el9.x86_64\n", 0, ()),
    (["mariadb-server", "python3-PyMySQL", "openstack-keystone"], RPM_SOME_MISSING, 2,
     ("python3-PyMySQL", "openstack-keystone")),
    # order of the request, not of the output
    (["b", "a"], "package a is not installed\npackage b is not installed\n", 2, ("b", "a")),
])
def test_packages_missing(names: list[str], out: str, rc: int,
                          missing: tuple[str, ...]) -> None:
    assert facts.packages_missing(names).parse(out, "", rc) == missing


def test_packages_without_rpm_is_an_error() -> None:
    with pytest.raises(FactError, match="rpm: command not found"):
        facts.packages_missing(["x"]).parse("", "sh: rpm: command not found\n", 127)


# Real dpkg-query 1.21 output (Debian 12's dpkg, the same format as trixie's 1.22) over a status
# file with an unpacked (iU), a half-configured (iF), a removed (rc) and a held (hi) package.
DPKG_OUT = (Path(__file__).parent / "recorded" / "dpkg_query_packages.txt").read_text()


def test_dpkg_command_lists_status_name_and_provides() -> None:
    fact = facts.packages_missing(["a"], Family.DEBIAN)
    assert fact.command == ("dpkg-query -W -f='${db:Status-Abbrev}|${Package}|${Provides}\\n'")
    out = subprocess.run(["sh", "-c", fact.command], capture_output=True, text=True, check=True)
    assert fact.parse(out.stdout, out.stderr, out.returncode) == ("a",)  # this host: no "a"


@pytest.mark.parametrize(("names", "missing"), [
    (["mawk", "debconf", "rabbitmq-server"], ()),  # ii and hi are installed
    (["awk", "debconf-2.0", "ssh-server"], ()),  # provided by an installed package
    (["python3-supported-max"], ()),  # a versioned provide
    (["chrony", "time-daemon", "memcached"], ("chrony", "time-daemon", "memcached")),
    (["mariadb-server", "virtual-mysql-server"], ("mariadb-server", "virtual-mysql-server")),
    (["keystone", "libc6"], ("keystone",)),
])
def test_dpkg_packages_missing(names: list[str], missing: tuple[str, ...]) -> None:
    assert facts.packages_missing(names, Family.DEBIAN).parse(DPKG_OUT, "", 0) == missing


@pytest.mark.parametrize(("out", "err", "rc", "message"), [
    ("", "sh: 1: dpkg-query: not found\n", 127, "dpkg-query: not found"),
    ("", "", 0, "no output"),
    ("garbage\n", "", 0, "garbage"),
])
def test_dpkg_unreadable_is_an_error(out: str, err: str, rc: int, message: str) -> None:
    with pytest.raises(FactError, match=message):
        facts.packages_missing(["x"], Family.DEBIAN).parse(out, err, rc)


# -- files ---------------------------------------------------------------------------------------

GNU_OUT = ("5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03  /tmp/f.txt\n"
           "640 root root\n")


def test_file_present() -> None:
    state = facts.file_state("/tmp/f.txt").parse(GNU_OUT, "", 0)
    digest = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
    assert state == FileState(True, digest, 0o640, "root", "root")


def test_file_absent_and_setuid_mode_and_escaped_name() -> None:
    assert facts.file_state("/x").parse("absent\n", "", 0) == facts.ABSENT
    out = ("\\" + "a" * 64 + "  /etc/we\\nird\n4755 keystone UNKNOWN\n")
    state = facts.file_state("/etc/we\nird").parse(out, "", 0)
    assert (state.sha256, state.mode, state.owner, state.group) == ("a" * 64, 0o4755,
                                                                     "keystone", "UNKNOWN")


def test_file_is_a_directory_is_an_error() -> None:
    with pytest.raises(FactError, match="Is a directory"):
        facts.file_state("/etc").parse("755 root root\n", "sha256sum: /etc: Is a directory\n", 0)


def test_file_fact_runs_in_a_real_shell(tmp_path: Path) -> None:
    """The command itself, run by sh here: what the parser gets is what the command prints."""
    path = tmp_path / "it's a file"
    path.write_text("hello\n")
    path.chmod(0o600)
    fact = facts.file_state(str(path))
    proc = subprocess.run(["sh", "-c", fact.command], capture_output=True, text=True)
    state = fact.parse(proc.stdout, proc.stderr, proc.returncode)
    assert state.exists and state.mode == 0o600
    assert state.sha256 == "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
    gone = facts.file_state(str(tmp_path / "nope"))
    proc = subprocess.run(["sh", "-c", gone.command], capture_output=True, text=True)
    assert gone.parse(proc.stdout, proc.stderr, proc.returncode) == facts.ABSENT


# -- services ------------------------------------------------------------------------------------


def test_services() -> None:
    out = ("mariadb|enabled|active\n"
           "memcached|disabled|inactive\n"
           "rabbitmq-server||inactive\n"  # not installed: is-enabled prints only to stderr
           "openstack-nova-api|enabled|failed\n")
    got = facts.service_states(["mariadb", "memcached", "rabbitmq-server",
                                "openstack-nova-api"]).parse(out, "", 0)
    assert got["mariadb"].enabled and got["mariadb"].active
    assert not got["memcached"].enabled and not got["memcached"].active
    assert got["rabbitmq-server"] == ServiceState("rabbitmq-server", "not-found", "inactive")
    assert got["openstack-nova-api"].enabled and not got["openstack-nova-api"].active


def test_static_unit_counts_as_enabled_and_missing_line_is_an_error() -> None:
    got = facts.service_states(["dbus"]).parse("dbus|static|active\n", "", 0)
    assert got["dbus"].enabled
    with pytest.raises(FactError):
        facts.service_states(["a", "b"]).parse("a|enabled|active\n", "", 0)


def test_services_command_loops_over_quoted_names() -> None:
    cmd = facts.service_states(["httpd", "a b"]).command
    assert cmd.startswith("for u in httpd 'a b'; do ")
    assert "systemctl is-enabled" in cmd and "systemctl is-active" in cmd


# `systemctl show -p Id -p LoadState -p ActiveState -p SubState -p Result -- UNIT`, one block per
# unit in the order asked: systemd prints the service interface's properties (Result) before
# the unit's (Id, LoadState, ActiveState, SubState), and an empty line between units. Written in
# systemd 252's format (this host runs no systemd to record them from).
SHOW = ("Result={result}\nId={unit}.service\nLoadState={load}\nActiveState={active}\n"
        "SubState={sub}\n")
UNIT_STATES = [
    # what systemd shows, the state parsed, whether systemd gave the unit up
    (SHOW.format(result="timeout", unit="nova-conductor", load="loaded", active="failed",
                 sub="failed"), ("loaded", "failed", "failed", "timeout"), True),
    (SHOW.format(result="start-limit-hit", unit="nova-conductor", load="loaded", active="failed",
                 sub="failed"), ("loaded", "failed", "failed", "start-limit-hit"), True),
    # Restart=on-failure: between a failure and the restart, activating (auto-restart)
    (SHOW.format(result="exit-code", unit="nova-conductor", load="loaded", active="activating",
                 sub="auto-restart"), ("loaded", "activating", "auto-restart", "exit-code"), False),
    (SHOW.format(result="success", unit="nova-conductor", load="loaded", active="activating",
                 sub="start"), ("loaded", "activating", "start", "success"), False),
    (SHOW.format(result="success", unit="nova-conductor", load="loaded", active="active",
                 sub="running"), ("loaded", "active", "running", "success"), False),
    # a unit this node does not have
    (SHOW.format(result="success", unit="nova-conductor", load="not-found", active="inactive",
                 sub="dead"), ("not-found", "inactive", "dead", "success"), False),
]


@pytest.mark.parametrize(("shown", "state", "failed"), UNIT_STATES,
                         ids=["timeout", "start-limit", "auto-restart", "starting", "running",
                              "not-found"])
def test_unit_states(shown: str, state: tuple[str, str, str, str], failed: bool) -> None:
    got = facts.unit_states(["nova-conductor"]).parse(shown, "", 0)["nova-conductor"]
    assert (got.load, got.active, got.sub, got.result) == state
    assert got.failed is failed


def test_unit_states_are_the_units_in_the_order_asked() -> None:
    fact = facts.unit_states(["nova-conductor", "nova-compute"])
    assert fact.command == ("systemctl show -p Id -p LoadState -p ActiveState -p SubState "
                            "-p Result -- nova-conductor nova-compute")
    shown = UNIT_STATES[0][0] + "\n" + UNIT_STATES[5][0].replace("conductor", "compute")
    got = fact.parse(shown, "", 0)
    assert [(u, s.active) for u, s in got.items()] == [("nova-conductor", "failed"),
                                                       ("nova-compute", "inactive")]


@pytest.mark.parametrize(("out", "err", "rc"), [
    (UNIT_STATES[0][0], "", 0),  # one block for two units
    ("", "System has not been booted with systemd as init system (PID 1). Can't operate.\n"
         "Failed to connect to bus: Host is down\n", 1),
    ("Id=nova-conductor.service\n\nId=nova-compute.service\n", "", 0),  # no ActiveState
])
def test_unit_states_that_cannot_be_read(out: str, err: str, rc: int) -> None:
    with pytest.raises(FactError, match="cannot read the units nova-conductor, nova-compute"):
        facts.unit_states(["nova-conductor", "nova-compute"]).parse(out, err, rc)


# -- databases -----------------------------------------------------------------------------------


def test_database_complete() -> None:
    fact = facts.database_state("keystone", "keystone", "s3cret")
    out = "db 1\nuser localhost ok\nuser % ok\ngrant localhost\ngrant %\n"
    state = fact.parse(out, "", 0)
    assert state.complete and state.missing() == []


def test_database_partial() -> None:
    fact = facts.database_state("nova_api", "nova", "s3cret")
    state = fact.parse("db 1\nuser localhost differs\ngrant localhost\n", "", 0)
    assert not state.complete
    assert state.missing() == ["password @localhost", "user @%", "grant @%"]
    assert fact.parse("db 0\n", "", 0) == facts.NO_DATABASE


def test_database_password_goes_on_stdin_not_the_command_line() -> None:
    fact = facts.database_state("glance", "glance", "Pa55word")
    assert "Pa55word" not in fact.command
    assert fact.command == "mysql -N -B"
    assert fact.stdin is not None and "PASSWORD('Pa55word')" in fact.stdin
    assert "WHERE SCHEMA_NAME = 'glance'" in fact.stdin


def test_database_unreachable_is_an_error_and_bad_names_are_refused() -> None:
    err = ("ERROR 2002 (HY000): Can't connect to local MySQL server through socket "
           "'/var/lib/mysql/mysql.sock' (2)\n")
    with pytest.raises(FactError, match="Can't connect"):
        facts.database_state("nova", "nova", "x").parse("", err, 1)
    with pytest.raises(Exception, match="invalid MariaDB database name"):
        facts.database_state("nova; DROP", "nova", "x")


def test_sql_string_escapes() -> None:
    assert facts.sql_string("it's \\ here") == "'it\\'s \\\\ here'"


# -- guarded check and virt type -----------------------------------------------------------------


def test_command_succeeds_is_the_exit_code() -> None:
    fact = facts.command_succeeds("keystone bootstrapped", "openstack user show admin")
    assert fact.parse("", "", 0) is True
    assert fact.parse("", "No user with a name or ID of 'admin' exists.\n", 1) is False


@pytest.mark.parametrize(("rc", "want"), [(0, True), (1, False), (2, False), (3, None)])
def test_a_check_that_cannot_tell_is_no_answer(rc: int, want: bool | None) -> None:
    """A check's ``undecided`` exit code is neither "done" nor "not done": a FactError with the
    hint, which fails the step instead of running a command that acts on a guess."""
    fact = facts.command_succeeds("check of 'user'", "check-user", undecided=3,
                                  hint="nothing was changed; rerun")
    if want is None:
        with pytest.raises(FactError, match="nothing was changed; rerun"):
            fact.parse("", "rabbitmqctl timed out\n", rc)
    else:
        assert fact.parse("", "", rc) is want


@pytest.mark.parametrize(("out", "rc", "want"), [
    ("4 dev-kvm\n", 0, "kvm"),
    ("0 no-dev-kvm\n", 0, "qemu"),
    ("0 dev-kvm\n", 0, "qemu"),
    # the flag without the device: e.g. a TCG guest whose emulated CPU lists svm
    ("2 no-dev-kvm\n", 0, "qemu"),
])
def test_virt_type(out: str, rc: int, want: str) -> None:
    assert facts.virt_type().parse(out, "", rc) == want


@pytest.mark.parametrize(("cpuinfo", "dev_kvm", "want"), [
    ("flags\t: fpu vmx sse\nflags\t: fpu vmx sse\n", True, "2 dev-kvm"),
    ("flags\t: fpu svm\n", False, "1 no-dev-kvm"),
    ("flags\t: fpu sse\n", True, "0 dev-kvm"),
])
def test_virt_type_probe_in_a_real_shell(tmp_path: Path, cpuinfo: str, dev_kvm: bool,
                                         want: str) -> None:
    """The probe run by sh against a fake /proc/cpuinfo and /dev/kvm (paths swapped in)."""
    (tmp_path / "cpuinfo").write_text(cpuinfo)
    kvm = "/dev/null" if dev_kvm else str(tmp_path / "absent")   # /dev/null is a char device
    script = (facts.VIRT_TYPE_PROBE.replace("/proc/cpuinfo", str(tmp_path / "cpuinfo"))
              .replace("/dev/kvm", kvm))
    done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=False)
    assert (done.returncode, done.stdout.strip()) == (0, want)
    assert facts.virt_type().parse(done.stdout, done.stderr, done.returncode) in ("kvm", "qemu")


def test_virt_type_unreadable() -> None:
    script = facts.VIRT_TYPE_PROBE.replace("/proc/cpuinfo", "/nonexistent")
    done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=False)
    assert done.returncode == 2
    with pytest.raises(FactError):
        facts.virt_type().parse(done.stdout, done.stderr, done.returncode)
