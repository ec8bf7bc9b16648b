"""`oslab up --until STEP`: the install guide's page for what comes next and the check that
proves it, and the summary a user reads when the lab stops."""

from __future__ import annotations

import pytest

from oslab import spec_file
from oslab import up as upflow
from oslab.cli_print import print_stopped
from oslab.install.guide import lesson


@pytest.mark.parametrize(("step", "page", "check"), [
    ("keystone.install", "https://docs.openstack.org/keystone/2025.1/install/", "identity"),
    ("glance.keystone", "https://docs.openstack.org/glance/2025.1/install/", "image"),
    ("placement", "https://docs.openstack.org/placement/2025.1/install/", "services"),
    ("nova.compute", "https://docs.openstack.org/nova/2025.1/install/", "services"),
    ("neutron.agents", "https://docs.openstack.org/neutron/2025.1/install/", "network"),
    ("horizon.dashboard", "https://docs.openstack.org/horizon/2025.1/install/", "dashboard"),
    ("cinder.lvm", "https://docs.openstack.org/cinder/2025.1/install/", "volume"),
    # the shared environment is in the install guide itself, and has no check of its own
    ("mariadb.install",
     "https://docs.openstack.org/install-guide/environment-sql-database.html", ""),
    ("rabbitmq.user", "https://docs.openstack.org/install-guide/environment-messaging.html", ""),
    ("etcd.install", "https://docs.openstack.org/install-guide/environment-etcd.html", ""),
    ("env.hosts", "https://docs.openstack.org/install-guide/environment.html", ""),
])
def test_the_guide_page_and_check_of_each_service(step: str, page: str, check: str) -> None:
    found = lesson(step, "2025.1")
    assert (found.page, found.check) == (page, check)


@pytest.mark.parametrize(("source", "oslab"), [
    ("<built-in default>", "oslab"),
    ("/labs/my lab.toml", "oslab -f '/labs/my lab.toml'"),
])
def test_the_summary_says_what_to_do_next(capsys: pytest.CaptureFixture[str], source: str,
                                          oslab: str) -> None:
    spec = spec_file.parse(spec_file.default_spec_text(), source=source)
    found = lesson("glance.keystone", "2025.1")
    print_stopped(upflow.Stopped(spec, "glance", "glance.keystone", ("controller",), found.page,
                                 found.check, "before-glance", snapshot_kept=False))
    out = capsys.readouterr().out
    assert "lab oslab: stopped before glance; every step before it is done." in out
    assert "snapshot before-glance: taken; `oslab --lab oslab revert before-glance`" in out
    assert "next: glance.keystone on controller (`oslab --lab oslab ssh controller`)" in out
    assert "the install guide: https://docs.openstack.org/glance/2025.1/install/" in out
    assert "then check it: `oslab --lab oslab verify --only image`" in out
    assert f"its passwords: the lab's, in the files `{oslab} render --out DIR` writes" in out
    assert f"`{oslab} up` goes on from there" in out
