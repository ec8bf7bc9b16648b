"""The RabbitMQ user step (install/services/infra.py), run by ``sh`` exactly as the engine builds
it (``sh -s`` with the script on stdin), against a stand-in ``rabbitmqctl`` that keeps its users
in a JSON file the way ``export_definitions`` shows them, logs every call, and reads a password
from stdin only when the real one would:

- RabbitMQ 3.9 (EL9 Epoxy's 3.9.21): no ``add_user --pre-hashed-password`` (new in 3.12.7);
  its ``rabbitmq-env`` runs ``erl -noinput -noshell``, the later flag wins, and stdin is read;
- RabbitMQ 4.0 (Debian 13's 4.0.5): its ``scripts/rabbitmqctl`` starts Erlang with ``-noinput``
  unless the command line is exactly ``add_user NAME`` (or ``add_user NAME
  --pre-hashed-password``) or ``change_password NAME``; a read from stdin then waits forever.
  The stand-in fails at once instead.

Every case also watches each process's command line for the password while the scripts run.
The user step's scripts ran against the real RabbitMQ 4.0 of the e2e controller in issue 9's
form; this test keeps the decisions, the hash format and the shell logic from regressing.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest

from oslab.access.ssh import Result
from oslab.distro import Family
from oslab.install import ops
from oslab.install.apply import StepFailed, StepRunner
from oslab.install.model import StepDef, Where
from oslab.install.services.infra import RABBIT_UNDECIDED, rabbit_user, rabbit_user_script
from tests.procfs import process_files

PASSWORD = "Zq7rabbitSecret24charsAb"
VERSIONS = ("3.9.21", "4.0.5")

FAKE_RABBITMQCTL = """#!/usr/bin/env python3
import base64, hashlib, json, os, sys, time
db, version = os.environ["FAKE_RABBIT_DB"], os.environ["FAKE_RABBIT_VERSION"]
fault = os.environ.get("FAKE_RABBIT_FAULT", "")
argv = sys.argv[1:]
with open(os.environ["FAKE_RABBIT_LOG"], "a") as f:
    f.write(json.dumps(argv) + "\\n")
state = json.load(open(db)) if os.path.exists(db) else {"users": [], "created": 0}
users = {u["name"]: u for u in state["users"]}
args = [a for a in argv if a not in ("-q", "-s")]
prehashed = "--pre-hashed-password" in args
rest = [a for a in args[1:] if a != "--pre-hashed-password"]

def fail(code, text):
    print(text, file=sys.stderr)
    sys.exit(code)

def save():
    state["users"] = list(users.values())
    json.dump(state, open(db, "w"))

def stdin_open():
    if version.startswith("3.9"):  # run_escript: erl -noinput -noshell, and -noshell wins
        return True
    if args[0] == "add_user":
        return len(argv) == 2 or (len(argv) == 3 and prehashed)
    return args[0] == "change_password" and len(argv) == 2

def password():
    if len(rest) > 1:
        return rest[1]
    if not stdin_open():
        fail(99, "stand-in: Erlang runs with -noinput here; the real rabbitmqctl waits forever")
    line = sys.stdin.readline()
    if not line.strip():
        fail(64, "Password is not provided via argument or stdin")
    return line.strip()

def hashed(secret):
    salt = os.urandom(4)
    return base64.b64encode(salt + hashlib.sha256(salt + secret.encode()).digest()).decode()

if fault == "slow":
    time.sleep(60)
if fault == "down":
    fail(69, "Error: unable to perform an operation on node 'rabbit@controller'.")
if args[:2] == ["export_definitions", "-"]:
    print("not json" if fault == "garbage" else
          json.dumps({"rabbit_version": version, "users": [
              {k: v for k, v in u.items() if k != "id"} for u in users.values()]}))
elif args[0] == "list_users":
    print("user\\ttags")
    for name in users:
        print(name + "\\t[]")
elif args[0] == "delete_user":
    users.pop(rest[0], None)
    save()
