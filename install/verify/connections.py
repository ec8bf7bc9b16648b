"""How the checks reach this machine and the dashboard: :class:`LocalRunner` (a ``NodeConn``
that runs commands here, the host side of the provider network), :func:`http_get`,
:class:`HttpSession` (a browser's session: cookies kept, redirects followed), and the types of
the HTTP getter, the web session and the guest connector a :class:`~.runner.Lab` takes.
"""

from __future__ import annotations

import contextlib
import http.cookiejar
import json
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Protocol

from oslab.access.ssh import NodeConn, Result
from oslab.errors import OslabError
from oslab.install.verify.horizon import Page


class LocalRunner:
    """A ``NodeConn`` that runs commands with bash on this machine (the host side, and tests).
    A command that outlives ``timeout`` raises OslabError."""

    name = "localhost"

    def __init__(self, env: Mapping[str, str] | None = None, cwd: Path | None = None) -> None:
        self.env = dict(env) if env is not None else None
        self.cwd = cwd

    def run(self, command: str, *, timeout: float, stdin: str | None = None,
            secrets: Sequence[str] = (), log: IO[str] | None = None) -> Result:
        from oslab.access.ssh import mask
        try:
            proc = subprocess.run(["bash", "-c", command], input=stdin, capture_output=True,
                                  text=True, timeout=timeout, env=self.env, cwd=self.cwd,
                                  check=False)
        except subprocess.TimeoutExpired as exc:
            raise OslabError(f"timed out after {timeout:.0f}s: {mask(command, secrets)}") from exc
        result = Result(mask(command, secrets), proc.returncode, proc.stdout,
                        mask(proc.stderr, secrets))
        if log is not None:  # as oslab.access.ssh.Session logs a command
            log.write(f"$ {result.command}\n"
                      + "".join(mask(line, secrets) + "\n" for line in result.stdout.splitlines())
                      + "".join(f"! {line}\n" for line in result.stderr.splitlines())
                      + f"# exit {result.returncode}\n")
        return result

    def put(self, path: str, data: bytes, *, timeout: float) -> None:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.touch(mode=0o600)
        p.write_bytes(data)

    def close(self) -> None:
        pass


HttpGet = Callable[[str, float], tuple[int, str]]
GuestConnect = Callable[[str, str], NodeConn]  # (address, pinned host key line) -> runner


def _fetch(opener: urllib.request.OpenerDirector, req: urllib.request.Request,
           timeout: float, limit: int, error_limit: int) -> Page:
    """One request through ``opener``: the page (its body read up to ``limit``, an error
    page's up to ``error_limit``), or status 0 with the reason when nothing answers."""
    req.add_header("User-Agent", "oslab-verify")
    try:
        with opener.open(req, timeout=timeout) as resp:
            return Page(int(resp.status), resp.read(limit).decode(errors="replace"),
                        resp.geturl(), dict(resp.headers))
    except urllib.error.HTTPError as exc:
        with contextlib.closing(exc):
            return Page(exc.code, exc.read(error_limit).decode(errors="replace"), exc.geturl(),
                        dict(exc.headers))
    except OSError as exc:
        return Page(0, str(getattr(exc, "reason", exc)), req.full_url)


def http_get(url: str, timeout: float) -> tuple[int, str]:
    """(HTTP status, body) of a GET; (0, reason) when nothing answers."""
    page = _fetch(urllib.request.build_opener(), urllib.request.Request(url), timeout,
                  1 << 20, 1 << 16)
    return page.status, page.body


def http_api(method: str, url: str, headers: Mapping[str, str], body: Any,
             timeout: float) -> tuple[int, Mapping[str, str], str]:
    """One JSON API call (``body`` sent as JSON when not None): (HTTP status, the answer's
    headers, its body), or (0, {}, the reason) when nothing answers."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Accept", "application/json")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    for name, value in headers.items():
        req.add_header(name, value)
    page = _fetch(urllib.request.build_opener(), req, timeout, 4 << 20, 1 << 16)
    return page.status, page.headers, page.body


class WebSession(Protocol):
    def get(self, url: str, timeout: float) -> Page: ...

    def post(self, url: str, fields: Mapping[str, str], timeout: float) -> Page: ...


WebConnect = Callable[[], WebSession]


class HttpSession:
    """What a browser keeps between pages: its cookies (Django's ``csrftoken`` and
    ``sessionid``), with redirects followed (a POST answered by a redirect goes on as a GET,
    as a browser does). A POST says where its form came from (``Referer``)."""

    def __init__(self) -> None:
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))
        self.last = ""

    def _open(self, req: urllib.request.Request, timeout: float) -> Page:
        page = _fetch(self.opener, req, timeout, 4 << 20, 1 << 20)
        if page.status:
            self.last = page.url
        return page

    def get(self, url: str, timeout: float) -> Page:
        return self._open(urllib.request.Request(url), timeout)

    def post(self, url: str, fields: Mapping[str, str], timeout: float) -> Page:
        data = urllib.parse.urlencode(dict(fields)).encode()
        req = urllib.request.Request(url, data=data, method="POST")
        req.add_header("Content-Type", "application/x-www-form-urlencoded")
        req.add_header("Referer", self.last or url)
        return self._open(req, timeout)
