"""oslab.downloads.download: resumable, verified downloads.

The download tests talk only to an HTTP server they start on 127.0.0.1 (port 0, a thread).
"""

from __future__ import annotations

import hashlib
import http.server
import io
import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from oslab.downloads import download
from oslab.errors import OslabError
from oslab.spec import DownloadSource

# -- a loopback HTTP server -----------------------------------------------------------------------


@dataclass
class Served:
    files: dict[str, bytes] = field(default_factory=dict)
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    drop_after: int | None = None  # the next response stops after this many body bytes
    ignore_range: bool = False


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    served: Served

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        served = self.server.served  # type: ignore[attr-defined]
        rng = self.headers.get("Range")
        served.requests.append((self.path, rng))
        body = served.files.get(self.path)
        if body is None:
            self._reply(404, b"not found", {})
            return
        m = re.fullmatch(r"bytes=(\d+)-", rng or "")
        if m and not served.ignore_range:
            start = int(m.group(1))
            if start >= len(body):
                self._reply(416, b"", {"Content-Range": f"bytes */{len(body)}"})
                return
            headers = {"Content-Range": f"bytes {start}-{len(body) - 1}/{len(body)}"}
            self._reply(206, body[start:], headers, served)
        else:
            self._reply(200, body, {}, served)

    def _reply(self, code: int, payload: bytes, headers: dict[str, str],
               served: Served | None = None) -> None:
        self.send_response(code)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        if served is not None and served.drop_after is not None:
            payload = payload[:served.drop_after]
            served.drop_after = None
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(payload)


