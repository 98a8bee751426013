"""Building blocks shared by the three emulated Azure APIs (IoT Hub, DPS, ARM certificates).

Each API renders errors in its own shape, but the semantics behind them are common: a request/response model,
a path router, etags with If-Match, keyset paging with opaque continuation tokens, and timestamps. Keeping them
here means the hub, DPS and ARM modules only describe what differs.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import datetime as dt
import itertools
import json
import os
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.utils import format_datetime
from typing import Any
from urllib.parse import unquote

JSON = Any


class ServiceError(Exception):
    """A request failed the way the service would fail it; each API renders it in its own wire shape."""

    def __init__(self, status: int, code: str, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    body: bytes = b""

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def json(self) -> JSON:
        if not self.body:
            raise ServiceError(400, "ArgumentInvalid", "the request has no body")
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise ServiceError(400, "ArgumentInvalid", f"the body is not valid JSON: {exc}") from exc

    def json_object(self) -> dict[str, Any]:
        body = self.json()
        if not isinstance(body, dict):
            raise ServiceError(400, "ArgumentInvalid", "the body must be a JSON object")
        return body


@dataclass
class Response:
    status: int
    body: JSON = None
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[..., Response]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: str
    regex: re.Pattern[str]
    op_class: str
    handler: Handler

    @property
    def operation(self) -> str:
        """The name the request is counted under, e.g. `PUT /devices/{device_id}`."""
        return f"{self.method} {self.pattern}"


class Router:
    """Maps (method, path) to a handler; `{name}` in a pattern captures one URL-decoded path segment.

    Hand-written rather than werkzeug's routing `Map` (which the quota proxy uses for its own routes): Azure matches
    paths case-insensitively, which a Map does not; the match runs on the raw path the SAS token signed and decodes
    each capture once, where a Map matches werkzeug's already-decoded path (an encoded `/` in a device id would
    split it); and a path served under another method is a 405 each API renders in its own error shape, with the
    route's throttle class (`op_class`) and counted operation name attached, which Map rules do not carry."""

    def __init__(self) -> None:
        self._routes: list[Route] = []

    def add(self, method: str, pattern: str, op_class: str, handler: Handler) -> None:
        regex = "^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern) + "/?$"
        self._routes.append(Route(method, pattern, re.compile(regex, re.IGNORECASE), op_class, handler))

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        allowed = False
        for route in self._routes:
            found = route.regex.match(path)
            if found is None:
                continue
            if route.method == method:
                return route, {name: unquote(value) for name, value in found.groupdict().items()}
            allowed = True
        if allowed:
            raise ServiceError(405, "MethodNotAllowed", f"{method} is not allowed on {path}")
        raise ServiceError(404, "NotFound", f"no such resource: {path}")


def random_key(size: int) -> str:
    """A base64 shared access key of `size` random bytes (IoT Hub generates 32, DPS 64)."""
    return base64.b64encode(os.urandom(size)).decode("ascii")


def checked_key(name: str, key: Any, *, code: str) -> str:
    """A caller-supplied key must be base64 of 16..64 bytes, as both services require; 400 `code` otherwise."""
    try:
        size = len(base64.b64decode(key, validate=True))
    except (binascii.Error, ValueError, TypeError) as exc:
        raise ServiceError(400, code, f"{name} is not valid base64") from exc
    if not 16 <= size <= 64:
        raise ServiceError(400, code, f"{name} must decode to 16..64 bytes")
    return str(key)


class Counter:
    """A thread-safe monotonic counter; etags derive from it so that every write gets a new one."""

    def __init__(self) -> None:
        self._next = itertools.count(1)
        self._lock = threading.Lock()

    def next(self) -> int:
        with self._lock:
            return next(self._next)


def b64_counter_etag(value: int) -> str:
    """The 8-byte big-endian base64 form IoT Hub uses for twin etags and ARM for certificate etags."""
    return base64.b64encode(value.to_bytes(8, "big")).decode("ascii")


def unquote_etag(value: str) -> str:
    value = value.strip()
    if value.startswith("W/"):
        value = value[2:]
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    return value


def check_if_match(
    current: str | None, if_match: str | None, *, missing: ServiceError, precondition_code: str = "PreconditionFailed"
) -> None:
    """Enforce If-Match: `*` matches any existing item; a value must equal the current etag (quotes ignored).

    `current` None means the item does not exist: an If-Match on a missing item raises `missing` (404).
    """
    if if_match is None or not if_match.strip():
        return
    if current is None:
        raise missing
    wanted = unquote_etag(if_match)
    if wanted != "*" and wanted != unquote_etag(current):
        raise ServiceError(412, precondition_code, f"the etag {if_match} does not match the current etag {current}")


class SortedIndex:
    """Keys kept in order so that query pages are keyset-paged: stable while items are added or removed."""

    def __init__(self) -> None:
        self._keys: list[str] = []

    def add(self, key: str) -> None:
        position = bisect.bisect_left(self._keys, key)
        if position == len(self._keys) or self._keys[position] != key:
            self._keys.insert(position, key)

    def remove(self, key: str) -> None:
        position = bisect.bisect_left(self._keys, key)
        if position < len(self._keys) and self._keys[position] == key:
            del self._keys[position]

    def clear(self) -> None:
        self._keys.clear()

    def after(self, key: str | None) -> Iterator[str]:
        start = 0 if key is None else bisect.bisect_right(self._keys, key)
        return iter(self._keys[start:])


def encode_continuation(last_key: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"k": last_key}).encode()).decode("ascii")


def decode_continuation(token: str | None) -> str | None:
    if not token:
        return None
    try:
        return str(json.loads(base64.urlsafe_b64decode(token.encode("ascii")))["k"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ServiceError(400, "InvalidContinuationToken", "the continuation token is not valid") from exc


def page_size(request: Request, *, default: int, cap: int) -> int:
    """The page size asked for in `x-ms-max-item-count` (default when absent), capped at `cap`."""
    raw = request.header("x-ms-max-item-count")
    if raw is None or raw == "":
        return min(default, cap)
    try:
        size = int(raw)
    except ValueError as exc:
        raise ServiceError(400, "ArgumentInvalid", "x-ms-max-item-count must be an integer") from exc
    if size < 1:
        raise ServiceError(400, "ArgumentInvalid", "x-ms-max-item-count must be positive")
    return min(size, cap)


def keyset_page(
    index: SortedIndex, request: Request, fetch: Callable[[str], JSON | None], *, default_size: int, cap: int
) -> tuple[list[JSON], str | None]:
    """One page of items after the request's continuation; `fetch` returns None for keys that do not match."""
    size = page_size(request, default=default_size, cap=cap)
    items: list[JSON] = []
    last: str | None = None
    for key in index.after(decode_continuation(request.header("x-ms-continuation"))):
        if len(items) == size:
            return items, encode_continuation(last) if last is not None else None
        item = fetch(key)
        last = key
        if item is not None:
            items.append(item)
    return items, None


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def iso(moment: dt.datetime) -> str:
    """ISO-8601 UTC with a `Z`, the data-plane convention (IoT Hub, DPS)."""
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def rfc1123(moment: dt.datetime) -> str:
    """RFC-1123 (`Thu, 12 Oct 2017 19:23:50 GMT`), what ARM certificate dates use; the SDK rejects ISO there."""
    return format_datetime(moment.astimezone(dt.UTC), usegmt=True)


NEVER = "0001-01-01T00:00:00Z"
