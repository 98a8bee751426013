"""HTTPS plumbing for the emulators: a werkzeug WSGI application on loopback that hands each request to a dispatcher.

Kept apart from the API logic so the APIs stay testable as plain functions. The server is the sandbox's werkzeug
server (engine/sandbox/wsgi.py: threaded, TLS with the handshake in the connection's own thread, HTTP/1.1
keep-alive so the real SDKs pay one TLS handshake per connection rather than per call, Nagle off, nothing printed).
The request reaches the dispatcher as the emulators' own `Request` (common.py): the raw path, as the client sent
it, because SAS tokens sign it and the routers decode their captures themselves (werkzeug's `path` is decoded), and
the query as `parse_qsl` reads it (blank values dropped, the last of a repeated name wins), as the APIs have always
seen it. Request lines go to `logging` at debug level with the signature of a blob SAS cut out of them; headers
(which carry SAS tokens) are never logged.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from werkzeug.wrappers import Request as WsgiRequest

from engine.sandbox.wsgi import SandboxServer, wire_response

from .common import Request

_SIGNATURE = re.compile(r"(sig=)[^&\s]+")  # blob request lines carry their SAS in the query string
Dispatch = Callable[[Request], tuple[int, dict[str, str], bytes]]
METHODS = ("GET", "PUT", "POST", "PATCH", "DELETE", "HEAD")


def redact(line: str) -> str:
    """A request line fit for a log: a blob SAS's signature replaced by `(sensitive)`."""
    return _SIGNATURE.sub(r"\1(sensitive)", line)


class EmulatorServer(SandboxServer):
    """werkzeug's threaded server over TLS on 127.0.0.1 whose requests go to `dispatch`."""

    def __init__(self, address: tuple[str, int], dispatch: Dispatch, *, cert_file: str, key_file: str) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(cert_file, key_file)
        self.dispatch = dispatch
        super().__init__(
            address[0], address[1], self.wsgi, ssl_context=context, software="fleetctl-azure-emulator", redact=redact
        )

    def wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """The WSGI application: the emulators' Request in, the dispatcher's status, headers and bytes out."""
        incoming = WsgiRequest(environ)
        if incoming.method not in METHODS:
            return wire_response(
                501, [("Content-Type", "text/plain")], f"Unsupported method ({incoming.method!r})".encode()
            )(environ, start_response)
        url = urlsplit(environ.get("REQUEST_URI") or incoming.full_path)
        request = Request(
            method=incoming.method,
            path=url.path,
            query=dict(parse_qsl(url.query)),
            headers={name.lower(): value for name, value in incoming.headers.items()},
            body=incoming.get_data(),
        )
        status, headers, payload = self.dispatch(request)
        return wire_response(status, headers.items(), payload)(environ, start_response)