elif args[0] == "add_user":
    if prehashed and version.startswith("3.9"):
        fail(64, "Error: Invalid options for this command: --pre-hashed-password")
    secret = password()
    if rest[0] in users:
        fail(70, f'Error: User "{rest[0]}" already exists')
    state["created"] += 1
    users[rest[0]] = {"name": rest[0], "password_hash": secret if prehashed else hashed(secret),
                      "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": [],
                      "id": state["created"]}
    save()
elif args[0] == "change_password":
    secret = password()
    if rest[0] not in users:
        fail(67, f'Error: User "{rest[0]}" does not exist')
    users[rest[0]]["password_hash"] = hashed(secret)
    save()
else:
    fail(64, "stand-in: unexpected " + " ".join(argv))
"""


def stored_hash(password: str, salt: bytes = b"\x01\x02\x03\x04") -> str:
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def user(name: str, password: str, ident: int) -> dict[str, Any]:
    return {"name": name, "password_hash": stored_hash(password),
            "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": [], "id": ident}


@dataclass
class Rabbit:
    env: dict[str, str]
    db: Path
    log: Path

    def users(self) -> dict[str, dict[str, Any]]:
        return {u["name"]: u for u in json.loads(self.db.read_text())["users"]}

    def calls(self) -> list[list[str]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def verbs(self) -> list[str]:
        return [next(a for a in argv if not a.startswith("-")) for argv in self.calls()]


@pytest.fixture(params=VERSIONS)
def rabbit(tmp_path: Path, request: pytest.FixtureRequest) -> Rabbit:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    tool = bin_dir / "rabbitmqctl"
    tool.write_text(FAKE_RABBITMQCTL)
    tool.chmod(0o755)
    db, log = tmp_path / "users.json", tmp_path / "calls.log"
    db.write_text(json.dumps({"users": [user("guest", "guest", 1)], "created": 1}))
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_RABBIT_DB": str(db),
           "FAKE_RABBIT_LOG": str(log), "FAKE_RABBIT_VERSION": str(request.param)}
    return Rabbit(env, db, log)


def secrets() -> ops.Secrets:
    return ops.Secrets(lambda key: {"rabbit_openstack": PASSWORD}[key])


class Watch:
    """Every process's command line, scanned for the password while the scripts run."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.is_set():
            for _, cmdline in process_files("cmdline"):
                if PASSWORD.encode() in cmdline:
                    self.seen.append(cmdline.decode(errors="replace"))

    def __enter__(self) -> Watch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def run_as_engine(text: str, env: dict[str, str]) -> int:
    """``text`` as the engine runs it: ``sh -s`` with the script, passwords in, on stdin."""
    command, stdin = ops.shell_run(text, "", secrets())
    assert command == ops.SCRIPT_SHELL and stdin is not None and PASSWORD in stdin
    done = subprocess.run(["sh", "-c", command], input=stdin, text=True, env=env,
                          capture_output=True, timeout=90, check=False)
    return done.returncode


def password_is_right(entry: dict[str, Any]) -> bool:
    raw = base64.b64decode(entry["password_hash"])
    return len(raw) == 4 + 32 and hashlib.sha256(raw[:4] + PASSWORD.encode()).digest() == raw[4:]


RIGHT, OTHER = user("openstack", PASSWORD, 7), user("openstack", "another password", 7)
U = RABBIT_UNDECIDED
# (case, openstack before, fault, check's exit code, run's exit code, the run's rabbitmqctl calls)
CASES = [
    ("missing: added", None, "", 1, 0, ["export_definitions", "add_user"]),
    ("right password: nothing", RIGHT, "", 0, 0, ["export_definitions"]),
    ("another password: changed in place", OTHER, "", 1, 0,
     ["export_definitions", "change_password"]),
    ("rabbitmqctl fails: undecided, nothing", OTHER, "down", U, U, ["export_definitions"]),
    ("rabbitmqctl says garbage: undecided, nothing", OTHER, "garbage", U, U,
     ["export_definitions"]),
    ("rabbitmqctl times out: undecided, nothing", OTHER, "slow", U, U, ["export_definitions"]),
]


