"""One error boundary: libvirt and paramiko errors are translated where they enter (real
libvirt test driver, real paramiko against loopback sockets), and `oslab` prints ``error:`` and
``hint:`` lines with no traceback unless --debug is given."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import click
import libvirt
import pytest

from oslab import cli_boundary
from oslab.access.ssh import Session, SSHError, Target, reachable
from oslab.access.state import LabState
from oslab.cli_boundary import Exit
from oslab.errors import Failed, OslabError
from oslab.provisioning.provisioner import combined
from oslab.virt.lab_objects import LabObjects, VirtError, libvirt_calls


def oslab(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, XDG_STATE_HOME=str(tmp_path / "state"),
               XDG_CACHE_HOME=str(tmp_path / "cache"))
    return subprocess.run([sys.executable, "-m", "oslab", *args], env=env, text=True,
                          capture_output=True, timeout=60, stdin=subprocess.DEVNULL,
                          cwd=tmp_path)


# -- libvirt -------------------------------------------------------------------------------------


def test_a_libvirt_error_says_what_oslab_was_doing() -> None:
    conn = libvirt.open("test:///default")
    with pytest.raises(VirtError) as info, libvirt_calls("starting node x"):
        conn.lookupByName("test").create()  # already running: libvirt refuses
    assert info.value.message.startswith("libvirt failed while starting node x: ")
    assert "already running" in info.value.message
    assert info.value.hint == ("`oslab status` shows the lab's objects; rerun the command to "
                               "continue")


def test_lab_objects_translate_errors_of_a_closed_connection() -> None:
    conn = libvirt.open("test:///default")
    conn.close()
    with pytest.raises(VirtError, match=r"^libvirt failed while listing domains: "):
        LabObjects(conn, "lab").domains()


def test_parallel_failures_are_all_kept() -> None:
    bug = KeyError("node")
    error = combined([OslabError("a: no SSH"), bug], hint="see the logs")
    assert str(error).splitlines()[:2] == ["a: no SSH", "KeyError: 'node'"]
    assert error.__cause__ is bug
    single = OslabError("only")
    assert combined([single], hint="x") is single


# -- paramiko ------------------------------------------------------------------------------------


@pytest.fixture
def lab_keys(tmp_path: Path) -> LabState:
    state = LabState("lab", root=tmp_path / "state")
    state.ssh_key()
    state.host_key("n1")
    return state


def target(state: LabState, port: int) -> Target:
    t = state.target("n1", "127.0.0.1")
    assert t is not None
    return Target(t.name, t.address, t.host_key, t.key_path, port=port)


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port that accepts connections and never says anything."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    yield srv.getsockname()[1]
    srv.close()


@pytest.fixture
def garbage_port() -> Iterator[int]:
    """A loopback port that answers with something that is not SSH, then hangs up."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)

    def serve() -> None:
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            c.sendall(b"HTTP/1.0 400 Bad Request\r\n\r\n")
            c.close()
    threading.Thread(target=serve, daemon=True).start()
    yield srv.getsockname()[1]
    srv.close()


def test_refused_connection_is_an_ssh_error(lab_keys: LabState, closed_port: int) -> None:
    with pytest.raises(SSHError) as info:
        Session(target(lab_keys, closed_port), connect_timeout=2)
    assert info.value.message == "n1: no SSH at 127.0.0.1: Connection refused"
    assert info.value.hint is not None and "oslab status" in info.value.hint


def test_a_node_that_never_answers_times_out(lab_keys: LabState, silent_port: int) -> None:
    start = time.monotonic()
    with pytest.raises(SSHError) as info:
        Session(target(lab_keys, silent_port), connect_timeout=1)
    assert time.monotonic() - start < 10
    assert info.value.message.startswith("n1: no SSH at 127.0.0.1: ")
    # never paramiko's "No existing session" (what it says when the handshake did not finish;
    # on a loaded host its banner timeout may say it first instead)
    assert "No existing session" not in info.value.message
    ok, why = reachable(target(lab_keys, silent_port), timeout=1)
    assert not ok and why.startswith("no SSH at 127.0.0.1: ")


