"""The engine end to end on simulated nodes: each ``SimNode`` answers the facts' commands from
its own little state (packages, files, services, databases) and applies the engine's commands
to it, the way a node would. So a second run must change nothing, a failure must stop the run,
``after`` must order steps across nodes, and secrets must never reach the log or the screen.
The real thing (SSH, SFTP, a real shell) is tests/integration/test_engine.py."""

from __future__ import annotations

import io
import re
import shlex
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pytest

from oslab import spec as specmod
from oslab import spec_file
from oslab.access.ssh import Result, Target, mask
from oslab.access.state import LabState
from oslab.errors import OslabError
from oslab.install import ops
from oslab.install.boot import BOOT_STATE, BOOT_WAIT
from oslab.install.engine import Engine, StepFailed
from oslab.install.model import Database, FileSpec, Guarded, StepDef, Where
from oslab.report import Reporter
from tests.conftest import lab_spec_text

Handler = Callable[["SimNode"], tuple[int, str, str]]


@dataclass
class SimFile:
    content: bytes
    mode: int = 0o644
    owner: str = "root"
    group: str = "root"


@dataclass
class Tracker:
    """Shared by every SimNode: the order of events, and how many commands run right now."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    events: list[tuple[float, str, str, str]] = field(default_factory=list)
    inflight: int = 0

    def add(self, node: str, what: str, command: str) -> None:
        with self.lock:
            self.events.append((time.monotonic(), node, what, command))


class SimNode:
    """A fake node: answers recorded-style output for the facts' commands, applies actions."""

    def __init__(self, name: str, tracker: Tracker) -> None:
        self.name = name
        self.tracker = tracker
        self.packages: set[str] = set()
        self.files: dict[str, SimFile] = {}
        self.services: dict[str, list[str]] = {}
        self.dbs: set[str] = set()
        self.users = {"root", "demo", "nobody"}
        self.mysql_up = True
        self.fail_dnf = 0
        self.handlers: dict[str, Handler] = {}
        self.calls: list[tuple[str, str | None, float]] = []
        self.puts: list[str] = []

    # NodeConn
    def run(self, command: str, *, timeout: float, stdin: str | None = None,
            secrets: Sequence[str] = (), log: IO[str] | None = None) -> Result:
        self.calls.append((command, stdin, timeout))
        with self.tracker.lock:
            self.tracker.inflight += 1
        self.tracker.add(self.name, "start", command)
        try:
            rc, out, err = self.answer(command, stdin)
        finally:
            self.tracker.add(self.name, "end", command)
            with self.tracker.lock:
                self.tracker.inflight -= 1
        if log is not None:
            log.write(f"$ {mask(command, secrets)}\n")
            for line in out.splitlines():
                log.write(mask(line, secrets) + "\n")
            for line in err.splitlines():
                log.write("! " + mask(line, secrets) + "\n")
            log.write(f"# exit {rc}\n")
        return Result(mask(command, secrets), rc, out, mask(err, secrets))

    def put(self, path: str, data: bytes, *, timeout: float) -> None:
        assert timeout > 0
        self.puts.append(path)
        self.files[path] = SimFile(data, 0o600)

    def close(self) -> None:
        pass

    # the simulation
    def commands(self) -> list[str]:
        """The commands that change something (not the facts' reads)."""
        reads = ("rpm -q", "if [ -e ", "for u in ", "mkdir -p ", "test -e ", "head -c ",
                 BOOT_STATE)
        return [c for c, stdin, _ in self.calls
                if not c.startswith(reads) and not (stdin or "").startswith("SELECT")]

    def answer(self, command: str, stdin: str | None) -> tuple[int, str, str]:
        if command == ops.SCRIPT_SHELL:  # a script holding a password, on stdin
            assert stdin is not None and stdin.startswith("{\n")
            return self.answer(stdin.removeprefix("{\n").removesuffix("\n} </dev/null\n"), None)
        if command in self.handlers:
            return self.handlers[command](self)
        t = shlex.split(command) if not command.startswith("{\n") else []
        if command.startswith("rpm -q --whatprovides "):
            missing = [n for n in t[3:] if n not in self.packages]
            out = "".join(f"package {n} is not installed\n" if n in missing
                          else f"{n}-1.0-1.el9.x86_64\n" for n in t[3:])
            return len(missing), out, ""
        if command.startswith("if [ -e "):
            f = self.files.get(t[3])
            if f is None:
                return 0, "absent\n", ""
            return 0, (f"{ops.sha256(f.content.decode())}  {t[3]}\n"
                       f"{f.mode:o} {f.owner} {f.group}\n"), ""
        if command.startswith("mkdir -p "):
            return 0, "", ""
        if command.startswith("{ chown "):
            owner, group = t[2].split(":")
            tmp, mode, dest = t[3], int(t[6], 8), t[12].rstrip(";")
            if owner not in self.users or group not in self.users:
                self.files.pop(tmp, None)
                return 1, "", f"chown: invalid group: '{owner}:{group}'\n"
            f = self.files.pop(tmp)
            self.files[dest] = SimFile(f.content, mode, owner, group)
            return 0, "", ""
        if command.startswith("chown "):
            owner, group = t[1].split(":")
            f = self.files[t[2]]
            f.owner, f.group, f.mode = owner, group, int(t[5], 8)
            return 0, "", ""
        if command.startswith("dnf -y install "):
            if self.fail_dnf:
                self.fail_dnf -= 1
                return 1, "", "Errors during downloading metadata for repository 'appstream'\n"
            self.packages.update(t[3:])
            return 0, "", ""
        if command.startswith("for u in "):
            names = []
            for word in t[3:]:
                names.append(word.rstrip(";"))
                if word.endswith(";"):
                    break
            out = "".join(f"{n}|{self.services.get(n, ['', 'inactive'])[0]}|"
                          f"{self.services.get(n, ['', 'inactive'])[1]}\n" for n in names)
            return 0, out, ""
        if command.startswith("systemctl "):
            for part in command.split(" && "):
                verb, *rest = shlex.split(part)[1:]
                unit = rest[-1]
                state = self.services.setdefault(unit, ["disabled", "inactive"])
                if verb == "enable":
                    state[0] = "enabled"
                if verb in ("start", "restart") or "--now" in rest:
                    state[1] = "active"
            return 0, "", ""
        if command == "mysql -N -B":
            assert stdin is not None
            if not self.mysql_up:
                return 1, "", "ERROR 2002 (HY000): Can't connect to local MySQL server\n"
            if stdin.startswith("SELECT"):
                name = re.search(r"SCHEMA_NAME = '(\w+)'", stdin).group(1)  # type: ignore[union-attr]
                if name in self.dbs:
                    return 0, "db 1\nuser localhost ok\nuser % ok\ngrant localhost\ngrant %\n", ""
                return 0, "db 0\n", ""
            self.dbs.add(re.search(r"`(\w+)`", stdin).group(1))  # type: ignore[union-attr]
            return 0, "", ""
        if m := re.fullmatch(r"head -c \d+ (\S+)", command):
            f = self.files.get(m.group(1))
            return (0, f.content.decode(), "") if f else (1, "", "head: No such file\n")
        if m := re.fullmatch(r"test -e (\S+)", command):
            return (0 if m.group(1) in self.files else 1), "", ""
        if m := re.fullmatch(r"touch (\S+)", command):
            self.files.setdefault(m.group(1), SimFile(b""))
            return 0, "", ""
        if m := re.fullmatch(r"exit (\d+)", command):
            return int(m.group(1)), "", ""
        return 127, "", f"sim: unknown command: {command}\n"


