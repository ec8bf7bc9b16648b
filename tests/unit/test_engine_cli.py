"""`oslab plan` and `oslab render` with a stand-in for the install content (a function made here,
given to the CLI through its options)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from oslab.access.state import LabState
from oslab.cli import cli
from oslab.cli_options import Options
from oslab.errors import OslabError
from oslab.install.model import FileSpec, InstallContext, StepDef, Where
from oslab.spec import Role


def fake_steps_for(ctx: InstallContext) -> dict[str, list[StepDef]]:
    pw = ctx.password("demo_db")
    out: dict[str, list[StepDef]] = {}
    for n in ctx.spec.nodes:
        steps = [StepDef("base.packages", Where.ALL, "Base packages", packages=("chrony",))]
        if n.role is Role.CONTROLLER:
            steps.append(StepDef(
                "demo.conf", Where.CONTROLLER, "Demo config", services=("demo",), files=(
                    FileSpec("/etc/demo/demo.conf",
                             f"[database]\nconnection = mysql+pymysql://demo:{pw}@controller/demo\n",
                             0o640, "root", "demo", secret=True),
                    FileSpec("/etc/demo/api-paste.ini", "[pipeline:main]\n"))))
        else:
            vt = ctx.virt_types[n.name]
            steps.append(StepDef(
                "demo.compute", Where.COMPUTE, f"Compute ({vt})", after=("demo.conf",),
                files=(FileSpec("/etc/demo/compute.conf", f"[libvirt]\nvirt_type = {vt}\n"),)))
        out[n.name] = steps
    return out


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path


def invoke(*args: str) -> tuple[int, str, BaseException | None]:
    """The CLI with the stand-in content."""
    result = CliRunner().invoke(cli, list(args), obj=Options(content=fake_steps_for))
    return result.exit_code, result.output, result.exception


def test_plan_fresh(home: Path) -> None:
    code, out, exc = invoke("plan", "--fresh", "--virt-type", "qemu")
    assert exc is None and code == 0, out
    pw = LabState("oslab").password("demo_db")
    assert pw not in out
    assert out.startswith("install plan for lab oslab: fresh (blank nodes assumed; nothing read "
                          "from them)\nvirt types: compute1=qemu (--virt-type)\n")
    assert "controller: 2 steps, 2 with changes" in out
    assert "upload /etc/demo/demo.conf (0640, root:demo, " in out and "content hidden" in out
    assert "Compute (qemu)  [after demo.conf]" in out
    assert "$ dnf -y install chrony" in out


def test_plan_of_a_lab_that_does_not_run_falls_back_to_fresh(home: Path) -> None:
    code, out, exc = invoke("plan", "--uri", "test:///default", "--node", "compute1")
    assert exc is None and code == 0, out
    assert "the lab is not running (controller, compute1 not running)" not in out
    assert "the lab is not running (compute1 not running), so this plans for blank nodes" in out
    assert "controller:" not in out and "compute1: 2 steps" in out


def test_plan_shows_the_provisioning_first_from_libvirt(home: Path) -> None:
    code, out, exc = invoke("plan", "--uri", "test:///default", "--node", "compute1")
    assert exc is None and code == 0, out
    provision, install = out.split("\ninstall plan for lab oslab: ", 1)
    assert provision == (
        "provision plan for lab oslab: read from libvirt now (test:///default)\n"
        "  network oslab-mgmt: create (absent)\n"
        "  network oslab-prov: create (absent)\n"
        "  pool oslab: create (absent; at /var/lib/libvirt/images/oslab-oslab)\n"
        "  installer media (installer.iso, installer-vmlinuz, installer-initrd.img): upload "
        "(to install controller, compute1; each kept when there at the same size)\n"
        "  node compute1\n"
        "    volume compute1-system.qcow2: create (absent)\n"
        "    volume compute1-oemdrv.iso: upload (its kickstart; the install has not started)\n"
        "    domain oslab-compute1: define, install, boot (absent)\n"
        "  7 objects to create or change, then every node is waited for until it answers SSH\n")
    assert install.startswith("the lab is not running (compute1 not running)")


def test_plan_without_libvirt_assumes_a_blank_host(home: Path) -> None:
    code, out, exc = invoke("plan", "--uri", "test:///nonexistent-oslab-scenario.xml")
    assert exc is None and code == 0, out
    assert out.startswith("provision plan for lab oslab: libvirt is not reachable (cannot "
                          "connect to libvirt at test:///nonexistent-oslab-scenario.xml: ")
    assert "), so a blank host assumed\n  network oslab-mgmt: create (absent)\n" in out
    assert "    domain oslab-controller: define, install, boot (absent)\n" in out
    assert "  11 objects to create or change" in out


def test_a_fresh_plan_reads_nothing_and_has_no_provision_plan(home: Path) -> None:
    code, out, exc = invoke("plan", "--fresh", "--uri", "test:///default")
    assert exc is None and code == 0, out
    assert "provision plan" not in out and out.startswith("install plan for lab oslab: fresh")


def test_render_writes_every_file_and_the_kickstart(home: Path) -> None:
    out_dir = home / "out"
    code, out, exc = invoke("render", "--out", str(out_dir), "--virt-type", "kvm")
    assert exc is None and code == 0, out

    def mode(p: Path) -> int:
        return stat.S_IMODE(p.stat().st_mode)

    ks = out_dir / "controller" / "ks.cfg"
    assert mode(ks) == 0o600 and "BEGIN OPENSSH PRIVATE KEY" in ks.read_text()
    assert (out_dir / "compute1" / "ks.cfg").exists()
    secret = out_dir / "controller" / "etc" / "demo" / "demo.conf"
    assert mode(secret) == 0o600
    assert LabState("oslab").password("demo_db") in secret.read_text()
    paste = out_dir / "controller" / "etc" / "demo" / "api-paste.ini"
    assert mode(paste) == 0o644 and paste.read_text() == "[pipeline:main]\n"
    compute = out_dir / "compute1" / "etc" / "demo" / "compute.conf"
    assert compute.read_text() == "[libvirt]\nvirt_type = kvm\n"
    assert "wrote 5 files" in out


def test_from_needs_the_install_stage(home: Path) -> None:
    _, _, exc = invoke("up", "--stage", "provision", "--from", "keystone.db")
    assert isinstance(exc, OslabError) and "--from names an install step" in exc.message
