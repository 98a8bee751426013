"""A quota-faithful front for moto: AWS IoT's default per-API rate limits, page sizes and latency, on loopback.

moto answers as fast as it can and never throttles, so against it a fleet engine's wall time says nothing about
AWS, where ListThingPrincipals allows 10 requests per second and a 100,000-thing plan cannot beat the quota
floor (research/quotas.md §8). This reverse proxy sits between the client and moto and behaves like the AWS
control plane does at default quotas:

- every request is mapped to its IoT operation by method and path, with matchers built from botocore's service
  model (each operation's `requestUri`), most literal first;
- one token bucket per operation at its default TPS (engine/ratelimit.py AWS_IOT_QUOTAS, one second of burst);
  an empty bucket answers 429 ThrottlingException in AWS's REST-JSON error shape, which botocore parses as
  `ThrottlingException` (so the engine sees `Throttled`, backs off and lowers that API's rate);
- page sizes: a request above the operation's documented maximum (maxResults/pageSize ≤ 250) is a 400
  InvalidRequestException; a list moto returns unpaged (ListCertificates, ListTargetsForPolicy,
  ListThingsInThingGroup, ...) is cut into pages of the requested size with a proxy continuation token, so the
  client makes — and the buckets charge — as many calls as AWS would need;
- each admitted request waits a latency drawn from `--latency-ms` (default 30-80 ms);
- `GET /_proxy/stats` returns the calls per operation, the throttled and rejected ones, the re-paged lists and
  the seconds spent upstream (moto's own time, which benchmarks report apart: moto's list calls cost O(fleet)
  per page, AWS's do not); `POST /_proxy/reset` clears them. `/moto-api/*` passes through unthrottled.

Sockets use TCP_NODELAY on both sides (without it, loopback request/response pairs stall ~40 ms on delayed ACKs,
research/quotas.md §7). Run: `python -m engine.sandbox.quota_proxy --upstream http://127.0.0.1:PORT
--state-dir DIR` (started by `fleetctl sandbox up --quota-faithful`), or `QuotaProxy(...).start()` in-process.
"""
from __future__ import annotations

import argparse
import base64
import http.client
import json
import random
import re
import socket
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit

from engine.ratelimit import AWS_DEFAULT, AWS_IOT_QUOTAS, AdaptiveBucket, Quota, overrides_from_env, with_overrides
from engine.sandbox import serve_until_signalled

TOKEN_PREFIX = "fleetctl-proxy:"
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection", "upgrade",
              "te", "trailer"}


@dataclass(frozen=True)
class Operation:
    """What the proxy knows about one IoT operation, from botocore's service model."""

    name: str
    method: str
    pattern: re.Pattern[str]
    literal: int                       # literal characters in the URI: more literal matches first
    page_param: str | None = None      # maxResults / pageSize (querystring)
    page_max: int | None = None
    token_in: str | None = None        # nextToken / marker (querystring)
    token_out: str | None = None       # nextToken / nextMarker (response)
    items: str | None = None           # the list member of the response


def _uri_regex(uri: str) -> tuple[re.Pattern[str], int]:
    path = uri.split("?", 1)[0]
    out, literal, last = [], 0, 0
    for m in re.finditer(r"\{([^}]+)\}", path):
        chunk = path[last:m.start()]
        out.append(re.escape(chunk))
        literal += len(chunk)
        out.append(".+" if m.group(1).endswith("+") else "[^/]+")
        last = m.end()
    out.append(re.escape(path[last:]))
    literal += len(path) - last
    return re.compile("^" + "".join(out) + "/?$"), literal


def operations() -> list[Operation]:
    """Every IoT operation with its matcher and paging members, most specific matcher first."""
    import botocore.session
    model = botocore.session.get_session().get_service_model("iot")
    ops: list[Operation] = []
    for name in model.operation_names:
        op = model.operation_model(name)
        pattern, literal = _uri_regex(op.http["requestUri"])
        page_param = page_max = token_in = token_out = items = None
        inputs = op.input_shape.members if op.input_shape else {}
        for member, shape in inputs.items():
            where = shape.serialization.get("location")
            wire = shape.serialization.get("name", member)
            if where == "querystring" and member in ("maxResults", "pageSize"):
                page_param, page_max = wire, shape.metadata.get("max")
            if where == "querystring" and member in ("nextToken", "marker"):
                token_in = wire
        outputs = op.output_shape.members if op.output_shape else {}
        for member, shape in outputs.items():
            if member in ("nextToken", "nextMarker"):
                token_out = member
            elif shape.type_name == "list" and items is None:
                items = member
        ops.append(Operation(name, op.http["method"], pattern, literal, page_param, page_max, token_in, token_out,
                             items))
    ops.sort(key=lambda o: (-o.literal, o.name))
    return ops