# -- the lab -------------------------------------------------------------------------------------

CONF = FileSpec("/etc/demo/demo.conf", "[DEFAULT]\nx = 1\n", 0o640, "root", "demo")
SECRET = FileSpec("/root/openrc", "export OS_PASSWORD={}\n", 0o600, secret=True)


def st(name: str, title: str = "", **kw: object) -> StepDef:
    return StepDef(name=name, where=Where.ALL, title=title or f"the {name} step",
                   **kw)  # type: ignore[arg-type]


@dataclass
class World:
    spec: specmod.LabSpec
    state: LabState
    tracker: Tracker
    nodes: dict[str, SimNode]
    screen: io.StringIO

    def engine(self, steps: dict[str, list[StepDef]], **kw: object) -> Engine:
        targets = {n: Target(n, "192.0.2.1", "ssh-ed25519 AAAA", Path("/nonexistent"))
                   for n in self.nodes}
        reporter = Reporter(stream=self.screen,
                            logs={n: self.state.log_path(n) for n in self.nodes})
        return Engine(self.spec, self.state, targets, steps, reporter=reporter,
                      connect=lambda t: self.nodes[t.name], retry_delay=0.01,
                      **kw)  # type: ignore[arg-type]

    def log(self, node: str) -> str:
        return self.state.log_path(node).read_text()


