"""`oslab verify`: prove the cloud works, one reported row per check.

A check is a command run on the controller (``. /root/admin-openrc && openstack ... -f json``)
plus a *parser*: a pure function from the command's output to a :class:`Verdict` (passed, what
was seen, what to look at). The parsers are tested from recorded client output. The
:class:`Verifier` composes the checks in order: service health (compute services, network
agents, volume services, ``nova-status``/``placement-status upgrade check``, the catalog and its
endpoints, a token for admin and demo), the cirros image, the networks, an instance reached by
ping and SSH with its console log, a volume seen inside the instance, and the dashboard. Each
check becomes a :class:`Row` (name, result, seconds, details, and on failure what to look at).

Every resource a check creates is written to a ledger (also kept in the lab's state dir, so a
run that died is cleaned up by the next one, and a ledger that cannot be read stops the next
run with what it may name); without ``keep`` the ledger is torn down at the end, newest
first, so dependants go before what they depend on.

The nodes are reached through ``oslab.access.ssh.NodeConn``, so tests can pass a local runner;
:func:`verify_lab` wires the real lab (SSH with pinned host keys).

- ``results``: the check model (Verdict, Row, Report, CheckFailed);
- ``checklist``: what is checked: the groups in order and per scope, the expected services,
  the names of the resources the checks create;
- ``parsers``: the parsers of client output, and ``explain`` for a failed command;
- ``ledger``: the resources a run created, kept in the lab's state dir;
- ``connections``: ``LocalRunner`` (commands on this machine) and ``http_get``;
- ``runner``: ``Lab``, ``Timeouts`` and ``CheckRunner``, the plumbing every check uses;
- ``health``: the health checks (tokens, catalog, services, agents, upgrade checks);
- ``settle``: when a services row stops waiting (a unit behind it that systemd marked failed);
- ``cloud``: the cloud checks (image, networks, instance, volume, dashboard);
- ``verifier``: ``Verifier`` (all the checks, in order) and ``verify_lab`` (on a real lab).

The verification table and `oslab up`'s summary are rendered by ``oslab.summary``.
"""

from oslab.install.verify.results import CheckFailed, Report, Row, Status, Verdict
from oslab.install.verify.runner import Lab, Timeouts
from oslab.install.verify.verifier import Verifier, verify_lab

__all__ = ["CheckFailed", "Lab", "Report", "Row", "Status", "Timeouts", "Verdict", "Verifier",
           "verify_lab"]
