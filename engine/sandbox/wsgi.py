"""werkzeug's threaded WSGI server as the sandbox's HTTP servers use it: loopback only, quiet, bytes out as given.

The quota proxy (quota_proxy.py) and the Azure emulators' HTTPS front (azure/server.py) are WSGI applications on
werkzeug's `ThreadedWSGIServer` with werkzeug's `Request`/`Response`. This module holds what they share, and the
few places where they part from werkzeug's defaults, each for a reason a test or a measurement shows:

- the listening socket is bound here, on loopback only, and handed to werkzeug as `fd`: werkzeug's own bind prints
  to stderr and exits the process when the port is taken, where library code must raise `OSError` and print nothing;
- TLS: the socket is wrapped with `do_handshake_on_connect=False` and each connection's handshake runs in its own
  thread (`finish_request`); werkzeug's `ssl_context` wraps the listening socket, so the handshake runs inside
  `accept()` in the accept loop, where one slow or broken client stalls every other;
- TCP_NODELAY on every connection (without it loopback request/response pairs stall ~40 ms on delayed ACKs,
  research/quotas.md §7), and each response written at once (a buffered writer, flushed per response);
- HTTP/1.1 keep-alive: werkzeug's handler answers `Connection: close` on every response (its development server
  cannot drain a request body it did not read), so every call would pay a new TCP connection, a new thread and,
  for the emulators, a new TLS handshake. `KeepAliveHandler` keeps werkzeug's environ, dispatch and error
  handling and only writes the response itself: the applications here read every request body whole (their
  `Request.get_data()`), and each response carries its Content-Length, so the connection stays usable. Measured
  with benchmarks/bench_sandbox_servers.py (docstring of `KeepAliveHandler`);
- nothing is printed: werkzeug's request log and its error tracebacks go to `logging` at debug level, through a
  `redact` hook (a blob request line carries its SAS signature);
- `WireResponse` sends the application's status, headers and bytes as they are: no default `text/plain`
  Content-Type, and the application's own Content-Length (a HEAD of a blob states the blob's length).
"""

from __future__ import annotations

import io
import logging
import socket
import ssl
import threading
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.exceptions import InternalServerError
from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler
from werkzeug.wrappers import Response

LOG = logging.getLogger(__name__)
LOOPBACK = ("127.0.0.1", "localhost", "::1")

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class WireResponse(Response):
    """A response whose headers are exactly the application's: no default Content-Type, no computed length."""

    default_mimetype = None
    automatically_set_content_length = False


def wire_response(status: int, headers: Iterable[tuple[str, str]], body: bytes) -> WireResponse:
    """`status`, `headers` and `body`, with a Content-Length of the body unless `headers` state one."""
    response = WireResponse(body, status=status)
    for name, value in headers:
        response.headers.add(name, value)
    if "Content-Length" not in response.headers:
        response.headers["Content-Length"] = str(len(body))
    return response


class QuietHandler(WSGIRequestHandler):
    """werkzeug's request handler with Nagle off, the server's own name, and its log lines at debug level."""

    disable_nagle_algorithm = True
    protocol_version = "HTTP/1.1"
    timeout = 120
    sys_version = ""
    # a buffered writer: the status line, headers and body leave in one write when the handler flushes (one TLS
    # record and one TCP segment instead of two; measured ~0.07 ms a response on the emulator)
    wbufsize = 1 << 16
    server: SandboxServer

    def handle_expect_100(self) -> bool:
        answered = super().handle_expect_100()
        self.wfile.flush()  # the client waits for it before it sends the body
        return answered

    @property
    def server_version(self) -> str:  # type: ignore[override]  # werkzeug's is a read-only property too
        return self.server.software

    def handle(self) -> None:
        try:
            super().handle()
        except OSError as exc:  # a client that went away mid-request: nothing to answer
            LOG.debug("connection from %s dropped: %s", self.client_address, exc)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """The stdlib's request line (werkzeug's decodes and colours it), and only when debug logging is on: the
        servers answer 100,000s of requests in a benchmark."""
        if LOG.isEnabledFor(logging.DEBUG):
            self.log("info", '"%s" %s %s', self.requestline, str(code), str(size))

    def log(self, type: str, message: str, *args: Any) -> None:  # noqa: A002 - werkzeug's signature
        if LOG.isEnabledFor(logging.DEBUG):
            LOG.debug("%s %s", self.address_string(), self.server.redact(message % args if args else message))


