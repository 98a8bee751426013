"""A quota-faithful front for moto: AWS IoT's default per-API rate limits, page sizes and latency, on loopback.

moto answers as fast as it can and never throttles, so against it a fleet engine's wall time says nothing about
AWS, where ListThingPrincipals allows 10 requests per second and a 100,000-thing plan cannot beat the quota
floor (research/quotas.md §8). This reverse proxy sits between the client and moto and behaves like the AWS
control plane does at default quotas:

- every request is mapped to its IoT operation by method and path, with matchers built from botocore's service
  model (each operation's `requestUri`), most literal first;
- one token bucket per operation at its default TPS (engine/quotas.py AWS_IOT_QUOTAS, one second of burst);
  an empty bucket answers 429 ThrottlingException in AWS's REST-JSON error shape, which botocore parses as
  `ThrottlingException` (so the engine sees `Throttled`, backs off and lowers that API's rate);
- page sizes: a request above the operation's documented maximum (maxResults/pageSize ≤ 250) is a 400
  InvalidRequestException; a list moto returns unpaged (ListCertificates, ListTargetsForPolicy,
  ListThingsInThingGroup, ...) is cut into pages of the requested size with a proxy continuation token, so the
  client makes — and the buckets charge — as many calls as AWS would need;
- each admitted request waits a latency drawn from `--latency-ms` (default 30-80 ms);
- CloudTrail parity (issue 16): every IoT call it serves is recorded as the management event CloudTrail would
  record (eventTime, eventName, readOnly, requestParameters by member name as botocore's model names them — path,
  query, header and body members —, id-like responseElements, Resources), out-of-band calls of tests included,
  and `LookupEvents` (CloudTrail's JSON protocol, `X-Amz-Target: ...CloudTrail_20131101.LookupEvents`) is
  answered as AWS does: newest first, MaxResults 1..50 (default 50), NextToken paging, one LookupAttribute,
  StartTime/EndTime, 90 days of history, its own 2 TPS bucket, and a configurable delivery delay
  (`trail_delay_s`: an event becomes visible that many seconds after its call, as CloudTrail's ~5 minutes);
- `GET /_proxy/stats` returns the calls per operation, the throttled and rejected ones, the re-paged lists and
  the seconds spent upstream (moto's own time, which benchmarks report apart: moto's list calls cost O(fleet)
  per page, AWS's do not); `POST /_proxy/reset` clears them. `/moto-api/*` passes through unthrottled.

It is a WSGI application (werkzeug's Request and Response; the proxy's own routes in a werkzeug routing Map) on the
sandbox's werkzeug server (engine/sandbox/wsgi.py: threaded, connections kept alive, nothing printed). The IoT
operations are matched by the botocore-derived matchers above rather than a routing Map, because their order (most
literal first) and the raw, undecoded path are what makes every one of the 250+ operations resolve to itself (a test
checks them all). Sockets use TCP_NODELAY on both sides (without it, loopback request/response pairs stall ~40 ms on
delayed ACKs, research/quotas.md §7). Run: `python -m engine.sandbox.quota_proxy --upstream http://127.0.0.1:PORT
--state-dir DIR` (started by `fleetctl sandbox up --quota-faithful`), or `QuotaProxy(...).start()` in-process.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import random
import re
import socket
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import click
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request as WsgiRequest

from engine.quotas import AWS_DEFAULT, AWS_IOT_QUOTAS, Quota, overrides_from_env, with_overrides
from engine.ratelimit import AdaptiveBucket
from engine.sandbox import serve_until_signalled
from engine.sandbox.wsgi import SandboxServer, wire_response

TOKEN_PREFIX = "fleetctl-proxy:"
TRAIL_TARGET = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101."
TRAIL_RETENTION_S = 90 * 86400
TRAIL_PAGE_MAX = 50
TRAIL_ATTRIBUTES = (
    "EventId",
    "EventName",
    "ReadOnly",
    "Username",
    "ResourceType",
    "ResourceName",
    "EventSource",
    "AccessKeyId",
)
MUTATING = (
    "Create",
    "Update",
    "Delete",
    "Attach",
    "Detach",
    "Register",
    "Add",
    "Remove",
    "Set",
    "Replace",
    "Deprecate",
    "Tag",
    "Untag",
    "Start",
    "Accept",
    "Reject",
    "Transfer",
    "Cancel",
    "Enable",
    "Disable",
    "Associate",
    "Disassociate",
    "Clear",
    "Put",
    "Confirm",
    "Stop",
)
# CloudTrail's Resources entries, from the request members that name them
RESOURCE_TYPES = {
    "thingName": "AWS::IoT::Thing",
    "thingGroupName": "AWS::IoT::ThingGroup",
    "thingTypeName": "AWS::IoT::ThingType",
    "policyName": "AWS::IoT::Policy",
    "certificateId": "AWS::IoT::Certificate",
    "ruleName": "AWS::IoT::TopicRule",
    "templateName": "AWS::IoT::ProvisioningTemplate",
}
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")  # what AWS IoT's REST API uses; others are 501
# the proxy's own routes (any method, as before); everything else is AWS's
CONTROL = Map(
    [
        Rule("/_proxy/stats", endpoint="stats"),
        Rule("/_proxy/reset", endpoint="reset"),
        Rule("/moto-api", endpoint="moto"),
        Rule("/moto-api/<path:rest>", endpoint="moto"),
    ]
)
CONTROL_PREFIXES = ("/_proxy/", "/moto-api")
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
    "proxy-connection",
    "upgrade",
    "te",
    "trailer",
}


@dataclass(frozen=True)
class Operation:
    """What the proxy knows about one IoT operation, from botocore's service model."""

    name: str
    method: str
    pattern: re.Pattern[str]
    literal: int  # literal characters in the URI: more literal matches first
    page_param: str | None = None  # maxResults / pageSize (querystring)
    page_max: int | None = None
    token_in: str | None = None  # nextToken / marker (querystring)
    token_out: str | None = None  # nextToken / nextMarker (response)
    items: str | None = None  # the list member of the response
    named: re.Pattern[str] | None = None  # the URI with a named group per path member
    members: tuple[tuple[str, str, str], ...] = ()  # (member, location, wire name) of the request