@pytest.fixture
def world(tmp_path: Path) -> World:
    spec = spec_file.parse(lab_spec_text("tst", "/x.iso", 2, 70), source="test")
    state = LabState("tst", root=tmp_path / "state")
    tracker = Tracker()
    return World(spec, state, tracker, {n: SimNode(n, tracker) for n in ("ctl", "cmp1")},
                 io.StringIO())


def demo_steps(world: World) -> dict[str, list[StepDef]]:
    admin = world.state.password("admin")
    secret = FileSpec(SECRET.path, SECRET.content.format(admin), SECRET.mode, secret=True)
    return {
        "ctl": [st("base", packages=("chrony", "python3-openstackclient")),
                st("conf", files=(CONF, secret), services=("demo",)),
                st("db", databases=(Database("demo", "demo", "demo_db"),)),
                st("init", commands=(Guarded("init demo", "test -e /var/lib/demo/init",
                                             "touch /var/lib/demo/init"),))],
        "cmp1": [st("base", packages=("chrony",)),
                 st("compute", files=(FileSpec("/etc/demo/compute.conf", "c\n"),),
                    services=("demo-compute",), after=("init",))],
    }


# -- tests ---------------------------------------------------------------------------------------


def test_first_run_does_everything_in_order_and_second_run_nothing(world: World) -> None:
    steps = demo_steps(world)
    first = world.engine(steps).run()
    ctl = world.nodes["ctl"]
    assert ctl.commands() == [
        "dnf -y install chrony python3-openstackclient",
        ops.finalize_command(CONF),
        ops.finalize_command(steps["ctl"][1].files[1]),
        "systemctl enable demo && systemctl restart demo",
        "mysql -N -B",
        "touch /var/lib/demo/init",
    ]
    assert ctl.files[CONF.path] == SimFile(CONF.content.encode(), 0o640, "root", "demo")
    assert ctl.files["/root/openrc"].mode == 0o600
    assert ctl.puts == ["/etc/demo/.demo.conf.oslab-new", "/root/.openrc.oslab-new"]
    assert not [p for p in ctl.files if p.endswith(ops.TEMP_SUFFIX)]
    assert ctl.dbs == {"demo"} and ctl.services["demo"] == ["enabled", "active"]
    counts = {n.node: (n.changed_steps, n.commands) for n in first.nodes}
    assert counts == {"ctl": (4, 6), "cmp1": (2, 3)}
    assert first.change_count == 9
    # every command had a timeout
    assert all(timeout > 0 for node in world.nodes.values() for _, _, timeout in node.calls)

    for node in world.nodes.values():
        node.calls.clear()
    second = world.engine(steps).run()
    assert second.change_count == 0 and second.changed_steps == 0
    assert all(node.commands() == [] for node in world.nodes.values())
    screen = world.screen.getvalue()
    assert screen.count("no change in") == 6
    assert re.search(r"ctl\s+conf: changed \(3 commands\) in \d+\.\ds", screen)


def test_a_file_edited_on_the_node_is_replaced_and_each_option_reported(world: World) -> None:
    """After `up --until`, a user wrote demo.conf by hand: the next run puts oslab's back and
    says, option by option, what it fixed and dropped; it never shows a password."""
    steps = demo_steps(world)
    world.engine(steps).run()
    ctl = world.nodes["ctl"]
    ctl.files[CONF.path].content = b"[DEFAULT]\nx = 2\nextra = yes\n"
    admin = world.state.password("admin")
    ctl.files[SECRET.path].content = f"export OS_PASSWORD={admin}x\n".encode()
    again = world.engine(steps).run()
    edits = [line for n in again.nodes for s in n.steps for line in s.edits]
    assert edits == [
        "/etc/demo/demo.conf: [DEFAULT] extra: yours 'yes', not kept: oslab writes this file "
        "whole (`oslab render` shows it)",
        "/etc/demo/demo.conf: [DEFAULT] x: yours '2', fixed to '1'",
        "/root/openrc: replaced (2 lines differ from oslab's)",
    ]
    assert ctl.files[CONF.path].content == CONF.content.encode()
    log = world.log("ctl")
    assert "changed: /etc/demo/demo.conf: [DEFAULT] x: yours '2', fixed to '1'" in log
    assert admin not in log  # the node's own text is not logged


