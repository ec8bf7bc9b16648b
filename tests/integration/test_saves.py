"""Saved labs on a real 2-node lab of the test guest: `oslab save` of the running lab (which
runs on undisturbed), `destroy`, `up --from-saved` with the very same processes (memory was
restored, not booted), the pinned keys, the refusals, a cold boot of the save as a lab of
another name, an export and import round trip, a tampered archive, and `kill -9` in the middle
of a save and of a restore."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Lab, LabFactory
from tests.integration.test_provision import libvirt_names

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def lab(make_module_lab: LabFactory) -> Iterator[Lab]:
    lab = make_module_lab(nodes=2)
    # saves live where qemu can reach them (their disks back the restored lab's overlays)
    root = Path(f"/var/lib/libvirt/images/{lab.name}-saves")
    lab.env["OSLAB_SAVES_DIR"] = str(root)
    lab.run("up", "--stage", "provision")
    yield lab
    subprocess.run(lab.cmd("destroy", "--yes"), env=lab.env, capture_output=True, timeout=300)
    shutil.rmtree(root, ignore_errors=True)
    shutil.rmtree(f"{root}-imported", ignore_errors=True)


def bare(lab: Lab, *args: str, check: bool = True,
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`oslab ARGS` without the lab's -f (a save carries its own spec)."""
    proc = subprocess.run([sys.executable, "-m", "oslab", *args], capture_output=True,
                          text=True, env=env or lab.env, timeout=1500)
    if check and proc.returncode != 0:
        raise AssertionError(f"oslab {' '.join(args)} exited {proc.returncode}\n"
                             f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


def states(lab: Lab) -> dict[str, str]:
    nodes: list[dict[str, str]] = lab.status()["nodes"]  # type: ignore[assignment]
    return {n["node"]: n["state"] for n in nodes}


def saves(lab: Lab, env: dict[str, str] | None = None) -> dict[str, dict[str, object]]:
    data = json.loads(bare(lab, "saved", "--json", env=env).stdout)
    return {s["name"]: s for s in data["saves"]}


def test_save_destroy_and_restore_keep_memory(lab: Lab) -> None:
    pids = {}
    for node in lab.nodes:
        lab.sh(node, f"echo disk-{node} > /root/saved-file && sync")
        lab.sh(node, f"echo mem-{node} > /dev/shm/value")
        pids[node] = lab.sh(node, "sleep 100000 >/dev/null 2>&1 </dev/null & echo $!")

    out = lab.run("save", "first")
    assert f"saved lab {lab.name} as first in" in out.stdout, out.stdout
    assert "holds the lab's secrets" in out.stdout
    assert "memory saved in" in out.stderr and "runs again, its clock was" in out.stderr
    # the lab ran on: same processes, clocks right
    assert states(lab) == {"ctl": "running", "cmp1": "running"}
    for node in lab.nodes:
        assert lab.sh(node, f"kill -0 {pids[node]} && echo alive") == "alive"
        assert abs(int(lab.sh(node, "date -u +%s")) - time.time()) < 10, node

    root = Path(lab.env["OSLAB_SAVES_DIR"])
    listed = saves(lab)["first"]
    assert listed["lab"] == lab.name
    assert {json.dumps(n, sort_keys=True) for n in listed["nodes"]} == {  # type: ignore[attr-defined]
        json.dumps({"memory": True, "node": n, "state": "running"}, sort_keys=True)
        for n in lab.nodes}
    for path in (root / "first").rglob("*"):
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o711 if path.is_dir() else 0o600), (path, oct(mode))
    manifest = json.loads((root / "first" / "manifest.json").read_text())
    assert "secrets" in manifest["secrets"]
    assert set(manifest["files"]) >= {"spec.toml", "nodes/ctl.state", "nodes/ctl.xml",
                                      "state/passwords.json", "state/id_ed25519"}

    refused = lab.run("save", "first", check=False)
    assert refused.returncode != 0 and "exists already" in refused.stderr

    lab.run("destroy", "--yes")
    assert "first" in saves(lab), "destroy must never remove a save"

    out = bare(lab, "up", "--from-saved", "first")
    assert "made from save first in" in out.stdout, out.stdout
    assert states(lab) == {"ctl": "running", "cmp1": "running"}
    for node in lab.nodes:
        # the very same process and tmpfs file: the memory was restored, nothing booted
        assert lab.sh(node, f"kill -0 {pids[node]} && echo alive") == "alive"
        assert lab.sh(node, "cat /dev/shm/value") == f"mem-{node}"
        assert lab.sh(node, "cat /root/saved-file") == f"disk-{node}"
        assert abs(int(lab.sh(node, "date -u +%s")) - time.time()) < 10, node

    again = bare(lab, "up", "--from-saved", "first", check=False)
    assert again.returncode != 0 and f"lab {lab.name} exists" in again.stderr
    busy = bare(lab, "saved", "--delete", "first", check=False)
    assert busy.returncode != 0 and "in use by" in busy.stderr, busy.stderr


