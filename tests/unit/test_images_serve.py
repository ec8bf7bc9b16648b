"""The local repository server, on loopback: files only, read-only, no listings, and gone
when stopped."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

import pytest

from oslab.errors import HostError
from oslab.images.serve import RepoServer


def get(url: str, method: str = "GET") -> tuple[int, bytes]:
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""


def test_serves_the_repository_read_only(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "Release").write_text("Suite: trixie\n")
    (tmp_path / "secret").write_text("not served")
    with RepoServer(repo, "127.0.0.1", 0) as server:
        assert get(server.url + "Release") == (200, b"Suite: trixie\n")
        assert get(server.url + "Release", "HEAD") == (200, b"")
        assert get(server.url)[0] == 404  # no listings
        assert get(server.url + "../secret")[0] == 404
        assert get(server.url + "%2e%2e/secret")[0] == 404
        assert get(server.url + "Release", "PUT")[0] == 501
        assert get(server.url + "Release", "POST")[0] == 501
        url = server.url
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url + "Release", timeout=2)


def test_a_taken_port_is_a_host_error(tmp_path: Path) -> None:
    with RepoServer(tmp_path, "127.0.0.1", 0) as first:
        port = int(first.url.rsplit(":", 1)[1].strip("/"))
        with pytest.raises(HostError) as err:
            RepoServer(tmp_path, "127.0.0.1", port).start()
    assert str(err.value).startswith(f"cannot serve the local package repository on "
                                     f"http://127.0.0.1:{port}/: ")
