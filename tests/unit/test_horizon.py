"""The dashboard login of `oslab verify`: Horizon's pages read by ``horizon`` (recorded from a
real Horizon of the release, tests/unit/recorded/), the cookie-keeping ``HttpSession`` over
real HTTP on loopback against a server that checks Django's CSRF rules, and the verify row
on the fake cloud of test_verify."""

from __future__ import annotations

import http.server
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path

import pytest

from oslab.install.services.layer import DEBIAN, EL
from oslab.install.verify.connections import HttpSession
from oslab.install.verify.horizon import (
    INSTANCES_PATH,
    LOGIN_PATH,
    Page,
    login_fields,
    login_form,
    parse_instances,
    parse_login,
)

REC = Path(__file__).parent / "recorded"
BASE = "http://10.0.0.11/dashboard/"
SERVER = "oslab-verify-vm"


def rec(name: str) -> str:
    return (REC / name).read_text()


LOGIN = rec("horizon_login_debian13.html")
REFUSED = rec("horizon_login_refused_debian13.html")
PROJECT = rec("horizon_project_debian13.html")
INSTANCES = rec("horizon_instances_debian13.html")


def test_login_form_of_both_distros() -> None:
    for page in ("horizon_login_debian13.html", "horizon_login.html"):
        form = login_form(Page(200, rec(page), BASE + LOGIN_PATH))
        assert form is not None
        assert form.action == BASE + LOGIN_PATH
        assert form.fields["csrfmiddlewaretoken"]
        assert {"username", "password", "region", "next"} <= set(form.fields)
    debian = login_form(Page(200, LOGIN, BASE + LOGIN_PATH))
    assert debian is not None
    posted = login_fields(debian, "demo", "pw")
    assert (posted["username"], posted["password"], posted["domain"]) == ("demo", "pw",
                                                                          "Default")
    assert posted["csrfmiddlewaretoken"] == debian.fields["csrfmiddlewaretoken"]
    assert posted["fake_email"] == posted["fake_password"] == ""


LOGINS = [
    ("session", Page(200, PROJECT, BASE + "project/"), True, "logged in (/dashboard/project/)",
     ""),
    ("wrong-password", Page(200, REFUSED, BASE + LOGIN_PATH), False,
     "login refused: Invalid credentials.", "oslab openrc demo --print"),
    ("keystone-down", Page(200, LOGIN.replace(
        "<fieldset", '<div class="alert alert-danger">Unable to establish connection to '
                     "keystone endpoint.</div><fieldset", 1), BASE + LOGIN_PATH), False,
     "login refused: Unable to establish connection to keystone endpoint.",
     "OPENSTACK_KEYSTONE_URL in /etc/openstack-dashboard/local_settings.d/_9990_oslab.py"),
    ("csrf", Page(403, "<h1>Forbidden <span>(403)</span></h1><p>CSRF verification failed. "
                       "Request aborted.</p>", BASE + LOGIN_PATH), False,
     "HTTP 403: CSRF verification failed", "csrftoken cookie"),
    ("server-error", Page(500, "<title>Server Error (500)</title>", BASE + "project/"), False,
     "HTTP 500 from /dashboard/project/ (Server Error (500))", "/var/log/apache2/error.log"),
    ("nothing", Page(0, "Connection refused", BASE + LOGIN_PATH), False,
     "nothing answers: Connection refused", "systemctl status apache2"),
]


@pytest.mark.parametrize(("page", "ok", "details", "hint"), [c[1:] for c in LOGINS],
                         ids=[c[0] for c in LOGINS])
def test_parse_login(page: Page, ok: bool, details: str, hint: str) -> None:
    verdict = parse_login(page, DEBIAN)
    assert (verdict.ok, verdict.details) == (ok, details)
    assert hint in verdict.hint


INSTANCE_PAGES = [
    ("listed", Page(200, INSTANCES, BASE + INSTANCES_PATH), SERVER, True,
     f"the instances page lists {SERVER}"),
    ("no-name-asked", Page(200, INSTANCES, BASE + INSTANCES_PATH), "", True,
     "the instances page"),
    ("not-listed", Page(200, INSTANCES, BASE + INSTANCES_PATH), "other-vm", False,
     "the instances page does not list other-vm"),
    ("back-to-login", Page(200, LOGIN, BASE + LOGIN_PATH + "?next=/dashboard/project/"),
     SERVER, False, "the instances page sent the session back to the login page"),
    ("no-table", Page(200, PROJECT, BASE + "project/"), SERVER, False,
     "/dashboard/project/ has no instances table"),
    ("error", Page(500, "<title>Server Error (500)</title>", BASE + INSTANCES_PATH), SERVER,
     False, "HTTP 500 from /dashboard/project/instances/ (Server Error (500))"),
]


