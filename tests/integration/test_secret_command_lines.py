"""A service user's password reaches Keystone without being on any command line: the install
content's own guarded command (``keystone_user``) runs as the engine runs it (``sh -s`` with
the script on stdin), against a real Keystone 27 on 127.0.0.1, while every process's command
line is watched for the password.

Marked integration; it needs only loopback, so it also runs alone:
``pytest --noconftest -m '' tests/integration/test_secret_command_lines.py -p no:cacheprovider``.
"""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import pytest

from oslab.install import ops
from oslab.install.services._base import keystone_user
from tests.keystone import fixture

pytestmark = pytest.mark.integration


def watch_command_lines(needle: bytes, stop: threading.Event, seen: list[str]) -> None:
    """Read every process's command line until ``stop``; note those holding ``needle``."""
    while not stop.is_set():
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                if needle in cmdline.read_bytes():
                    seen.append(cmdline.read_bytes().replace(b"\0", b" ").decode())
            except OSError:
                continue


def test_keystone_user_password_is_on_no_command_line(tmp_path: Path) -> None:
    ks = fixture.start(tmp_path / "keystone")
    try:
        ks.openstack("project", "create", "--domain", "default", "service")
        password = "Svc" + "x7Q2p" * 4
        secrets = ops.Secrets({"db_glance_user": password}.__getitem__)
        create, _role = keystone_user("glance", "db_glance_user")
        command, stdin = ops.shell_run(create.run, "", secrets)  # env: the openrc's, below
        assert command == "sh -s" and stdin is not None and password in stdin
        stop, seen = threading.Event(), []
        watcher = threading.Thread(target=watch_command_lines,
                                   args=(password.encode(), stop, seen))
        watcher.start()
        try:
            result = subprocess.run(command.split(), input=stdin, env=ks.admin_env(),
                                    capture_output=True, text=True, timeout=300)
        finally:
            stop.set()
            watcher.join()
        assert result.returncode == 0, result.stderr
        assert seen == []
        user_env = {**ks.admin_env(), "OS_USERNAME": "glance", "OS_PASSWORD": password,
                    "OS_PROJECT_NAME": "service"}
        ks.openstack("role", "add", "--user", "glance", "--project", "service", "admin")
        token = ks.openstack("token", "issue", "-f", "value", "-c", "user_id", env=user_env)
        assert token.stdout.strip()
        # the check finds the user, so a rerun does nothing
        check, _ = ops.shell_run(create.check, "", secrets)
        assert subprocess.run(check, shell=True, env=ks.admin_env(),
                              timeout=120).returncode == 0
    finally:
        ks.stop()
