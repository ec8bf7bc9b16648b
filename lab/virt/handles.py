"""Names for the libvirt objects oslab passes around.

libvirt-python ships no type information, so each handle is ``Any`` to the type checker; the
name says which libvirt object a parameter holds (and the unit tests' stand-ins answer the same
calls: the test driver's connection, or a small class with the one method a check uses).
"""

from __future__ import annotations

from typing import Any, TypeAlias

Connection: TypeAlias = Any  # libvirt.virConnect
Domain: TypeAlias = Any  # libvirt.virDomain
Network: TypeAlias = Any  # libvirt.virNetwork
Pool: TypeAlias = Any  # libvirt.virStoragePool
Volume: TypeAlias = Any  # libvirt.virStorageVol