def test_after_waits_for_the_step_on_the_other_node(world: World) -> None:
    steps = demo_steps(world)
    ctl = world.nodes["ctl"]
    # make ctl slow, so cmp1 would run its compute step first if it did not wait
    def slow_init(n: SimNode) -> tuple[int, str, str]:
        time.sleep(0.3)
        n.files["/var/lib/demo/init"] = SimFile(b"")
        return 0, "", ""

    ctl.handlers["touch /var/lib/demo/init"] = slow_init
    world.engine(steps).run()
    ev = world.tracker.events
    init_end = next(t for t, node, what, c in ev
                    if node == "ctl" and what == "end" and c == "touch /var/lib/demo/init")
    compute_start = min(t for t, node, what, c in ev
                        if node == "cmp1" and "compute.conf" in c)
    assert compute_start >= init_end


def test_nodes_run_in_parallel(world: World) -> None:
    barrier = threading.Barrier(2, timeout=5)

    def meet(n: SimNode) -> tuple[int, str, str]:
        barrier.wait()  # both nodes must be inside their step at the same time
        return 0, "", ""

    steps = {n: [st("meet", commands=(Guarded("meet", "exit 1", f"meet-{n}"),))]
             for n in world.nodes}
    for n, node in world.nodes.items():
        node.handlers[f"meet-{n}"] = meet
    result = world.engine(steps).run()
    assert result.change_count == 2


def test_failure_stops_the_run_and_says_where_what_and_why(world: World) -> None:
    steps = demo_steps(world)
    ctl, cmp1 = world.nodes["ctl"], world.nodes["cmp1"]
    ctl.users.discard("demo")  # chown root:demo fails on ctl
    failed_at = threading.Event()
    in_dnf = threading.Event()

    def slow_dnf(n: SimNode) -> tuple[int, str, str]:
        in_dnf.set()
        failed_at.wait(5)
        time.sleep(0.2)  # the failure is recorded meanwhile
        n.packages.add("chrony")
        return 0, "", ""

    cmp1.handlers["dnf -y install chrony"] = slow_dnf
    original = ctl.answer

    def answer(command: str, stdin: str | None) -> tuple[int, str, str]:
        if not command.startswith("{ chown root:demo"):
            return original(command, stdin)
        in_dnf.wait(5)  # fail while cmp1 is inside its dnf
        out = original(command, stdin)
        failed_at.set()
        return out

    ctl.answer = answer  # type: ignore[method-assign]
    with pytest.raises(StepFailed) as err:
        world.engine(steps).run()
    exc = err.value
    assert (exc.node, exc.step, exc.returncode) == ("ctl", "conf", 1)
    assert exc.command == ops.finalize_command(CONF)
    assert "ctl: step conf: command failed with exit code 1" in exc.message
    assert "chown: invalid group: 'root:demo'" in exc.message
    assert exc.hint is not None and "rerun `oslab up`" in exc.hint
    assert str(world.state.log_path("ctl")) in exc.hint
    # cmp1 finished its running command (dnf) and started nothing after it
    assert cmp1.calls[-1][0] == "dnf -y install chrony"
    assert not any("compute.conf" in c for c, _, _ in cmp1.calls)
    # ctl ran nothing after the failed command
    assert ctl.calls[-1][0] == ops.finalize_command(CONF)

    # fixed: the rerun continues; done steps are "no change"
    ctl.users.add("demo")
    for node in world.nodes.values():
        node.calls.clear()
    result = world.engine(steps).run()
    by = {n.node: {s.step: s.changed for s in n.steps} for n in result.nodes}
    assert by["ctl"] == {"base": False, "conf": True, "db": True, "init": True}
    assert by["cmp1"] == {"base": False, "compute": True}


