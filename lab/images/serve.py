"""The local package repository served to the nodes: read-only HTTP on the management
network's gateway address, for as long as oslab runs.

Only GET and HEAD of files under the repository directory; no listings, no writes. The server
threads are daemons, so the server ends with the oslab process that started it.
"""

from __future__ import annotations

import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from oslab.errors import HostError


class _Handler(SimpleHTTPRequestHandler):
    def list_directory(self, path: Any) -> None:
        self.send_error(404, "no listings")
        return None

    def log_message(self, format: str, *args: Any) -> None:
        pass  # apt's requests are not worth a line on screen each


class RepoServer:
    """``with RepoServer(path, address, port):`` serves ``path`` at ``http://address:port/``."""

    def __init__(self, path: Path, address: str, port: int) -> None:
        self.path = path
        self.address = address
        self.port = port
        self.httpd: ThreadingHTTPServer | None = None
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        port = self.httpd.server_address[1] if self.httpd is not None else self.port
        return f"http://{self.address}:{port}/"

    def start(self) -> RepoServer:
        handler = functools.partial(_Handler, directory=str(self.path))
        try:
            self.httpd = ThreadingHTTPServer((self.address, self.port), handler)
        except OSError as exc:
            raise HostError(f"cannot serve the local package repository on {self.url}: "
                            f"{exc.strerror}",
                            hint="is another oslab serving this lab already, or the port taken?"
                            ) from exc
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="oslab-repo",
                                       daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None

    def __enter__(self) -> RepoServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