class KeepAliveHandler(QuietHandler):
    """`QuietHandler` that keeps the connection open between requests, as the stdlib servers before it did.

    Why `run_wsgi` is written here: werkzeug's sends `Connection: close` on every response and then drains the
    socket for up to 10 ms, because it cannot tell how much of a request body the application left unread. Here the
    body is read whole before the application runs (the applications read it whole anyway) and each response is
    buffered with its Content-Length, so the next request on the connection starts where it should. The environ is
    werkzeug's (`make_environ`), the application is called as werkzeug calls it, and an exception is werkzeug's
    500 page, logged at debug level.
    """

    def run_wsgi(self) -> None:
        # `Expect: 100-continue` was answered by the stdlib's parse_request already (werkzeug's answers it twice)
        environ = self.environ = self.make_environ()
        if environ.get("wsgi.input_terminated"):  # chunked: werkzeug's DechunkedInput reads to the last chunk
            body = environ["wsgi.input"].read()
        else:
            length = environ.get("CONTENT_LENGTH") or ""
            body = self.rfile.read(int(length)) if length.isdigit() and int(length) else b""
        environ["wsgi.input"] = io.BytesIO(body)
        try:
            status, headers, payload = _run(self.server.app, environ)
        except Exception:
            LOG.debug("error on request %s", self.server.redact(self.requestline), exc_info=True)
            status, headers, payload = _run(InternalServerError(), environ)
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        if not (100 <= status < 200 or status in (204, 304) or any(k.lower() == "content-length" for k, _ in headers)):
            self.send_header("Content-Length", str(len(payload)))  # without it a kept-alive client would wait
        self.end_headers()
        if payload and self.command != "HEAD":
            self.wfile.write(payload)
        self.wfile.flush()


def _run(app: WSGIApp, environ: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
    """Run a WSGI application to completion: its status code, headers and whole body."""
    started: list[Any] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[..., Any]:
        started[:] = [int(status.split(None, 1)[0]), list(headers)]
        return lambda data: None  # the legacy write() callable: werkzeug responses never use it

    iterable = app(environ, start_response)
    try:
        payload = b"".join(iterable)
    finally:
        close = getattr(iterable, "close", None)
        if close is not None:
            close()
    return started[0], started[1], payload


class SandboxServer(ThreadedWSGIServer):
    """werkzeug's threaded WSGI server on a loopback socket bound here, optionally TLS, quiet and kept alive."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(
        self,
        host: str,
        port: int,
        app: WSGIApp,
        *,
        ssl_context: ssl.SSLContext | None = None,
        software: str = "fleetctl-sandbox",
        redact: Callable[[str], str] = lambda text: text,
        handler: type[KeepAliveHandler] = KeepAliveHandler,
    ) -> None:
        if host not in LOOPBACK:
            raise ValueError(f"the sandbox serves on loopback only, not {host}")
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        listener = socket.create_server((host, port), family=family, backlog=self.request_queue_size)
        try:
            super().__init__(host, port, app, handler, fd=listener.fileno())
        finally:
            listener.close()  # werkzeug serves a duplicate of it
        self.software = software
        self.redact = redact
        if ssl_context is not None:
            self.socket = ssl_context.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)
            self.ssl_context = ssl_context
        self._thread: threading.Thread | None = None
        self._open: set[socket.socket] = set()  # connections being served (kept alive between requests)
        self._open_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def finish_request(self, request: Any, client_address: Any) -> None:
        if isinstance(request, ssl.SSLSocket):
            try:
                request.do_handshake()
            except (ssl.SSLError, OSError) as exc:
                LOG.debug("TLS handshake with %s failed: %s", client_address, exc)
                return
        super().finish_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        LOG.debug("request from %s failed", client_address, exc_info=True)

    def log(self, type: str, message: str, *args: Any) -> None:  # noqa: A002 - werkzeug's signature
        if LOG.isEnabledFor(logging.DEBUG):
            LOG.debug("%s", self.redact(message % args if args else message))

    # ------------------------------------------------------------------ lifecycle
    def start(self, name: str) -> SandboxServer:
        """Serve in a daemon thread (polling for shutdown every 0.1 s, so stop() returns fast)."""
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.1}, name=name, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, close the listening socket, wait for the serving thread, and end every kept-alive
        connection (its thread would otherwise wait up to `timeout` for a next request of a stopped server)."""
        if self._thread is not None:
            self.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self.server_close()
        with self._open_lock:
            connections = list(self._open)
        for connection in connections:
            try:  # the TCP connection itself, under TLS too: the handler's next read sees the end and returns
                socket.socket.shutdown(connection, socket.SHUT_RDWR)
            except OSError:
                pass
