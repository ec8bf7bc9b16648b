"""oslab's verification against a real Keystone of the release (27.x, Epoxy) on 127.0.0.1.

The openrc files are rendered by ``oslab.install.openrc`` and sourced by bash; the checks run
the real ``openstack`` client (7.5.0) through ``connections.LocalRunner`` exactly as they run on the
controller over SSH. Keystone comes from ``tests/keystone/fixture.py`` (a cached venv built by
``tests/keystone/setup.sh``); only loopback is used.

Marked integration: scripts/test.sh runs it inside the test network namespace, after building
the venv outside it. To run it alone without the namespace (it needs only loopback):
``pytest --noconftest -m '' tests/integration/test_keystone_verify.py -p no:cacheprovider``.
"""

from __future__ import annotations

import json
import re
import stat
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from oslab import spec as specmod
from oslab import spec_file
from oslab.access.ssh import NodeConn
from oslab.access.state import LabState
from oslab.install import clouds_yaml, openrc, verify
from oslab.install.verify import Status, checklist, connections, parsers
from oslab.install.verify.api import ServiceApi
from oslab.install.verify.runner import Timeouts
from oslab.summary import render_table
from tests.keystone import fixture

pytestmark = pytest.mark.integration


@dataclass
class Cloud:
    ks: fixture.Keystone
    spec: specmod.LabSpec
    state: LabState
    root: Path  # stands for /root on the controller

    def lab(self, openrc_dir: Path | None = None,
            expected: Mapping[str, str] = checklist.EXPECTED_SERVICES) -> verify.Lab:
        def no_image() -> Path:
            raise AssertionError("no image in these tests")

        def no_guest(address: str, key: str) -> NodeConn:
            raise AssertionError("no instance in these tests")

        runner = connections.LocalRunner(env=self.ks.base_env())
        return verify.Lab(spec=self.spec, controller=runner, computes={}, host=runner,
                          guest=no_guest, image=no_image, public_key="",
                          secrets=tuple(self.state.known_passwords()),
                          openrc_dir=str(openrc_dir or self.root), expected=expected)


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    base = tmp_path_factory.mktemp("ks-lab")
    spec = spec_file.load_default()
    state = LabState(spec.name, root=base / "state")
    ks = fixture.start(base / "keystone",
                       admin_password=state.password(openrc.ADMIN_PASSWORD_KEY))
    try:
        fixture.register_lab_services(ks)
        fixture.create_demo(ks, state.password(openrc.DEMO_PASSWORD_KEY))
        root = base / "root"
        openrc.write_all(spec, state, connections.LocalRunner(), directory=str(root), url=ks.url)
        yield Cloud(ks, spec, state, root)
    finally:
        ks.stop()


def test_openrc_files_authenticate_admin_and_demo(cloud: Cloud) -> None:
    for who in ("admin", "demo"):
        for path in (cloud.root / f"{who}-openrc", openrc.local_path(cloud.state, who)):
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
            result = connections.LocalRunner(env=cloud.ks.base_env()).run(
                f". {path} && openstack token issue -f json && openstack project show "
                f"$OS_PROJECT_NAME -f json -c name", timeout=120)
            assert result.ok, result.stderr
            token, project = result.stdout.split("}\n", 1)
            assert parsers.parse_token(token + "}").ok
            assert json.loads(project) == {"name": who}