@pytest.mark.parametrize(("page", "name", "ok", "details"), [c[1:] for c in INSTANCE_PAGES],
                         ids=[c[0] for c in INSTANCE_PAGES])
def test_parse_instances(page: Page, name: str, ok: bool, details: str) -> None:
    verdict = parse_instances(page, name, EL)
    assert (verdict.ok, verdict.details) == (ok, details)
    assert ok or verdict.hint


# -- HttpSession over real HTTP, against a server that keeps Django's CSRF rules ------------


@dataclass
class Django:
    """What the server saw."""

    password: str = "pw"
    posts: list[dict[str, list[str]]] = field(default_factory=list)
    referers: list[str] = field(default_factory=list)


def _handler(django: Django) -> type[http.server.BaseHTTPRequestHandler]:
    token = "csrf-secret-token"

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def cookies(self) -> dict[str, str]:
            jar = SimpleCookie(self.headers.get("Cookie", ""))
            return {k: v.value for k, v in jar.items()}

        def send(self, status: int, body: str, headers: dict[str, str] | None = None) -> None:
            data = body.encode()
            self.send_response(status)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            path = urllib.parse.urlsplit(self.path).path
            if path == "/dashboard/auth/login/":
                page = LOGIN.replace(LOGIN.split('name="csrfmiddlewaretoken" value="')[1]
                                     .split('"')[0], token)
                self.send(200, page, {"Set-Cookie": f"csrftoken={token}; Path=/"})
            elif self.cookies().get("sessionid") != "s1":
                self.send(302, "", {"Location": "/dashboard/auth/login/?next=" + path})
            elif path == "/dashboard/":
                self.send(302, "", {"Location": "/dashboard/project/"})
            elif path == "/dashboard/project/":
                self.send(200, PROJECT)
            elif path == "/dashboard/project/instances/":
                self.send(200, INSTANCES)
            else:
                self.send(404, "<title>Not Found</title>")

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"])).decode()
            form = urllib.parse.parse_qs(body, keep_blank_values=True)
            django.posts.append(form)
            django.referers.append(self.headers.get("Referer", ""))
            if (self.cookies().get("csrftoken") != token
                    or form.get("csrfmiddlewaretoken") != [token]):
                self.send(403, "<p>CSRF verification failed. Request aborted.</p>")
            elif form.get("password") != [django.password]:
                self.send(200, REFUSED)
            else:
                self.send(302, "", {"Location": "/dashboard/",
                                    "Set-Cookie": "sessionid=s1; Path=/; HttpOnly"})

    return Handler


@pytest.fixture
def django() -> Iterator[tuple[Django, str]]:
    seen = Django()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(seen))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield seen, f"http://127.0.0.1:{server.server_address[1]}/dashboard/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@pytest.mark.parametrize(("password", "logged_in"), [("pw", True), ("wrong", False)])
def test_http_session_keeps_the_csrf_and_session_cookies(django: tuple[Django, str],
                                                         password: str,
                                                         logged_in: bool) -> None:
    seen, base = django
    web = HttpSession()
    assert not parse_instances(web.get(base + INSTANCES_PATH, 10), "", DEBIAN).ok
    page = web.get(base + LOGIN_PATH, 10)
    form = login_form(page)
    assert form is not None and form.action == base + LOGIN_PATH
    after = web.post(form.action, login_fields(form, "demo", password), 10)
    assert parse_login(after, DEBIAN).ok is logged_in
    assert seen.posts[-1]["domain"] == ["Default"]
    assert seen.referers[-1] == base + LOGIN_PATH
    listed = parse_instances(web.get(base + INSTANCES_PATH, 10), SERVER, DEBIAN)
    assert listed.ok is logged_in


def test_http_session_without_the_cookie_is_refused_by_csrf(django: tuple[Django, str]) -> None:
    _seen, base = django
    form = login_form(HttpSession().get(base + LOGIN_PATH, 10))
    assert form is not None
    verdict = parse_login(HttpSession().post(form.action, login_fields(form, "demo", "pw"), 10),
                          DEBIAN)
    assert (verdict.ok, verdict.details) == (False, "HTTP 403: CSRF verification failed")


def test_nothing_listening() -> None:
    page = HttpSession().get("http://127.0.0.1:9/dashboard/auth/login/", 10)
    assert page.status == 0 and "refused" in page.body.lower()
