"""A minimal Azure Blob Storage endpoint: what IoT Hub import/export jobs and azure-storage-blob need, no more.

Served by the emulator's HTTPS server, path-style as Azurite does: `https://127.0.0.1:PORT/<account>/<container>/<blob>`
(the first path segment is a storage account the emulator holds). Operations: Put Blob (BlockBlob only, one request),
Get Blob (with `x-ms-range`/`Range`, 206 + `Content-Range`; 416 InvalidRange on an empty blob, which the SDK answers
with a plain GET), Get Blob Properties (HEAD), Delete Blob and List Blobs (`?restype=container&comp=list`, XML).
Containers are made by the emulator (`create_container`): creating one needs the account key or an account SAS,
which this endpoint does not take.

Authorisation is by **service SAS** only (`sr=c` container or `sr=b` blob), validated as the service does:
- `sig` must be base64(HMAC-SHA256(base64decode(account key), string-to-sign)), the string-to-sign being, one field
  per line: sp, st, se, `/blob/<account>/<container>[/<blob>]`, si, sip, spr, sv, sr, snapshot time, then `ses`
  from version 2020-12-06 on, then rscc, rscd, rsce, rscl, rsct (the "Create a service SAS" REST reference, and
  `_BlobSharedAccessHelper.add_resource_signature` in azure-storage-blob 12.31). Versions before 2018-11-09 (which
  sign fewer fields) are refused.
- outside [st, se] → 403 AuthenticationFailed ("Signature not valid in the specified time frame"); a signature
  that does not match → 403 AuthenticationFailed ("Signature did not match"); a valid token without the
  operation's permission letter (r read, a add, c create, w write, d delete, l list) → 403
  AuthorizationPermissionMismatch, as the service answers; a blob SAS used on another blob → 403
  AuthenticationFailed. No token → 404 ResourceNotFound (a private container does not disclose itself).
Errors are the service's XML `<Error><Code>…</Code><Message>…</Message></Error>` with `x-ms-error-code`.

`open_container(url)` is how the emulated IoT Hub reaches a container from a job's SAS URI: the same checks, per
operation, in process. Stored access policies (`si`), account SAS and Shared Key are not implemented.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import ipaddress
import re
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit
from xml.sax.saxutils import escape

from .common import ServiceError, rfc1123, utc_now

STORAGE_VERSION = "2025-11-05"  # answered in x-ms-version when the request names none
MIN_SAS_VERSION = "2018-11-09"  # signs the snapshot time; older versions sign fewer fields
ENCRYPTION_SCOPE_VERSION = "2020-12-06"  # adds `ses` to the string-to-sign
ACCOUNT_NAME = re.compile(r"^[a-z0-9]{3,24}$")
CONTAINER_NAME = re.compile(r"^(?!.*--)[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
PERMISSIONS = "racwdxyltfmei"


class StorageError(ServiceError):
    """A Blob Storage error; `detail` goes to `<AuthenticationErrorDetail>`."""

    def __init__(self, status: int, code: str, message: str, detail: str | None = None) -> None:
        super().__init__(status, code, message)
        self.detail = detail


def _auth_failed(detail: str) -> StorageError:
    return StorageError(
        403,
        "AuthenticationFailed",
        "Server failed to authenticate the request. Make sure the value "
        "of Authorization header is formed correctly including the signature.",
        detail,
    )


def _permission_mismatch() -> StorageError:
    return StorageError(
        403,
        "AuthorizationPermissionMismatch",
        "This request is not authorized to perform this operation using this permission.",
    )


def _parse_time(value: str, name: str) -> dt.datetime:
    """ISO 8601 UTC as SAS fields carry it: `2026-01-01`, `2026-01-01T10:00Z`, `…:00Z`, `…:00.1234567Z`."""
    text = value.strip()
    for pattern in ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%MZ", "%Y-%m-%d"):
        try:
            return dt.datetime.strptime(text, pattern).replace(tzinfo=dt.UTC)
        except ValueError:
            pass
    match = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.\d{1,7}Z", text)
    if match:
        return dt.datetime.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=dt.UTC)
    raise _auth_failed(f"{name} is not a valid ISO 8601 UTC time: {value!r}")


def string_to_sign(fields: dict[str, str], canonical_resource: str) -> str:
    """The service SAS string-to-sign for version `fields["sv"]` (≥ 2018-11-09)."""
    get = lambda name: fields.get(name, "")  # noqa: E731 - a lookup, not a function worth naming
    lines = [
        get("sp"),
        get("st"),
        get("se"),
        canonical_resource,
        get("si"),
        get("sip"),
        get("spr"),
        get("sv"),
        get("sr"),
        get("snapshot"),
    ]
    if get("sv") >= ENCRYPTION_SCOPE_VERSION:
        lines.append(get("ses"))
    lines += [get("rscc"), get("rscd"), get("rsce"), get("rscl"), get("rsct")]
    return "\n".join(lines)


def sign(key: str, text: str) -> str:
    return base64.b64encode(hmac.new(base64.b64decode(key), text.encode("utf-8"), hashlib.sha256).digest()).decode()


def container_sas(
    account: str,
    key: str,
    container: str,
    permissions: str,
    expiry: dt.datetime,
    *,
    start: dt.datetime | None = None,
    version: str = "2024-08-04",
    blob: str | None = None,
) -> str:
    """A service SAS query string for a container (or, with `blob`, one blob), as azure-storage-blob makes them."""
    stamp = lambda moment: moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
    fields = {"sv": version, "sr": "b" if blob else "c", "sp": permissions, "se": stamp(expiry), "spr": "https"}
    if start is not None:
        fields["st"] = stamp(start)
    resource = f"/blob/{account}/{container}" + (f"/{blob}" if blob else "")
    fields["sig"] = sign(key, string_to_sign(fields, resource))
    order = ("sv", "st", "se", "sr", "sp", "spr", "sig")
    return urlencode([(name, fields[name]) for name in order if name in fields], quote_via=quote, safe="")


@dataclass
class Blob:
    data: bytes
    content_type: str
    etag: str
    created: dt.datetime
    modified: dt.datetime

    def headers(self) -> dict[str, str]:
        return {
            "ETag": f'"{self.etag}"',
            "Last-Modified": rfc1123(self.modified),
            "x-ms-blob-type": "BlockBlob",
            "x-ms-creation-time": rfc1123(self.created),
            "x-ms-lease-state": "available",
            "x-ms-lease-status": "unlocked",
            "x-ms-server-encrypted": "true",
            "Accept-Ranges": "bytes",
            "Content-Type": self.content_type,
            "Content-MD5": base64.b64encode(hashlib.md5(self.data).digest()).decode(),
        }  # noqa: S324 - the wire format


@dataclass
class Container:
    name: str
    blobs: dict[str, Blob] = field(default_factory=dict)


@dataclass(frozen=True)
class Grant:
    """What a validated SAS allows: its permission letters, on a container or on one blob."""

    account: str
    container: str
    permissions: str
    blob: str | None = None

    def require(self, letter: str, blob: str | None = None) -> None:
        if self.blob is not None and blob != self.blob:
            raise _auth_failed("Signed resource is a blob; the request is for another resource.")
        if letter not in self.permissions:
            raise _permission_mismatch()


@dataclass
class StoredResponse:
    status: int
    headers: dict[str, str]
    body: bytes = b""


class BlobService:
    """Storage accounts (name → base64 key) with their containers and block blobs, in memory; thread-safe."""

    def __init__(self, accounts: dict[str, str]) -> None:
        for name in accounts:
            if not ACCOUNT_NAME.match(name):
                raise ValueError(f"storage account name {name!r}: 3-24 lowercase letters and digits")
        self.accounts = dict(accounts)
        self._containers: dict[tuple[str, str], Container] = {}
        self._lock = threading.RLock()
        self._counter = 0

    # ------------------------------------------------------------------ management (the emulator's, not the API's)
    def create_container(self, account: str, name: str) -> None:
        if account not in self.accounts:
            raise ValueError(f"no storage account {account!r}")
        if not CONTAINER_NAME.match(name):
            raise ValueError(f"container name {name!r}: 3-63 lowercase letters, digits and single hyphens")
        with self._lock:
            self._containers.setdefault((account, name), Container(name))

    def reset(self, keep_containers: bool = True) -> None:
        with self._lock:
            for container in self._containers.values():
                container.blobs.clear()
            if not keep_containers:
                self._containers.clear()

    def handles(self, path: str) -> bool:
        return path.strip("/").split("/", 1)[0] in self.accounts

    def sas_url(
        self, base_url: str, account: str, container: str, permissions: str, expiry: dt.datetime, **options: Any
    ) -> str:
        return f"{base_url}/{account}/{container}?" + container_sas(
            account, self.accounts[account], container, permissions, expiry, **options
        )

    # ------------------------------------------------------------------ SAS
    def authorize(
        self, account: str, container: str, blob: str | None, query: dict[str, str], now: dt.datetime | None = None
    ) -> Grant:
        """Validate a service SAS for `account/container[/blob]`; raises StorageError as the service answers."""
        key = self.accounts.get(account)
        if key is None:
            raise StorageError(404, "ResourceNotFound", "The specified resource does not exist.")
        if "sig" not in query:
            raise StorageError(404, "ResourceNotFound", "The specified resource does not exist.")
        for name in ("sv", "sr"):
            if not query.get(name):
                raise _auth_failed(f"{name} is mandatory. Cannot be empty")
        if query.get("si"):
            raise _auth_failed("stored access policies (si) are not implemented by the emulator")
        if query["sv"] < MIN_SAS_VERSION:
            raise _auth_failed(
                f"sv {query['sv']} is older than {MIN_SAS_VERSION}, the oldest version the emulator verifies"
            )
        for name in ("sp", "se"):
            if not query.get(name):
                raise _auth_failed(f"{name} is mandatory. Cannot be empty")
        if query["sr"] not in ("c", "b"):
            raise _auth_failed(f"sr {query['sr']!r}: the emulator takes container (c) and blob (b) SAS only")
        if query["sr"] == "b" and not blob:
            raise _auth_failed("Signed resource is a blob; the request is for the container.")
        resource = f"/blob/{account}/{container}" + (f"/{blob}" if query["sr"] == "b" else "")
        expected = sign(key, string_to_sign(query, resource))
        if not hmac.compare_digest(expected.encode(), query["sig"].encode()):
            raise _auth_failed(
                "Signature did not match. String to sign used was "
                + string_to_sign(query, resource).replace("\n", "\\n")
            )
        now = now or utc_now()
        start = _parse_time(query["st"], "st") if query.get("st") else None
        expiry = _parse_time(query["se"], "se")
        if now > expiry or (start is not None and now < start):
            raise _auth_failed(
                f"Signature not valid in the specified time frame: Start [{rfc1123(start) if start else ''}]"
                f" - Expiry [{rfc1123(expiry)}] - Current [{rfc1123(now)}]"
            )
        if query.get("spr") and "https" not in query["spr"].split(","):
            raise _auth_failed("This request is not authorized to perform this operation using this protocol.")
        if query.get("sip") and not _ip_allowed(query["sip"], "127.0.0.1"):
            raise StorageError(
                403,
                "AuthorizationSourceIPMismatch",
                "This request is not authorized to perform this operation using this source IP.",
            )
        letters = "".join(ch for ch in query["sp"] if ch in PERMISSIONS)
        return Grant(account, container, letters, blob if query["sr"] == "b" else None)

    # ------------------------------------------------------------------ operations (after authorisation)
    def _container(self, grant: Grant) -> Container:
        found = self._containers.get((grant.account, grant.container))
        if found is None:
            raise StorageError(404, "ContainerNotFound", "The specified container does not exist.")
        return found

    def put(
        self,
        grant: Grant,
        name: str,
        data: bytes,
        content_type: str = "application/octet-stream",
        *,
        if_none_match: str | None = None,
    ) -> Blob:
        with self._lock:
            container = self._container(grant)
            existing = container.blobs.get(name)
            grant.require("w" if existing is not None or "c" not in grant.permissions else "c", name)
            if existing is not None and if_none_match == "*":
                raise StorageError(409, "BlobAlreadyExists", "The specified blob already exists.")
            self._counter += 1
            now = utc_now()
            blob = Blob(
                bytes(data), content_type, f"0x8D{self._counter:013X}", existing.created if existing else now, now
            )
            container.blobs[name] = blob
            return blob

    def get(self, grant: Grant, name: str) -> Blob:
        grant.require("r", name)
        with self._lock:
            blob = self._container(grant).blobs.get(name)
        if blob is None:
            raise StorageError(404, "BlobNotFound", "The specified blob does not exist.")
        return blob

    def delete(self, grant: Grant, name: str) -> None:
        grant.require("d", name)
        with self._lock:
            if self._container(grant).blobs.pop(name, None) is None:
                raise StorageError(404, "BlobNotFound", "The specified blob does not exist.")

    def names(self, grant: Grant, prefix: str = "") -> list[tuple[str, Blob]]:
        grant.require("l")
        with self._lock:
            return sorted((n, b) for n, b in self._container(grant).blobs.items() if n.startswith(prefix))

    def open_container(self, url: str, loopback_hosts: tuple[str, ...]) -> Grant:
        """A container SAS URI as a job holds it → the grant its token gives (raises StorageError when none)."""
        parts = urlsplit(url)
        if parts.scheme != "https" or (parts.hostname or "") not in loopback_hosts:
            raise StorageError(
                400,
                "InvalidUri",
                "the emulator reaches only its own blob endpoint "
                f"(https://{loopback_hosts[0]}:PORT/<account>/<container>)",
            )
        segments = [unquote(s) for s in parts.path.strip("/").split("/")]
        if len(segments) != 2:
            raise StorageError(400, "InvalidUri", "a container URI is https://HOST/<account>/<container>?<SAS>")
        return self.authorize(segments[0], segments[1], None, dict(parse_qsl(parts.query, keep_blank_values=True)))

    # ------------------------------------------------------------------ the REST surface
    def dispatch(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes
    ) -> StoredResponse:
        request_id = str(uuid.uuid4())
        try:
            response = self._route(method, path, query, headers, body)
        except StorageError as error:
            response = _error(error)
        except ServiceError as error:
            response = _error(StorageError(error.status, error.code, error.message))
        response.headers.setdefault("x-ms-request-id", request_id)
        response.headers.setdefault("x-ms-version", headers.get("x-ms-version") or STORAGE_VERSION)
        response.headers.setdefault("Date", rfc1123(utc_now()))
        return response

    def _route(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes
    ) -> StoredResponse:
        segments = [unquote(s) for s in path.lstrip("/").split("/", 2)]
        if len(segments) < 2 or not segments[1]:
            raise StorageError(400, "InvalidUri", "the emulator serves container and blob requests only")
        account, container = segments[0], segments[1]
        blob = segments[2] if len(segments) > 2 and segments[2] else None
        sas = {
            k: v
            for k, v in query.items()
            if k not in ("restype", "comp", "prefix", "maxresults", "marker", "include", "timeout")
        }
        if blob is None:
            if query.get("restype") == "container" and method == "PUT":
                self.authorize(account, container, None, sas)
                raise _permission_mismatch()  # a service SAS cannot create a container
            if query.get("restype") == "container" and query.get("comp") == "list" and method == "GET":
                grant = self.authorize(account, container, None, sas)
                return self._list(grant, query.get("prefix") or "")
            raise StorageError(
                400,
                "UnsupportedHttpVerb" if method != "GET" else "InvalidQueryParameterValue",
                f"{method} {path} is not implemented by the emulator",
            )
        grant = self.authorize(account, container, blob, sas)
        if method == "PUT":
            if query.get("comp"):
                raise StorageError(
                    400,
                    "InvalidQueryParameterValue",
                    f"comp={query['comp']} is not implemented by the emulator (Put Blob only)",
                )
            if (headers.get("x-ms-blob-type") or "") != "BlockBlob":
                raise StorageError(400, "InvalidHeaderValue", "x-ms-blob-type must be BlockBlob")
            stored = self.put(
                grant,
                blob,
                body,
                headers.get("x-ms-blob-content-type") or headers.get("content-type") or "application/octet-stream",
                if_none_match=headers.get("if-none-match"),
            )
            out = {k: v for k, v in stored.headers().items() if k in ("ETag", "Last-Modified", "Content-MD5")}
            return StoredResponse(201, {**out, "x-ms-request-server-encrypted": "true"})
        if method in ("GET", "HEAD"):
            stored = self.get(grant, blob)
            return self._read(stored, headers, head=method == "HEAD")
        if method == "DELETE":
            self.delete(grant, blob)
            return StoredResponse(202, {"x-ms-delete-type-permanent": "true"})
        raise StorageError(405, "UnsupportedHttpVerb", f"{method} is not supported on a blob")

    @staticmethod
    def _read(blob: Blob, headers: dict[str, str], *, head: bool) -> StoredResponse:
        size = len(blob.data)
        wanted = headers.get("x-ms-range") or headers.get("range")
        if head or not wanted:
            return StoredResponse(200, {**blob.headers(), "Content-Length": str(size)}, b"" if head else blob.data)
        match = re.fullmatch(r"bytes=(\d+)-(\d*)", wanted.strip())
        if match is None:
            raise StorageError(400, "InvalidRange", f"the range {wanted!r} is not valid")
        first = int(match.group(1))
        last = min(int(match.group(2)) if match.group(2) else size - 1, size - 1)
        if first >= size:
            raise StorageError(
                416, "InvalidRange", "The range specified is invalid for the current size of the resource."
            )
        part = blob.data[first : last + 1]
        out = {**blob.headers(), "Content-Range": f"bytes {first}-{last}/{size}"}
        if first or last != size - 1:
            out.pop("Content-MD5")  # the service returns the MD5 of the whole blob only for a whole read
        return StoredResponse(206, out, part)

    def _list(self, grant: Grant, prefix: str) -> StoredResponse:
        items = []
        for name, blob in self.names(grant, prefix):
            items.append(
                f"<Blob><Name>{escape(name)}</Name><Properties><Creation-Time>{rfc1123(blob.created)}</Creation-Time>"
                f"<Last-Modified>{rfc1123(blob.modified)}</Last-Modified><Etag>{blob.etag}</Etag>"
                f"<Content-Length>{len(blob.data)}</Content-Length><Content-Type>{escape(blob.content_type)}"
                "</Content-Type><BlobType>BlockBlob</BlobType><LeaseStatus>unlocked</LeaseStatus>"
                "<LeaseState>available</LeaseState><ServerEncrypted>true</ServerEncrypted></Properties></Blob>"
            )
        xml = (
            '<?xml version="1.0" encoding="utf-8"?>'
            f'<EnumerationResults ServiceEndpoint="/{grant.account}" ContainerName="{escape(grant.container)}">'
            f"<Prefix>{escape(prefix)}</Prefix><Blobs>{''.join(items)}</Blobs><NextMarker /></EnumerationResults>"
        )
        return StoredResponse(200, {"Content-Type": "application/xml"}, xml.encode("utf-8"))


def _ip_allowed(spec: str, address: str) -> bool:
    """Whether `address` is in the SAS's `sip` (one address or `low-high`); an IPv6 caller is never in an IPv4 range
    (comparing the two raised TypeError, a 500, before)."""
    first, _, last = spec.partition("-")
    try:
        low, high, ip = ipaddress.ip_address(first), ipaddress.ip_address(last or first), ipaddress.ip_address(address)
    except ValueError:
        return False
    if (
        isinstance(low, ipaddress.IPv4Address)
        and isinstance(high, ipaddress.IPv4Address)
        and isinstance(ip, ipaddress.IPv4Address)
    ):
        return low <= ip <= high
    if (
        isinstance(low, ipaddress.IPv6Address)
        and isinstance(high, ipaddress.IPv6Address)
        and isinstance(ip, ipaddress.IPv6Address)
    ):
        return low <= ip <= high
    return False


def _error(error: StorageError) -> StoredResponse:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"
    message = f"{error.message}\nRequestId:{uuid.uuid4()}\nTime:{stamp}"
    detail = f"<AuthenticationErrorDetail>{escape(error.detail)}</AuthenticationErrorDetail>" if error.detail else ""
    xml = (
        f'<?xml version="1.0" encoding="utf-8"?><Error><Code>{error.code}</Code>'
        f"<Message>{escape(message)}</Message>{detail}</Error>"
    )
    return StoredResponse(
        error.status, {"x-ms-error-code": error.code, "Content-Type": "application/xml"}, xml.encode("utf-8")
    )
