"""The install engine against the real SSH server of the test guest (busybox + OpenSSH).

The guest has no rpm, systemctl or mysql, so the steps here use only files and guarded
commands; what they exercise is real: SFTP upload to a temporary name, chown/chmod/rename by
the guest's busybox, exit codes and stderr over SSH, the node log, masking, parallel threads,
and resuming after ``kill -9`` from facts read on the node.
"""

from __future__ import annotations

import importlib.util
import io
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from oslab import preflight, spec_file
from oslab import spec as specmod
from oslab.access.state import LabState
from oslab.install.engine import Engine, RunResult, StepFailed
from oslab.install.model import FileSpec, Guarded, StepDef, Where
from oslab.report import Reporter
from tests.conftest import REPO, Lab

pytestmark = pytest.mark.integration


def lab_state(spec_path: Path, home: Path) -> tuple[specmod.LabSpec, LabState]:
    spec = spec_file.load(spec_path)
    return spec, LabState(spec.name, root=home / "state" / "oslab")


def make_engine(spec_path: Path, home: Path, steps: dict[str, list[StepDef]],
                screen: io.StringIO | None = None) -> Engine:
    spec, state = lab_state(spec_path, home)
    targets = {n.name: state.spec_target(n) for n in spec.nodes}
    reporter = Reporter(stream=screen if screen is not None else sys.stderr,
                        logs={n.name: state.log_path(n.name) for n in spec.nodes})
    return Engine(spec, state, targets, steps, reporter=reporter, retry_delay=0.5)


def engine(lab: Lab, steps: dict[str, list[StepDef]],
           screen: io.StringIO | None = None) -> Engine:
    return make_engine(lab.spec_path, lab.home, steps, screen)


def changed(result: RunResult) -> dict[str, dict[str, bool]]:
    return {n.node: {s.step: s.changed for s in n.steps} for n in result.nodes}


def step(name: str, **kw: object) -> StepDef:
    return StepDef(name=name, where=Where.ALL, title=f"itest {name}", **kw)  # type: ignore[arg-type]


# -- files ---------------------------------------------------------------------------------------


def test_upload_sets_mode_and_owner_and_a_second_run_changes_nothing(lab: Lab) -> None:
    a = FileSpec("/root/itest/files/a.conf", "alpha = 1\n", 0o640, "nobody", "users")
    b = FileSpec("/root/itest/files/sub/dir/b.txt", "beta\n", 0o600)
    steps = {"ctl": [step("files", files=(a, b))]}
    screen = io.StringIO()
    first = engine(lab, steps, screen).run()
    assert changed(first) == {"ctl": {"files": True}}
    assert first.change_count == 2
    assert lab.sh("ctl", f"stat -c '%a %U %G' {a.path}") == "640 nobody users"
    assert lab.sh("ctl", f"stat -c '%a %U %G' {b.path}") == "600 root root"
    assert lab.sh("ctl", f"cat {a.path}") == "alpha = 1"
    # uploaded to a temporary name, then renamed: nothing is left behind
    assert "oslab-new" not in lab.sh("ctl", "ls -A /root/itest/files /root/itest/files/sub/dir")

    second = engine(lab, steps, screen).run()
    assert second.change_count == 0 and changed(second) == {"ctl": {"files": False}}
    assert "files: changed (2 commands)" in screen.getvalue()
    assert "files: no change" in screen.getvalue()

    # a wrong mode is put right without an upload; changed content is uploaded again
    lab.sh("ctl", f"chmod 666 {a.path}; echo tampered > {b.path}")
    third = engine(lab, steps).run()
    assert third.change_count == 2
    assert lab.sh("ctl", f"stat -c '%a %U %G' {a.path}") == "640 nobody users"
    assert lab.sh("ctl", f"cat {b.path}") == "beta"
    assert engine(lab, steps).run().change_count == 0


# -- failures ------------------------------------------------------------------------------------


def test_failing_command_is_reported_with_exit_code_and_stderr(lab: Lab) -> None:
    steps = {"cmp1": [
        step("before", commands=(Guarded("ok", "false", "mkdir -p /root/itest/fail"),)),
        step("fails", commands=(Guarded(
            "a command that fails", "false",
            "echo on-stdout; echo boom-on-stderr >&2; exit 7"),)),
        step("never", commands=(Guarded("never runs", "false", "touch /root/itest/fail/x"),)),
    ]}
    with pytest.raises(StepFailed) as err:
        engine(lab, steps).run()
    exc = err.value
    assert (exc.node, exc.step, exc.returncode) == ("cmp1", "fails", 7)
    assert "cmp1: step fails: command failed with exit code 7" in exc.message
    assert "exit 7" in exc.message and "boom-on-stderr" in exc.message
    assert exc.hint is not None and "cmp1.log" in exc.hint
    assert lab.run("ssh", "cmp1", "--", "test -e /root/itest/fail/x",
                   check=False).returncode == 1


def test_a_command_that_outlives_its_timeout_is_stopped_on_the_node(lab: Lab) -> None:
    """Closing the channel does not stop a command (no pty): the engine kills it by its token,
    children and a script fed on stdin included, and says so."""
    hang = "sleep 997 & sleep 998; wait"
    steps = {"cmp1": [step("hangs", commands=(Guarded("hangs", "false", hang, timeout=5),))]}
    start = time.monotonic()
    with pytest.raises(StepFailed) as err:
        engine(lab, steps).run()
    assert time.monotonic() - start < 60
    assert "timed out after 5s; stopped it on the node" in err.value.message
    # neither sleep is left (the guest's busybox has no pgrep: read every command line)
    procs = lab.sh("cmp1", "for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < $f; echo; done")
    assert "sleep 99" not in procs, procs