def test_clouds_yaml_logs_in_with_os_cloud(cloud: Cloud, tmp_path: Path) -> None:
    """`oslab openrc --clouds-yaml` into the user's XDG clouds.yaml, beside a cloud of theirs;
    then the real client, with no OS_* variable, finds it and logs in as admin and as demo."""
    mine = ("# my own cloud\nclouds:\n  mine:   # keep\n    auth: {auth_url: "
            "'http://127.0.0.1:9/v3', username: u, password: p, project_name: p}\n")
    config = tmp_path / "config"
    (config / "openstack").mkdir(parents=True)
    (config / "openstack" / "clouds.yaml").write_text(mine)
    env = {**cloud.ks.base_env(), "XDG_CONFIG_HOME": str(config)}
    env.pop("OS_CLIENT_CONFIG_FILE", None)
    done = clouds_yaml.write(cloud.spec, cloud.state, clouds_yaml.default_path(env),
                             url=cloud.ks.url)
    assert done.path == config / "openstack" / "clouds.yaml" and done.kept == 1
    assert done.path.read_text().startswith(mine)
    for who in ("admin", "demo"):
        name = f"{cloud.spec.name}-{who}"
        token = cloud.ks.openstack("--os-cloud", name, "token", "issue", "-f", "json", env=env)
        assert parsers.parse_token(token.stdout).ok
        project = cloud.ks.openstack("--os-cloud", name, "project", "show", who, "-f", "json",
                                     "-c", "name", env=env)
        assert json.loads(project.stdout) == {"name": who}
    # the user's own entry is still theirs: the client still reads it (and finds no Keystone)
    theirs = cloud.ks.openstack("--os-cloud", "mine", "token", "issue", env=env, check=False)
    assert theirs.returncode != 0 and "127.0.0.1:9" in theirs.stderr


def test_identity_and_catalog_pass(cloud: Cloud) -> None:
    report = verify.Verifier(cloud.lab()).run(only=("identity", "catalog"))
    assert [(r.name, r.status) for r in report.rows] == [
        ("identity: admin token", Status.PASS), ("identity: demo token", Status.PASS),
        ("catalog", Status.PASS), ("endpoints", Status.PASS)]
    assert report.rows[2].details == "6 services with public/internal/admin endpoints"
    assert report.ok


def test_catalog_names_the_missing_service_and_endpoint(cloud: Cloud) -> None:
    ks = cloud.ks
    admin = json.loads(ks.openstack("endpoint", "list", "--service", "volumev3", "--interface",
                                    "admin", "-f", "json").stdout)
    ks.openstack("endpoint", "delete", admin[0]["ID"])
    try:
        expected = {**checklist.EXPECTED_SERVICES, "object-store": "swift"}
        report = verify.Verifier(cloud.lab(expected=expected)).run(only=("catalog",))
    finally:
        ks.openstack("endpoint", "create", "--region", fixture.REGION, "volumev3", "admin",
                     admin[0]["URL"])
    catalog, endpoints = report.rows
    for row in (catalog, endpoints):
        assert row.status is Status.FAIL
        assert row.details == ("volumev3 (cinder) has no admin endpoint; object-store (swift) "
                               "is missing")
        assert "openstack endpoint create" in row.hint and "cinder, swift" in row.hint
    table = render_table(report)
    assert "look at: register it" in table and "0 passed, 2 failed" in table


def test_wrong_password_says_authentication_failed(cloud: Cloud, tmp_path: Path) -> None:
    (tmp_path / "admin-openrc").write_text(openrc.render("admin", "wrong-password", cloud.ks.url))
    (tmp_path / "demo-openrc").write_text((cloud.root / "demo-openrc").read_text())
    report = verify.Verifier(cloud.lab(openrc_dir=tmp_path)).run(only=("identity", "catalog"))
    admin, demo, catalog = report.rows
    assert admin.status is Status.FAIL
    assert admin.details.startswith("admin: token issue: authentication failed: The request "
                                    "you have made requires authentication. (HTTP 401)")
    assert "oslab openrc admin --print" in admin.hint and "keystone.log" in admin.hint
    assert demo.status is Status.PASS
    assert (catalog.name, catalog.status, catalog.details) == ("catalog", Status.SKIP,
                                                               "needs identity")
    assert not report.ok
    assert "wrong-password" not in render_table(report)