def test_secrets_never_reach_the_log_or_the_screen(world: World) -> None:
    pw = world.state.password("demo_admin")
    root = world.state.password("root")  # a lab password used nowhere in the steps
    cmd = f"configure --password {pw}"
    world.nodes["ctl"].handlers[cmd] = lambda n: (
        3, f"using {pw} and {root}\n", f"error: {pw} rejected\n")
    steps = {"ctl": [st("secret", title=f"uses {pw}", commands=(
        Guarded("configure", "exit 1", "configure --password {password:demo_admin}"),))]}
    with pytest.raises(StepFailed) as err:
        world.engine(steps).run()
    text = world.log("ctl") + world.screen.getvalue() + str(err.value)
    assert pw not in text and root not in text
    assert "configure --password ***" in world.log("ctl")
    assert "using *** and ***" in world.log("ctl")
    assert "error: *** rejected" in str(err.value)
    assert err.value.command == "configure --password ***"  # the script, not just `sh -s`
    plan = world.engine(steps).plan(fresh=True)
    assert pw not in repr(plan) and "configure --password ***" in repr(plan)


def test_dnf_is_retried_with_backoff_then_gives_up(world: World) -> None:
    steps = {"ctl": [st("base", packages=("chrony",))]}
    ctl = world.nodes["ctl"]
    ctl.fail_dnf = 2
    world.engine(steps).run()
    assert ctl.commands() == ["dnf -y install chrony"] * 3
    assert world.log("ctl").count("retrying in") == 2

    ctl.packages.clear()
    ctl.calls.clear()
    ctl.fail_dnf = 99
    with pytest.raises(StepFailed, match="appstream"):
        world.engine(steps).run()
    assert ctl.commands() == ["dnf -y install chrony"] * (1 + ops.DNF_RETRIES)


def test_checkpoint_after_the_step_finished_everywhere_with_no_command_in_flight(
        world: World) -> None:
    taken: list[tuple[str, int, set[str]]] = []

    class Sink:
        def take(self, phase: str, description: str = "") -> object:
            with world.tracker.lock:
                inflight = world.tracker.inflight
            done_on = {n for n, node in world.nodes.items()
                       if "chrony" in node.packages}
            taken.append((phase, inflight, done_on))
            return None

        def hint(self) -> str | None:
            return "the last checkpoint is auto-base: `oslab revert auto-base` returns to it"

    steps = demo_steps(world)
    steps["ctl"][0] = st("base", packages=("chrony", "python3-openstackclient"),
                         checkpoint="base")
    steps["cmp1"][0] = st("base", packages=("chrony",), checkpoint="base")
    result = world.engine(steps, checkpoints=Sink()).run()
    assert taken == [("base", 0, {"ctl", "cmp1"})]
    assert result.checkpoints == ["base"]

    # nothing changed: no new checkpoint
    assert world.engine(steps, checkpoints=Sink()).run().checkpoints == []
    assert len(taken) == 1

    # a later failure's hint says how to go back
    world.nodes["ctl"].dbs.clear()
    world.nodes["ctl"].mysql_up = False
    with pytest.raises(StepFailed) as err:
        world.engine(steps, checkpoints=Sink()).run()
    assert "oslab revert auto-base" in (err.value.hint or "")
    assert "Can't connect" in err.value.message


def test_from_step_reruns_it_and_everything_after_it(world: World) -> None:
    steps = demo_steps(world)
    world.engine(steps).run()
    for node in world.nodes.values():
        node.calls.clear()
    result = world.engine(steps).run(from_step="conf")
    ctl, cmp1 = world.nodes["ctl"], world.nodes["cmp1"]
    assert ctl.commands() == [
        ops.finalize_command(CONF),
        ops.finalize_command(steps["ctl"][1].files[1]),
        "systemctl restart demo",
        "mysql -N -B",
        "touch /var/lib/demo/init",  # its check passes, but it is forced
    ]
    # the guarded command ran without its check being read
    assert ("test -e /var/lib/demo/init", None) not in [(c, s) for c, s, _ in ctl.calls]
    assert cmp1.commands() == [ops.finalize_command(steps["cmp1"][1].files[0]),
                               "systemctl restart demo-compute"]
    by = {n.node: {s.step: s.changed for s in n.steps} for n in result.nodes}
    assert by == {"ctl": {"base": False, "conf": True, "db": True, "init": True},
                  "cmp1": {"base": False, "compute": True}}
    assert "(forced by --from)" in world.screen.getvalue()
    with pytest.raises(OslabError, match="no install step is named 'nope'"):
        world.engine(steps).run(from_step="nope")


