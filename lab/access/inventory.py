"""What a lab has in libvirt, read back every time: for `status` and `destroy`."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from oslab.access.ssh import Target, reachable
from oslab.access.state import LabState
from oslab.errors import OwnershipError
from oslab.files import read_small_if_any, write_atomic
from oslab.virt.handles import Connection
from oslab.virt.lab_objects import DomainState, LabObjects


@dataclass(frozen=True)
class NodeStatus:
    node: str
    domain: str
    role: str
    address: str
    state: DomainState
    phase: str
    virt_type: str
    ssh: str  # "ok", "-" (not running) or the reason it failed


@dataclass(frozen=True)
class LabStatus:
    lab: str
    nodes: list[NodeStatus]
    networks: list[dict[str, Any]]
    volumes: list[dict[str, Any]]
    pool: str
    state_dir: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def empty(self) -> bool:
        return not (self.nodes or self.networks or self.pool)


def gather(conn: Connection, lab: str, state: LabState, probe_ssh: bool = True) -> LabStatus:
    objs = LabObjects(conn, lab)
    domains = objs.domains()

    def ssh_of(d: Any) -> str:
        if not probe_ssh or d.state != DomainState.RUNNING:
            return "-"
        target = state.target(d.meta.node, d.meta.address)
        if target is None:
            return f"no keys in {state.dir}"
        ok, reason = reachable(target, timeout=5.0)
        return "ok" if ok else reason

    with ThreadPoolExecutor(max_workers=max(1, len(domains))) as pool:
        ssh = list(pool.map(ssh_of, domains))
    nodes = [NodeStatus(d.meta.node, d.name, d.meta.role, d.meta.address, d.state,
                        d.meta.phase, d.virt_type, s) for d, s in zip(domains, ssh, strict=True)]
    nets = [{"name": n, "kind": m.role, "active": a} for n, m, a in objs.networks()]
    pool_obj = objs.pool()
    vols = [{"name": n, "capacity": c, "allocation": a} for n, c, a in objs.volumes()]
    return LabStatus(lab, nodes, nets, vols, pool_obj.name() if pool_obj else "",
                     str(state.dir) if state.owned else "")


def destroy_plan(status: LabStatus) -> list[str]:
    """What `destroy` removes, one line per object, in order."""
    plan = [f"domain {n.domain} ({n.state}) with its snapshot metadata" for n in status.nodes]
    plan += [f"volume {v['name']}" for v in status.volumes]
    if status.pool:
        plan.append(f"storage pool {status.pool} and its directory")
    plan += [f"network {n['name']}" for n in status.networks]
    if status.state_dir:
        plan.append(f"state directory {status.state_dir} (keys, passwords, logs)")
    return plan


def destroy(conn: Connection, lab: str, state: LabState) -> list[str]:
    """Remove every object of ``lab``; returns warnings about anything left in place."""
    objs = LabObjects(conn, lab)
    for d in objs.domains():
        objs.remove_domain(d.name)
    leftovers = objs.remove_pool()
    for name, _meta, _active in objs.networks():
        objs.remove_network(name)
    warnings = [f"left in the pool directory (not made by oslab): {p}" for p in leftovers]
    try:
        state.remove()
    except OwnershipError as exc:
        warnings.append(f"left in place: {exc.message}")
    return warnings


def known_hosts_line(target: Target) -> str:
    return f"{target.address} {' '.join(target.host_key.split()[:2])}\n"


def write_known_hosts(state: LabState, targets: list[Target]) -> Path:
    """The lab's known_hosts file with the pinned key of each of ``targets``; the lines of
    other addresses stay (an ssh-config written earlier names them all)."""
    path = state.dir / "known_hosts"
    ours = {t.address for t in targets}
    text = read_small_if_any(path, 1 << 20, "the lab's known_hosts file",
                             f"it is oslab's own: remove {path} and run the command again")
    kept = [line + "\n" for line in (text or b"").decode(errors="replace").splitlines()
            if line.split(" ", 1)[0] not in ours and line.count(" ") >= 2]
    write_atomic(path, "".join(kept) + "".join(known_hosts_line(t) for t in targets))
    return path