def _uri_regex(uri: str) -> tuple[re.Pattern[str], int]:
    path = uri.split("?", 1)[0]
    out, literal, last = [], 0, 0
    for m in re.finditer(r"\{([^}]+)\}", path):
        chunk = path[last : m.start()]
        out.append(re.escape(chunk))
        literal += len(chunk)
        out.append(".+" if m.group(1).endswith("+") else "[^/]+")
        last = m.end()
    out.append(re.escape(path[last:]))
    literal += len(path) - last
    return re.compile("^" + "".join(out) + "/?$"), literal


def _named_regex(uri: str, wire_to_group: Mapping[str, str]) -> re.Pattern[str]:
    path = uri.split("?", 1)[0]
    out, last = [], 0
    for m in re.finditer(r"\{([^}]+)\}", path):
        out.append(re.escape(path[last : m.start()]))
        wire = m.group(1).rstrip("+")
        out.append(f"(?P<{wire_to_group[wire]}>" + (".+" if m.group(1).endswith("+") else "[^/]+") + ")")
        last = m.end()
    out.append(re.escape(path[last:]))
    return re.compile("^" + "".join(out) + "/?$")


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
        members = tuple(
            (member, shape.serialization.get("location") or "body", shape.serialization.get("name", member))
            for member, shape in inputs.items()
        )
        groups = {wire: f"g{i}" for i, (_, where, wire) in enumerate(members) if where == "uri"}
        named = _named_regex(op.http["requestUri"], groups)
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
        ops.append(
            Operation(
                name,
                op.http["method"],
                pattern,
                literal,
                page_param,
                page_max,
                token_in,
                token_out,
                items,
                named,
                members,
            )
        )
    ops.sort(key=lambda o: (-o.literal, o.name))
    return ops


