"""The done-marker convention, for guarded commands whose result cannot be checked cheaply.

Most guarded commands check the node itself (``openstack project show service``, a table in
the database). When that is not possible or too slow, the content may guard the command with a
marker file: ``/var/lib/oslab/done/<name>``, created only after the command succeeded. The marker
lives on the node, like every other fact, so resuming and ``oslab up`` on a finished lab still
need nothing on the host. Deleting a marker makes the next ``oslab up`` run the command again;
``oslab up --from STEP`` runs it whatever the marker says (and touches it again).

``<name>`` is the step name, optionally with a ``.part`` suffix: ``nova.db-sync`` or
``nova.db-sync.cell0``.
"""

from __future__ import annotations

import re
import shlex

from oslab.errors import OslabError
from oslab.install.model import Guarded

DONE_DIR = "/var/lib/oslab/done"
_NAME_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,127}")


def marker_path(name: str) -> str:
    if not _NAME_RE.fullmatch(name):
        raise OslabError(f"invalid done-marker name {name!r}",
                         hint="use lower-case letters, digits, '.', '_' and '-'")
    return f"{DONE_DIR}/{name}"


def once(name: str, description: str, run: str, *, timeout: int = 600, retries: int = 0,
         env_file: str = "") -> Guarded:
    """A ``Guarded`` that runs ``run`` until it has succeeded once (marker ``name``)."""
    path = shlex.quote(marker_path(name))
    return Guarded(
        description=description,
        check=f"test -e {path}",
        run=(f"{{\n{run.strip(chr(10))}\n}} && mkdir -p {shlex.quote(DONE_DIR)} "
             f"&& touch {path}"),
        timeout=timeout, retries=retries, env_file=env_file,
    )
