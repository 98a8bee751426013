"""The DPS service API (enrollment groups, individual enrollments, registrations), api-version 2021-10-01.

Shaped after what azure-iot-deviceprovisioning 1.0.0b1 sends and reads. Enforced: the registration-id format
(≤128 of alphanumerics and `- . _ :`, last character alphanumeric or `-`, case-insensitive uniqueness), etags with
If-Match (412) and 409 on a PUT without If-Match over an existing record, attestation rules, allocation policies
(custom needs a webhook), defaults the service fills in, timestamps, and query paging with `x-ms-continuation`.
Like the service, DPS replaces an uploaded X.509 certificate by an `info` block (subject, thumbprints, validity),
returns generated symmetric keys only from the PUT and from `attestationmechanism`, never from GET or query.
"""

from __future__ import annotations

import copy
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from . import certs
from .common import (
    Request,
    Response,
    Router,
    ServiceError,
    SortedIndex,
    check_if_match,
    checked_key,
    iso,
    keyset_page,
    random_key,
    utc_now,
)

REGISTRATION_ID = re.compile(r"^[A-Za-z0-9\-._:]{0,127}[A-Za-z0-9\-]$")
ALLOCATION_POLICIES = ("hashed", "geoLatency", "static", "custom")
DEFAULT_PAGE = 100
# Numeric codes in `errorCode` (6 digits, HTTP status first), as DPS reports them.
ERROR_NUMBERS = {400: 400004, 401: 401002, 404: 404201, 405: 405001, 409: 409201, 412: 412001, 429: 429001}


def _invalid(message: str) -> ServiceError:
    return ServiceError(400, "BadRequest", message)


def _certificate_pair(section: Any, name: str) -> dict[str, Any]:
    """Replace each uploaded certificate with the `info` block the service reports about it."""
    if not isinstance(section, dict) or not section.get("primary"):
        raise _invalid(f"x509.{name} needs a primary certificate")
    result: dict[str, Any] = {}
    for slot in ("primary", "secondary"):
        entry = section.get(slot)
        if entry is None:
            continue
        if not isinstance(entry, dict) or not (entry.get("certificate") or entry.get("info")):
            raise _invalid(f"x509.{name}.{slot} needs a certificate")
        info = (
            entry["info"]
            if not entry.get("certificate")
            else certs.dps_info(certs.load_certificate(entry["certificate"], code="BadRequest"))
        )
        result[slot] = {"certificate": None, "info": info}
    return result


@dataclass(frozen=True)
class Collection:
    """What distinguishes enrollment groups from individual enrollments."""

    path: str
    id_field: str
    item_type: str
    x509_sections: tuple[str, ...]
    attestation_types: tuple[str, ...]
    records: dict[str, dict[str, Any]] = field(default_factory=dict)  # lower-cased id → stored record
    index: SortedIndex = field(default_factory=SortedIndex)


def _attestation(body: Any, collection: Collection, previous: dict[str, Any] | None) -> dict[str, Any]:
    if not isinstance(body, dict) or body.get("type") not in collection.attestation_types:
        raise _invalid(f"attestation.type must be one of {', '.join(collection.attestation_types)}")
    kind = body["type"]
    result: dict[str, Any] = {"type": kind, "x509": None, "symmetricKey": None, "tpm": None}
    if kind == "symmetricKey":
        keys = body.get("symmetricKey") or {}
        kept = (previous or {}).get("symmetricKey") or {}
        result["symmetricKey"] = {
            slot: checked_key(slot, keys[slot], code="BadRequest")
            if keys.get(slot)
            else kept.get(slot) or random_key(64)
            for slot in ("primaryKey", "secondaryKey")
        }
    elif kind == "tpm":
        tpm = body.get("tpm") or {}
        if not tpm.get("endorsementKey"):
            raise _invalid("tpm attestation needs an endorsementKey")
        result["tpm"] = {"endorsementKey": tpm["endorsementKey"], "storageRootKey": tpm.get("storageRootKey")}
    else:
        result["x509"] = _x509(body.get("x509"), collection)
    return result