@dataclass
class Stats:
    calls: Counter[str] = field(default_factory=Counter)
    throttled: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    repaged: Counter[str] = field(default_factory=Counter)
    upstream_seconds: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))  # moto's time
    # (and re-paging), per operation
    unmatched: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "calls": dict(sorted(self.calls.items())),
            "throttled": dict(sorted(self.throttled.items())),
            "rejected": dict(sorted(self.rejected.items())),
            "repaged": dict(sorted(self.repaged.items())),
            "upstreamSeconds": {k: round(v, 3) for k, v in sorted(self.upstream_seconds.items())},
            "total": sum(self.calls.values()),
            "unmatched": self.unmatched,
        }


class QuotaProxy:
    """The proxy server. `quotas` per operation name (default: AWS IoT's); `latency_ms` as (low, high)."""

    def __init__(
        self,
        upstream: str,
        *,
        port: int = 0,
        quotas: Mapping[str, Quota] | None = None,
        latency_ms: tuple[float, float] = (30.0, 80.0),
        seed: int = 0,
        burst: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        trail_delay_s: float = 0.0,
        wall: Callable[[], float] = time.time,
    ) -> None:
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
        self.trail = Trail(delay_s=trail_delay_s, wall=wall)
        self._buckets: dict[str, AdaptiveBucket] = {}
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._local = threading.local()
        self._server = SandboxServer("127.0.0.1", port, self.wsgi, software="fleetctl-quota-proxy")

    @property
    def endpoint_url(self) -> str:
        return f"http://{self._server.host}:{self._server.port}"

    def start(self) -> QuotaProxy:
        self._server.start("quota-proxy")
        return self

    def stop(self) -> None:
        self._server.stop()

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

    def forward(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        for attempt in (1, 2):  # a kept-alive upstream connection may have been closed: reconnect once
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

    def wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """The WSGI application: the proxy's answer, or moto's behind the quota checks."""
        status, headers, body = self.serve(WsgiRequest(environ))
        return wire_response(status, headers, body)(environ, start_response)

    def serve(self, incoming: WsgiRequest) -> tuple[int, list[tuple[str, str]], bytes]:
        """One request: the control routes, LookupEvents, pass-through, or an IoT operation within its quota.

        Paths are matched raw, as the client sent them (`REQUEST_URI`), because botocore's URIs are what the
        operation matchers and CloudTrail's request parameters are built from; werkzeug's `path` is decoded."""
        method = incoming.method
        if method not in METHODS:
            return 501, [("Content-Type", "text/plain")], f"Unsupported method ({method!r})".encode()
        raw = incoming.environ.get("REQUEST_URI") or incoming.full_path
        url = urlsplit(raw)
        body = incoming.get_data()
        control = None
        if url.path.startswith(CONTROL_PREFIXES):  # AWS's calls do not pay for the Map (~70 µs a request)
            try:
                control, _ = CONTROL.bind_to_environ(incoming.environ).match()
            except HTTPException:
                control = None
        if control == "stats":
            return 200, [("Content-Type", "application/json")], json.dumps(self.stats.to_json()).encode()
        if control == "reset":
            self.stats = Stats()
            return 200, [("Content-Type", "application/json")], b"{}"
        received = {k.lower(): v for k, v in incoming.headers.items()}
        headers = {k: v for k, v in incoming.headers.items() if k.lower() not in HOP_BY_HOP}
        if received.get("x-amz-target", "") == TRAIL_TARGET + "LookupEvents":
            if not self.admit("LookupEvents"):
                return _json_error("ThrottlingException", "Rate exceeded")
            self.sleep(self._latency())
            return self.trail.lookup(body, _region(received))
        if control == "moto":
            return self.forward(method, raw, headers, body)
        op = self.match(method, url.path)
        if op is None:
            self.stats.unmatched += 1
            return self.forward(method, raw, headers, body)
        query = parse_qsl(url.query, keep_blank_values=True)
        params = dict(query)
        size = params.get(op.page_param or "")
        if size is not None and op.page_max is not None and (not size.isdigit() or int(size) > op.page_max):
            self.stats.rejected[op.name] += 1
            return _rest_error(
                400, "InvalidRequestException", f"{op.page_param} must be between 1 and {op.page_max}, got {size}"
            )
        if not self.admit(op.name):
            return _rest_error(429, "ThrottlingException", "Rate exceeded")
        self.sleep(self._latency())
        offset = 0
        token = params.get(op.token_in or "")
        continued = _decode(token) if token else None
        if continued is not None:  # our continuation of a list moto returned whole
            offset = continued
            query = [(k, v) for k, v in query if k != op.token_in]
        target = url.path + ("?" + urlencode(query) if query else "")
        started = time.perf_counter()
        status, out_headers, data = self.forward(method, target, headers, body)
        if status == 200 and op.items and op.token_out:
            data = self.repage(op, data, offset, int(size) if size else op.page_max or 0)
        with self._lock:
            self.stats.upstream_seconds[op.name] += time.perf_counter() - started
        if 200 <= status < 300:
            self.trail.record(op, url.path, query, received, body, data, _region(received))
        return status, out_headers, data

    def repage(self, op: Operation, data: bytes, offset: int, size: int) -> bytes:
        """Cut a list moto returned whole into the page AWS would return, with a continuation token."""
        if f'"{op.token_out}": "'.encode() in data:  # moto paged it itself: nothing to cut, nothing to parse
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
        doc[op.items] = items[offset : offset + size]
        if offset + size < len(items):
            doc[op.token_out] = _encode(offset + size)
        else:
            doc.pop(op.token_out, None)
        return json.dumps(doc).encode()


def _region(headers: Mapping[str, str]) -> str:
    """The region of a SigV4-signed request (its credential scope), as CloudTrail files the event; `headers` by
    lower-cased name."""
    m = re.search(r"Credential=[^/]+/\d{8}/([^/]+)/", headers.get("authorization", ""))
    return m.group(1) if m else "us-east-1"


def _rest_error(status: int, code: str, message: str) -> tuple[int, list[tuple[str, str]], bytes]:
    """An error in AWS IoT's REST-JSON protocol: botocore reads the code from `x-amzn-ErrorType`."""
    return (
        status,
        [("Content-Type", "application/json"), ("x-amzn-ErrorType", code), ("x-amzn-RequestId", str(uuid.uuid4()))],
        json.dumps({"message": message}).encode(),
    )


def _json_error(code: str, message: str, status: int = 400) -> tuple[int, list[tuple[str, str]], bytes]:
    """An error in AWS's JSON protocol (CloudTrail): botocore reads the code from `__type`."""
    return (
        status,
        [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-RequestId", str(uuid.uuid4()))],
        json.dumps({"__type": code, "message": message}).encode(),
    )


def _ids(doc: Any) -> dict[str, Any]:
    """The id-like response elements CloudTrail keeps (never key material: CreateKeysAndCertificate's keyPair)."""
    if not isinstance(doc, dict):
        return {}
    return {k: v for k, v in doc.items() if isinstance(v, (str, int)) and k.endswith(("Id", "Arn", "Name"))}


class Trail:
    """The CloudTrail event history of the sandbox's account: what the proxy served, as LookupEvents returns it."""

    def __init__(self, *, delay_s: float = 0.0, wall: Callable[[], float] = time.time) -> None:
        self.delay_s = delay_s
        self.wall = wall
        self.events: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def record(
        self,
        op: Operation,
        path: str,
        query: list[tuple[str, str]],
        headers: Mapping[str, str],
        body: bytes,
        response: bytes,
        region: str,
    ) -> None:
        """Record one served call as its management event; `headers` by lower-cased name."""
        read_only = not op.name.startswith(MUTATING)
        params: dict[str, Any] = {}
        m = op.named.match(path) if op.named is not None else None
        wire_query = dict(query)
        doc: Any = None
        for i, (member, where, wire) in enumerate(op.members):
            if where == "uri" and m is not None and m.group(f"g{i}") is not None:
                from urllib.parse import unquote

                params[member] = unquote(m.group(f"g{i}"))
            elif where == "querystring" and wire in wire_query:
                params[member] = wire_query[wire]
            elif where == "header" and headers.get(wire.lower()) is not None:
                params[member] = headers.get(wire.lower())
            elif where == "body" and not read_only:
                if doc is None:
                    try:
                        doc = json.loads(body or b"{}")
                    except ValueError:
                        doc = {}
                if isinstance(doc, dict) and member in doc:
                    value = doc[member]
                    params[member] = (
                        value
                        if member
                        not in (
                            "certificatePem",
                            "caCertificate",
                            "verificationCertificate",
                            "certificateSigningRequest",
                        )
                        else "HIDDEN_DUE_TO_SECURITY_REASONS"
                    )
        elements: dict[str, Any] = {}
        if not read_only and response:
            try:
                elements = _ids(json.loads(response))
            except ValueError:
                elements = {}
        now = self.wall()
        resources = [
            {"ResourceType": RESOURCE_TYPES[k], "ResourceName": str(v)}
            for k, v in params.items()
            if k in RESOURCE_TYPES and isinstance(v, str)
        ]
        with self.lock:
            self.events.append(
                {
                    "time": now,
                    "visible": now + self.delay_s,
                    "name": op.name,
                    "readOnly": read_only,
                    "region": region,
                    "id": str(uuid.uuid4()),
                    "request": params,
                    "response": elements,
                    "resources": resources,
                }
            )

    def _matches(self, e: Mapping[str, Any], key: str, value: str) -> bool:
        if key == "EventSource":
            return value == "iot.amazonaws.com"
        if key == "ReadOnly":
            return value.lower() == str(e["readOnly"]).lower()
        if key == "EventName":
            return e["name"] == value
        if key == "EventId":
            return e["id"] == value
        if key == "ResourceName":
            return any(r["ResourceName"] == value for r in e["resources"])
        if key == "ResourceType":
            return any(r["ResourceType"] == value for r in e["resources"])
        if key == "Username":
            return value == "fleetctl-sandbox"
        return value == "ASIASANDBOX"  # AccessKeyId

    def lookup(self, body: bytes, region: str) -> tuple[int, list[tuple[str, str]], bytes]:
        try:
            req = json.loads(body or b"{}")
        except ValueError:
            return _json_error("SerializationException", "the request body is not JSON")
        size = req.get("MaxResults", TRAIL_PAGE_MAX)
        if not isinstance(size, int) or not 1 <= size <= TRAIL_PAGE_MAX:
            return _json_error("InvalidMaxResultsException", "MaxResults must be between 1 and 50")
        attrs = req.get("LookupAttributes") or []
        if len(attrs) > 1:
            return _json_error("InvalidLookupAttributesException", "only one lookup attribute may be specified")
        for a in attrs:
            if a.get("AttributeKey") not in TRAIL_ATTRIBUTES:
                return _json_error("InvalidLookupAttributesException", f"unknown AttributeKey {a.get('AttributeKey')}")
        now = self.wall()
        start = float(req.get("StartTime", 0) or 0)
        end = float(req.get("EndTime", now) or now)
        if start > end:
            return _json_error("InvalidTimeRangeException", "StartTime is later than EndTime")
        query = hashlib.sha256(json.dumps([attrs, start, end, size], sort_keys=True).encode()).hexdigest()[:16]
        asof, offset = now, 0
        if req.get("NextToken"):
            try:
                token = json.loads(base64.b64decode(req["NextToken"]).decode())
                asof, offset = float(token["asof"]), int(token["offset"])
                if token["q"] != query:
                    raise ValueError
            except (ValueError, KeyError, TypeError, UnicodeDecodeError):
                return _json_error("InvalidNextTokenException", "the NextToken is not valid for this request")
        oldest = max(start, now - TRAIL_RETENTION_S)
        with self.lock:
            visible = [
                e
                for e in reversed(self.events)
                if e["visible"] <= asof
                and oldest <= e["time"] <= end
                and e["region"] == region
                and all(self._matches(e, a["AttributeKey"], str(a.get("AttributeValue", ""))) for a in attrs)
            ]
        visible.sort(key=lambda e: -e["time"])  # newest first, as CloudTrail returns them
        page = visible[offset : offset + size]
        out: dict[str, Any] = {"Events": [self._shape(e) for e in page]}
        if offset + size < len(visible):
            out["NextToken"] = base64.b64encode(
                json.dumps({"asof": asof, "offset": offset + size, "q": query}).encode()
            ).decode()
        return (
            200,
            [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-RequestId", str(uuid.uuid4()))],
            json.dumps(out).encode(),
        )

    @staticmethod
    def _shape(e: Mapping[str, Any]) -> dict[str, Any]:
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(e["time"]))
        record = {
            "eventVersion": "1.08",
            "userIdentity": {"type": "AssumedRole", "accountId": "123456789012"},
            "eventTime": when,
            "eventSource": "iot.amazonaws.com",
            "eventName": e["name"],
            "awsRegion": e["region"],
            "sourceIPAddress": "127.0.0.1",
            "userAgent": "fleetctl-sandbox",
            "requestParameters": e["request"] or None,
            "responseElements": e["response"] or None,
            "requestID": e["id"],
            "eventID": e["id"],
            "readOnly": e["readOnly"],
            "eventType": "AwsApiCall",
            "managementEvent": True,
            "recipientAccountId": "123456789012",
            "eventCategory": "Management",
        }
        return {
            "EventId": e["id"],
            "EventName": e["name"],
            "ReadOnly": "true" if e["readOnly"] else "false",
            "AccessKeyId": "ASIASANDBOX",
            "EventTime": e["time"],
            "EventSource": "iot.amazonaws.com",
            "Username": "fleetctl-sandbox",
            "Resources": list(e["resources"]),
            "CloudTrailEvent": json.dumps(record),
        }


def _encode(offset: int) -> str:
    return base64.b64encode(f"{TOKEN_PREFIX}{offset}".encode()).decode()


def _decode(token: str) -> int | None:
    try:
        text = base64.b64decode(token.encode(), validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    if not text.startswith(TOKEN_PREFIX) or not text[len(TOKEN_PREFIX) :].isdigit():
        return None
    return int(text[len(TOKEN_PREFIX) :])


class LatencyRange(click.ParamType):
    """`LOW-HIGH` (or one value) in milliseconds, as a (low, high) pair."""

    name = "LOW-HIGH"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[float, float]:
        if isinstance(value, tuple):
            return value
        low, _, high = str(value).partition("-")
        try:
            return float(low), float(high or low)
        except ValueError:
            self.fail(f"{value!r} is not LOW-HIGH in milliseconds, e.g. 30-80", param, ctx)


@click.command(
    context_settings={"help_option_names": ["-h", "--help"]},
    help="AWS IoT default quotas in front of moto (loopback only)",
)
@click.option("--upstream", required=True, help="moto's endpoint, e.g. http://127.0.0.1:5000")
@click.option(
    "--state-dir", required=True, type=click.Path(file_okay=False, path_type=Path), help="where quota_proxy.json goes"
)
@click.option("--port", type=int, default=0)
@click.option("--latency-ms", type=LatencyRange(), default="30-80", help="e.g. 30-80 (default)")
@click.option("--quotas", default="", help="overrides, e.g. ListThings=20,AttachPolicy=100")
@click.option("--seed", type=int, default=0)
@click.option(
    "--trail-delay-s",
    type=float,
    default=0.0,
    help="seconds before a recorded event is visible to LookupEvents (CloudTrail: ~300)",
)
def main(
    upstream: str,
    state_dir: Path,
    port: int,
    latency_ms: tuple[float, float],
    quotas: str,
    seed: int,
    trail_delay_s: float,
) -> None:
    """`python -m engine.sandbox.quota_proxy`: serve until SIGTERM, publishing the endpoint in quota_proxy.json."""
    limits = with_overrides(AWS_IOT_QUOTAS, overrides_from_env({"Q": quotas}, "Q"))
    proxy = QuotaProxy(
        upstream, port=port, quotas=limits, latency_ms=latency_ms, seed=seed, trail_delay_s=trail_delay_s
    ).start()
    serve_until_signalled(state_dir, "quota_proxy.json", {"endpointUrl": proxy.endpoint_url, "upstream": upstream})
    proxy.stop()


if __name__ == "__main__":
    main()