# -- secrets -------------------------------------------------------------------------------------


def test_a_secret_never_reaches_the_node_log_nor_the_screen(lab: Lab) -> None:
    _, state = lab_state(lab.spec_path, lab.home)
    pw = state.password("itest_secret")
    secret_file = FileSpec("/root/itest/secret.conf", f"password = {pw}\n", 0o600, secret=True)
    steps = {"ctl": [
        step("secret.use", files=(secret_file,), commands=(Guarded(
            "use the secret", "false",
            "echo using {password:itest_secret}; echo also {password:itest_secret} >&2"),)),
        step("secret.fail", commands=(Guarded(
            "fail with the secret", "false", "echo bad {password:itest_secret} >&2; exit 3"),)),
    ]}
    screen = io.StringIO()
    with pytest.raises(StepFailed) as err:
        engine(lab, steps, screen).run()
    # the node got the real value
    assert lab.sh("ctl", "cat /root/itest/secret.conf") == f"password = {pw}"
    log = state.log_path("ctl").read_text()
    for text in (log, screen.getvalue(), str(err.value)):
        assert pw not in text
    assert "using ***" in log and "also ***" in log and "bad ***" in str(err.value)
    assert "echo bad *** >&2; exit 3" in err.value.command
    plan = engine(lab, steps).plan()
    assert pw not in repr(plan)


# -- resume after kill -9 ------------------------------------------------------------------------

RESUME = "/root/itest/resume"


def resume_steps() -> dict[str, list[StepDef]]:
    return {"ctl": [
        step("r.first", files=(FileSpec(f"{RESUME}/first.txt", "first\n"),)),
        step("r.slow", commands=(Guarded("slow", f"test -e {RESUME}/slow.done",
                                         f"sleep 8 && touch {RESUME}/slow.done"),)),
        step("r.last", files=(FileSpec(f"{RESUME}/last.txt", "last\n"),)),
    ]}


def drive(spec_path: str, home: str) -> None:
    """The engine in a subprocess (the test kills it with SIGKILL)."""
    make_engine(Path(spec_path), Path(home), resume_steps()).run()


def test_resume_after_kill_9(lab: Lab) -> None:
    code = "import sys; from tests.integration.test_engine import drive; drive(*sys.argv[1:])"
    proc = subprocess.Popen([sys.executable, "-c", code, str(lab.spec_path), str(lab.home)],
                            cwd=REPO, env=lab.env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.put(line)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    seen = ""
    try:
        deadline = time.monotonic() + 120
        while "r.slow: itest r.slow" not in seen and time.monotonic() < deadline:
            try:
                seen += lines.get(timeout=1)
            except queue.Empty:
                continue
        assert "r.slow: itest r.slow" in seen, seen
        time.sleep(1.5)  # inside the slow command (8 s)
        assert proc.poll() is None, "the run ended before the kill"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
        reader.join(10)
        assert proc.stderr is not None
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    assert "r.first: changed" in seen
    assert lab.run("ssh", "ctl", "--", f"test -e {RESUME}/last.txt", check=False).returncode == 1

    again = engine(lab, resume_steps()).run()
    assert changed(again) == {"ctl": {"r.first": False, "r.slow": True, "r.last": True}}
    assert lab.sh("ctl", f"cat {RESUME}/last.txt") == "last"
    assert engine(lab, resume_steps()).run().change_count == 0


# -- parallel ------------------------------------------------------------------------------------


def test_steps_on_two_nodes_run_in_parallel(lab: Lab) -> None:
    window = ("mkdir -p /root/itest/par && date +%s > /root/itest/par/start && sleep 5 && "
              "date +%s > /root/itest/par/end")
    steps = {n: [step("par.window", commands=(Guarded("a 5 s window", "false", window),))]
             for n in ("ctl", "cmp1")}
    start = time.monotonic()
    result = engine(lab, steps).run()
    elapsed = time.monotonic() - start
    assert result.change_count == 2
    starts = [int(lab.sh(n, "cat /root/itest/par/start")) for n in ("ctl", "cmp1")]
    ends = [int(lab.sh(n, "cat /root/itest/par/end")) for n in ("ctl", "cmp1")]
    # the two windows overlap (node clocks), and the run took less than two windows (host clock)
    assert max(starts) < min(ends), (starts, ends)
    assert elapsed < 9.5, elapsed


# -- `oslab plan` on the running lab -------------------------------------------------------------


@pytest.mark.skipif(importlib.util.find_spec("oslab.install.services") is None,
                    reason="the install content (oslab.install.services) is not there yet")
def test_plan_reads_facts_from_the_running_nodes(lab: Lab) -> None:
    out = lab.run("plan", "--node", "cmp1").stdout
    assert "facts read from the nodes now" in out
    # a node's own vmx/svm answer counts only when this host runs the nodes with kvm
    host, _ = preflight.choose_virt_type()
    assert ("(read on each compute node)" if host.virt_type == "kvm"
            else "cmp1=qemu (this host runs the nodes under qemu)") in out
    # the guest has no rpm: the fact cannot be read, and the plan says so instead of failing
    assert "cannot read the installed packages" in out
    assert "cmp1: " in out and "ctl: " not in out