def _x509(body: Any, collection: Collection) -> dict[str, Any]:
    body = body if isinstance(body, dict) else {}
    present = [name for name in (*collection.x509_sections, "caReferences") if body.get(name)]
    if len(present) != 1:
        raise _invalid(f"x509 attestation needs exactly one of {', '.join(collection.x509_sections)} or caReferences")
    name = present[0]
    if name == "caReferences":
        references = body["caReferences"]
        if not isinstance(references, dict) or not references.get("primary"):
            raise _invalid("x509.caReferences needs a primary CA name")
        return {"caReferences": {"primary": references["primary"], "secondary": references.get("secondary")}}
    return {name: _certificate_pair(body[name], name)}


def _allocation(body: dict[str, Any]) -> dict[str, Any]:
    policy = body.get("allocationPolicy")
    if policy is not None and policy not in ALLOCATION_POLICIES:
        raise _invalid(f"allocationPolicy must be one of {', '.join(ALLOCATION_POLICIES)}")
    custom = body.get("customAllocationDefinition")
    if policy == "custom" and not (isinstance(custom, dict) and custom.get("webhookUrl") and custom.get("apiVersion")):
        raise _invalid("allocationPolicy custom needs customAllocationDefinition.webhookUrl and apiVersion")
    hubs = body.get("iotHubs")
    if hubs is not None and not (isinstance(hubs, list) and all(isinstance(hub, str) for hub in hubs)):
        raise _invalid("iotHubs must be a list of IoT hub host names")
    return {
        "allocationPolicy": policy,
        "customAllocationDefinition": custom if policy == "custom" else None,
        "iotHubs": hubs,
        "iotHubHostName": body.get("iotHubHostName"),
    }


def _options(body: dict[str, Any]) -> dict[str, Any]:
    status = body.get("provisioningStatus") or "enabled"
    if status not in ("enabled", "disabled"):
        raise _invalid("provisioningStatus must be enabled or disabled")
    reprovision = {"updateHubAssignment": True, "migrateDeviceData": True, **(body.get("reprovisionPolicy") or {})}
    if not all(isinstance(reprovision[name], bool) for name in ("updateHubAssignment", "migrateDeviceData")):
        raise _invalid("reprovisionPolicy values must be booleans")
    twin = body.get("initialTwin")
    if twin is not None and not isinstance(twin, dict):
        raise _invalid("initialTwin must be an object")
    return {
        "provisioningStatus": status,
        "reprovisionPolicy": reprovision,
        "initialTwin": twin,
        "capabilities": {"iotEdge": bool((body.get("capabilities") or {}).get("iotEdge", False))},
    }


def public_view(record: dict[str, Any]) -> dict[str, Any]:
    """A record as GET and query return it: symmetric keys withheld (they come from attestationmechanism)."""
    if record["attestation"].get("symmetricKey") is None:
        return record
    view = copy.deepcopy(record)
    view["attestation"]["symmetricKey"] = {"primaryKey": None, "secondaryKey": None}
    return view