def test_a_failed_handshake_prints_no_traceback(lab_keys: LabState, silent_port: int) -> None:
    """paramiko's transport thread logs a failed handshake with its traceback; in a process
    without logging set up (as `oslab` runs; pytest's own log capture would hide it here),
    nothing of it reaches stderr: oslab's exception says it once."""
    t = target(lab_keys, silent_port)
    code = ("from pathlib import Path; from oslab.access.ssh import Session, SSHError, Target\n"
            f"t = Target({t.name!r}, {t.address!r}, {t.host_key!r}, Path({str(t.key_path)!r}), "
            f"port={t.port})\n"
            "try:\n    Session(t, connect_timeout=1)\n"
            "except SSHError as exc:\n    print(exc.message)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.stdout.startswith("n1: no SSH at 127.0.0.1: "), done.stdout
    assert "Traceback" not in done.stderr and "banner" not in done.stderr, done.stderr


def test_a_peer_that_is_not_ssh(lab_keys: LabState, garbage_port: int) -> None:
    with pytest.raises(SSHError, match=r"^n1: no SSH at 127.0.0.1: "):
        Session(target(lab_keys, garbage_port), connect_timeout=2)


def test_a_truncated_lab_key_is_named(lab_keys: LabState, closed_port: int) -> None:
    key = lab_keys.dir / "id_ed25519"
    key.write_bytes(key.read_bytes()[:60])
    with pytest.raises(SSHError) as info:
        Session(target(lab_keys, closed_port), connect_timeout=2)
    assert info.value.message.startswith(f"cannot read the lab's SSH key {key}: ")


def test_a_damaged_pinned_host_key_is_named(lab_keys: LabState, closed_port: int) -> None:
    t = target(lab_keys, closed_port)
    bad = Target(t.name, t.address, "ssh-ed25519 AAAA!!!", t.key_path, port=closed_port)
    with pytest.raises(SSHError, match=r"^n1: the pinned host key is not an OpenSSH public key"):
        Session(bad)


def test_only_lab_ssh_imports_paramiko() -> None:
    root = Path(__file__).resolve().parents[2]
    users = sorted(str(p.relative_to(root)) for folder in ("lab", "install", "networks",
                                                            "kickstart")
                   for p in (root / folder).rglob("*.py") if "paramiko" in p.read_text()
                   .replace("paramiko's", "").replace("(paramiko)", ""))
    assert users == ["lab/access/ssh.py"]


# -- the boundary --------------------------------------------------------------------------------


def test_usage_errors_get_error_and_hint(tmp_path: Path) -> None:
    result = oslab(tmp_path, "up", "--stage", "nope")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "error: Invalid value for '--stage': 'nope' is not one of 'provision', 'install', "
        "'verify', 'all'.",
        "hint: `oslab up --help` lists the arguments and options"]


def test_debug_shows_the_traceback_and_only_then(tmp_path: Path) -> None:
    uri = "qemu+unix:///system?socket=/nonexistent/sock"
    plain = oslab(tmp_path, "--uri", uri, "--lab", "x", "status")
    assert plain.returncode == 2
    assert plain.stderr.startswith(f"error: cannot connect to libvirt at {uri}: ")
    assert "Traceback" not in plain.stderr
    debug = oslab(tmp_path, "--debug", "--uri", uri, "--lab", "x", "status")
    assert "Traceback (most recent call last)" in debug.stderr
    assert "oslab.errors.HostError: cannot connect to libvirt" in debug.stderr
    assert debug.returncode != 0


def test_importing_oslab_has_no_side_effects() -> None:
    code = ("import libvirt, oslab.cli, oslab.virt.lab_objects, oslab.provisioning.provisioner,"
            " oslab.__main__\n"
            "seen = []\n"
            "libvirt.registerErrorHandler(lambda c, e: seen.append(e), None)\n"
            "import importlib; importlib.reload(oslab.virt.lab_objects)\n"
            "try:\n    libvirt.open('test:///nonexistent-file.xml')\nexcept libvirt.libvirtError:"
            "\n    pass\n"
            "print(len(seen))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() != "0"  # our handler still runs: importing did not replace it


def test_a_handshake_that_never_finished_is_said_plainly() -> None:
    from oslab.access.ssh import _describe

    exc = Exception("No existing session")  # as paramiko.SSHException says it
    assert _describe(exc, 10.0) == ("it accepted the connection but did not finish the SSH "
                                    "handshake within 10s (a node that is still booting, or "
                                    "overloaded, answers slowly)")
    assert _describe(exc) == "No existing session"  # not a handshake: paramiko's words


def _raising(exc: BaseException) -> click.Group:
    @click.group()
    def group() -> None:
        pass

    @group.command()
    def go() -> None:
        raise exc

    return group


EXITS = [
    ("a check found the lab not working", Failed("verification failed", hint="rows"),
     Exit.FAILED, "error: verification failed"),
    ("a refusal with a hint", OslabError("lab x is stopped", hint="start it"), Exit.ERROR,
     "error: lab x is stopped"),
    ("a file the host refused", PermissionError(13, "Permission denied", "/x"), Exit.ERROR,
     "error: /x: Permission denied"),
    ("a bug", KeyError("k"), Exit.BUG, "error: internal error: KeyError: 'k'"),
    ("Ctrl-C", KeyboardInterrupt(), Exit.INTERRUPTED, "aborted"),
]


@pytest.mark.parametrize("case", EXITS, ids=[c[0] for c in EXITS])
def test_the_exit_code_table(case: tuple[object, ...],
                             capsys: pytest.CaptureFixture[str]) -> None:
    _id, exc, code, said = case
    with pytest.raises(SystemExit) as info:
        cli_boundary.run(_raising(exc), ["go"])  # type: ignore[arg-type]
    assert info.value.code == code
    assert said in capsys.readouterr().err
    assert [int(e) for e in Exit] == [0, 1, 2, 70, 130, 141]
