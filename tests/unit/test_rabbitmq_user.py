"""The RabbitMQ user step's scripts (install/services/infra.py), run by ``sh`` exactly as the
engine builds them (``sh -s`` with the script on stdin), against a stand-in ``rabbitmqctl`` that
keeps its users in a JSON file the way ``export_definitions`` shows them.

The scripts ran against the real RabbitMQ 4.0 of the e2e controller too (absent -> check fails,
run -> check passes, a wrong password fails, a rerun replaces the user, and
``rabbitmqctl authenticate_user`` accepts the password): see the note on issue 9. This test
keeps the hash format and the shell logic from regressing in CI, and watches every process's
command line for the password while the scripts run.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import threading
from pathlib import Path

import pytest

from oslab.install import ops
from oslab.install.services.infra import RABBIT_CHECK, RABBIT_RUN
from tests.procfs import process_files

PASSWORD = "Zq7rabbitSecret24charsAb"

FAKE_RABBITMQCTL = """#!/usr/bin/env python3
import json, os, sys
db = os.environ["FAKE_RABBIT_DB"]
users = json.load(open(db)) if os.path.exists(db) else []
args = [a for a in sys.argv[1:] if a not in ("-q", "-s")]
def save():
    json.dump(users, open(db, "w"))
if args[:2] == ["export_definitions", "-"]:
    print(json.dumps({"rabbit_version": "4.0.5", "users": users}))
elif args == ["list_users"]:
    print("user\\ttags")
    for u in users:
        print(u["name"] + "\\t[]")
elif args[0] == "delete_user":
    users[:] = [u for u in users if u["name"] != args[1]]
    save()
elif args[0] == "add_user" and args[3:] == ["--pre-hashed-password"]:
    if any(u["name"] == args[1] for u in users):
        sys.exit("user already exists")
    users.append({"name": args[1], "password_hash": args[2],
                  "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": []})
    save()
else:
    sys.exit("unexpected: " + " ".join(sys.argv[1:]))
"""


def stored_hash(password: str, salt: bytes = b"\x01\x02\x03\x04") -> str:
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


@pytest.fixture
def rabbit(tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    tool = bin_dir / "rabbitmqctl"
    tool.write_text(FAKE_RABBITMQCTL)
    tool.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}",
            "FAKE_RABBIT_DB": str(tmp_path / "users.json")}


def run_as_engine(text: str, env: dict[str, str], seen: list[str]) -> int:
    """``text`` as the engine runs it, while every process's command line is watched."""
    secrets = ops.Secrets(lambda key: {"rabbit_openstack": PASSWORD}[key])
    command, stdin = ops.shell_run(text, "", secrets)
    assert command == ops.SCRIPT_SHELL and stdin is not None and PASSWORD in stdin
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            for _, cmdline in process_files("cmdline"):
                if PASSWORD.encode() in cmdline:
                    seen.append(cmdline.decode(errors="replace"))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        done = subprocess.run(["sh", "-c", command], input=stdin, text=True, env=env,
                              capture_output=True, timeout=60, check=False)
    finally:
        stop.set()
        watcher.join(10)
    return done.returncode


def test_check_fails_run_makes_it_pass_and_no_command_line_holds_the_password(
        rabbit: dict[str, str]) -> None:
    seen: list[str] = []
    assert run_as_engine(RABBIT_CHECK, rabbit, seen) == 1          # no user yet
    assert run_as_engine(RABBIT_RUN, rabbit, seen) == 0
    assert run_as_engine(RABBIT_CHECK, rabbit, seen) == 0
    users = json.loads(Path(rabbit["FAKE_RABBIT_DB"]).read_text())
    raw = base64.b64decode(users[0]["password_hash"])
    assert len(raw) == 4 + 32 and hashlib.sha256(raw[:4] + PASSWORD.encode()).digest() == raw[4:]
    assert seen == []


@pytest.mark.parametrize(("stored", "check_rc"), [
    (stored_hash(PASSWORD), 0),
    (stored_hash("another password"), 1),
])
def test_a_user_with_another_password_is_replaced(rabbit: dict[str, str], stored: str,
                                                   check_rc: int) -> None:
    Path(rabbit["FAKE_RABBIT_DB"]).write_text(json.dumps([
        {"name": "guest", "password_hash": stored_hash("guest"), "tags": []},
        {"name": "openstack", "password_hash": stored, "tags": []}]))
    seen: list[str] = []
    assert run_as_engine(RABBIT_CHECK, rabbit, seen) == check_rc
    assert run_as_engine(RABBIT_RUN, rabbit, seen) == 0
    assert run_as_engine(RABBIT_CHECK, rabbit, seen) == 0
    names = [u["name"] for u in json.loads(Path(rabbit["FAKE_RABBIT_DB"]).read_text())]
    assert sorted(names) == ["guest", "openstack"]