@pytest.mark.parametrize(("case", "before", "fault", "check_rc", "run_rc", "run_calls"), CASES,
                         ids=[c[0] for c in CASES])
def test_the_step_decides_from_the_fact_and_never_deletes_the_user(
        rabbit: Rabbit, case: str, before: dict[str, Any] | None, fault: str, check_rc: int,
        run_rc: int, run_calls: list[str]) -> None:
    if before is not None:
        rabbit.db.write_text(json.dumps({"users": [user("guest", "guest", 1), before],
                                         "created": 7}))
    env = {**rabbit.env, "FAKE_RABBIT_FAULT": fault}
    timeout = 2 if fault == "slow" else 240  # the stand-in sleeps 60 s
    with Watch() as watch:
        assert run_as_engine(rabbit_user_script("check", timeout), env) == check_rc
        checked = len(rabbit.calls())
        # the engine runs the run after a failed check, and any time under --from
        assert run_as_engine(rabbit_user_script("run", timeout), env) == run_rc
        assert rabbit.verbs()[checked:] == run_calls
        if not fault:
            assert run_as_engine(rabbit_user_script("check"), env) == 0
    assert watch.seen == []
    assert "delete_user" not in rabbit.verbs()
    users = rabbit.users()
    assert users["guest"] == user("guest", "guest", 1)
    if fault:
        assert users["openstack"] == before
    elif before is not None:  # the same user (no new one), with the lab's password
        assert users["openstack"]["id"] == before["id"] and password_is_right(users["openstack"])
    else:
        assert password_is_right(users["openstack"])


class LocalShell:
    """A NodeConn whose commands run in this host's ``sh`` (with the stand-in's environment)."""

    name = "controller"

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env

    def run(self, command: str, *, timeout: float, stdin: str | None = None,
            secrets: Sequence[str] = (), log: IO[str] | None = None) -> Result:
        done = subprocess.run(["sh", "-c", command], input=stdin or "", text=True, env=self.env,
                              capture_output=True, timeout=timeout, check=False)
        return Result(command, done.returncode, done.stdout, done.stderr)

    def put(self, path: str, data: bytes, *, timeout: float) -> None:
        raise AssertionError("the RabbitMQ user step uploads nothing")

    def close(self) -> None:
        pass


def user_step() -> StepDef:
    return StepDef(name="rabbitmq.user", where=Where.CONTROLLER, title="RabbitMQ user openstack",
                   commands=(rabbit_user("controller"),))


def test_the_engine_fails_the_step_when_rabbitmq_cannot_tell(rabbit: Rabbit) -> None:
    """What the boot storm did: the check could not ask RabbitMQ. The step fails with a hint,
    and no command that changes a user runs."""
    rabbit.db.write_text(json.dumps({"users": [RIGHT], "created": 7}))
    runner = StepRunner(LocalShell({**rabbit.env, "FAKE_RABBIT_FAULT": "down"}), secrets(),
                        family=Family.DEBIAN)
    with pytest.raises(StepFailed) as err:
        runner.run_step(user_step())
    assert err.value.returncode == RABBIT_UNDECIDED
    assert "unable to perform an operation on node" in err.value.message
    assert err.value.hint is not None and "nothing was changed" in err.value.hint
    assert "oslab ssh controller -- rabbitmqctl status" in err.value.hint
    assert rabbit.verbs() == ["export_definitions"]
    assert rabbit.users()["openstack"] == RIGHT


def test_the_engine_changes_another_password_in_place(rabbit: Rabbit) -> None:
    rabbit.db.write_text(json.dumps({"users": [OTHER], "created": 7}))
    runner = StepRunner(LocalShell(rabbit.env), secrets(), family=Family.DEBIAN)
    outcome = runner.run_step(user_step())
    assert outcome.changed
    assert rabbit.verbs() == ["export_definitions", "export_definitions", "change_password"]
    assert rabbit.users()["openstack"]["id"] == 7 and password_is_right(rabbit.users()["openstack"])
    assert not runner.run_step(user_step()).changed