def fetch(src: DownloadSource, cache_dir: Path, progress: download.Progress | None = None,
          **options: Any) -> Path:
    """download.fetch without the wait between attempts."""
    return download.fetch(src, cache_dir, progress, retry_delay_s=0.0, **options)


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Never let urllib route a test request through a proxy."""
    for var in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY",
                "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.setenv("NO_PROXY", "*")


@dataclass
class Server:
    served: Served
    base: str

    def url(self, path: str) -> str:
        return self.base + path


@pytest.fixture
def server() -> Iterator[Server]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    served = Served()
    httpd.served = served  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    host, port = httpd.server_address[:2]
    assert host == "127.0.0.1"
    try:
        yield Server(served, f"http://127.0.0.1:{port}")
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


ISO_BYTES = os.urandom(2 * 1024 * 1024 + 77)
ISO_SHA = hashlib.sha256(ISO_BYTES).hexdigest()


def test_download_and_verify(tmp_path: Path, server: Server) -> None:
    server.served.files["/isos/boot.iso"] = ISO_BYTES
    seen: list[tuple[int, int | None]] = []
    got = fetch(DownloadSource(url=server.url("/isos/boot.iso"), sha256=ISO_SHA),
                         tmp_path / "cache", lambda done, total: seen.append((done, total)))
    assert got == tmp_path / "cache" / "boot.iso"
    assert got.read_bytes() == ISO_BYTES
    assert not (tmp_path / "cache" / "boot.iso.part").exists()
    stamp = (tmp_path / "cache" / "boot.iso.sha256").read_text().split()
    assert stamp[0] == ISO_SHA
    assert seen[-1] == (len(ISO_BYTES), len(ISO_BYTES))
    # Cached and stamped: a rerun makes no request at all.
    before = len(server.served.requests)
    assert fetch(DownloadSource(url=server.url("/isos/boot.iso"), sha256=ISO_SHA),
                          tmp_path / "cache") == got
    assert len(server.served.requests) == before


def test_interrupted_download_resumes_with_range(tmp_path: Path, server: Server) -> None:
    server.served.files["/boot.iso"] = ISO_BYTES
    server.served.drop_after = 700_000
    src = DownloadSource(url=server.url("/boot.iso"), sha256=ISO_SHA)
    with pytest.raises(OslabError) as err:
        fetch(src, tmp_path, attempts=1)
    assert "700000 bytes" in err.value.message
    assert err.value.hint is not None and "resumes" in err.value.hint
    part = tmp_path / "boot.iso.part"
    assert part.stat().st_size == 700_000
    assert not (tmp_path / "boot.iso").exists()

    got = fetch(src, tmp_path, attempts=1)
    assert got.read_bytes() == ISO_BYTES
    assert server.served.requests[-1] == ("/boot.iso", "bytes=700000-")
    assert not part.exists()


def test_resume_within_one_fetch(tmp_path: Path, server: Server) -> None:
    server.served.files["/boot.iso"] = ISO_BYTES
    server.served.drop_after = 123_456
    got = fetch(DownloadSource(url=server.url("/boot.iso"), sha256=ISO_SHA), tmp_path)
    assert got.read_bytes() == ISO_BYTES
    assert [r for _, r in server.served.requests] == [None, "bytes=123456-"]


def test_server_ignoring_range_restarts(tmp_path: Path, server: Server) -> None:
    server.served.files["/boot.iso"] = ISO_BYTES
    server.served.ignore_range = True
    (tmp_path / "boot.iso.part").write_bytes(ISO_BYTES[:5000])
    got = fetch(DownloadSource(url=server.url("/boot.iso"), sha256=ISO_SHA), tmp_path)
    assert server.served.requests == [("/boot.iso", "bytes=5000-")]
    assert got.read_bytes() == ISO_BYTES  # not the 5000 bytes twice


def test_complete_part_file_answered_416(tmp_path: Path, server: Server) -> None:
    server.served.files["/boot.iso"] = ISO_BYTES
    (tmp_path / "boot.iso.part").write_bytes(ISO_BYTES)
    got = fetch(DownloadSource(url=server.url("/boot.iso"), sha256=ISO_SHA), tmp_path)
    assert got.read_bytes() == ISO_BYTES
    assert server.served.requests == [("/boot.iso", f"bytes={len(ISO_BYTES)}-")]


def test_sha_mismatch_refused_and_removed(tmp_path: Path, server: Server) -> None:
    server.served.files["/boot.iso"] = ISO_BYTES
    wrong = "0" * 64
    with pytest.raises(OslabError) as err:
        fetch(DownloadSource(url=server.url("/boot.iso"), sha256=wrong), tmp_path)
    assert wrong in err.value.message
    assert ISO_SHA in err.value.message
    assert err.value.hint is not None and "iso.url" in err.value.hint
    assert not (tmp_path / "boot.iso").exists()
    assert not (tmp_path / "boot.iso.part").exists()


def test_http_error_is_reported(tmp_path: Path, server: Server) -> None:
    with pytest.raises(OslabError, match="HTTP 404") as err:
        fetch(DownloadSource(url=server.url("/missing.iso"), sha256=ISO_SHA), tmp_path)
    assert err.value.hint is not None and "iso.url" in err.value.hint


@pytest.mark.parametrize("checksum_file", [
    f"# boot.iso: {len(ISO_BYTES)} bytes\nSHA256 (boot.iso) = {ISO_SHA}\n",
    f"{'1' * 64}  other.iso\n{ISO_SHA}  boot.iso\n",
    f"{ISO_SHA} *boot.iso\n",
    # The CHECKSUM of a "latest" symlink names the dated file: one entry is taken as is.
    f"SHA256 (CentOS-Stream-9-20251110.0-x86_64-boot.iso) = {ISO_SHA.upper()}\n",
])
def test_sha256_url_formats(tmp_path: Path, server: Server, checksum_file: str) -> None:
    server.served.files["/boot.iso"] = ISO_BYTES
    server.served.files["/boot.iso.SHA256SUM"] = checksum_file.encode()
    got = fetch(DownloadSource(url=server.url("/boot.iso"),
                                        sha256_url=server.url("/boot.iso.SHA256SUM")), tmp_path)
    assert got.read_bytes() == ISO_BYTES


def test_sha256_url_without_our_file(tmp_path: Path, server: Server) -> None:
    server.served.files["/boot.iso"] = ISO_BYTES
    server.served.files["/SUMS"] = f"{'1' * 64}  a.iso\n{'2' * 64}  b.iso\n".encode()
    with pytest.raises(OslabError, match=r"no line for boot\.iso") as err:
        fetch(DownloadSource(url=server.url("/boot.iso"),
                                      sha256_url=server.url("/SUMS")), tmp_path)
    assert err.value.hint is not None and "a.iso, b.iso" in err.value.hint
    assert [p for p, _ in server.served.requests] == ["/SUMS"]  # nothing downloaded


def test_parse_checksums() -> None:
    sums = download.parse_checksums(
        "# comment\n"
        f"SHA256 (x.iso) = {'a' * 64}\n"
        f"{'B' * 64}  ./dir/y.iso\n"
        "MD5 (z.iso) = 0123\n"
        "garbage\n")
    assert sums == {"x.iso": "a" * 64, "y.iso": "b" * 64}


def test_cached_file_reverified_when_stamp_stale(tmp_path: Path, server: Server) -> None:
    server.served.files["/boot.iso"] = ISO_BYTES
    src = DownloadSource(url=server.url("/boot.iso"), sha256=ISO_SHA)
    got = fetch(src, tmp_path)
    # Damage the cached file: the stamp no longer describes it, so it is hashed, found
    # wrong and fetched again.
    got.write_bytes(b"damaged")
    assert fetch(src, tmp_path).read_bytes() == ISO_BYTES
    assert len(server.served.requests) == 2


def test_checksum_file_unreachable_uses_stamp(tmp_path: Path, server: Server) -> None:
    server.served.files["/boot.iso"] = ISO_BYTES
    server.served.files["/SUMS"] = f"{ISO_SHA}  boot.iso\n".encode()
    src = DownloadSource(url=server.url("/boot.iso"), sha256_url=server.url("/SUMS"))
    fetch(src, tmp_path)
    del server.served.files["/SUMS"]
    assert fetch(src, tmp_path).read_bytes() == ISO_BYTES
    (tmp_path / "boot.iso.sha256").unlink()
    with pytest.raises(OslabError, match="cannot fetch the checksum file"):
        fetch(src, tmp_path)


@pytest.mark.parametrize("stamp", ["x y z\n", "\xff", "", "fifo"])
def test_a_stamp_oslab_did_not_write_is_summed_again(tmp_path: Path, server: Server,
                                                     stamp: str) -> None:
    """Not three words, not numbers, not UTF-8, or a FIFO: the file is hashed again (and the
    stamp rewritten), never an internal error or a hang."""
    server.served.files["/boot.iso"] = ISO_BYTES
    src = DownloadSource(url=server.url("/boot.iso"), sha256=ISO_SHA)
    fetch(src, tmp_path)
    path = tmp_path / "boot.iso.sha256"
    path.unlink()
    if stamp == "fifo":
        os.mkfifo(path)
    else:
        path.write_bytes(stamp.encode("latin-1"))
    assert fetch(src, tmp_path).read_bytes() == ISO_BYTES
    assert len(server.served.requests) == 1  # hashed, not downloaded again
    assert path.read_text().split()[0] == ISO_SHA


# -- local paths --------------------------------------------------------------------------------


def test_local_path(tmp_path: Path) -> None:
    local = tmp_path / "my.iso"
    local.write_bytes(ISO_BYTES)
    assert fetch(DownloadSource(path=str(local)), tmp_path / "cache") == local
    assert fetch(DownloadSource(path=str(local), sha256=ISO_SHA),
                          tmp_path / "cache") == local
    with pytest.raises(OslabError) as err:
        fetch(DownloadSource(path=str(local), sha256="f" * 64), tmp_path / "cache")
    assert "f" * 64 in err.value.message and ISO_SHA in err.value.message
    assert local.exists()  # the user's own file is never deleted


def test_local_path_missing(tmp_path: Path) -> None:
    with pytest.raises(OslabError, match="does not exist") as err:
        fetch(DownloadSource(path=str(tmp_path / "nope.iso")), tmp_path)
    assert err.value.hint is not None and "iso.path" in err.value.hint


# -- progress -----------------------------------------------------------------------------------


def test_text_progress_without_tty_reports_every_ten_percent() -> None:
    out = io.StringIO()
    progress = download.text_progress("boot.iso", out)
    for done in range(0, 1001, 7):
        progress(done, 1000)
    progress(1000, 1000)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("boot.iso: 0%")
    assert lines[-1].startswith("boot.iso: 100%")
    assert len(lines) == 11


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_text_progress_on_tty_draws_a_bar() -> None:
    out = _Tty()
    progress = download.text_progress("boot.iso", out)
    progress(0, 4 << 20)
    progress(4 << 20, 4 << 20)
    text = out.getvalue()
    assert text.startswith("\rboot.iso [")
    assert "100% 4.0 MiB/4.0 MiB\n" in text
