"""The :class:`Verifier` runs the checks in order; :func:`verify_lab` runs it on a real lab.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence

from oslab.access.ssh import NodeConn, Target
from oslab.access.state import VERIFY_LEDGER, LabState
from oslab.errors import OslabError
from oslab.install import instance_image, openrc
from oslab.install.boot import await_boot
from oslab.install.instance_image import InstanceImage
from oslab.install.verify.api import ServiceApi
from oslab.install.verify.checklist import GROUPS, PREFIX, expected_services, selected_groups
from oslab.install.verify.cloud import CloudChecks
from oslab.install.verify.connections import LocalRunner, http_api
from oslab.install.verify.health import HealthChecks
from oslab.install.verify.ledger import Ledger
from oslab.install.verify.results import Report
from oslab.install.verify.runner import CLIENT_DIR, Lab, Timeouts
from oslab.spec import LabSpec, Node


class Verifier(HealthChecks, CloudChecks):
    """Runs the checks against a :class:`Lab` and records a :class:`Report`."""

    def run(self, only: Sequence[str] = GROUPS) -> Report:
        unknown = [g for g in only if g not in GROUPS]
        if unknown:
            raise OslabError(f"unknown check group(s): {', '.join(unknown)}",
                             hint="choose from: " + ", ".join(GROUPS))
        checks: dict[str, Callable[[], None]] = {
            "identity": self.check_identity, "catalog": self.check_catalog,
            "services": self.check_services, "image": self.check_image,
            "network": self.check_network, "instance": self.check_instance,
            "volume": self.check_volume, "dashboard": self.check_dashboard,
        }
        left = self.earlier()  # a damaged ledger stops the run before anything is made
        await_boot(self.lab.controller, lambda line: self.lab.say(f"verify: the controller: "
                                                                 f"{line}"),
                   "verifying", clock=self.lab.clock)
        if self.lab.api is not None:  # start and resume: does every service report up?
            self.check_services()
            return self.report
        self.start_client()
        try:
            self.sweep(left)
            for group in GROUPS:
                if group in only:
                    checks[group]()
        finally:
            try:
                self.finish()
            finally:
                self.stop_client()
        return self.report


# -- the real lab ---------------------------------------------------------------------------------


def verify_lab(spec: LabSpec, state: LabState, *, keep: bool = False,
               say: Callable[[str], None] = lambda _line: None,
               timeouts: Timeouts | None = None,
               image: InstanceImage | None = None, only: tuple[str, ...] = (),
               booted: Callable[[Target], None] | None = None,
               via_api: bool = False) -> Report:
    """Verify a running lab: SSH to its nodes (pinned host keys), write the openrc files
    (state dir and /root on the controller), run every check, clean up unless ``keep``.
    ``image`` is the instance image to boot (default: the spec's ``[verify] image``, else
    cirros). ``only`` names the check groups to run (with the groups they need); by default
    every group of the lab's scope. ``booted`` is called with each node's SSH target before it
    is reached: `oslab verify` waits there for a node that still boots (its domain runs) and
    refuses one whose domain does not run (``oslab.power.reach``); without it each node gets
    one try. ``via_api`` runs only the services rows, their
    listings asked over REST from this host (:mod:`.api`): `oslab start` and `resume`."""
    from oslab.access.ssh import HostKeyMismatch, Session

    groups = selected_groups(spec.scope, only)
    from oslab.access.state import cache_root

    chosen = image if image is not None else instance_image.choose(None, spec)
    if state.target(spec.controller.name, str(spec.controller.address)) is None:
        raise OslabError(f"lab {spec.name} has no SSH keys on this host (state directory "
                         f"{state.dir}): it was not built here",
                         hint="`oslab up` builds it; check -f, --lab and XDG_STATE_HOME if it "
                              "was built")
    ledger = state.dir / VERIFY_LEDGER
    Ledger.load(ledger)  # a damaged ledger is refused before any node is reached

    key = state.ssh_key()
    sessions: list[Session] = []

    def connect(node: Node) -> Session:
        target = state.spec_target(node)
        if booted is not None:
            booted(target)
        session = Session(target)
        sessions.append(session)
        return session

    def guest(address: str, host_key: str) -> NodeConn:
        try:
            session = Session(Target(f"{PREFIX}-vm", address, host_key, key.private_path,
                                     user=chosen.user), connect_timeout=20.0)
        except HostKeyMismatch as exc:
            raise OslabError(f"{address}: the host key differs from the one on the console"
                             ) from exc
        sessions.append(session)
        return session

    try:
        controller = connect(spec.controller)
        if timeouts is None:
            virt = controller.run("systemd-detect-virt || true", timeout=60.0).stdout.strip()
            timeouts = Timeouts.under(virt)
            if timeouts != Timeouts():
                say(f"verify: the controller runs under {virt}: each command may take up to "
                    f"{timeouts.command:.0f}s")
        computes = {n.name: connect(n) for n in spec.nodes if n.is_compute}
        openrc.write_all(spec, state, controller)
        images = cache_root() / "images"
        lab = Lab(spec=spec, controller=controller, computes=computes, host=LocalRunner(),
                  guest=guest, image=lambda: instance_image.fetch(chosen, images),
                  public_key=key.public, instance=chosen,
                  secrets=tuple(state.known_passwords()),
                  ledger_path=ledger,
                  timeouts=timeouts or Timeouts(), say=say,
                  expected=expected_services(spec.scope), client_dir=CLIENT_DIR,
                  demo_password=state.password(openrc.DEMO_PASSWORD_KEY),
                  api=ServiceApi(openrc.auth_url(spec), str(spec.controller.address),
                                 openrc.credentials(openrc.ADMIN),
                                 state.password(openrc.ADMIN_PASSWORD_KEY), http_api)
                  if via_api else None)
        return Verifier(lab, keep=keep).run(only=groups)
    finally:
        for s in sessions:
            with contextlib.suppress(Exception):
                s.close()
