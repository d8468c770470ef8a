"""A threaded loopback HTTP server for a ReplicaSite, reachable under two host names."""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import NamedTuple, Self

from .site import ReplicaSite


class ServedRequest(NamedTuple):
    """One request the server answered (a plain tuple ``(host, path, status)`` too)."""

    host: str
    """Host name from the Host header, lower case, without port."""
    path: str
    """The request target as sent, query included."""
    status: int
    """The status answered (304 included); 0 when the connection was reset without an answer."""


class _Handler(BaseHTTPRequestHandler):
    """Hands every GET/HEAD to the site and records what was served."""

    # Keep-alive like a real server, so a crawl does not pay a connection per request.
    protocol_version = "HTTP/1.1"
    # Idle keep-alive connections end after this many seconds instead of holding a thread.
    timeout = 10
    replica: ReplicaServer

    def do_GET(self) -> None:
        self._serve(send_body=True)

    def do_HEAD(self) -> None:
        self._serve(send_body=False)

    def _serve(self, send_body: bool) -> None:
        server = self.replica
        host_header = self.headers.get("Host") or f"{server.host}:{server.port}"
        try:
            response = server.site.respond(host_header, self.path, dict(self.headers.items()))
        except Exception as exc:  # noqa: BLE001 - a bug must reach the test as a 500 and be counted
            server.errors.append(exc)
            server.record(host_header, self.path, 500)
            self.send_error(500)
            return
        # Recorded before the client can see the answer, so a test reading ``requests`` right
        # after a response never misses it.
        server.record(host_header, self.path, 0 if response.reset else response.status)
        if response.delay > 0:
            time.sleep(response.delay)
        if response.reset:
            self._reset()
            return
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        if response.status != 304:
            # A 304 has no content; its Content-Length would have to be the 200's (RFC 9110).
            self.send_header("Content-Length", str(response.content_length))
        self.end_headers()
        if not send_body:
            return
        try:
            if response.truncated:
                # Half the promised bytes, then the connection closes: the client sees data loss.
                self.wfile.write(response.body[: len(response.body) // 2])
                self.close_connection = True
                return
            self.wfile.write(response.body)
            if response.stream is not None:
                for chunk in response.stream():
                    self.wfile.write(chunk)
        except OSError:
            # The client went away (a crawler cancels a page over its size limit).
            self.close_connection = True

    def _reset(self) -> None:
        """Close the connection with an RST and no answer: SO_LINGER on with a zero timeout."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        # The descriptor closes (RST) once the handler's files are closed right after this.
        self.connection.close()

    def log_message(self, format: str, *args: object) -> None:
        # Silent: tests and benchmarks read ReplicaServer.requests instead of a log.
        pass


class ReplicaServer:
    """Serves ``site`` on ``host:port`` (port 0 = a free one) in daemon threads.

    The same server answers for ``127.0.0.1`` and ``site.alias_host`` (``localhost``), the
    site's second host name.
    """

    def __init__(self, site: ReplicaSite, host: str = "127.0.0.1", port: int = 0) -> None:
        self.site = site
        self.host = host
        self.port = port
        self.requests: list[ServedRequest] = []
        """``(host, path, status)`` of every request served, in order; host without port, path
        with its query, status 0 for a reset connection."""
        self.errors: list[BaseException] = []
        """Exceptions raised while rendering (each was answered with a 500)."""
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Self:
        if self._httpd is not None:
            return self
        handler = type("ReplicaHandler", (_Handler,), {"replica": self})
        httpd = ThreadingHTTPServer((self.host, self.port), handler)
        httpd.daemon_threads = True
        self._httpd = httpd
        self.port = httpd.server_address[1]
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"replica-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def record(self, host_header: str, path: str, status: int) -> None:
        host = host_header.rsplit(":", 1)[0] if not host_header.endswith("]") else host_header
        with self._lock:
            self.requests.append(ServedRequest(host.lower(), path, status))

    # -- request accounting --------------------------------------------------------------------

    def mark(self) -> int:
        """A point in the request log: pass it to ``requests_since``/``count``/``statuses``."""
        with self._lock:
            return len(self.requests)

    def requests_since(self, mark: int = 0) -> list[ServedRequest]:
        """Requests served after ``mark`` (``mark()`` taken earlier), in order."""
        with self._lock:
            return list(self.requests[mark:])

    def count(
        self,
        predicate: Callable[[ServedRequest], bool] | None = None,
        *,
        since: int = 0,
        status: int | None = None,
        path: str | None = None,
    ) -> int:
        """How many requests after ``since`` match every filter given: ``status``, ``path``
        (exact, query included, or without query when ``path`` has none) and ``predicate``."""

        def matches(request: ServedRequest) -> bool:
            if status is not None and request.status != status:
                return False
            if path is not None and path not in (request.path, request.path.split("?", 1)[0]):
                return False
            return predicate is None or predicate(request)

        return sum(1 for request in self.requests_since(since) if matches(request))

    def statuses(self, since: int = 0) -> Counter[int]:
        """Requests after ``since`` counted by status (304s, 0 for resets included)."""
        return Counter(request.status for request in self.requests_since(since))

    @property
    def hosts(self) -> tuple[str, ...]:
        return (self.host, self.site.alias_host)

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/``."""
        return f"http://{self.host}:{self._bound_port()}/"

    @property
    def alias_url(self) -> str:
        """The site through its second host: ``http://localhost:PORT/``."""
        return f"http://{self.site.alias_host}:{self._bound_port()}/"

    def url(self, path: str, alias: bool = False) -> str:
        """Absolute URL of ``path`` (``/n_17801.htm``) on this server."""
        return (self.alias_url if alias else self.base_url).rstrip("/") + path

    def _bound_port(self) -> int:
        if self._httpd is None:
            raise RuntimeError(
                "ReplicaServer is not started: call start() or use it as a context manager"
            )
        return self.port
