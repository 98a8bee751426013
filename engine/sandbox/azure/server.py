"""HTTPS plumbing for the emulators: a threaded stdlib server on loopback that hands each request to a dispatcher.

Kept apart from the API logic so the APIs stay testable as plain functions. Two details matter for speed with the
real SDKs: HTTP/1.1 keep-alive (one TLS handshake per client connection, not per call) and Nagle disabled on the
handler (without it every call costs ~40 ms of delayed-ACK stall). The TLS handshake runs in the request's thread,
so a slow client cannot stall the accept loop. Nothing is printed: request lines and errors go to `logging` at
debug level, with the signature of a blob SAS cut out of them, and headers (which carry SAS tokens) are never logged.
"""
from __future__ import annotations

import logging
import re
import ssl
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from .common import Request

LOG = logging.getLogger(__name__)
_SIGNATURE = re.compile(r"(sig=)[^&\s]+")      # blob request lines carry their SAS in the query string
Dispatch = Callable[[Request], tuple[int, dict[str, str], bytes]]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "fleetctl-azure-emulator"
    sys_version = ""
    timeout = 120
    server: EmulatorServer

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        url = urlsplit(self.path)
        request = Request(method=self.command, path=url.path, query=dict(parse_qsl(url.query)),
                          headers={name.lower(): value for name, value in self.headers.items()}, body=body)
        status, headers, payload = self.server.dispatch(request)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if not any(name.lower() == "content-length" for name in headers):   # HEAD states the blob's length
            self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if payload and self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_PUT = do_POST = do_PATCH = do_DELETE = do_HEAD = _serve

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's signature
        LOG.debug("%s %s", self.address_string(), _SIGNATURE.sub(r"\1(sensitive)", format % args))


class EmulatorServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer over TLS whose requests go to `dispatch`."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], dispatch: Dispatch, *, cert_file: str, key_file: str) -> None:
        super().__init__(address, _Handler)
        self.dispatch = dispatch
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(cert_file, key_file)
        self.socket = context.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)

    def finish_request(self, request: Any, client_address: Any) -> None:
        try:
            request.do_handshake()
        except (ssl.SSLError, OSError) as exc:
            LOG.debug("TLS handshake with %s failed: %s", client_address, exc)
            return
        super().finish_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        LOG.debug("request from %s failed", client_address, exc_info=True)