@dataclass
class Stats:
    calls: Counter[str] = field(default_factory=Counter)
    throttled: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    repaged: Counter[str] = field(default_factory=Counter)
    upstream_seconds: Counter[str] = field(default_factory=Counter)   # moto's time (and re-paging), per operation
    unmatched: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"calls": dict(sorted(self.calls.items())), "throttled": dict(sorted(self.throttled.items())),
                "rejected": dict(sorted(self.rejected.items())), "repaged": dict(sorted(self.repaged.items())),
                "upstreamSeconds": {k: round(v, 3) for k, v in sorted(self.upstream_seconds.items())},
                "total": sum(self.calls.values()), "unmatched": self.unmatched}


class QuotaProxy:
    """The proxy server. `quotas` per operation name (default: AWS IoT's); `latency_ms` as (low, high)."""

    def __init__(self, upstream: str, *, port: int = 0, quotas: Mapping[str, Quota] | None = None,
                 latency_ms: tuple[float, float] = (30.0, 80.0), seed: int = 0, burst: float = 1.0,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        parts = urlsplit(upstream)
        if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"the quota proxy only fronts a loopback emulator, not {upstream}")
        self.upstream = (parts.hostname, parts.port or 80)
        self.quotas = dict(quotas or AWS_IOT_QUOTAS)
        self.latency_ms = latency_ms
        self.burst = burst
        self.clock, self.sleep = clock, sleep
        self.ops = operations()
        self.stats = Stats()
        self._buckets: dict[str, AdaptiveBucket] = {}
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._local = threading.local()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def endpoint_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "QuotaProxy":
        self._thread = threading.Thread(target=self._server.serve_forever, name="quota-proxy", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # ------------------------------------------------------------------ decisions (pure enough to test directly)
    def match(self, method: str, path: str) -> Operation | None:
        for op in self.ops:
            if op.method == method and op.pattern.match(path):
                return op
        return None

    def admit(self, op: str) -> bool:
        """Take a token from the operation's bucket; False means answer 429."""
        with self._lock:
            bucket = self._buckets.get(op)
            if bucket is None:
                seed = self.quotas.get(op, AWS_DEFAULT).tps
                bucket = self._buckets[op] = AdaptiveBucket(seed, burst=self.burst, stamp=self.clock())
            ok = bucket.take(self.clock())
            self.stats.calls[op] += 1
            if not ok:
                self.stats.throttled[op] += 1
            return ok

    def _latency(self) -> float:
        low, high = self.latency_ms
        with self._lock:
            return self._rng.uniform(low, high) / 1000.0 if high > 0 else 0.0

    # ------------------------------------------------------------------ HTTP
    def _upstream(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = http.client.HTTPConnection(*self.upstream, timeout=120)
            conn.connect()
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._local.conn = conn
        return conn

    def forward(self, method: str, target: str, headers: Mapping[str, str], body: bytes
                ) -> tuple[int, list[tuple[str, str]], bytes]:
        for attempt in (1, 2):       # a kept-alive upstream connection may have been closed: reconnect once
            conn = self._upstream()
            try:
                conn.request(method, target, body=body or None, headers=dict(headers))
                resp = conn.getresponse()
                data = resp.read()
                return resp.status, [(k, v) for k, v in resp.getheaders() if k.lower() not in HOP_BY_HOP], data
            except (http.client.HTTPException, OSError):
                conn.close()
                self._local.conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, *args: Any) -> None:   # quiet: benchmarks make 100,000s of requests
                pass

            def _send(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
                self.send_response(status)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _error(self, status: int, code: str, message: str) -> None:
                body = json.dumps({"message": message}).encode()
                self._send(status, [("Content-Type", "application/json"), ("x-amzn-ErrorType", code),
                                    ("x-amzn-RequestId", str(uuid.uuid4()))], body)

            def _serve(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                url = urlsplit(self.path)
                if url.path == "/_proxy/stats":
                    return self._send(200, [("Content-Type", "application/json")],
                                      json.dumps(proxy.stats.to_json()).encode())
                if url.path == "/_proxy/reset":
                    proxy.stats = Stats()
                    return self._send(200, [("Content-Type", "application/json")], b"{}")
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                if url.path.startswith("/moto-api"):
                    return self._send(*proxy.forward(self.command, self.path, headers, body))
                op = proxy.match(self.command, url.path)
                if op is None:
                    proxy.stats.unmatched += 1
                    return self._send(*proxy.forward(self.command, self.path, headers, body))
                query = parse_qsl(url.query, keep_blank_values=True)
                params = dict(query)
                size = params.get(op.page_param or "")
                if size is not None and op.page_max is not None and (not size.isdigit() or int(size) > op.page_max):
                    proxy.stats.rejected[op.name] += 1
                    return self._error(400, "InvalidRequestException",
                                       f"{op.page_param} must be between 1 and {op.page_max}, got {size}")
                if not proxy.admit(op.name):
                    return self._error(429, "ThrottlingException", "Rate exceeded")
                proxy.sleep(proxy._latency())
                offset = 0
                token = params.get(op.token_in or "")
                if token and _decode(token) is not None:     # our continuation of a list moto returned whole
                    offset = _decode(token) or 0
                    query = [(k, v) for k, v in query if k != op.token_in]
                target = url.path + ("?" + urlencode(query) if query else "")
                started = time.perf_counter()
                status, out_headers, data = proxy.forward(self.command, target, headers, body)
                if status == 200 and op.items and op.token_out:
                    data = proxy.repage(op, data, offset, int(size) if size else op.page_max or 0)
                with proxy._lock:
                    proxy.stats.upstream_seconds[op.name] += time.perf_counter() - started
                self._send(status, out_headers, data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        return Handler

    def repage(self, op: Operation, data: bytes, offset: int, size: int) -> bytes:
        """Cut a list moto returned whole into the page AWS would return, with a continuation token."""
        if f'"{op.token_out}": "'.encode() in data:     # moto paged it itself: nothing to cut, nothing to parse
            return data
        try:
            doc = json.loads(data or b"{}")
        except ValueError:
            return data
        items = doc.get(op.items) if isinstance(doc, dict) else None
        if not isinstance(items, list) or not size or (len(items) <= size and not offset) or doc.get(op.token_out):
            return data
        with self._lock:
            self.stats.repaged[op.name] += 1
        doc[op.items] = items[offset:offset + size]
        if offset + size < len(items):
            doc[op.token_out] = _encode(offset + size)
        else:
            doc.pop(op.token_out, None)
        return json.dumps(doc).encode()


def _encode(offset: int) -> str:
    return base64.b64encode(f"{TOKEN_PREFIX}{offset}".encode()).decode()


def _decode(token: str) -> int | None:
    try:
        text = base64.b64decode(token.encode(), validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    if not text.startswith(TOKEN_PREFIX) or not text[len(TOKEN_PREFIX):].isdigit():
        return None
    return int(text[len(TOKEN_PREFIX):])


def _latency_arg(text: str) -> tuple[float, float]:
    low, _, high = text.partition("-")
    return float(low), float(high or low)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.sandbox.quota_proxy",
                                     description="AWS IoT default quotas in front of moto (loopback only)")
    parser.add_argument("--upstream", required=True, help="moto's endpoint, e.g. http://127.0.0.1:5000")
    parser.add_argument("--state-dir", required=True, type=Path, help="where quota_proxy.json goes")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency-ms", type=_latency_arg, default=(30.0, 80.0), help="e.g. 30-80 (default)")
    parser.add_argument("--quotas", default="", help="overrides, e.g. ListThings=20,AttachPolicy=100")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    quotas = with_overrides(AWS_IOT_QUOTAS, overrides_from_env({"Q": args.quotas}, "Q"))
    proxy = QuotaProxy(args.upstream, port=args.port, quotas=quotas, latency_ms=args.latency_ms, seed=args.seed).start()
    serve_until_signalled(args.state_dir, "quota_proxy.json", {"endpointUrl": proxy.endpoint_url,
                                                               "upstream": args.upstream})
    proxy.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
