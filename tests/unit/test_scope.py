"""``[lab] scope = "identity"``: a lab that installs the environment, the infrastructure and
Keystone only (a Keystone lab to learn with, and the real-service run of the test suite), and
whose verification checks identity and a catalog of Keystone alone."""

from __future__ import annotations

from dataclasses import replace

import pytest

from oslab import spec as specmod
from oslab import spec_file
from oslab.errors import SpecError
from oslab.install.verify.checklist import GROUPS, SCOPE_GROUPS, expected_services
from oslab.install.verify.parsers import parse_catalog
from oslab.spec import Role, Scope
from tests.unit.test_services import plan

BASE = spec_file.default_spec_text()


def identity_lab(distro: str = "centos-stream9") -> specmod.LabSpec:
    spec = spec_file.load_default()
    return replace(spec, scope=Scope.IDENTITY, distro=distro,
                   nodes=tuple(n for n in spec.nodes if n.role is Role.CONTROLLER))


def test_scope_parses_and_defaults_to_all() -> None:
    assert spec_file.load_default().scope is Scope.ALL
    spec = spec_file.parse(BASE.replace('timezone = "UTC"', 'timezone = "UTC"\nscope = "identity"'))
    assert spec.scope is Scope.IDENTITY


def test_unknown_scope_is_refused_with_the_choices() -> None:
    with pytest.raises(SpecError) as err:
        spec_file.parse(BASE.replace('timezone = "UTC"', 'timezone = "UTC"\nscope = "nova"'),
                        source="lab.toml")
    assert str(err.value).startswith("lab.toml: lab.scope: 'nova' is not a scope")
    assert err.value.hint == "choose one of: all, identity"


@pytest.mark.parametrize("distro", ["centos-stream9", "debian13"])
def test_identity_scope_stops_after_keystone(distro: str) -> None:
    steps = plan(identity_lab(distro))
    names = [s.name for s in steps["controller"]]
    areas = {n.split(".")[0] for n in names}
    assert areas <= {"env", "mariadb", "rabbitmq", "memcached", "etcd", "keystone"}, names
    assert names[-1].startswith("keystone.")
    full = [s.name for s in plan(replace(spec_file.load_default(), distro=distro))["controller"]]
    assert names == full[:len(names)]  # the same steps, in the same order, as a full lab's


def test_identity_scope_gives_compute_nodes_the_environment_only() -> None:
    spec = replace(spec_file.load_default(), scope=Scope.IDENTITY)
    steps = plan(spec)
    assert {s.name.split(".")[0] for s in steps["compute1"]} == {"env"}


def test_identity_scope_verifies_identity_and_a_keystone_catalog() -> None:
    assert SCOPE_GROUPS[Scope.IDENTITY] == ("identity", "catalog")
    assert SCOPE_GROUPS[Scope.ALL] == GROUPS
    assert expected_services(Scope.IDENTITY) == {"identity": "keystone"}
    assert len(expected_services(Scope.ALL)) == 6
    keystone_only = ('[{"Name": "keystone", "Type": "identity", "Endpoints": ['
                     '{"interface": "public"}, {"interface": "internal"}, '
                     '{"interface": "admin"}]}]')
    assert parse_catalog(keystone_only, expected_services(Scope.IDENTITY)).ok
    assert not parse_catalog(keystone_only, expected_services(Scope.ALL)).ok