def test_plan_fresh_needs_no_node_and_live_plan_reads_facts(world: World) -> None:
    steps = demo_steps(world)

    def no_ssh(t: Target) -> SimNode:
        raise AssertionError("a fresh plan must not connect")

    eng = Engine(world.spec, world.state, {}, steps, reporter=Reporter(quiet=True),
                 connect=no_ssh)
    fresh = eng.plan(fresh=True)
    assert [n.node for n in fresh.nodes] == ["ctl", "cmp1"] and all(n.fresh for n in fresh.nodes)
    assert fresh.changes == 9
    assert [s.name for s in eng.plan(node="cmp1", fresh=True).nodes[0].steps] == [
        "base", "compute"]

    world.nodes["ctl"].mysql_up = False
    live = world.engine(steps).plan()
    ctl_steps = {s.name: s for s in live.nodes[0].steps}
    assert not live.nodes[0].fresh
    assert "Can't connect to local MySQL server; assuming not done" in ctl_steps["db"].notes[0]
    assert [a.summary for a in ctl_steps["base"].actions] == [
        "install chrony python3-openstackclient"]
    assert world.nodes["ctl"].commands() == [], "a plan changes nothing"

    world.nodes["ctl"].mysql_up = True
    world.engine(steps).run()
    assert world.engine(steps).plan().changes == 0


def test_engine_refuses_bad_graphs_and_unknown_nodes(world: World) -> None:
    with pytest.raises(OslabError, match="waits for unknown step"):
        world.engine({"ctl": [st("a", after=("b",))]})
    with pytest.raises(OslabError, match="cycle"):
        world.engine({"ctl": [st("a", after=("b",))], "cmp1": [st("b", after=("a",))]})
    with pytest.raises(OslabError, match="unknown node"):
        world.engine({"nope": [st("a")]})


def test_two_checkpoints_due_at_once_are_taken_one_after_the_other(world: World) -> None:
    active: list[int] = [0]
    taken: list[str] = []
    lock = threading.Lock()

    class Sink:
        def take(self, phase: str, description: str = "") -> object:
            with lock:
                active[0] += 1
                assert active[0] == 1, "two checkpoints at once"
            time.sleep(0.1)
            with lock:
                active[0] -= 1
                taken.append(phase)
            return None

        def hint(self) -> str | None:
            return None

    steps = {n: [st(f"x{n}", checkpoint=f"cp-{n}",
                    commands=(Guarded("x", "exit 1", f"touch /x-{n}"),))] for n in world.nodes}
    result = world.engine(steps, checkpoints=Sink()).run()
    assert sorted(taken) == ["cp-cmp1", "cp-ctl"] and sorted(result.checkpoints) == sorted(taken)


@pytest.mark.parametrize(("state", "waits"), [("starting", True), ("initializing", True),
                                              ("running", False), ("degraded", False),
                                              ("", False)])
def test_a_node_still_booting_is_waited_for_before_its_first_step(world: World, state: str,
                                                                  waits: bool) -> None:

    ctl = world.nodes["ctl"]
    ctl.handlers[BOOT_STATE] = lambda n: (0, state + "\n", "")
    ctl.handlers[BOOT_WAIT] = lambda n: (0, "degraded\n", "")
    world.engine(demo_steps(world)).run()
    sent = [c for c, _, _ in ctl.calls]
    assert sent[0] == BOOT_STATE
    assert (BOOT_WAIT in sent) == waits
    if waits:
        assert sent[1] == BOOT_WAIT, "the wait comes before any step's command"
        screen = world.screen.getvalue()
        assert f"its boot is still under way (systemd: {state})" in screen
        assert re.search(r"its boot finished after \d+s \(systemd: degraded\)", screen)
    assert BOOT_WAIT not in [c for c, _, _ in world.nodes["cmp1"].calls]
