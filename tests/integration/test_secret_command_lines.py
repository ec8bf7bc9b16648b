"""Keystone objects from the install content's own guarded command (``identity_objects``, which
runs ``oslab-identity`` in one Python process), run as the engine runs it (``sh -s`` with the
script on stdin) against a real Keystone 27 on 127.0.0.1: the check names what is missing, the
run makes it, a service user's password is on no command line while every process's command
line is watched for it, and the check then passes so a rerun does nothing.

Marked integration; it needs only loopback, so it also runs alone:
``pytest --noconftest -m '' tests/integration/test_secret_command_lines.py -p no:cacheprovider``.
"""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import pytest

from oslab.install import ops
from oslab.install.services._base import IDENTITY_TOOL, identity_objects
from tests.keystone import fixture
from tests.procfs import process_files

pytestmark = pytest.mark.integration


def watch_command_lines(needle: bytes, stop: threading.Event, seen: list[str]) -> None:
    """Read every process's command line until ``stop``; note those holding ``needle``."""
    while not stop.is_set():
        for _, cmdline in process_files("cmdline"):
            if needle in cmdline:
                seen.append(cmdline.replace(b"\0", b" ").decode())


TOOL = Path(__file__).resolve().parents[2] / "install" / "templates" / "keystone" / \
    "oslab-identity.py"


def test_identity_objects_made_in_one_process_without_a_password_on_a_command_line(
        tmp_path: Path) -> None:
    ks = fixture.start(tmp_path / "keystone")
    try:
        password = "Svc" + "x7Q2p" * 4
        secrets = ops.Secrets({"svc_glance": password}.__getitem__)
        objects = identity_objects(
            "glance", projects=(("service", "Service Project"),), roles=("member",),
            users=(("glance", "svc_glance", "service", "admin"),),
            services=(("glance", "image", "OpenStack Image", "http://127.0.0.1:9292"),))
        # the node's path of the tool is this repo's file here (python3 is the Keystone venv's)
        check_text = objects.check.replace(IDENTITY_TOOL, str(TOOL))
        run_text = objects.run.replace(IDENTITY_TOOL, str(TOOL))
        assert password not in check_text and "{password:svc_glance}" in run_text

        missing = subprocess.run(check_text, shell=True, env=ks.admin_env(), text=True,
                                 capture_output=True, timeout=300)
        assert missing.returncode == 1
        assert missing.stderr.strip() == (
            "missing: project service; user glance; "
            "role admin for user glance on project service; service glance (image); "
            "public endpoint of image: http://127.0.0.1:9292; "
            "internal endpoint of image: http://127.0.0.1:9292; "
            "admin endpoint of image: http://127.0.0.1:9292")

        command, stdin = ops.shell_run(run_text, "", secrets)  # env: the openrc's, below
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
        assert "created user glance" in result.stdout
        assert seen == []

        user_env = {**ks.admin_env(), "OS_USERNAME": "glance", "OS_PASSWORD": password,
                    "OS_PROJECT_NAME": "service"}
        token = ks.openstack("token", "issue", "-f", "value", "-c", "user_id", env=user_env)
        assert token.stdout.strip()
        endpoints = ks.openstack("endpoint", "list", "--service", "image", "-f", "value",
                                 "-c", "Interface", "-c", "URL").stdout.split("\n")
        assert sorted(e for e in endpoints if e) == [
            f"{i} http://127.0.0.1:9292" for i in ("admin", "internal", "public")]
        # everything is there now: the check passes, so a rerun does nothing
        again = subprocess.run(check_text, shell=True, env=ks.admin_env(), text=True,
                               capture_output=True, timeout=300)
        assert again.returncode == 0, again.stderr
    finally:
        ks.stop()
