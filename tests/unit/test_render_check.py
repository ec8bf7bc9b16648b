"""`oslab render --check`: every rendered service config of the default lab passes the Epoxy
option schema, and a broken one fails with its exact error line and exit 1."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from oslab import spec_file
from oslab.cli import cli
from oslab.cli_options import Options
from oslab.install.content import Content
from oslab.install.model import InstallContext, StepDef
from oslab.install.services import steps_for

SUMMARY_OK = "checked 14 service configs against the epoxy option schema: 0 errors, 0 warnings"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path


def render_check(out: Path, content: Content = steps_for) -> Result:
    return CliRunner().invoke(cli, ["render", "--out", str(out), "--virt-type", "qemu",
                                    "--check"], obj=Options(content=content))


def test_the_default_lab_passes(home: Path) -> None:
    result = render_check(home / "out")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == SUMMARY_OK


@dataclass(frozen=True)
class Broken:
    id: str
    node: str
    path: str
    old: str  # a line of the rendered file
    new: str  # what it becomes
    error: str  # the whole line `render --check` prints for it; {line} is where `new` is


CASES = [
    Broken("invalid-value", "controller", "/etc/nova/nova.conf",
           "server_listen = $my_ip", "server_listen = #my_ip",
           "controller/etc/nova/nova.conf:{line}: error: [vnc] server_listen (host address): "
           "'#my_ip' is not a valid host address (an IP address or a hostname)"),
    Broken("unknown-option", "compute1", "/etc/nova/nova.conf",
           "lock_path = /var/lib/nova/tmp", "lockpath = /var/lib/nova/tmp",
           "compute1/etc/nova/nova.conf:{line}: error: [oslo_concurrency] unknown option "
           "lockpath; did you mean lock_path?"),
    Broken("unknown-section", "controller", "/etc/nova/nova.conf",
           "[placement]", "[placment]",
           "controller/etc/nova/nova.conf:{line}: error: unknown section [placment] for "
           "nova.conf; did you mean [placement]?"),
]


def break_one(case: Broken, steps: Mapping[str, Sequence[StepDef]]) -> dict[str, list[StepDef]]:
    """``steps`` with ``case.old`` replaced by ``case.new`` in the one file the case names."""
    out: dict[str, list[StepDef]] = {}
    for node, lst in steps.items():
        out[node] = []
        for step in lst:
            files = tuple(
                replace(f, content=f.content.replace(case.old + "\n", case.new + "\n", 1))
                if node == case.node and f.path == case.path else f for f in step.files)
            out[node].append(replace(step, files=files))
    return out


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_a_broken_config_fails_with_its_error(home: Path, case: Broken) -> None:
    def broken_steps_for(ctx: InstallContext) -> dict[str, list[StepDef]]:
        return break_one(case, steps_for(ctx))

    out = home / "out"
    result = render_check(out, broken_steps_for)
    assert result.exit_code == 1, result.output
    written = (out / case.node / case.path.lstrip("/")).read_text()  # written, then checked
    assert case.old + "\n" not in written
    line = written.splitlines().index(case.new) + 1
    lines = result.output.splitlines()
    assert lines[-2:] == [
        case.error.format(line=line),
        "checked 14 service configs against the epoxy option schema: 1 error, 0 warnings"]


@pytest.mark.parametrize("distro", ["centos-stream9", "debian13"])
def test_every_nova_conf_sets_the_state_path(home: Path, distro: str) -> None:
    """Found by the e2e run: without state_path nova-compute tried to write its compute_id under
    /usr/lib/python3/dist-packages (nova's default is its package directory) and never started.
    The packages' own configs set /var/lib/nova; oslab writes the whole file, so it must too."""
    import configparser

    spec_path = home / "lab.toml"
    spec_path.write_text(spec_file.default_spec_text(distro))
    out = home / "out"
    result = CliRunner().invoke(cli, ["-f", str(spec_path), "render", "--out", str(out),
                                      "--virt-type", "qemu"])
    assert result.exit_code == 0, result.output
    confs = sorted(out.glob("*/etc/nova/nova.conf"))
    assert [c.parts[-4] for c in confs] == ["compute1", "controller"]
    for conf in confs:
        ini = configparser.ConfigParser(interpolation=None, strict=False)
        ini.read_string(conf.read_text())
        assert ini.get("DEFAULT", "state_path") == "/var/lib/nova", conf
