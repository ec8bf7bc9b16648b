"""The engine's decisions as data: for recorded facts, the expected commands (pyinfra style).

Also the step graph (``after``: unknown names and cycles are refused, ``--from`` closure), the
plan as text (masked), and the done-marker convention.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from oslab.distro import Family
from oslab.errors import OslabError
from oslab.install import debian, facts, graph, markers, ops
from oslab.install.facts import DatabaseState, FileState, ServiceState
from oslab.install.model import Database, FileSpec, Guarded, StepDef, Where
from oslab.install.ops import Secrets, StepFacts
from oslab.install.planned import NodePlan, Plan, planned_action, planned_step, render

PASSWORDS = {"keystone_db": "KsDbPassw0rd", "admin": "AdminPassw0rd"}
CONF = FileSpec("/etc/demo/demo.conf", "[DEFAULT]\ndebug = false\n", 0o640, "root", "demo")
CONF_SHA = ops.sha256(CONF.content)
DB = Database("keystone", "keystone", "keystone_db")
GUARD = Guarded("bootstrap keystone", check="openstack user show admin",
                run="keystone-manage bootstrap --bootstrap-password {password:admin}")
DONE_DB = DatabaseState(True, frozenset({"localhost", "%"}), frozenset({"localhost", "%"}),
                        frozenset({"localhost", "%"}))
UP = {"demo": ServiceState("demo", "enabled", "active")}
FINALIZE = ("{ chown root:demo /etc/demo/.demo.conf.oslab-new && chmod 640 "
            "/etc/demo/.demo.conf.oslab-new && mv -f /etc/demo/.demo.conf.oslab-new "
            "/etc/demo/demo.conf; } || { rc=$?; rm -f /etc/demo/.demo.conf.oslab-new; "
            "exit $rc; }")


def secrets() -> Secrets:
    return Secrets(PASSWORDS.__getitem__)


def step(**kw: object) -> StepDef:
    return StepDef(name="demo.step", where=Where.CONTROLLER, title="demo", **kw)  # type: ignore[arg-type]


# (case, step, facts, forced) -> expected [(kind, command)]
CASES: list[tuple[str, StepDef, StepFacts, bool, list[tuple[str, str]]]] = [
    ("packages all missing", step(packages=("a", "b")), StepFacts(missing=("a", "b")), False,
     [("packages", "dnf -y install a b")]),
    ("packages one missing", step(packages=("a", "b")), StepFacts(missing=("b",)), False,
     [("packages", "dnf -y install b")]),
    ("packages installed", step(packages=("a", "b")), StepFacts(), False, []),
    ("file absent", step(files=(CONF,)), StepFacts(files={CONF.path: facts.ABSENT}), False,
     [("file", FINALIZE)]),
    ("file content differs", step(files=(CONF,)),
     StepFacts(files={CONF.path: FileState(True, "0" * 64, 0o640, "root", "demo")}), False,
     [("file", FINALIZE)]),
    ("file mode differs only", step(files=(CONF,)),
     StepFacts(files={CONF.path: FileState(True, CONF_SHA, 0o644, "root", "root")}), False,
     [("file", "chown root:demo /etc/demo/demo.conf && chmod 640 /etc/demo/demo.conf")]),
    ("file up to date", step(files=(CONF,)),
     StepFacts(files={CONF.path: FileState(True, CONF_SHA, 0o640, "root", "demo")}), False, []),
    ("changed file restarts the service", step(files=(CONF,), services=("demo",)),
     StepFacts(files={CONF.path: facts.ABSENT}, services=UP), False,
     [("file", FINALIZE), ("service", "systemctl restart demo")]),
    ("changed file: enable and restart", step(files=(CONF,), services=("demo",)),
     StepFacts(files={CONF.path: facts.ABSENT},
               services={"demo": ServiceState("demo", "disabled", "inactive")}), False,
     [("file", FINALIZE), ("service", "systemctl enable demo && systemctl restart demo")]),
    ("service blank", step(services=("demo",)),
     StepFacts(services={"demo": facts.blank_service("demo")}), False,
     [("service", "systemctl enable --now demo")]),
    ("service enabled, failed", step(services=("demo",)),
     StepFacts(services={"demo": ServiceState("demo", "enabled", "failed")}), False,
     [("service", "systemctl start demo")]),
    ("service active, disabled", step(services=("demo",)),
     StepFacts(services={"demo": ServiceState("demo", "disabled", "active")}), False,
     [("service", "systemctl enable demo")]),
    ("service fine", step(services=("demo",)), StepFacts(services=UP), False, []),
    ("database absent", step(databases=(DB,)), StepFacts(databases={}), False,
     [("database", "mysql -N -B")]),
    ("database complete", step(databases=(DB,)), StepFacts(databases={"keystone": DONE_DB}),
     False, []),
    ("guard fails", step(commands=(GUARD,)), StepFacts(checks=(False,)), False,
     [("command", "sh -s")]),  # it holds a password: the script goes on stdin
    ("guard passes", step(commands=(GUARD,)), StepFacts(checks=(True,)), False, []),
    ("env file is sourced", step(commands=(Guarded("x", "c", "r", env_file="/root/openrc"),)),
     StepFacts(checks=(False,)), False, [("command", ". /root/openrc && {\nr\n}")]),
    ("forced: all but installed packages", step(
        packages=("a",), files=(CONF,), databases=(DB,), commands=(GUARD,),
        services=("demo",)),
     StepFacts(files={CONF.path: FileState(True, CONF_SHA, 0o640, "root", "demo")},
               databases={"keystone": DONE_DB}, checks=(True,), services=UP), True,
     [("file", FINALIZE), ("database", "mysql -N -B"),
      ("command", "sh -s"),
      ("service", "systemctl restart demo")]),
    ("blank node: every part, in the model's order", step(
        packages=("a",), files=(CONF,), databases=(DB,), commands=(GUARD,),
        services=("demo",)),
     ops.blank_facts(step(packages=("a",), files=(CONF,), databases=(DB,), commands=(GUARD,),
                          services=("demo",))), False,
     [("packages", "dnf -y install a"), ("file", FINALIZE), ("database", "mysql -N -B"),
      ("command", "sh -s"),
      ("service", "systemctl enable demo && systemctl restart demo")]),
]


@pytest.mark.parametrize(("case", "st", "have", "forced", "want"), CASES,
                         ids=[c[0] for c in CASES])
def test_decisions(case: str, st: StepDef, have: StepFacts, forced: bool,
                   want: list[tuple[str, str]]) -> None:
    actions, reasons = ops.decide_step(st, have, secrets(), forced=forced)
    assert [(a.kind.value, a.command) for a in actions] == want
    if not want:
        assert reasons, "a step with nothing to do says why"


def test_a_password_is_on_no_command_line() -> None:
    """A guarded command or check holding a password runs as ``sh -s`` with the script on
    stdin; one without stays a plain command. The plan shows the script, masked."""
    guard = Guarded("rabbit user", check="printf '%s\\n' '{password:admin}' | auth u",
                    run="OS_PW='{password:admin}' tool", env_file="/root/openrc")
    known = secrets()
    (action,), _ = ops.command(guard, False, known)
    assert (action.command, action.stdin) == (
        "sh -s", "{\n. /root/openrc && {\nOS_PW='AdminPassw0rd' tool\n}\n} </dev/null\n")
    check = ops.check_fact(guard, secrets())
    assert check.command == "sh -s"
    assert check.stdin is not None and "printf '%s\\n' 'AdminPassw0rd' | auth u" in check.stdin
    plain = ops.check_fact(GUARD, secrets())
    assert (plain.command, plain.stdin) == ("openstack user show admin", None)
    shown = planned_action(action, known)
    assert shown.command == "sh -s" and "AdminPassw0rd" not in shown.stdin
    assert "OS_PW='***' tool" in shown.stdin


def test_no_change_reasons() -> None:
    st = step(packages=("a", "b"), files=(CONF,), databases=(DB,), commands=(GUARD,),
              services=("demo",))
    have = StepFacts(files={CONF.path: FileState(True, CONF_SHA, 0o640, "root", "demo")},
                     databases={"keystone": DONE_DB}, checks=(True,), services=UP)
    actions, reasons = ops.decide_step(st, have, secrets())
    assert actions == []
    assert reasons == ["2 packages installed", "/etc/demo/demo.conf up to date",
                       "database keystone with user keystone and grants",
                       "done: bootstrap keystone", "service demo enabled and active"]


def test_dnf_has_bounded_retries_and_every_action_a_timeout() -> None:
    st = step(packages=("a",), files=(CONF,), databases=(DB,), commands=(GUARD,),
              services=("demo",))
    actions, _ = ops.decide_step(st, ops.blank_facts(st), secrets())
    dnf = actions[0]
    assert dnf.retries == 3 and dnf.timeout == ops.DNF_TIMEOUT
    assert all(a.timeout > 0 for a in actions)
    slow = Guarded("slow", "false", "sleep 1", timeout=7, retries=2)
    act = ops.command(slow, False, secrets())[0][0]
    assert (act.timeout, act.retries) == (7.0, 2)


def test_database_sql_creates_users_at_both_hosts_with_the_lab_password() -> None:
    actions, _ = ops.decide_step(step(databases=(DB,)), StepFacts(), secrets())
    sql = actions[0].stdin or ""
    assert "CREATE DATABASE IF NOT EXISTS `keystone`;" in sql
    for host in ("localhost", "%"):
        assert f"CREATE USER IF NOT EXISTS 'keystone'@'{host}' IDENTIFIED BY 'KsDbPassw0rd';" \
            in sql
        assert f"GRANT ALL PRIVILEGES ON `keystone`.* TO 'keystone'@'{host}';" in sql
    assert "KsDbPassw0rd" not in actions[0].command


def test_database_partial_state_names_what_is_missing() -> None:
    partial = DatabaseState(True, frozenset({"localhost"}), frozenset(), frozenset())
    actions, _ = ops.decide_step(step(databases=(DB,)), StepFacts(databases={"keystone": partial}),
                                 secrets())
    assert actions[0].summary.endswith(
        "missing password @localhost, grant @localhost, user @%, grant @%")


def test_file_paths_must_be_absolute() -> None:
    bad = FileSpec("etc/x", "")
    with pytest.raises(OslabError, match="absolute"):
        ops.decide_step(step(files=(bad,)), StepFacts(), secrets())


# -- masking -------------------------------------------------------------------------------------


def test_secrets_substitute_and_mask() -> None:
    s = Secrets(PASSWORDS.__getitem__, known=["RootPassw0rd"])
    text = s.sub("login -p {password:admin} && echo RootPassw0rd")
    assert text == "login -p AdminPassw0rd && echo RootPassw0rd"
    assert s.mask(text) == "login -p *** && echo ***"


def test_plan_text_masks_passwords_and_hides_secret_files() -> None:
    secret = FileSpec("/root/admin-openrc", "export OS_PASSWORD=AdminPassw0rd\n", 0o600,
                      secret=True)
    st = StepDef(name="keystone.bootstrap", where=Where.CONTROLLER, title="Keystone admin",
                 files=(secret,), commands=(GUARD,), after=("mariadb.server",),
                 checkpoint="keystone")
    s = secrets()
    actions, reasons = ops.decide_step(st, ops.blank_facts(st), s)
    done = StepDef(name="base.packages", where=Where.ALL, title="Base", packages=("chrony",))
    plan = Plan("oslab", (NodePlan("controller", True, (
        planned_step(done, [], ["1 package installed"], s),
        planned_step(st, actions, reasons, s),
    )),))
    text = render(plan)
    assert text == """\
