"""`oslab lint`'s decisions: the files oslab renders are clean, and each broken config a person
writes by hand gives its finding on its line, without a secret in it."""

from __future__ import annotations

from pathlib import Path

import pytest

from oslab import spec_file
from oslab.access.state import LabState
from oslab.install import content
from oslab.install.lint import Finding, lint
from oslab.install.services import steps_for
from oslab.spec import LabSpec
from tests.conftest import lab_spec_text
from tests.debian_specs import identity_spec


def rendered(spec: LabSpec, tmp_path: Path) -> dict[tuple[str, str], str]:
    state = LabState(spec.name, root=tmp_path / "state")
    steps = content.lab_steps(spec, state, content.host_virt_types(spec, "qemu"), steps_for)
    return {(node, f.path): f.content for node, lst in steps.items() for s in lst
            for f in s.files}


@pytest.mark.parametrize("text", [
    spec_file.default_spec_text("centos-stream9"), spec_file.default_spec_text("debian13"),
    # CI's identity lab: one Debian node named ctl, Keystone and its environment only
    identity_spec(lab_spec_text("t1", "/x.iso", 1, 70)),
], ids=["centos", "debian", "identity"])
def test_the_files_oslab_writes_are_clean(text: str, tmp_path: Path) -> None:
    spec = spec_file.parse(text)
    files = rendered(spec, tmp_path)
    assert len(files) > 5
    assert lint(spec, files, lambda t: t) == []


SPEC = spec_file.load_default()  # controller 10.0.0.11, compute1 10.0.0.31


def line_of(text: str, fragment: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if fragment in line)


@pytest.mark.parametrize(("node", "path", "old", "new", "message"), [
    ("compute1", "/etc/nova/nova.conf", "my_ip = 10.0.0.31", "my_ip = 10.0.0.11",
     "[DEFAULT] my_ip is '10.0.0.11', not compute1's management address 10.0.0.31"),
    ("controller", "/etc/nova/nova.conf", "server_listen = $my_ip", "server_listen = #my_ip",
     "[vnc] server_listen (host address): '#my_ip' is not a valid host address (an IP address "
     "or a hostname)"),
    ("controller", "/etc/neutron/metadata_agent.ini", "metadata_proxy_shared_secret = ",
     "metadata_proxy_shared_secret = typo", "[DEFAULT] metadata_proxy_shared_secret differs "
     "from the one in controller:/etc/nova/nova.conf:48: nova and the metadata agent must "
     "share it"),
    ("controller", "/etc/glance/glance-api.conf", "@controller/glance", "@localhost/glance",
     "[database] connection points at localhost, not the controller (controller, 10.0.0.11)"),
    ("compute1", "/etc/nova/nova.conf", "transport_url = rabbit://openstack:",
     "transport_url = rabbit://openstack:x@compute1//\n#", "[DEFAULT] transport_url points at "
     "compute1, not the controller (controller, 10.0.0.11)"),
])
def test_a_broken_file_gives_its_finding_on_its_line(node: str, path: str, old: str, new: str,
                                                      message: str, tmp_path: Path) -> None:
    files = rendered(SPEC, tmp_path)
    text = files[(node, path)]
    assert old in text, old
    files[(node, path)] = text.replace(old, new, 1)
    found = lint(SPEC, files, lambda t: t)
    assert [str(f) for f in found] == [
        f"{node}:{path}:{line_of(files[(node, path)], new.splitlines()[0])}: error: {message}"]


def test_no_finding_shows_a_password(tmp_path: Path) -> None:
    files = rendered(SPEC, tmp_path)
    path = ("controller", "/etc/keystone/keystone.conf")
    files[path] = files[path].replace("[database]", "[databse]")  # its connection unread now
    secret = "Hunter2pw"
    files[path] += f"\n[cache]\nbackend_argument = {secret}\nbogus_password = {secret}\n"
    found = lint(SPEC, files, lambda t: t.replace(secret, "***"))
    assert found and all(secret not in str(f) for f in found)
    assert isinstance(found[0], Finding)
