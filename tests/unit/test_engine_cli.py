"""`oslab plan` and `oslab render` with a stand-in for the install content (a module made here,
named through ``content.SERVICES``), and the clear error while the real content is missing."""

from __future__ import annotations

import stat
import sys
import types
from pathlib import Path

import pytest
from click.testing import CliRunner

from oslab.cli import cli
from oslab.errors import OslabError
from oslab.install import content
from oslab.install.model import FileSpec, InstallContext, StepDef, Where
from oslab.spec import Role
from oslab.state import LabState

FAKE = "oslab_test_fake_services"


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


@pytest.fixture
def fake_content(monkeypatch: pytest.MonkeyPatch) -> None:
    mod = types.ModuleType(FAKE)
    mod.steps_for = fake_steps_for  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, FAKE, mod)
    monkeypatch.setattr(content, "SERVICES", FAKE)


def invoke(*args: str) -> tuple[int, str, BaseException | None]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output, result.exception


def test_plan_fresh(home: Path, fake_content: None) -> None:
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


def test_plan_of_a_lab_that_does_not_run_falls_back_to_fresh(home: Path,
                                                             fake_content: None) -> None:
    code, out, exc = invoke("plan", "--uri", "test:///default", "--node", "compute1")
    assert exc is None and code == 0, out
    assert "the lab is not running (controller, compute1 not running)" not in out
    assert "the lab is not running (compute1 not running), so this plans for blank nodes" in out
    assert "controller:" not in out and "compute1: 2 steps" in out


def test_plan_shows_the_provisioning_first_from_libvirt(home: Path, fake_content: None) -> None:
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


def test_plan_without_libvirt_assumes_a_blank_host(home: Path, fake_content: None) -> None:
    code, out, exc = invoke("plan", "--uri", "test:///nonexistent-oslab-scenario.xml")
    assert exc is None and code == 0, out
    assert out.startswith("provision plan for lab oslab: libvirt is not reachable (cannot "
                          "connect to libvirt at test:///nonexistent-oslab-scenario.xml: ")
    assert "), so a blank host assumed\n  network oslab-mgmt: create (absent)\n" in out
    assert "    domain oslab-controller: define, install, boot (absent)\n" in out
    assert "  11 objects to create or change" in out


def test_a_fresh_plan_reads_nothing_and_has_no_provision_plan(home: Path,
                                                               fake_content: None) -> None:
    code, out, exc = invoke("plan", "--fresh", "--uri", "test:///default")
    assert exc is None and code == 0, out
    assert "provision plan" not in out and out.startswith("install plan for lab oslab: fresh")


def test_render_writes_every_file_and_the_kickstart(home: Path, fake_content: None) -> None:
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


def test_without_the_install_content_plan_render_and_install_say_so(
        home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(content, "SERVICES", "oslab.install.no_such_content_module")
    for args in (["plan", "--fresh"], ["render", "--out", str(home / "o")],
                 ["up", "--stage", "install", "--uri", "test:///default"]):
        _, out, exc = invoke(*args)
        assert isinstance(exc, OslabError), (args, out, exc)
        assert "is not there yet" in exc.message
        assert exc.hint is not None and "--stage provision" in exc.hint
    assert not (home / "o").exists()


def test_from_needs_the_install_stage(home: Path) -> None:
    _, _, exc = invoke("up", "--stage", "provision", "--from", "keystone.db")
    assert isinstance(exc, OslabError) and "--from names an install step" in exc.message
