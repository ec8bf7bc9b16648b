"""The runner of the checks: :class:`Lab` (what the checks need of a lab), their
:class:`Timeouts`, and :class:`CheckRunner`, the plumbing every check uses.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from shlex import quote

from oslab.access.ssh import NodeConn, Result
from oslab.errors import OslabError
from oslab.install import openrc
from oslab.install.instance_image import CIRROS, InstanceImage
from oslab.install.services.layer import Layer, layer_for
from oslab.install.verify.api import ServiceApi
from oslab.install.verify.checklist import EXPECTED_SERVICES
from oslab.install.verify.connections import (
    GuestConnect,
    HttpGet,
    HttpSession,
    WebConnect,
    http_get,
)
from oslab.install.verify.ledger import Created, Ledger
from oslab.install.verify.parsers import explain, field_of
from oslab.install.verify.results import CheckFailed, Report, Row, Status, Verdict
from oslab.spec import LabSpec


def osc(who: str, args: str, openrc_dir: str = openrc.REMOTE_DIR,
        client_dir: str | None = None) -> str:
    """The shell command for ``openstack ARGS`` as ``who`` (admin or demo); with
    ``client_dir``, through the client server there (:data:`CLIENT_SCRIPT`), which runs the
    real ``openstack`` itself until it answers."""
    path = f"PATH={client_dir}/bin:$PATH " if client_dir else ""
    return f". {openrc_dir}/{openrc.credentials(who).filename} && {path}openstack {args}"


# The client server on the controller (package data): one import of the client for the whole
# run instead of one per call. Under TCG that is 40-50 s of every `openstack` call.
CLIENT_SCRIPT = "oslab-osc.py"
CLIENT_SOCKET = "osc.sock"  # the server binds it once the client is loaded
CLIENT_SERVED = "osc.served"  # how many calls it took, rewritten after each
CLIENT_PIDFILE = "osc.pid"  # the server's pid, for stop_client
CLIENT_LOG = "serve.log"  # the server's own output
# root's alone (the calls' environment holds the password); not under /run, which Debian and
# EL mount noexec, so a shim there is skipped by PATH lookup
CLIENT_DIR = "/var/lib/oslab/verify"


def client_script() -> bytes:
    return (resources.files("oslab.install") / "templates" / "verify" / CLIENT_SCRIPT
            ).read_bytes()


# what the client says of a resource that does not exist
GONE = re.compile(r"No \S+ found|not found|could not be found|404|does not exist|No .* exists",
                  re.I)
# nova (from cinder) to a detach of a volume that is not in use and attached
NOT_ATTACHED = re.compile(r"Unable to detach volume\. Volume status must be 'in-use'", re.I)
# a volume in these states cannot be deleted yet
VOLUME_BUSY = ("attaching", "detaching", "in-use", "reserved")
PROGRESS = 60.0  # a wait longer than this says what it waits for, this often


@dataclass(frozen=True)
class Timeouts:
    command: float = 180.0
    image_active: float = 300.0
    server_active: float = 600.0
    boot: float = 900.0  # login prompt on the console (qemu without KVM is slow)
    reach: float = 180.0  # ping and SSH after the login prompt
    volume: float = 180.0
    delete: float = 300.0
    # a service or agent that just (re)started reports down until its first heartbeat; under
    # TCG cinder-volume's LVM driver alone took 2.5 min to initialise on the e2e controller
    settle: float = 300.0
    poll: float = 5.0

    @classmethod
    def under(cls, virt: str) -> Timeouts:
        """The timeouts for a controller that ``systemd-detect-virt`` says runs under ``virt``.
        Under qemu's TCG one CLI call on the busy e2e controller outlasted 180 s (``router add
        subnet``, nothing else running on the host), and a delete took 90 s. A volume attach
        took about 4 min there: cinder-volume exports the iSCSI target through its rootwrap,
        and nova's first attachment update timed out (cinder-api's RPC call, 60 s). And after
        `oslab up` restarted cinder, cinder-volume reported up after 308 s, beyond the 300 s
        settle (CI's VM ran beside the lab)."""
        if virt == "qemu":
            return cls(command=600.0, delete=600.0, volume=600.0, settle=600.0)
        return cls()


@dataclass
class Lab:
    """What the verifier needs of a lab; :func:`verify_lab` builds it for a real one."""

    spec: LabSpec
    controller: NodeConn
    computes: Mapping[str, NodeConn]  # compute node name -> runner (for nova-compute's log)
    host: NodeConn  # the host side of the provider network (ping)
    guest: GuestConnect  # SSH into the instance as the image's user with the lab key
    image: Callable[[], Path]  # the image file on the host (cirros downloaded once, verified)
    public_key: str  # the lab's SSH public key, for the keypair
    instance: InstanceImage = CIRROS  # what the image is: its label, user, format, minimums
    secrets: Sequence[str] = ()
    http: HttpGet = http_get
    web: WebConnect = HttpSession  # a browser's session, for the dashboard login
    demo_password: str = ""  # the dashboard login's; without it that row is skipped
    openrc_dir: str = openrc.REMOTE_DIR
    client_dir: str | None = None  # run the client server there (CLIENT_DIR on a real lab)
    # the services rows' listings over REST from this host, instead of the client on the
    # controller (`oslab start` and `resume`: only the services rows then run)
    api: ServiceApi | None = None
    ledger_path: Path | None = None
    expected: Mapping[str, str] = field(default_factory=lambda: dict(EXPECTED_SERVICES))
    timeouts: Timeouts = field(default_factory=Timeouts)
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    say: Callable[[str], None] = lambda _line: None


class CheckRunner:
    """The plumbing of a verification run: commands on the nodes, one timed row per check,
    the ledger of what the checks create, and the cleanup before and after the run. The
    checks themselves are in :mod:`.health` and :mod:`.cloud`."""

    def __init__(self, lab: Lab, keep: bool = False) -> None:
        self.lab = lab
        self.keep = keep
        self.report = Report()
        self.ledger = Ledger(lab.ledger_path)
        self.t = lab.timeouts
        self.ids: dict[str, str] = {}
        self.failed_groups: set[str] = set()
        self._guest: NodeConn | None = None

    # -- plumbing --

    @property
    def layer(self) -> Layer:
        """The unit and path names of the lab's distro family (for the hints)."""
        return layer_for(self.lab.spec.distro)

    def sh(self, command: str, timeout: float | None = None,
           node: NodeConn | None = None) -> Result:
        runner = node if node is not None else self.lab.controller
        try:
            return runner.run(command, timeout=timeout or self.t.command,
                              secrets=self.lab.secrets)
        except OslabError as exc:
            return Result(command, -1, "", exc.message)

    def osc(self, who: str, args: str) -> str:
        return osc(who, args, self.lab.openrc_dir, self.lab.client_dir)

    def start_client(self) -> None:
        """Start the client server on the controller and wait (bounded) until it answers: it
        loads the client once, a minute or more under TCG, about what one call costs. If it
        cannot start, or does not answer in time, the calls run ``openstack`` themselves."""
        where = self.lab.client_dir
        if where is None:
            return
        made = self.launch_client(where)
        if not made.ok:
            self.lab.say(f"verify: no client server on the controller ({made.stderr.strip()}"
                         "): each `openstack` call loads the client itself")
            return
        self.lab.say("verify: loading the client on the controller once (a minute or more "
                     "under TCG)")
        start = self.lab.clock()
        if self.wait("the client server on the controller to answer", self.t.command,
                     lambda: self.sh(f"test -S {quote(f'{where}/{CLIENT_SOCKET}')}").ok):
            self.lab.say(f"verify: the client server answers after "
                         f"{self.lab.clock() - start:.0f}s")
        else:
            self.lab.say(f"verify: the client server did not answer in {self.t.command:.0f}s "
                         f"(see {where}/{CLIENT_LOG}): calls load the client themselves until "
                         "it does")

    def launch_client(self, where: str) -> Result:
        """Put the server and its ``openstack`` shim in ``where`` and start it in the
        background; the first command that failed, if one did."""
        script, shim = f"{where}/{CLIENT_SCRIPT}", f"{where}/bin/openstack"
        made = self.sh(f"rm -rf {quote(where)} && mkdir -p {quote(os.path.dirname(where))} && "
                       f"mkdir -m 0700 {quote(where)} {quote(where + '/bin')}")
        if not made.ok:
            return made
        try:
            self.lab.controller.put(script, client_script(), timeout=self.t.command)
        except OslabError as exc:
            return Result("put", 1, "", exc.message)
        # the shim must be what `openstack` finds (a noexec mount would skip it silently)
        return self.sh(f"chmod 0755 {quote(script)} && ln -s ../{CLIENT_SCRIPT} {quote(shim)} "
                       f'&& test "$(PATH={quote(where + "/bin")}:$PATH command -v openstack)" '
                       f"= {quote(shim)} && (setsid python3 {quote(script)} serve {quote(where)} "
                       f"</dev/null >{quote(f'{where}/{CLIENT_LOG}')} 2>&1 &)")

    def stop_client(self) -> None:
        """Stop the client server, say how many calls it served, and remove its directory."""
        where = self.lab.client_dir
        if where is None:
            return
        served = self.sh(f"cat {quote(f'{where}/{CLIENT_SERVED}')}")
        if served.ok and served.stdout.strip().isdigit():
            self.lab.say(f"verify: {served.stdout.strip()} `openstack` calls went through the "
                         "client server")
        pidfile = quote(f"{where}/{CLIENT_PIDFILE}")
        self.sh(f"test ! -f {pidfile} || kill $(cat {pidfile}) 2>/dev/null; rm -rf {quote(where)}")

    def openstack(self, args: str, who: str = openrc.ADMIN, what: str = "",
                  timeout: float | None = None) -> str:
        """Run ``openstack ARGS`` as ``who``; its stdout, or CheckFailed explaining why not."""
        result = self.sh(self.osc(who, args), timeout)
        if not result.ok:
            raise explain(result, what or f"openstack {args.split(' -f ')[0]}", self.layer)
        return result.stdout

    def poll(self, what: str, timeout: float, args: str, who: str,
             done: Callable[[str], bool], *, waiting: str) -> tuple[bool, str]:
        """Ask ``openstack ARGS`` as ``who`` (the call named ``what`` in errors) until
        ``done(answer)`` or ``timeout`` passes, saying it is ``waiting`` for that; whether it
        got there, and the last answer. A call that fails counts as "not yet" (under TCG one
        show on the loaded e2e controller outlasted its 180 s while the server built) and the
        poll's own deadline decides; if no call ever answered, the last failure is raised.
        ``done`` may raise CheckFailed (a state that will not change)."""
        last: list[str | None] = [None]
        error = [CheckFailed(f"{what}: never asked", "")]

        def probe() -> bool:
            try:
                out = self.openstack(args, who, what)
            except CheckFailed as exc:
                error[0] = exc
                return False
            last[0] = out
            return done(out)

        ok = self.wait(waiting, timeout, probe)
        if last[0] is None:
            raise error[0]
        return ok, last[0]

    def wait(self, what: str, timeout: float, probe: Callable[[], bool],
             now: Callable[[], str] = lambda: "") -> bool:
        """Call ``probe`` until it returns True or ``timeout`` passes (bounded poll). A wait
        that lasts says so every :data:`PROGRESS` seconds, naming ``what`` it waits for, and
        where things are ``now`` if that says anything."""
        start = self.lab.clock()
        said = 0
        while True:
            if probe():
                return True
            waited = self.lab.clock() - start
            if waited >= timeout:
                return False
            if waited >= (said + 1) * PROGRESS:
                said = int(waited // PROGRESS)
                state = now()
                self.lab.say(f"verify: still waiting for {what} ({waited:.0f}s of "
                             f"{timeout:.0f}s)" + (f": {state}" if state else ""))
            self.lab.sleep(self.t.poll)

    def until(self, what: str, timeout: float, verdict: Callable[[], Verdict],
              prefix: str = "") -> Verdict:
        """Ask ``verdict`` until it is ok or ``timeout`` passes (a service that just started
        reports down), saying it waits for ``what`` and what the last verdict said; the
        passing verdict, else CheckFailed with the last one."""
        last = [Verdict(False, "not asked")]

        def ok() -> bool:
            last[0] = verdict()
            return last[0].ok

        if not self.wait(what, timeout, ok, lambda: last[0].details):
            raise CheckFailed(prefix + last[0].details, last[0].hint)
        return last[0]

    @contextlib.contextmanager
    def row(self, name: str, group: str) -> Iterator[list[str]]:
        """Time one check; ``details`` (a list the body appends to) becomes the row's text.
        A CheckFailed makes the row FAIL and marks the group failed."""
        details: list[str] = []
        start = self.lab.clock()
        self.lab.say(f"verify: {name} ...")
        try:
            yield details
        except CheckFailed as exc:
            self._add(Row(name, Status.FAIL, self.lab.clock() - start, exc.details, exc.hint))
            self.failed_groups.add(group)
        except OslabError as exc:
            self._add(Row(name, Status.FAIL, self.lab.clock() - start, exc.message,
                          exc.hint or ""))
            self.failed_groups.add(group)
        else:
            self._add(Row(name, Status.PASS, self.lab.clock() - start, "; ".join(details)))

    def _add(self, row: Row) -> None:
        self.report.rows.append(row)
        self.lab.say(f"verify: {row.name}: {row.status.value} ({row.seconds:.1f}s)"
                     + (f" {row.details}" if row.details else ""))

    def skip(self, name: str, why: str) -> None:
        self._add(Row(name, Status.SKIP, 0.0, why))

    def needs(self, name: str, group: str, *required: str) -> bool:
        failed = [g for g in required if g in self.failed_groups]
        if failed:
            self.skip(name, f"needs {', '.join(failed)}")
            self.failed_groups.add(group)
            return False
        return True

    def create(self, kind: str, args: str, who: str, delete: str, what: str = "") -> str:
        """``openstack ARGS -f json`` that creates a resource; record it; return its id."""
        out = self.openstack(f"{args} -f json", who, what or f"create {kind}")
        ref = str(field_of(out, "id", f"create {kind}"))
        self.ledger.add(Created(kind, ref, who, delete.format(id=ref)))
        return ref

    def record(self, kind: str, ref: str, who: str, delete: str) -> None:
        self.ledger.add(Created(kind, ref, who, delete))

    # -- cleanup before and after the run --

    def earlier(self) -> list[Created]:
        """What an earlier run left behind (it died, or ran with --keep), from its ledger;
        one that cannot be read is an error (:func:`.ledger.damaged`), before any check."""
        path = self.lab.ledger_path
        return Ledger.load(path) if path is not None else []

    def sweep(self, old: Sequence[Created]) -> None:
        """Remove what an earlier run left behind."""
        path = self.lab.ledger_path
        if not old:
            return
        start = self.lab.clock()
        self.lab.say(f"verify: an earlier run left {len(old)} resources in the cloud: "
                     "deleting them first")
        left = self.teardown(list(reversed(old)))
        if path is not None:
            path.unlink(missing_ok=True)
        if left:
            self._add(Row("cleanup of an earlier run", Status.FAIL, self.lab.clock() - start,
                          "could not delete: " + ", ".join(left),
                          "delete them by hand (openstack ... delete), then rerun"))
        else:
            self._add(Row("cleanup of an earlier run", Status.PASS, self.lab.clock() - start,
                          f"{len(old)} resources removed"))

    def teardown(self, items: Sequence[Created]) -> list[str]:
        """Delete ``items`` in the given order; a resource already gone counts as deleted.
        Returns what could not be deleted."""
        left: list[str] = []
        for n, item in enumerate(items, 1):
            # one delete may take minutes under TCG: say each one
            self.lab.say(f"verify: deleting {item.kind} {item.ref} ({n} of {len(items)})")
            if not self.delete(item):
                left.append(f"{item.kind} {item.ref}")
        return left

    def delete(self, item: Created) -> bool:
        """Delete one resource; whether it is gone (already gone counts). After a detach it
        waits (bounded) for the volume to leave ``detaching``: the volume's own delete comes
        next, and on the e2e lab it ran into the detach, after which the server's delete left
        the volume ``detaching`` for good. A detach that nova refuses is not waited for: on the
        e2e lab a run stopped during its attach left the volume ``attaching``, nova answered
        400 (status must be in-use), and the wait took its whole 600 s for nothing. A volume of
        verify's that will not delete so (no server holds it any more) is set ``available``
        and detached by the admin, then deleted once more."""
        if item.kind == "attachment":
            detach = self.sh(self.osc(item.who, item.delete), self.t.delete)
            if detach.ok:
                self.settle_volume(item.ref)
            # refused as not attached: nothing to detach (the volume's own delete comes next)
            return detach.ok or bool(GONE.search(detach.stderr) or
                                     NOT_ATTACHED.search(detach.stderr))
        gone = self.deleted(item.who, item.delete)
        if not gone and item.kind == "volume":
            reset = self.sh(self.osc(openrc.ADMIN, f"volume set --state available --detached "
                                                   f"{item.ref}"), self.t.delete)
            gone = reset.ok and self.deleted(item.who, item.delete)
        return gone

    def deleted(self, who: str, delete: str) -> bool:
        result = self.sh(self.osc(who, delete), self.t.delete)
        return result.ok or bool(GONE.search(result.stderr))

    def settle_volume(self, vol: str) -> None:
        """Wait (bounded) until ``vol`` is not attaching, detaching or in use, or is gone;
        quietly, since the delete that follows says whether it worked."""
        def settled() -> bool:
            shown = self.sh(self.osc(openrc.ADMIN, f"volume show {vol} -f value -c status"))
            if not shown.ok:
                return bool(GONE.search(shown.stderr))  # else a slow call: ask again
            return shown.stdout.strip() not in VOLUME_BUSY

        self.wait(f"volume {vol} to detach", self.t.volume, settled)

    def finish(self) -> None:
        items = self.ledger.teardown_order()
        if not items:
            return
        if self.keep:
            self.report.kept = [f"{i.kind} {i.ref}" for i in items]
            self.skip("cleanup", f"--keep: {len(items)} resources kept (the next "
                                 "`oslab verify` removes them first)")
            return
        start = self.lab.clock()
        left = self.teardown(items)
        for item in items:
            if f"{item.kind} {item.ref}" not in left:
                self.ledger.remove(item)
        if left:
            self._add(Row("cleanup", Status.FAIL, self.lab.clock() - start,
                          "could not delete: " + ", ".join(left),
                          "they stay listed in the lab's state dir; the next `oslab verify` "
                          "tries again"))
        else:
            self._add(Row("cleanup", Status.PASS, self.lab.clock() - start,
                          f"{len(items)} resources removed"))
