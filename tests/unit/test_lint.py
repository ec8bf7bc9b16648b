"""`oslab lint`'s decisions: the files oslab renders are clean, and each broken config a person
writes by hand gives its finding on its line, without a secret in it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from oslab import spec_file
from oslab.access.state import LabState
from oslab.install import content
from oslab.install.lint import LOGIN_SCRIPT, Finding, Login, lint, login_problems, logins
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
    ("controller", "/etc/keystone/keystone.conf", "connection = mysql+pymysql://",
     "connection =\n#mysql+pymysql://", "[database] connection is empty: the service has no "
     "database URL to use"),
    ("compute1", "/etc/nova/nova.conf", "region_name = RegionOne\nproject_name = service\n"
     "username = placement", "region_name = regionOne\nproject_name = service\n"
     "username = placement", "[placement] region_name is 'regionOne', not the catalog's "
     "region RegionOne (region names are case-sensitive)"),
    ("controller", "/etc/placement/placement.conf", "@controller/placement",
     "@localhost/placement", "[placement_database] connection points at localhost, not the "
     "controller (controller, 10.0.0.11)"),
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


def test_each_service_user_is_asked_for_once_and_a_refused_one_is_found(tmp_path: Path) -> None:
    files = rendered(SPEC, tmp_path)
    found = logins(files)
    # keystone_authtoken of every API, nova's [placement]/[neutron]/[service_user], ...
    assert {(g.section, g.username) for g in found} >= {
        ("keystone_authtoken", "glance"), ("keystone_authtoken", "nova"),
        ("placement", "placement"), ("neutron", "neutron"), ("keystone_authtoken", "cinder")}
    glance = next(g for g in found if g.username == "glance")
    assert glance.request()["url"] == "http://controller:5000/v3/auth/tokens"
    assert glance.password not in repr(glance)
    asked: list[int] = []

    def keystone(tried: Sequence[Login]) -> dict[Login, str]:
        asked.append(len(tried))
        return login_problems(tried, "\n".join("401" if g.username == "glance" else "201"
                                               for g in tried))

    result = lint(SPEC, files, lambda t: t, keystone)
    assert asked == [len(found)]
    where = ("controller", "/etc/glance/glance-api.conf")
    assert [str(f) for f in result] == [
        f"controller:/etc/glance/glance-api.conf:{line_of(files[where], 'username = glance')}: "
        "error: [keystone_authtoken] user 'glance' cannot log in: Keystone refuses its username "
        "or password (HTTP 401)"]


@pytest.mark.parametrize(("stdout", "said"), [
    ("201\n", None),
    ("401\n", "Keystone refuses its username or password (HTTP 401)"),
    ("503\n", "Keystone answered HTTP 503"),
    ("error: <urlopen error [Errno 111] Connection refused>\n",
     "cannot ask http://controller:5000/v3: <urlopen error [Errno 111] Connection refused>"),
    ("", "cannot ask http://controller:5000/v3: no answer"),
])
def test_what_keystone_said_to_a_login(stdout: str, said: str | None) -> None:
    g = Login("n", "/f", 3, "keystone_authtoken", "http://controller:5000/v3", "u", "p",
              "service")
    assert login_problems([g], stdout).get(g) == said


def test_the_login_script_asks_a_real_http_server(tmp_path: Path) -> None:
    """LOGIN_SCRIPT as a node runs it (python3, the requests on stdin), against a server on
    loopback that plays Keystone: a 201 for the right password, a 401 otherwise."""
    import json
    import subprocess
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    seen: list[dict[str, object]] = []

    class Keystone(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append(body)
            user = body["auth"]["identity"]["password"]["user"]
            self.send_response(201 if user["password"] == "right" else 401)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Keystone)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/v3"
        tried = [Login("n", "/f", 1, "s", url, "glance", "right", "service"),
                 Login("n", "/f", 2, "s", url, "glance", "wrong", "service"),
                 Login("n", "/f", 3, "s", "http://127.0.0.1:9/v3", "x", "y")]
        done = subprocess.run(["python3", "-c", LOGIN_SCRIPT], text=True, capture_output=True,
                              input=json.dumps([g.request() for g in tried]), timeout=60)
    finally:
        server.shutdown()
        server.server_close()
    problems = login_problems(tried, done.stdout)
    assert tried[0] not in problems
    assert problems[tried[1]] == "Keystone refuses its username or password (HTTP 401)"
    assert problems[tried[2]].startswith("cannot ask http://127.0.0.1:9/v3: ")
    assert seen[0]["auth"]["scope"] == {"project": {"name": "service",  # type: ignore[index]
                                                    "domain": {"name": "Default"}}}