def test_a_save_becomes_a_lab_of_another_name_by_a_cold_boot(lab: Lab) -> None:
    """A saved memory comes back only under its domains' names; `--cold` boots the saved disks
    as a lab of another name: its own domains, networks, pool and state, the nodes' files and
    MACs (so their addresses) kept, SSH with the saved pinned keys."""
    other = lab.name + "r"
    renamed = bare(lab, "--lab", other, "up", "--from-saved", "first", check=False)
    assert renamed.returncode != 0 and "comes back only as lab" in renamed.stderr, renamed.stderr
    beside = bare(lab, "--lab", other, "up", "--from-saved", "first", "--cold", check=False)
    assert beside.returncode != 0 and "the lab the save was made from, exists" in beside.stderr
    assert libvirt_names(other) == {"domains": [], "networks": [], "pools": []}
    lab.run("destroy", "--yes")
    try:
        out = bare(lab, "--lab", other, "up", "--from-saved", "first", "--cold")
        assert f"lab {other} made from save first in" in out.stdout, out.stdout
        assert libvirt_names(other) == {
            "domains": [f"{other}-cmp1", f"{other}-ctl"],
            "networks": [f"{other}-mgmt", f"{other}-prov"], "pools": [other]}
        assert libvirt_names(lab.name) == {"domains": [], "networks": [], "pools": []}
        for node in lab.nodes:
            seen = bare(lab, "--lab", other, "ssh", node, "--",
                        "cat /root/saved-file; hostname; test -e /dev/shm/value || echo booted"
                        ).stdout.split()
            assert seen == [f"disk-{node}", node, "booted"], seen
    finally:
        bare(lab, "--lab", other, "destroy", "--yes", check=False)
    assert libvirt_names(other) == {"domains": [], "networks": [], "pools": []}
    # the save's own lab again, from its memory, for the tests that follow
    bare(lab, "up", "--from-saved", "first")
    assert states(lab) == {"ctl": "running", "cmp1": "running"}


def test_export_import_round_trip_and_a_tampered_archive(lab: Lab, tmp_path: Path) -> None:
    archive = tmp_path / "first.tar.zst"
    out = bare(lab, "saved", "--export", "first", str(archive))
    assert "exported first to" in out.stdout
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    other = dict(lab.env, OSLAB_SAVES_DIR=lab.env["OSLAB_SAVES_DIR"] + "-imported")
    imported = bare(lab, "import", str(archive), env=other)
    assert "imported save first" in imported.stdout
    root = Path(lab.env["OSLAB_SAVES_DIR"])
    a = json.loads((root / "first" / "manifest.json").read_text())["files"]
    b = json.loads((Path(other["OSLAB_SAVES_DIR"]) / "first" / "manifest.json").read_text())
    assert {k: v for k, v in b["files"].items() if not k.startswith("bases/")} == a

    tampered = tmp_path / "tampered.tar.zst"
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0xFF
    tampered.write_bytes(bytes(data))
    bare(lab, "saved", "--delete", "first", env=other)
    refused = bare(lab, "import", str(tampered), env=other, check=False)
    assert refused.returncode != 0
    assert "first" not in saves(lab, env=other)
    assert not [p for p in Path(other["OSLAB_SAVES_DIR"]).iterdir()
                if not p.name.startswith(".oslab")]


def _kill_when(proc: subprocess.Popen[str], ready: Path | None, after_s: float) -> None:
    deadline = time.monotonic() + 600
    while ready is not None and not ready.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(after_s)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)  # reaped, its pipe read and closed


def test_kill_9_during_a_save_and_a_restore_then_the_reruns(lab: Lab) -> None:
    root = Path(lab.env["OSLAB_SAVES_DIR"])
    proc = lab.popen("save", "second")
    partial = None
    deadline = time.monotonic() + 600
    while partial is None and time.monotonic() < deadline:
        partial = next((p for p in root.iterdir() if p.name.startswith(".partial-second")),
                       None)
        time.sleep(0.2)
    assert partial is not None
    # killed while the nodes' memory is saved: some may be shut off with their memory only in
    # the killed save, the others paused; nothing of the lab's memory may be lost
    _kill_when(proc, partial / "nodes" / "ctl.state", 0.5)
    assert "second" not in saves(lab), "a killed save must not look like a save"
    print("after the kill:", states(lab))
    out = lab.run("save", "second")
    assert "left by a save that did not finish" in out.stderr
    assert "second" in saves(lab)
    assert not [p for p in root.iterdir() if p.name.startswith(".partial-")]
    assert states(lab) == {"ctl": "running", "cmp1": "running"}
    for node in lab.nodes:
        assert lab.sh(node, "cat /dev/shm/value") == f"mem-{node}"

    lab.run("destroy", "--yes")
    restoring = subprocess.Popen([sys.executable, "-m", "oslab", "up", "--from-saved", "second"],
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                 env=lab.env)
    _kill_when(restoring, None, 8.0)
    lab.run("destroy", "--yes")
    bare(lab, "up", "--from-saved", "second")
    assert states(lab) == {"ctl": "running", "cmp1": "running"}
    for node in lab.nodes:
        assert lab.sh(node, "cat /dev/shm/value") == f"mem-{node}"
