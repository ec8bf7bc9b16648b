"""A download, once, resumable and verified: the installer ISO, the cirros image.

A ``url`` is downloaded into the cache directory as ``<name>.part``; a rerun continues it with
an HTTP ``Range`` request. Once the whole file is there its sha256 is checked (the ``sha256``
given in the spec, or the line for it in the ``sha256_url`` CHECKSUM file) before it is
renamed into place, and a ``<name>.sha256`` stamp records the verified sum with the file's
size and mtime so later runs do not hash a gigabyte again.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any, TextIO

from oslab.errors import OslabError
from oslab.files import read_small, write_atomic
from oslab.spec import DownloadSource

Progress = Callable[[int, int | None], None]

CHUNK = 1 << 20
TIMEOUT_S = 60.0
ATTEMPTS = 3
RETRY_DELAY_S = 2.0
MAX_CHECKSUM_FILE = 1 << 20
USER_AGENT = "oslab (+https://oslab.dev)"

_BSD_LINE = re.compile(r"^SHA256\s*\((?P<name>.+)\)\s*=\s*(?P<hex>[0-9a-fA-F]{64})\s*$")
_GNU_LINE = re.compile(r"^(?P<hex>[0-9a-fA-F]{64})\s+\*?(?P<name>\S.*?)\s*$")
_CONTENT_RANGE = re.compile(r"^bytes\s+(?:(?P<start>\d+)-\d+|\*)/(?P<total>\d+|\*)$")


# -- fetch --------------------------------------------------------------------------------------


def fetch(src: DownloadSource, cache_dir: Path, progress: Progress | None = None, *,
          attempts: int = ATTEMPTS, timeout_s: float = TIMEOUT_S,
          retry_delay_s: float = RETRY_DELAY_S) -> Path:
    """The installer ISO on disk: ``src.path`` checked, or ``src.url`` downloaded and verified.

    ``progress(done, total)`` is called while downloading (``total`` None when unknown); see
    :func:`text_progress` for a ready-made one.
    """
    if src.path:
        return _local(src, cache_dir, timeout_s)
    if not src.url:
        raise OslabError("the lab spec names no installer ISO",
                         hint="set iso.path, or iso.url with iso.sha256, in the lab TOML")
    return _remote(src, cache_dir, progress, attempts, timeout_s, retry_delay_s)


def _local(src: DownloadSource, cache_dir: Path, timeout_s: float) -> Path:
    iso = Path(src.path).expanduser()
    if not iso.is_file():
        raise OslabError(f"the installer ISO {iso} does not exist",
                         hint="fix iso.path in the lab TOML, or give iso.url to download it")
    if not (src.sha256 or src.sha256_url):
        return iso
    # The stamp lives in the cache: the user's ISO directory need not be writable.
    key = hashlib.sha256(str(iso.resolve()).encode()).hexdigest()[:16]
    stamp = cache_dir / "local" / f"{iso.name}.{key}.sha256"
    expected = _expected_sum(src, iso.name, timeout_s, stamp_of=(iso, stamp))
    if _stamp_matches(iso, stamp, expected):
        return iso
    actual = sha256_file(iso)
    if actual != expected:
        raise OslabError(_mismatch(str(iso), expected, actual),
                         hint="check that iso.path is the ISO you mean and that iso.sha256 "
                              "(or iso.sha256_url) in the lab TOML is its checksum")
    _write_stamp(iso, stamp, expected)
    return iso


def _remote(src: DownloadSource, cache_dir: Path, progress: Progress | None, attempts: int,
            timeout_s: float, retry_delay_s: float) -> Path:
    name = file_name_from_url(src.url)
    target = cache_dir / name
    stamp = cache_dir / f"{name}.sha256"
    part = cache_dir / f"{name}.part"
    expected = _expected_sum(src, name, timeout_s, stamp_of=(target, stamp))
    if target.exists():
        if _stamp_matches(target, stamp, expected) or sha256_file(target) == expected:
            _write_stamp(target, stamp, expected)
            return target
        # A "latest" URL moved on (its CHECKSUM changed), or the cache was damaged: refetch.
        target.unlink()
        stamp.unlink(missing_ok=True)
    cache_dir.mkdir(parents=True, exist_ok=True)
    download(src.url, part, progress, attempts=attempts, timeout_s=timeout_s,
             retry_delay_s=retry_delay_s)
    actual = sha256_file(part)
    if actual != expected:
        part.unlink()
        raise OslabError(
            _mismatch(src.url, expected, actual) + "\n  the download was deleted",
            hint="check iso.url and iso.sha256 (or iso.sha256_url) in the lab TOML; if they "
                 "are right, the mirror served a bad file: run again to download it afresh")
    os.replace(part, target)
    _write_stamp(target, stamp, expected)
    return target


def _mismatch(what: str, expected: str, actual: str) -> str:
    return (f"sha256 mismatch for {what}:\n  expected {expected}\n  got      {actual}")


def file_name_from_url(url: str) -> str:
    name = PurePosixPath(urllib.parse.unquote(urllib.parse.urlsplit(url).path)).name
    if not name or name in {".", ".."}:
        raise OslabError(f"cannot tell the file name from the URL {url}",
                         hint="iso.url must end in the ISO's file name, e.g. .../boot.iso")
    return name


def sha256_file(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


# -- the expected sum and the stamp ---------------------------------------------------------------


def _expected_sum(src: DownloadSource, name: str, timeout_s: float,
                  stamp_of: tuple[Path, Path]) -> str:
    given: str = src.sha256
    if given:
        return given.lower()
    try:
        text = _get_text(src.sha256_url, timeout_s)
    except OslabError:
        # Offline: a file verified earlier against this CHECKSUM URL is still good.
        verified = _read_stamp(*stamp_of)
        if verified is not None:
            return verified
        raise
    return checksum_for(parse_checksums(text), name, src.sha256_url)


def _get_text(url: str, timeout_s: float) -> str:
    req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            data: bytes = resp.read(MAX_CHECKSUM_FILE)
    except urllib.error.HTTPError as exc:
        exc.close()
        raise OslabError(f"cannot fetch the checksum file {url}: HTTP {exc.code} {exc.reason}",
                         hint="check iso.sha256_url in the lab TOML, or give iso.sha256") from exc
    except (OSError, http.client.HTTPException) as exc:
        raise OslabError(f"cannot fetch the checksum file {url}: {_reason(exc)}",
                         hint="check the network (and any http_proxy), or give iso.sha256 "
                              "in the lab TOML") from exc
    return data.decode("utf-8", errors="replace")


def parse_checksums(text: str) -> dict[str, str]:
    """File name → sha256 from a CHECKSUM file: ``SHA256 (name) = hex`` or ``hex  name``."""
    sums: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        m = _BSD_LINE.match(line) or _GNU_LINE.match(line)
        if m:
            sums[PurePosixPath(m.group("name").strip()).name] = m.group("hex").lower()
    return sums


def checksum_for(sums: dict[str, str], name: str, where: str) -> str:
    """The sum for ``name``; a file with one entry is taken as is (the CHECKSUM of a "latest"
    symlink names the dated file it points to)."""
    if name in sums:
        return sums[name]
    if len(sums) == 1:
        return next(iter(sums.values()))
    if not sums:
        raise OslabError(f"no sha256 lines in the checksum file {where}",
                         hint="iso.sha256_url must point at a SHA256 CHECKSUM file, or give "
                              "iso.sha256 in the lab TOML")
    raise OslabError(f"the checksum file {where} has no line for {name}",
                     hint="it lists: " + ", ".join(sorted(sums)) + "; fix iso.url or "
                          "iso.sha256_url, or give iso.sha256 in the lab TOML")


def _read_stamp(path: Path, stamp: Path) -> str | None:
    """The sum in ``stamp`` if it still describes ``path`` (same size and mtime)."""
    try:
        digest, size, mtime = read_small(stamp, 4096, "checksum stamp", "").decode().split()
        st = path.stat()
        if int(size) == st.st_size and int(mtime) == st.st_mtime_ns:
            return digest
    except (OslabError, OSError, ValueError):  # none, or not one oslab wrote: sum it again
        pass
    return None


def _stamp_matches(path: Path, stamp: Path, expected: str) -> bool:
    return _read_stamp(path, stamp) == expected


def _write_stamp(path: Path, stamp: Path, digest: str) -> None:
    st = path.stat()
    stamp.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(stamp, f"{digest} {st.st_size} {st.st_mtime_ns}\n")


# -- resumable download ---------------------------------------------------------------------------


class _Interrupted(Exception):
    """The connection ended before the whole body arrived."""


def download(url: str, part: Path, progress: Progress | None = None, *,
             attempts: int = ATTEMPTS, timeout_s: float = TIMEOUT_S,
             retry_delay_s: float = RETRY_DELAY_S) -> None:
    """Download ``url`` into ``part``, continuing what ``part`` already holds; an attempt
    that fails waits ``retry_delay_s`` before the next."""
    last: str = ""
    for attempt in range(max(1, attempts)):
        if attempt:
            time.sleep(retry_delay_s)
        try:
            if _download_once(url, part, progress, timeout_s):
                return
            last = "the server refused to resume; starting over"
        except (_Interrupted, OSError, http.client.HTTPException) as exc:
            last = _reason(exc)
    have = part.stat().st_size if part.exists() else 0
    raise OslabError(f"the download of {url} stopped after {have} bytes: {last}",
                     hint=f"run the command again: it resumes from {part}")


def _download_once(url: str, part: Path, progress: Progress | None, timeout_s: float) -> bool:
    """One request; True when ``part`` is complete, False when it must start again."""
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    req = urllib.request.Request(url, headers=headers)
    try:
        resp = urllib.request.urlopen(req, timeout=timeout_s)
    except urllib.error.HTTPError as exc:
        with contextlib.closing(exc):
            return _http_error(exc, url, part, offset)
    with resp:
        span = _body_range(resp, offset)
        if span is None:
            part.unlink(missing_ok=True)
            return False
        _receive(resp, part, *span, progress)
    return True


def _http_error(exc: urllib.error.HTTPError, url: str, part: Path, offset: int) -> bool:
    if exc.code == 416 and offset:  # Range Not Satisfiable: is the .part already whole?
        _, total = _parse_content_range(exc.headers.get("Content-Range", ""))
        if total == offset:
            return True
        part.unlink()
        return False
    raise OslabError(f"cannot download {url}: HTTP {exc.code} {exc.reason}",
                     hint="check iso.url in the lab TOML (open it in a browser)") from exc


def _body_range(resp: Any, offset: int) -> tuple[int, int | None] | None:
    """Where the response body starts in the file and the file's size if known; None when
    the server answered a range other than the one asked for."""
    if offset and resp.status == 206:
        start, total = _parse_content_range(resp.headers.get("Content-Range", ""))
        return (offset, total) if start == offset else None
    length = resp.headers.get("Content-Length")
    return 0, int(length) if length and length.isdigit() else None  # 200: from the start


def _parse_content_range(value: str) -> tuple[int | None, int | None]:
    m = _CONTENT_RANGE.match(value.strip())
    if not m:
        return None, None
    start = int(m.group("start")) if m.group("start") else None
    total = int(m.group("total")) if m.group("total").isdigit() else None
    return start, total


def _receive(resp: Any, part: Path, start: int, total: int | None,
             progress: Progress | None) -> None:
    done = start
    with part.open("r+b" if start else "wb") as out:
        out.seek(start)
        out.truncate()
        if progress:
            progress(done, total)
        while chunk := resp.read(CHUNK):
            out.write(chunk)
            done += len(chunk)
            if progress:
                progress(done, total)
    if total is not None and done < total:
        raise _Interrupted(f"the connection closed at {done} of {total} bytes")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.URLError) and not isinstance(exc, urllib.error.HTTPError):
        return str(exc.reason)
    return str(exc) or type(exc).__name__


# -- progress -----------------------------------------------------------------------------------


class TextProgress:
    """A progress bar on a terminal; otherwise one line every ``step`` percent."""

    def __init__(self, label: str, stream: TextIO | None = None, step: int = 10,
                 width: int = 30) -> None:
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty()
        self.step = step
        self.width = width
        self._last_bucket = -1
        self._last_draw = 0.0

    def __call__(self, done: int, total: int | None) -> None:
        if self.tty:
            self._draw(done, total)
        else:
            self._line(done, total)

    def _draw(self, done: int, total: int | None) -> None:
        now = time.monotonic()
        finished = total is not None and done >= total
        if not finished and now - self._last_draw < 0.2:
            return
        self._last_draw = now
        if total:
            filled = self.width * done // total
            bar = "#" * filled + "." * (self.width - filled)
            text = f"{self.label} [{bar}] {100 * done // total:3d}% {_mib(done)}/{_mib(total)}"
        else:
            text = f"{self.label} {_mib(done)}"
        self.stream.write("\r" + text + ("\n" if finished else ""))
        self.stream.flush()

    def _line(self, done: int, total: int | None) -> None:
        if total:
            bucket = 100 * done // total // self.step
            text = f"{self.label}: {bucket * self.step}% of {_mib(total)}"
        else:
            bucket = done // (100 * (1 << 20))
            text = f"{self.label}: {_mib(done)}"
        if bucket != self._last_bucket:
            self._last_bucket = bucket
            self.stream.write(text + "\n")
            self.stream.flush()


def _mib(n: int) -> str:
    return f"{n / (1 << 20):.1f} MiB"


def text_progress(label: str, stream: TextIO | None = None) -> Progress:
    """The default progress report for :func:`fetch`, on stderr."""
    return TextProgress(label, stream)


__all__ = ["TextProgress", "fetch", "parse_checksums", "text_progress"]