controller: 2 steps, 1 with changes, 2 commands (fresh: a blank node assumed)
   1. base.packages: Base
      no change: 1 package installed
   2. keystone.bootstrap: Keystone admin  [after mariadb.server]
      - upload /root/admin-openrc (0600, root:root, 33 bytes, content hidden): absent
      - run: bootstrap keystone (check fails)
          unless: openstack user show admin
          $ sh -s
          < {
            keystone-manage bootstrap --bootstrap-password ***
            } </dev/null
      then checkpoint auto-keystone (once every node has this step)

2 commands in all
"""
    assert "AdminPassw0rd" not in repr(plan)


# -- the step graph ------------------------------------------------------------------------------


def s(name: str, *after: str, checkpoint: str = "") -> StepDef:
    return StepDef(name=name, where=Where.ALL, title=name, after=after, checkpoint=checkpoint)


def test_unknown_after_is_refused() -> None:
    with pytest.raises(OslabError, match=r"step b \(on ctl\) waits for unknown step\(s\) nope"):
        graph.check({"ctl": [s("a"), s("b", "nope")]})


def test_cycle_across_nodes_is_refused_with_its_path() -> None:
    steps = {"ctl": [s("a", "y"), s("b")], "cmp": [s("x", "b"), s("y")]}
    with pytest.raises(OslabError, match="cycle") as err:
        graph.check(steps)
    msg = err.value.message
    for part in ("a (ctl)", "b (ctl)", "x (cmp)", "y (cmp)"):
        assert part in msg


def test_after_a_later_step_on_the_same_node_is_a_cycle() -> None:
    with pytest.raises(OslabError, match=r"a \(ctl\) -> b \(ctl\) -> a \(ctl\)"):
        graph.check({"ctl": [s("a", "b"), s("b")]})


def test_duplicate_name_on_a_node_is_refused_but_the_same_step_on_two_nodes_is_fine() -> None:
    with pytest.raises(OslabError, match="appears twice"):
        graph.check({"ctl": [s("a"), s("a")]})
    graph.check({"ctl": [s("a")], "cmp": [s("a"), s("b", "a")]})


def test_forced_from_closure() -> None:
    steps = {"ctl": [s("base"), s("conf"), s("init")],
             "cmp": [s("base"), s("compute", "init"), s("tail")],
             "cmp2": [s("base"), s("other")]}
    assert graph.forced_from(steps, "conf") == {
        ("ctl", "conf"), ("ctl", "init"), ("cmp", "compute"), ("cmp", "tail")}
    assert graph.forced_from(steps, "base") == {
        (n, x.name) for n, lst in steps.items() for x in lst}
    with pytest.raises(OslabError, match="no install step is named 'nope'"):
        graph.forced_from(steps, "nope")


def names(steps: dict[str, list[StepDef]]) -> dict[str, list[str]]:
    return {node: [x.name for x in lst] for node, lst in steps.items()}


UNTIL = {"ctl": [s("env.a"), s("db.x"), s("glance.k"), s("glance.i"), s("nova.api")],
         "cmp": [s("env.a"), s("nova.pkgs"), s("nova.compute", "nova.api"), s("tail")]}


@pytest.mark.parametrize(("name", "kept", "following"), [
    # a service: its steps and all that follow them, on cmp too (nova.compute waits for
    # nova.api, which comes after glance on ctl)
    ("glance", {"ctl": ["env.a", "db.x"], "cmp": ["env.a", "nova.pkgs"]},
     [("ctl", "glance.k")]),
    # a service on two nodes: its first step in the nodes' order comes next
    ("nova", {"ctl": ["env.a", "db.x", "glance.k", "glance.i"], "cmp": ["env.a"]},
     [("ctl", "nova.api")]),
    # one step, on the compute node only: the controller keeps everything
    ("nova.compute", {"ctl": ["env.a", "db.x", "glance.k", "glance.i", "nova.api"],
                      "cmp": ["env.a", "nova.pkgs"]}, [("cmp", "nova.compute")]),
    # a step on both nodes: nothing is left
    ("env.a", {"ctl": [], "cmp": []}, [("cmp", "env.a"), ("ctl", "env.a")]),
])
def test_until_keeps_what_comes_before(name: str, kept: dict[str, list[str]],
                                       following: list[tuple[str, str]]) -> None:
    steps, nxt = graph.until(UNTIL, name)
    assert names(steps) == kept
    assert nxt == following
    graph.check(steps)  # what is kept is a whole graph: no step waits for a cut one


@pytest.mark.parametrize("name", ["glanc", "glance.", "", "nova.compute.x"])
def test_until_refuses_what_names_nothing(name: str) -> None:
    with pytest.raises(OslabError, match="no install step or service is named") as info:
        graph.until(UNTIL, name)
    assert info.value.hint is not None
    assert info.value.hint.startswith("services: env, db, glance, nova, tail; steps: env.a, db.x")


# -- done markers --------------------------------------------------------------------------------


def test_done_marker_guard() -> None:
    g = markers.once("nova.db-sync", "sync the nova DB", "nova-manage db sync", timeout=900)
    assert g.check == "test -e /var/lib/oslab/done/nova.db-sync"
    assert g.run == ("{\nnova-manage db sync\n} && mkdir -p /var/lib/oslab/done && "
                     "touch /var/lib/oslab/done/nova.db-sync")
    assert g.timeout == 900
    with pytest.raises(OslabError, match="invalid done-marker name"):
        markers.once("../etc/passwd", "x", "true")


# -- Debian: apt-get without recommends, policy-rc.d, debconf --------------------------------

APT = ("trap 'rm -f /usr/sbin/policy-rc.d' EXIT && trap 'exit 129' HUP INT TERM && "
       "printf '%s' '#!/bin/sh\n# oslab: no service starts while packages install\nexit 101\n' "
       "> /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && "
       "export DEBIAN_FRONTEND=noninteractive && dpkg --configure -a && "
       "{ [ -n \"$(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' -mmin -60 -print "
       "-quit)\" ] || apt-get -o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confdef "
       "-o Dpkg::Options::=--force-confold update; } && "
       "{ apt-get -o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confdef "
       "-o Dpkg::Options::=--force-confold install -y --no-install-recommends b c+d || "
       "{ apt-get -o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confdef "
       "-o Dpkg::Options::=--force-confold update && "
       "apt-get -o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confdef "
       "-o Dpkg::Options::=--force-confold install -y --no-install-recommends b c+d; }; }")


def test_debian_installs_with_apt_without_recommends_and_service_starts() -> None:
    st = step(packages=("a", "b", "c+d"))
    actions, _ = ops.decide_step(st, StepFacts(missing=("b", "c+d")), secrets(),
                                 family=Family.DEBIAN)
    assert [(a.kind.value, a.command) for a in actions] == [("packages", APT)]
    assert actions[0].retries == debian.APT_RETRIES == 3
    assert actions[0].summary == "install b c+d"
    # EL is unchanged
    actions, _ = ops.decide_step(st, StepFacts(missing=("b",)), secrets())
    assert actions[0].command == "dnf -y install b"


def test_apt_command_is_valid_shell() -> None:
    subprocess.run(["bash", "-n", "-c", APT], check=True)
    if shutil.which("shellcheck"):
        subprocess.run(["shellcheck", "-s", "sh", "-"], input="#!/bin/sh\n" + APT + "\n",
                       text=True, check=True)


def test_debconf_selections_answer_every_question_false() -> None:
    text = debian.debconf_selections()
    lines = text.splitlines()
    assert len(lines) == len(debian.DEBCONF) == 29
    assert "keystone keystone/configure_db boolean false" in lines
    assert "nova-api novaapi/configure_db boolean false" in lines
    assert "neutron-metadata-agent neutron-metadata/configure boolean false" in lines
    assert "openstack-dashboard-apache horizon/activate_vhost boolean false" in lines
    assert all(line.endswith(" boolean false") and len(line.split()) == 4 for line in lines)
    assert text.endswith("\n")
    if shutil.which("debconf-set-selections"):  # Debian's own parser of this format
        subprocess.run(["debconf-set-selections", "--checkonly"], input=text, text=True,
                       check=True)
