"""The client server verify runs on the controller (install/templates/verify/oslab-osc.py), run
here for real: a server process, a Unix socket, callers passing their stdin, stdout and stderr.
Only the client library is a stand-in (a module that reports what it was given), because the
server's job is to hand a call to it unchanged and hand its answer back."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from oslab.install.verify.runner import (
    CLIENT_PIDFILE,
    CLIENT_SCRIPT,
    CLIENT_SERVED,
    CLIENT_SOCKET,
    client_script,
)

STANDIN = '''
import json, logging, os, sys, time
CALLS = []  # a call must not see an earlier one's state

def main(argv):
    if argv == ["complete"]:
        logging.getLogger().addHandler(logging.StreamHandler(sys.stderr))
        print("complete output")
        return 0
    logging.getLogger().addHandler(logging.StreamHandler(sys.stderr))
    CALLS.append(argv)
    with open(os.path.join(os.environ["PIDS"], str(os.getpid())), "w"):
        pass
    if argv[0] == "sleep":
        time.sleep(60)
    if argv[0] == "read":
        print(sys.stdin.read().upper())
        return 0
    logging.getLogger("client").error("said once")
    print(json.dumps({"args": argv, "calls": len(CALLS), "cwd": os.getcwd(),
                      "password": os.environ.get("OS_PASSWORD")}))
    return int(argv[1]) if argv[0] == "exit" else 0
'''

REAL = '#!/bin/sh\necho "real openstack $*"\n'


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Path]:
    """DIR with the script, DIR/bin/openstack, a real `openstack` elsewhere on PATH, and the
    stand-in client library on PYTHONPATH."""
    where = tmp_path / "osc"
    (where / "bin").mkdir(parents=True, mode=0o700)
    script = where / CLIENT_SCRIPT
    script.write_bytes(client_script())
    script.chmod(0o755)
    (where / "bin" / "openstack").symlink_to(f"../{CLIENT_SCRIPT}")
    lib = tmp_path / "lib" / "openstackclient"
    lib.mkdir(parents=True)
    (lib / "__init__.py").write_text("")
    (lib / "shell.py").write_text(STANDIN)
    real = tmp_path / "real"
    real.mkdir()
    (real / "openstack").write_text(REAL)
    (real / "openstack").chmod(0o755)
    (tmp_path / "pids").mkdir()
    yield where


def env(tmp_path: Path, where: Path, **extra: str) -> dict[str, str]:
    return {"PATH": f"{where}/bin:{tmp_path}/real:/usr/bin:/bin",
            "PYTHONPATH": str(tmp_path / "lib"), "PIDS": str(tmp_path / "pids"), **extra}


def call(tmp_path: Path, where: Path, *args: str, stdin: str = "",
         **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["openstack", *args], env=env(tmp_path, where, **extra),
                          cwd=tmp_path, input=stdin, capture_output=True, text=True,
                          timeout=30)


@pytest.fixture
def server(tmp_path: Path, client: Path) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen([sys.executable, str(client / CLIENT_SCRIPT), "serve", str(client)],
                            env=env(tmp_path, client), stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("oslab-osc: serving on ")
        yield proc
    finally:
        proc.kill()
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


def test_without_a_server_the_real_openstack_runs(tmp_path: Path, client: Path) -> None:
    done = call(tmp_path, client, "server", "list")
    assert (done.returncode, done.stdout) == (0, "real openstack server list\n")


def test_a_call_gets_the_callers_arguments_environment_directory_and_exit_code(
        tmp_path: Path, client: Path, server: subprocess.Popen[str]) -> None:
    done = call(tmp_path, client, "exit", "3", OS_PASSWORD="s3cret")
    assert done.returncode == 3
    answer = json.loads(done.stdout)
    assert answer == {"args": ["exit", "3"], "calls": 1, "cwd": str(tmp_path),
                      "password": "s3cret"}
    # the client's console handler says an error once, not once more for the warm-up's
    assert done.stderr == "said once\n"
    again = call(tmp_path, client, "server", "list")
    assert again.returncode == 0
    assert json.loads(again.stdout)["calls"] == 1  # each call starts from the loaded client
    assert json.loads(again.stdout)["password"] is None  # and from its caller's environment
    read = call(tmp_path, client, "read", stdin="from the caller's stdin")
    assert read.stdout == "FROM THE CALLER'S STDIN\n"
    assert (client / CLIENT_SERVED).read_text() == "3\n"  # what verify reports at its end


def test_a_caller_that_dies_ends_its_call(tmp_path: Path, client: Path,
                                          server: subprocess.Popen[str]) -> None:
    caller = subprocess.Popen(["openstack", "sleep"], env=env(tmp_path, client), cwd=tmp_path)
    pids = tmp_path / "pids"
    deadline = time.monotonic() + 20
    while not list(pids.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.1)
    (child,) = [int(p.name) for p in pids.iterdir()]
    caller.send_signal(signal.SIGKILL)
    caller.wait(10)
    deadline = time.monotonic() + 20
    while Path(f"/proc/{child}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not Path(f"/proc/{child}").exists(), "the call outlived its caller"
    assert server.poll() is None  # the server goes on
    assert call(tmp_path, client, "exit", "0").returncode == 0


def test_the_server_says_where_it_is(client: Path, server: subprocess.Popen[str]) -> None:
    assert int((client / CLIENT_PIDFILE).read_text()) == server.pid  # what the runner kills
    assert (client / CLIENT_SOCKET).is_socket()  # what the runner waits for
    assert not (client / CLIENT_SERVED).exists()  # no call yet
