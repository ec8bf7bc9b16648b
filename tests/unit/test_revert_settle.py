"""The pieces `oslab revert` uses after libvirt's part: the one-round-trip clock command and
its parser, the SSH wait's failure on a port nothing listens on, and the phase timings."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from oslab.access.ssh import Target, open_when_ready, port_open
from oslab.errors import OslabError
from oslab.snapshots.checkpoint import FIX_CLOCK, Reverted, Settled, clock_before
from oslab.snapshots.snapshot import SnapResult


@pytest.mark.parametrize(("stdout", "expected"), [
    ("1764601200\n", 1764601200.0),
    ("1764601200\nchronyc: 200 OK\n", 1764601200.0),
    ("  1764601200  \n", 1764601200.0),
])
def test_clock_before_reads_the_first_line(stdout: str, expected: float) -> None:
    assert clock_before(stdout) == expected


@pytest.mark.parametrize(("stdout", "message"), [
    ("", "cannot read the node's clock from ''"),
    ("date: invalid date\n", "cannot read the node's clock from 'date: invalid date\\n'"),
    ("-5\n", "cannot read the node's clock from '-5\\n'"),
])
def test_clock_before_refuses_what_is_not_a_clock(stdout: str, message: str) -> None:
    with pytest.raises(OslabError) as err:
        clock_before(stdout)
    assert err.value.message == message


def test_fix_clock_is_valid_posix_sh(tmp_path: Path) -> None:
    script = tmp_path / "fix-clock.sh"
    script.write_text(FIX_CLOCK.format(now="2026-12-01 15:00:00") + "\n")
    assert FIX_CLOCK.format(now="X").startswith("date -u +%s && date -u -s 'X'")
    res = subprocess.run(["sh", "-n", str(script)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed (apt-get install shellcheck)")
    res = subprocess.run([shellcheck, "-s", "sh", str(script)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_open_when_ready_gives_up_with_the_reason(tmp_path: Path) -> None:
    port = closed_port()
    target = Target("n1", "127.0.0.1", "ssh-ed25519 AAAA", tmp_path / "key", port=port)
    assert not port_open("127.0.0.1", port, 0.5)
    start = time.monotonic()
    with pytest.raises(OslabError) as err:
        open_when_ready(target, timeout=1.0)
    assert 1.0 <= time.monotonic() - start < 3.0
    assert err.value.message == (f"n1 does not answer SSH at 127.0.0.1 "
                                 f"(port {port} does not accept connections)")
    assert err.value.hint == "look at `oslab console n1`"


def test_port_open_sees_a_listening_port() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        assert port_open("127.0.0.1", server.getsockname()[1], 1.0)


def test_reverted_phases_add_up_to_the_whole() -> None:
    snap = SnapResult("s", 3.5, 0.1, ("a", "b"),
                      (("check", 0.2), ("revert paused", 3.2), ("resume", 0.1)))
    done = Reverted(snap, (Settled("a", 1.8, 5.0), Settled("b", 2.0, 6.0)), 5.6)
    assert [w for w, _t in done.phases] == ["check", "revert paused", "resume",
                                           "SSH and clocks"]
    assert sum(t for _w, t in done.phases) == pytest.approx(done.seconds)
    assert dict(done.phases)["SSH and clocks"] == pytest.approx(2.1)