def test_keystone_down_and_service_down(cloud: Cloud, tmp_path: Path) -> None:
    for who in ("admin", "demo"):
        (tmp_path / f"{who}-openrc").write_text(
            openrc.render(who, cloud.state.password(openrc.credentials(who).password_key),
                          "http://127.0.0.1:9/v3"))
    down = verify.Verifier(cloud.lab(openrc_dir=tmp_path)).run(only=("identity",))
    assert down.rows[0].details.startswith("admin: token issue: cannot reach keystone")
    assert "systemctl status httpd" in down.rows[0].hint
    # compute, network and volume are in the catalog on loopback ports where nothing listens
    services = verify.Verifier(cloud.lab()).run(only=("services",))
    rows = {r.name: r for r in services.rows}
    assert rows["compute services"].status is Status.FAIL
    assert rows["compute services"].details == \
        "compute services: cannot reach http://127.0.0.1:8774/v2.1/os-services"
    assert rows["network agents"].details.startswith("network agents: cannot reach "
                                                     "http://127.0.0.1:9696/")
    assert rows["nova-status upgrade check"].status is Status.FAIL


class _Nova(BaseHTTPRequestHandler):
    """nova's GET /v2.1/os-services as its API reference shows it: the one stand-in here, so
    that a listing that answers is judged too (neutron's and cinder's ports stay closed)."""

    seen: ClassVar[list[tuple[str, str]]] = []

    def do_GET(self) -> None:
        self.seen.append((self.path, self.headers.get("X-Auth-Token", "")))
        body = json.dumps({"services": [
            {"id": i, "binary": b, "host": h, "zone": "internal", "status": "enabled",
             "state": "up", "updated_at": None, "disabled_reason": None}
            for i, (b, h) in enumerate((("nova-conductor", "controller"),
                                        ("nova-scheduler", "controller"),
                                        ("nova-compute", "compute1")))]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


def test_start_s_services_rows_over_rest_from_this_host(cloud: Cloud) -> None:
    """`oslab start`'s wait: the admin's token from the real Keystone, each API's endpoint from
    that token's catalog, the listings asked with the token, no client and no upgrade check."""
    server = ThreadingHTTPServer(("127.0.0.1", 8774), _Nova)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        api = ServiceApi(cloud.ks.url, "127.0.0.1", openrc.credentials(openrc.ADMIN),
                         cloud.state.password(openrc.ADMIN_PASSWORD_KEY), connections.http_api)
        lab = replace(cloud.lab(), api=api, timeouts=Timeouts(settle=3.0, poll=1.0))
        report = verify.Verifier(lab).run(only=("services",))
    finally:
        server.shutdown()
        server.server_close()
    rows = {r.name: r for r in report.rows}
    assert list(rows) == ["compute services", "network agents", "volume services"]
    assert (rows["compute services"].status, rows["compute services"].details) == (
        Status.PASS, "3 up; nova-compute on compute1")
    path, token = _Nova.seen[0]
    assert path == "/v2.1/os-services" and len(token) > 20
    assert rows["network agents"].status is Status.FAIL
    assert rows["network agents"].details.startswith(
        "network agents: cannot reach http://127.0.0.1:9696/v2.0/agents")
    # cinder's endpoint, with the admin project's id that Keystone put in the catalog
    assert re.match(r"volume services: cannot reach http://127\.0\.0\.1:8776/v3/[0-9a-f]{32}/"
                    r"os-services", rows["volume services"].details)

    wrong = replace(cloud.lab(), timeouts=Timeouts(settle=2.0, poll=1.0),
                    api=ServiceApi(cloud.ks.url, "127.0.0.1", openrc.credentials(openrc.ADMIN),
                                   "wrong-password", connections.http_api))
    refused = verify.Verifier(wrong).run(only=("services",)).rows[0]
    assert refused.status is Status.FAIL
    assert refused.details.startswith(f"keystone: {cloud.ks.url}/auth/tokens answered HTTP 401")
    assert "wrong-password" not in refused.details