class DpsService:
    """DPS data-plane state plus its routes; callers hold the emulator lock around every handler."""

    def __init__(self, *, page_cap: int) -> None:
        self.page_cap = page_cap
        self.groups = Collection(
            "/enrollmentGroups",
            "enrollmentGroupId",
            "enrollmentGroup",
            ("signingCertificates",),
            ("x509", "symmetricKey"),
        )
        self.enrollments = Collection(
            "/enrollments", "registrationId", "enrollment", ("clientCertificates",), ("x509", "symmetricKey", "tpm")
        )
        self.router = Router()
        for collection in (self.groups, self.enrollments):
            self._add_routes(collection)
        self.router.add("GET", "/registrations/{item_id}", "dps", self.get_registration)
        self.router.add("DELETE", "/registrations/{item_id}", "dps", self.get_registration)
        self.router.add("POST", "/registrations/{item_id}/query", "dps", self.query_registrations)

    def _add_routes(self, collection: Collection) -> None:
        def bind(method: Any) -> Any:
            return lambda request, **params: method(collection, request, **params)

        self.router.add("POST", f"{collection.path}/query", "dps", bind(self.query))
        self.router.add("GET", f"{collection.path}/{{item_id}}", "dps", bind(self.get))
        self.router.add("PUT", f"{collection.path}/{{item_id}}", "dps", bind(self.put))
        self.router.add("DELETE", f"{collection.path}/{{item_id}}", "dps", bind(self.delete))
        self.router.add(
            "POST", f"{collection.path}/{{item_id}}/attestationmechanism", "dps", bind(self.attestation_mechanism)
        )

    def reset(self) -> None:
        for collection in (self.groups, self.enrollments):
            collection.records.clear()
            collection.index.clear()

    @staticmethod
    def _find(collection: Collection, item_id: str) -> dict[str, Any]:
        record = collection.records.get(item_id.lower())
        if record is None:
            raise ServiceError(404, "NotFound", f"{collection.item_type} {item_id!r} not found")
        return record

    def get(self, collection: Collection, request: Request, item_id: str) -> Response:
        return Response(200, public_view(self._find(collection, item_id)))

    def attestation_mechanism(self, collection: Collection, request: Request, item_id: str) -> Response:
        return Response(200, self._find(collection, item_id)["attestation"])

    def put(self, collection: Collection, request: Request, item_id: str) -> Response:
        if not REGISTRATION_ID.match(item_id):
            raise _invalid(
                f"{collection.id_field} {item_id!r} is not valid: up to 128 characters of letters, "
                "digits and - . _ :, ending with a letter, a digit or -"
            )
        body = request.json_object()
        if body.get(collection.id_field) not in (None, item_id):
            raise _invalid(f"{collection.id_field} in the body does not match the URL")
        existing = collection.records.get(item_id.lower())
        if_match = request.header("if-match")
        if existing is not None and not if_match:
            raise ServiceError(
                409, "Conflict", f"{collection.item_type} {item_id!r} already exists; send If-Match to update it"
            )
        not_found = ServiceError(404, "NotFound", f"{collection.item_type} {item_id!r} not found")
        check_if_match(existing["etag"] if existing else None, if_match, missing=not_found)
        record = self._record(collection, item_id, body, existing)
        if existing is None:
            collection.index.add(item_id.lower())
        collection.records[item_id.lower()] = record
        return Response(200, record)

    def _record(
        self, collection: Collection, item_id: str, body: dict[str, Any], existing: dict[str, Any] | None
    ) -> dict[str, Any]:
        now = iso(utc_now())
        record: dict[str, Any] = {
            collection.id_field: item_id,
            "attestation": _attestation(
                body.get("attestation"), collection, existing["attestation"] if existing else None
            ),
            **_allocation(body),
            **_options(body),
        }
        if collection is self.enrollments:
            record["deviceId"] = body.get("deviceId")
            record["registrationState"] = existing.get("registrationState") if existing else None
        record.update(
            {
                "etag": uuid.uuid4().hex,
                "createdDateTimeUtc": existing["createdDateTimeUtc"] if existing else now,
                "lastUpdatedDateTimeUtc": now,
            }
        )
        return record

    def delete(self, collection: Collection, request: Request, item_id: str) -> Response:
        record = self._find(collection, item_id)
        check_if_match(record["etag"], request.header("if-match"), missing=ServiceError(404, "NotFound", item_id))
        del collection.records[item_id.lower()]
        collection.index.remove(item_id.lower())
        return Response(204)

    def query(self, collection: Collection, request: Request) -> Response:
        query = str(request.json_object().get("query", "")).strip()
        if not re.fullmatch(r"(?i)select\s+\*(\s+from\s+\w+)?", query):
            raise _invalid(f"unsupported query {query!r}; the emulator supports SELECT *")
        items, continuation = keyset_page(
            collection.index,
            request,
            lambda key: public_view(collection.records[key]),
            default_size=DEFAULT_PAGE,
            cap=self.page_cap,
        )
        headers = {"x-ms-item-type": collection.item_type}
        if continuation:
            headers["x-ms-continuation"] = continuation
        return Response(200, items, headers)

    def get_registration(self, request: Request, item_id: str) -> Response:
        raise ServiceError(404, "NotFound", f"no device registration {item_id!r}: the emulator provisions no devices")

    def query_registrations(self, request: Request, item_id: str) -> Response:
        self._find(self.groups, item_id)
        return Response(200, [], {"x-ms-item-type": "deviceRegistration"})


def dps_error(error: ServiceError) -> Response:
    """DPS's error shape: a six-digit `errorCode`, a tracking id and a message; the code also in a header."""
    number = ERROR_NUMBERS.get(error.status, error.status * 1000)
    body = {
        "errorCode": number,
        "trackingId": uuid.uuid4().hex,
        "message": f"{error.code}: {error.message}",
        "timestampUtc": iso(utc_now()),
    }
    headers = {"x-ms-error-code": str(number)}
    if error.retry_after is not None:
        headers["Retry-After"] = str(error.retry_after)
    return Response(error.status, body, headers)
