"""`oslab check`: the host preflight.

Every check returns findings; a finding that is not OK says what is wrong and carries a hint
with the exact fix. ``root`` is the filesystem root the checks read ``/proc``, ``/sys``,
``/dev`` and ``/etc`` under, so the unit tests run them on a fake tree.

- ``findings``: the result model (Finding, Severity, blockers, blocking);
- ``kvm``: KVM or QEMU, and nested kvm;
- ``resources``: libvirtd, memory, disk and the pool directory;
- ``network_clashes``: the lab's ranges against host routes and other libvirt networks;
- ``lab_checks``: the spec against this host and the stage (ISO file, verify image, roles);
- ``runner``: all of them in order (``run_checks``), as `oslab check` and `oslab up` run them.
"""

from oslab.preflight.findings import Finding, Severity, blockers, blocking
from oslab.preflight.kvm import VirtChoice, choose_virt_type
from oslab.preflight.runner import HostCheck, run_checks

__all__ = ["Finding", "HostCheck", "Severity", "VirtChoice", "blockers", "blocking",
           "choose_virt_type", "run_checks"]
