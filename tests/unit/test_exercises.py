"""The break-and-fix exercises as data: each fault applies to the files oslab renders and its
documented fix gives back exactly those files, on every distro and lab scope it runs on; the
lint rules an exercise relies on see its fault; the catalog covers every service."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

from oslab import spec_file
from oslab.access.state import LabState
from oslab.errors import OslabError
from oslab.exercising import Progress
from oslab.install import content
from oslab.install.exercise import (
    Exercise,
    ExerciseError,
    NodeEdit,
    Result,
    apply_edits,
    checks,
    command_for,
    edited,
    find,
    hint,
    refusal,
    resolve,
    verdict,
)
from oslab.install.exercises import CATALOG, MAX_CONNECTIONS
from oslab.install.lint import Login, lint, logins
from oslab.install.services import steps_for
from oslab.install.verify.checklist import SCOPE_GROUPS
from oslab.spec import Scope
from tests.conftest import lab_spec_text
from tests.debian_specs import identity_spec

SPECS = {"debian": spec_file.parse(spec_file.default_spec_text("debian13")),
         "centos": spec_file.parse(spec_file.default_spec_text("centos-stream9")),
         "identity": spec_file.parse(identity_spec(lab_spec_text("t1", "/x.iso", 1, 70)))}
Files = dict[tuple[str, str], str]
_rendered: dict[str, Files] = {}


def rendered(which: str, tmp_path: Path) -> Files:
    if which not in _rendered:
        spec = SPECS[which]
        state = LabState(spec.name, root=tmp_path / "state")
        steps = content.lab_steps(spec, state, content.host_virt_types(spec, "qemu"),
                                  steps_for)
        _rendered[which] = {(node, f.path): f.content for node, lst in steps.items()
                            for s in lst for f in s.files}
    return _rendered[which]


RUNS = [(ex, which) for ex in CATALOG for which, spec in SPECS.items()
        if refusal(ex, spec) is None]


def test_each_exercise_runs_somewhere_and_the_identity_ones_on_the_identity_lab() -> None:
    assert {ex.name for ex, _w in RUNS} == {ex.name for ex in CATALOG}
    on_identity = {ex.name for ex, w in RUNS if w == "identity"}
    assert on_identity == {ex.name for ex in CATALOG if ex.scope is Scope.IDENTITY
                           and ex.name != "mariadb-open-files"}  # EL only
    assert {"keystone-database", "mariadb-bind-address"} <= on_identity


@pytest.mark.parametrize(("ex", "which"), RUNS, ids=[f"{e.name}-{w}" for e, w in RUNS])
def test_the_fix_gives_back_the_files_the_fault_broke(ex: Exercise, which: str,
                                                      tmp_path: Path) -> None:
    spec = SPECS[which]
    files = rendered(which, tmp_path)
    fault, fix = resolve(ex.fault, spec), resolve(ex.fix, spec)
    broken = apply_edits(files, fault.edits)
    assert all(text != files[key] for key, text in broken.items())
    fixed = apply_edits({**files, **broken}, fix.edits)
    assert set(fixed) == set(broken)  # the fix edits what the fault edited, nothing else
    assert {key: files[key] for key in fixed} == fixed
    # a fault that is not a file edit is undone by a command of its fix
    assert not fault.runs or fix.runs


@pytest.mark.parametrize(("ex", "which"), [(e, w) for e, w in RUNS if e.lint],
                         ids=[f"{e.name}-{w}" for e, w in RUNS if e.lint])
def test_lint_sees_each_fault_it_is_asked_to_judge(ex: Exercise, which: str,
                                                   tmp_path: Path) -> None:
    spec = SPECS[which]
    files = rendered(which, tmp_path)
    judged = set(checks(ex, spec).lint)

    valid = {g.request_key for g in logins(files)}  # the users oslab made, as it made them

    def keystone(tried: Sequence[Login]) -> dict[Login, str]:
        return {g: "HTTP 401" for g in tried if g.request_key not in valid}

    def errors(texts: Files) -> list[str]:
        subset = {k: v for k, v in texts.items() if k in judged}
        return [str(f) for f in lint(spec, subset, lambda t: t, keystone)
                if f.severity == "error" and (f.node, f.path) in judged]

    assert judged <= set(files)
    assert errors(files) == []
    broken = {**files, **apply_edits(files, resolve(ex.fault, spec).edits)}
    assert errors(broken), f"lint does not see {ex.name}'s fault"


@pytest.mark.parametrize("ex", CATALOG, ids=[e.name for e in CATALOG])
def test_each_exercise_is_complete(ex: Exercise) -> None:
    assert ex.task and ex.symptom and ex.fix_text
    assert len(ex.hints) == 3 and len(set(ex.hints)) == 3 and all(ex.hints)
    assert ex.verify or ex.lint or ex.probes, "nothing decides that it is solved"
    assert set(ex.verify) <= set(SCOPE_GROUPS[ex.scope])
    assert ex.fault.edits or ex.fault.run
    assert "instance" not in ex.verify and "volume" not in ex.verify  # check stays minutes


def test_the_catalog_covers_every_service() -> None:
    assert len(CATALOG) >= 12
    assert len({ex.name for ex in CATALOG}) == len(CATALOG)
    assert {ex.service for ex in CATALOG} >= {"keystone", "mariadb", "rabbitmq", "glance",
                                              "placement", "nova", "neutron", "cinder",
                                              "horizon"}


@pytest.mark.parametrize(("ex", "which"), RUNS, ids=[f"{e.name}-{w}" for e, w in RUNS])
def test_commands_and_probes_are_valid_shell(ex: Exercise, which: str) -> None:
    spec = SPECS[which]
    commands = [r.command for r in resolve(ex.fault, spec).runs + resolve(ex.fix, spec).runs]
    commands += [p.check for p in checks(ex, spec).probes]
    for command in commands:
        assert "{" not in command.replace("${", ""), command
        done = subprocess.run(["bash", "-n", "-c", command], capture_output=True, text=True)
        assert done.returncode == 0, (command, done.stderr)


@pytest.mark.parametrize(("ex", "which"), RUNS, ids=[f"{e.name}-{w}" for e, w in RUNS])
def test_a_fault_does_not_wait_for_the_nova_compute_it_breaks(ex: Exercise, which: str) -> None:
    """nova-compute's unit is Type=notify: broken, it never becomes ready, and a fault that
    waited on its restart would hang until the start timeout (the e2e's nova-transport-url
    did, 15 min). The fix does wait, so `check` meets it started."""
    spec = SPECS[which]
    unit = command_for("{units:nova-compute}", spec)
    for change, queued in ((ex.fault, True), (ex.fix, False)):
        for run in resolve(change, spec).runs:
            if re.search(rf"systemctl restart .*\b{unit}\b", run.command):
                assert ("--no-block" in run.command) is queued, (ex.name, run.command)


def test_units_are_the_distros_own() -> None:
    assert command_for("systemctl restart {units:keystone}", SPECS["debian"]) == \
        "systemctl restart keystone"
    assert command_for("systemctl restart {units:keystone}", SPECS["centos"]) == \
        "systemctl restart httpd"
    assert command_for("systemctl restart {units:nova-compute}", SPECS["centos"]) == \
        "systemctl restart openstack-nova-compute"


def test_the_mariadb_exercises_know_the_rendered_files(tmp_path: Path) -> None:
    files = rendered("centos", tmp_path)
    assert f"max_connections = {MAX_CONNECTIONS}\n" in files[("controller",
                                                             "/etc/my.cnf.d/openstack.cnf")]
    probe = checks(find(CATALOG, "mariadb-bind-address"), SPECS["identity"]).probes[0]
    assert probe.node == "ctl" and probe.check.endswith(" ctl")


@pytest.mark.parametrize(("name", "which", "why"), [
    ("nova-my-ip", "identity", "exercise nova-my-ip needs the whole cloud (nova); lab t1 "
                               "installs identity only"),
    ("placement-directory", "debian", "exercise placement-directory is about el nodes; lab "
                                      "oslab runs debian13"),
    ("keystone-database", "identity", None),
    ("placement-directory", "centos", None),
    ("mariadb-open-files", "debian", "exercise mariadb-open-files is about el nodes; lab oslab "
                                     "runs debian13"),
])
def test_refusals(name: str, which: str, why: str | None) -> None:
    assert refusal(find(CATALOG, name), SPECS[which]) == why


def test_an_edit_must_find_its_text_exactly_once_in_its_section() -> None:
    text = "[a]\nx = 1\n[b]\nx = 1\n"
    assert edited(text, NodeEdit("n", "/f", "x = 1", "x = 2", "b")) == "[a]\nx = 1\n[b]\nx = 2\n"
    with pytest.raises(ExerciseError, match=r"'x = 1' is 2 times in n:/f\n"):
        edited(text, NodeEdit("n", "/f", "x = 1", "x = 2"))
    with pytest.raises(ExerciseError, match=r"'y' is not in n:/f \[a\]"):
        edited(text, NodeEdit("n", "/f", "y", "z", "a"))
    with pytest.raises(ExerciseError, match=r"is not in n:/f \[c\]"):
        edited(text, NodeEdit("n", "/f", "x = 1", "x = 2", "c"))


def test_hints_get_stronger_and_stop_at_the_last() -> None:
    ex = CATALOG[0]
    assert hint(ex, 0) == (ex.hints[0], 1)
    assert hint(ex, 2) == (ex.hints[2], 3)
    assert hint(ex, 3) == (ex.hints[2], 3)


def test_the_verdict() -> None:
    assert not verdict([]).solved  # nothing checked is not solved
    assert verdict([Result("a", True)]).solved
    failing = verdict([Result("a", True), Result("b", False, "why")])
    assert not failing.solved and [r.what for r in failing.failing] == ["b"]


def test_find_suggests_by_service() -> None:
    with pytest.raises(ExerciseError) as caught:
        find(CATALOG, "neutron")
    assert "neutron-metadata-secret or neutron-bridge-mapping" in (caught.value.hint or "")


def test_progress_is_kept_and_a_damaged_one_is_named(tmp_path: Path) -> None:
    state = LabState("t1", root=tmp_path).ensure()
    assert Progress.load(state) is None
    Progress("nova-my-ip", "2026-12-07T00:00:00+00:00", hints=2).save(state)
    assert Progress.load(state) == Progress("nova-my-ip", "2026-12-07T00:00:00+00:00", 2, False)
    assert (state.dir / "exercise.json").stat().st_mode & 0o777 == 0o600
    (state.dir / "exercise.json").write_text("{")
    with pytest.raises(OslabError, match=r"exercise\.json is damaged"):
        Progress.load(state)
    Progress.clear(state)
    assert Progress.load(state) is None


