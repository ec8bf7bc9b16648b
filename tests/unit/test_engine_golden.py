"""The golden install plan: `oslab plan --fresh --virt-type qemu` of the built-in default lab.

tests/unit/golden/plan/default.txt is that command's output (every password masked, so it is
the same for every lab state). Regenerate it with OSLAB_REGEN_GOLDEN=1 and review the diff: it
shows every step, file and command the installer runs on a blank lab, in order.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from oslab import spec_file
from oslab.access.state import LabState
from oslab.cli import cli

GOLDEN = Path(__file__).parent / "golden" / "plan" / "default.txt"


def test_default_lab_fresh_plan_is_golden(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    result = CliRunner().invoke(cli, ["plan", "--fresh", "--virt-type", "qemu"])
    assert result.exception is None, result.output
    text = result.output
    spec = spec_file.load_default()
    passwords = LabState(spec.name).known_passwords()
    assert passwords, "the content uses the lab's generated passwords"
    for pw in passwords:
        assert pw not in text
    for node in spec.nodes:
        assert f"\n{node.name}: " in text
    if os.environ.get("OSLAB_REGEN_GOLDEN") == "1":
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(text)
    assert GOLDEN.exists(), "golden file missing: run with OSLAB_REGEN_GOLDEN=1 and review it"
    assert text == GOLDEN.read_text(), (
        "`oslab plan --fresh --virt-type qemu` differs from tests/unit/golden/plan/default.txt: "
        "run the tests with OSLAB_REGEN_GOLDEN=1 and review the diff")
