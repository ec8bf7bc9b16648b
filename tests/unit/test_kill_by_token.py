"""The script that stops a timed-out command on a node, run here by sh and by busybox sh: it
kills every process whose environment holds the command's token (children too), and no other."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest

from oslab.access.ssh import RUN_TOKEN_VAR, kill_by_token_script
from tests.procfs import process_files

SHELLS = [["sh", "-c"]] + ([["busybox", "sh", "-c"]] if shutil.which("busybox") else [])


def with_token(token: str) -> set[int]:
    wanted = f"{RUN_TOKEN_VAR}={token}".encode()
    return {pid for pid, environ in process_files("environ") if wanted in environ.split(b"\0")}


@pytest.mark.parametrize("shell", SHELLS, ids=lambda s: s[0])
def test_kills_the_command_and_its_children_and_nothing_else(shell: list[str]) -> None:
    token = f"t{os.getpid()}{shell[0]}"
    env = {**os.environ, RUN_TOKEN_VAR: token}
    command = subprocess.Popen(["sh", "-c", "sleep 300 & sleep 301; wait"], env=env)
    bystander = subprocess.Popen(["sleep", "300"])
    try:
        deadline = time.monotonic() + 10
        while len(with_token(token)) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(with_token(token)) == 3  # sh and its two sleeps
        done = subprocess.run([*shell, kill_by_token_script(token)], capture_output=True,
                              text=True, timeout=60, check=False)
        assert (done.returncode, done.stderr) == (0, "")
        assert command.wait(10) == -9
        deadline = time.monotonic() + 10
        while with_token(token) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert with_token(token) == set()
        assert bystander.poll() is None
    finally:
        for proc in (command, bystander):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
