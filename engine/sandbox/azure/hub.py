"""The IoT Hub service API (identity registry, twins, bulk registry, query), as azure-iot-hub 2.7.0 calls it.

Devices live in memory for the server's lifetime. What the engine depends on is enforced for real: device-id rules,
409 on a duplicate create, 404, etags that change on every write and If-Match (412), twin merge-patch with
`$version`/`$metadata`, reported properties that the service API cannot write, bulk partial failures, and query
paging with `x-ms-continuation`. Errors carry the `iothub-errorcode` header and the service's
`{"Message": "ErrorCode:…", "ExceptionMessage": "Tracking ID:…"}` body.
"""

from __future__ import annotations

import base64
import itertools
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from .common import (
    NEVER,
    Counter,
    Request,
    Response,
    Router,
    ServiceError,
    SortedIndex,
    b64_counter_etag,
    check_if_match,
    checked_key,
    iso,
    keyset_page,
    random_key,
    utc_now,
)
from .query import compile_query
from .twin import PropertySet, check_size, merged, validate_collection

DEVICE_ID = re.compile(r"^[A-Za-z0-9\-.%_*?!(),:=@$']{1,128}$")
AUTH_TYPES = ("sas", "selfSigned", "certificateAuthority", "none")
THUMBPRINT = re.compile(r"^(?:[0-9A-Fa-f]{40}|[0-9A-Fa-f]{64})$")
BULK_LIMIT = 100
BULK_MODES = (
    "create",
    "createOrUpdate",
    "update",
    "updateIfMatchETag",
    "delete",
    "deleteIfMatchETag",
    "updateTwin",
    "updateTwinIfMatchETag",
)
IMPORT_MODES = (
    "create",
    "createOrUpdate",
    "createOrUpdateIfMatchETag",
    "update",
    "updateIfMatchETag",
    "delete",
    "deleteIfMatchETag",
)
DEFAULT_QUERY_PAGE = 100


def _invalid(message: str) -> ServiceError:
    return ServiceError(400, "ArgumentInvalid", message)


def _not_found(device_id: str) -> ServiceError:
    return ServiceError(404, "DeviceNotFound", f"{device_id}")


def new_key() -> str:
    """A 32-byte base64 key, the size IoT Hub generates."""
    return random_key(32)


def _pair(section: Any, first: str, second: str) -> tuple[Any, Any]:
    section = section or {}
    if not isinstance(section, dict):
        raise _invalid("authentication sections must be objects")
    return section.get(first), section.get(second)


def authentication(body: Any, previous: dict[str, Any] | None) -> dict[str, Any]:
    """Normalise a request's `authentication` to the stored shape; generate SAS keys the caller left out."""
    body = body or {"type": "sas"}
    kind = body.get("type") or "sas"
    if kind not in AUTH_TYPES:
        raise _invalid(f"authentication type {kind!r} is not one of {', '.join(AUTH_TYPES)}")
    primary_key, secondary_key = _pair(body.get("symmetricKey"), "primaryKey", "secondaryKey")
    primary_thumb, secondary_thumb = _pair(body.get("x509Thumbprint"), "primaryThumbprint", "secondaryThumbprint")
    if kind != "sas" and (primary_key or secondary_key):
        raise _invalid(f"symmetric keys are not allowed with authentication type {kind}")
    if kind != "selfSigned" and (primary_thumb or secondary_thumb):
        raise _invalid(f"thumbprints are not allowed with authentication type {kind}")
    keys: dict[str, Any] = {"primaryKey": None, "secondaryKey": None}
    thumbs: dict[str, Any] = {"primaryThumbprint": None, "secondaryThumbprint": None}
    if kind == "sas":
        kept = previous["symmetricKey"] if previous and previous["type"] == "sas" else {}
        keys = {
            slot: checked_key(slot, given or kept.get(slot) or new_key(), code="ArgumentInvalid")
            for slot, given in (("primaryKey", primary_key), ("secondaryKey", secondary_key))
        }
    if kind == "selfSigned":
        if not primary_thumb:
            raise _invalid("a selfSigned device needs a primary thumbprint")
        for thumb in filter(None, (primary_thumb, secondary_thumb)):
            if not isinstance(thumb, str) or not THUMBPRINT.match(thumb):
                raise _invalid(f"thumbprint {thumb!r} is not 40 (SHA-1) or 64 (SHA-256) hex digits")
        thumbs = {"primaryThumbprint": primary_thumb, "secondaryThumbprint": secondary_thumb}
    return {"symmetricKey": keys, "x509Thumbprint": thumbs, "type": kind}


@dataclass
class Device:
    device_id: str
    generation_id: str
    etag: str
    twin_etag: str
    status: str
    status_reason: str | None
    status_updated: str
    auth: dict[str, Any]
    iot_edge: bool
    device_scope: str
    parent_scopes: list[str]
    twin_version: int = 1
    tags: dict[str, Any] = field(default_factory=dict)
    desired: PropertySet = field(default_factory=lambda: PropertySet(versioned_metadata=True))
    reported: PropertySet = field(default_factory=lambda: PropertySet(versioned_metadata=False))

    def identity(self) -> dict[str, Any]:
        return {
            "deviceId": self.device_id,
            "generationId": self.generation_id,
            "etag": self.etag,
            "connectionState": "Disconnected",
            "status": self.status,
            "statusReason": self.status_reason,
            "connectionStateUpdatedTime": NEVER,
            "statusUpdatedTime": self.status_updated,
            "lastActivityTime": NEVER,
            "cloudToDeviceMessageCount": 0,
            "authentication": self.auth,
            "capabilities": {"iotEdge": self.iot_edge},
            "deviceScope": self.device_scope,
            "parentScopes": self.parent_scopes,
        }

    def twin(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "deviceId": self.device_id,
            "etag": self.twin_etag,
            "deviceEtag": self.etag,
            "status": self.status,
            "statusUpdateTime": self.status_updated,
            "connectionState": "Disconnected",
            "lastActivityTime": NEVER,
            "cloudToDeviceMessageCount": 0,
            "authenticationType": self.auth["type"],
            "x509Thumbprint": self.auth["x509Thumbprint"],
            "modelId": "",
            "version": self.twin_version,
            "properties": {"desired": self.desired.document(), "reported": self.reported.document()},
            "capabilities": {"iotEdge": self.iot_edge},
        }
        if self.tags:
            document["tags"] = self.tags
        if self.device_scope:
            document["deviceScope"] = self.device_scope
            document["parentScopes"] = self.parent_scopes
        return document


def twin_changes(body: dict[str, Any], *, replace: bool) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The tags and desired properties a twin PATCH/PUT body carries, validated (system `$` keys dropped)."""
    properties = body.get("properties") or {}
    if not isinstance(properties, dict):
        raise _invalid("properties must be an object")
    if "reported" in properties:
        raise _invalid("reported properties cannot be written through the service API")
    tags, desired = body.get("tags"), properties.get("desired")
    if isinstance(desired, dict):
        desired = {key: value for key, value in desired.items() if not key.startswith("$")}
    for name, value in (("tags", tags), ("desired", desired)):
        if value is not None:
            validate_collection(name, value, allow_null=not replace)
    return tags, desired


class HubService:
    """IoT Hub data-plane state plus its routes; callers hold the emulator lock around every handler."""

    def __init__(self, *, counter: Counter, page_cap: int) -> None:
        self.counter = counter
        self.page_cap = page_cap
        self.devices: dict[str, Device] = {}
        self.index = SortedIndex()
        self.router = Router()
        for method, pattern, op_class, handler in (
            ("GET", "/devices", "registry", self.list_devices),
            ("POST", "/devices", "registry", self.bulk),
            ("POST", "/devices/query", "query", self.query),
            ("GET", "/devices/{device_id}", "registry", self.get_device),
            ("PUT", "/devices/{device_id}", "registry", self.put_device),
            ("DELETE", "/devices/{device_id}", "registry", self.delete_device),
            ("GET", "/twins/{device_id}", "twin_read", self.get_twin),
            ("PATCH", "/twins/{device_id}", "twin_update", self.patch_twin),
            ("PUT", "/twins/{device_id}", "twin_update", self.replace_twin),
            ("GET", "/statistics/devices", "registry", self.registry_statistics),
            ("GET", "/statistics/service", "registry", self.service_statistics),
        ):
            self.router.add(method, pattern, op_class, handler)

    def reset(self) -> None:
        self.devices.clear()
        self.index.clear()

    # ----------------------------------------------------------------- helpers
    def _device_etag(self) -> str:
        return base64.b64encode(str(self.counter.next()).encode()).decode("ascii")

    def _touch_twin(self, device: Device) -> None:
        device.twin_version += 1
        device.twin_etag = b64_counter_etag(self.counter.next())

    def _find(self, device_id: str) -> Device:
        device = self.devices.get(device_id)
        if device is None:
            raise _not_found(device_id)
        return device

    @staticmethod
    def _check_id(device_id: str) -> None:
        if not DEVICE_ID.match(device_id):
            raise _invalid(
                f"device id {device_id!r} is not valid: up to 128 characters of "
                "letters, digits and - . % _ * ? ! ( ) , : = @ $ '"
            )

    def _write_identity(self, device_id: str, body: dict[str, Any], existing: Device | None) -> Device:
        """Create or update an identity from a Device / ExportImportDevice body (already authorised).

        On an update, fields the body leaves out (status, authentication, capabilities) keep their values.
        """
        self._check_id(device_id)
        status = body.get("status") or (existing.status if existing else "enabled")
        if status not in ("enabled", "disabled"):
            raise _invalid(f"status {status!r} must be enabled or disabled")
        if existing is not None and body.get("authentication") is None:
            auth = existing.auth
        else:
            auth = authentication(body.get("authentication"), existing.auth if existing else None)
        capabilities = body.get("capabilities") or {}
        iot_edge = bool(capabilities.get("iotEdge", existing.iot_edge if existing else False))
        now = iso(utc_now())
        if existing is None:
            return self._create(device_id, body, status, auth, iot_edge, now)
        if status != existing.status:
            existing.status_updated = now
        existing.status, existing.status_reason, existing.auth = status, body.get("statusReason"), auth
        existing.iot_edge = iot_edge
        existing.etag = self._device_etag()
        return existing

    def _create(
        self, device_id: str, body: dict[str, Any], status: str, auth: dict[str, Any], iot_edge: bool, now: str
    ) -> Device:
        generation = f"{self.counter.next():018d}"
        scope = f"ms-azure-iot-edge://{device_id}-{generation}" if iot_edge else (body.get("deviceScope") or "")
        device = Device(
            device_id,
            generation,
            self._device_etag(),
            b64_counter_etag(self.counter.next()),
            status,
            body.get("statusReason"),
            now,
            auth,
            iot_edge,
            scope,
            list(body.get("parentScopes") or []),
        )
        device.desired.last_updated = device.reported.last_updated = now
        self.devices[device_id] = device
        self.index.add(device_id)
        return device

    def _remove(self, device_id: str) -> None:
        del self.devices[device_id]
        self.index.remove(device_id)

    def _apply_twin_patch(self, device: Device, body: dict[str, Any], *, replace: bool) -> None:
        """Validate everything first, then write: a rejected patch changes nothing."""
        tags, desired = twin_changes(body, replace=replace)
        new_tags = None if tags is None else (dict(tags) if replace else merged(device.tags, tags))
        if new_tags is not None:
            check_size("tags", new_tags)
        if desired is not None:
            check_size("desired", desired if replace else merged(device.desired.values, desired))
        if new_tags is not None:
            device.tags = new_tags
        if desired is not None:
            (device.desired.replace if replace else device.desired.patch)(desired, iso(utc_now()))
        self._touch_twin(device)

    # ---------------------------------------------------------------- devices
    def get_device(self, request: Request, device_id: str) -> Response:
        return Response(200, self._find(device_id).identity())

    def put_device(self, request: Request, device_id: str) -> Response:
        body = request.json_object()
        if body.get("deviceId") not in (None, device_id):
            raise _invalid(f"deviceId {body.get('deviceId')!r} in the body does not match the URL")
        existing = self.devices.get(device_id)
        if_match = request.header("if-match")
        if existing is not None and not if_match:
            raise ServiceError(409, "DeviceAlreadyExists", f"A device with ID '{device_id}' is already registered.")
        check_if_match(existing.etag if existing else None, if_match, missing=_not_found(device_id))
        return Response(200, self._write_identity(device_id, body, existing).identity())

    def delete_device(self, request: Request, device_id: str) -> Response:
        device = self._find(device_id)
        check_if_match(device.etag, request.header("if-match"), missing=_not_found(device_id))
        self._remove(device_id)
        return Response(204)

    def list_devices(self, request: Request) -> Response:
        try:
            top = int(request.query.get("top") or 1000)
        except ValueError as exc:
            raise _invalid("top must be an integer") from exc
        top = top if 1 <= top <= 1000 else 1000
        identities = [self.devices[key].identity() for key in itertools.islice(self.index.after(None), top)]
        return Response(200, identities)

    def registry_statistics(self, request: Request) -> Response:
        enabled = sum(1 for device in self.devices.values() if device.status == "enabled")
        return Response(
            200,
            {
                "totalDeviceCount": len(self.devices),
                "enabledDeviceCount": enabled,
                "disabledDeviceCount": len(self.devices) - enabled,
            },
        )

    def service_statistics(self, request: Request) -> Response:
        return Response(200, {"connectedDeviceCount": 0})

    # ------------------------------------------------------------------ twins
    def get_twin(self, request: Request, device_id: str) -> Response:
        return Response(200, self._find(device_id).twin())

    def _twin_write(self, request: Request, device_id: str, *, replace: bool) -> Response:
        device = self._find(device_id)
        check_if_match(device.twin_etag, request.header("if-match"), missing=_not_found(device_id))
        self._apply_twin_patch(device, request.json_object(), replace=replace)
        return Response(200, device.twin())

    def patch_twin(self, request: Request, device_id: str) -> Response:
        return self._twin_write(request, device_id, replace=False)

    def replace_twin(self, request: Request, device_id: str) -> Response:
        return self._twin_write(request, device_id, replace=True)

    def report(self, device_id: str, patch: dict[str, Any]) -> dict[str, Any]:
        """What a connected device would do over MQTT: patch its reported properties (emulator-only hook)."""
        device = self._find(device_id)
        validate_collection("reported", patch, allow_null=True)
        device.reported.patch(patch, iso(utc_now()))
        self._touch_twin(device)
        return device.twin()

    # ------------------------------------------------------------------ query
    def query(self, request: Request) -> Response:
        predicate = compile_query(request.json_object().get("query", ""))

        def fetch(device_id: str) -> dict[str, Any] | None:
            twin = self.devices[device_id].twin()
            return twin if predicate(twin) else None

        items, continuation = keyset_page(
            self.index, request, fetch, default_size=DEFAULT_QUERY_PAGE, cap=self.page_cap
        )
        return Response(200, items, {"x-ms-item-type": "twin", "x-ms-continuation": continuation or ""})

    # ------------------------------------------------------------------- bulk
    def bulk(self, request: Request) -> Response:
        entries = request.json()
        if not isinstance(entries, list) or not entries:
            raise _invalid("the body must be a non-empty list of devices")
        if len(entries) > BULK_LIMIT:
            raise ServiceError(400, "TooManyDevices", f"at most {BULK_LIMIT} devices per bulk call")
        ids = [entry.get("id") if isinstance(entry, dict) else None for entry in entries]
        if None in ids or len(set(ids)) != len(ids):
            raise _invalid("every entry needs an id, and an id may appear only once per call")
        errors = [error for error in map(self._bulk_one, entries) if error is not None]
        result = {"isSuccessful": not errors, "errors": errors, "warnings": []}
        return Response(400 if errors else 200, result)

    def _bulk_one(self, entry: dict[str, Any]) -> dict[str, Any] | None:
        device_id, mode = entry["id"], entry.get("importMode") or "createOrUpdate"
        try:
            if mode not in BULK_MODES:
                raise _invalid(f"importMode {mode!r} is not one of {', '.join(BULK_MODES)}")
            self._bulk_apply(device_id, mode, entry)
        except ServiceError as error:
            return {"deviceId": device_id, "errorCode": error.code, "errorStatus": error.message, "operation": mode}
        return None

    def _bulk_apply(self, device_id: str, mode: str, entry: dict[str, Any]) -> None:
        existing = self.devices.get(device_id)
        twin_only = mode.startswith("updateTwin")
        if existing is None and (mode.startswith("delete") or twin_only or mode == "updateIfMatchETag"):
            raise _not_found(device_id)
        if existing is not None and mode.endswith("IfMatchETag"):
            given, current = (
                (entry.get("twinETag"), existing.twin_etag) if twin_only else (entry.get("eTag"), existing.etag)
            )
            check_if_match(current, given or '"missing etag"', missing=_not_found(device_id))
        if mode.startswith("delete"):
            self._remove(device_id)
            return
        if mode == "create" and existing is not None:
            raise ServiceError(409, "DeviceAlreadyExists", f"A device with ID '{device_id}' is already registered.")
        desired_in = (entry.get("properties") or {}).get("desired")
        twin_body = {"tags": entry.get("tags"), "properties": {"desired": desired_in}}
        tags, desired = twin_changes(twin_body, replace=False)  # reject a bad twin before any write
        device = self._find(device_id) if twin_only else self._write_identity(device_id, entry, existing)
        if tags is not None or desired is not None:
            self._apply_twin_patch(device, twin_body, replace=False)

    # --------------------------------------------------------------- import/export jobs (engine/sandbox/azure/jobs.py)
    def import_device(self, device_id: str, mode: str, entry: dict[str, Any]) -> None:
        """One line of an import job, through the same registry code as the REST and bulk APIs.

        As documented for ImportDevices: `create` fails on an existing device, `update*` and `delete*` on a missing
        one, `*IfMatchETag` compare `eTag` with the device etag; a `twinETag` is checked on its own against the twin
        etag whatever the mode. Twin data replaces the twin's tags and desired properties (an import restores what
        an export wrote) where the bulk API merges them. Validation happens before any write.
        """
        if mode not in IMPORT_MODES:
            raise _invalid(f"importMode {mode!r} is not one of {', '.join(IMPORT_MODES)}")
        self._check_id(device_id)
        existing = self.devices.get(device_id)
        if existing is None and (mode.startswith("delete") or mode.startswith("update")):
            raise _not_found(device_id)
        if existing is not None and mode == "create":
            raise ServiceError(409, "DeviceAlreadyExists", f"A device with ID '{device_id}' is already registered.")
        if existing is not None and mode.endswith("IfMatchETag"):
            check_if_match(existing.etag, entry.get("eTag") or '"missing etag"', missing=_not_found(device_id))
        if mode.startswith("delete"):
            self._remove(device_id)
            return
        if existing is not None and entry.get("twinETag"):
            check_if_match(existing.twin_etag, entry["twinETag"], missing=_not_found(device_id))
        twin_body = {
            "tags": entry.get("tags"),
            "properties": {"desired": (entry.get("properties") or {}).get("desired")},
        }
        tags, desired = twin_changes(twin_body, replace=True)
        for name, value in (("tags", tags), ("desired", desired)):
            if value is not None:
                check_size(name, value)
        device = self._write_identity(device_id, entry, existing)
        if tags is not None or desired is not None:
            self._apply_twin_patch(device, twin_body, replace=True)

    def export_line(self, device_id: str, *, exclude_keys: bool) -> dict[str, Any] | None:
        """A device as an export job writes it to devices.txt (ExportImportDevice, twin data included)."""
        device = self.devices.get(device_id)
        if device is None:
            return None
        auth = {
            **device.auth,
            "symmetricKey": dict(device.auth["symmetricKey"]),
            "x509Thumbprint": dict(device.auth["x509Thumbprint"]),
        }
        if exclude_keys:
            auth["symmetricKey"] = {"primaryKey": None, "secondaryKey": None}
        line: dict[str, Any] = {
            "id": device.device_id,
            "eTag": device.etag,
            "status": device.status,
            "statusReason": device.status_reason,
            "authentication": auth,
            "twinETag": device.twin_etag,
            "tags": dict(device.tags),
            "properties": {"desired": device.desired.document(), "reported": device.reported.document()},
            "capabilities": {"iotEdge": device.iot_edge},
        }
        if device.device_scope:
            line.update(deviceScope=device.device_scope, parentScopes=list(device.parent_scopes))
        return line


def hub_error(error: ServiceError) -> Response:
    """IoT Hub's error shape: the code in `iothub-errorcode` and in the `Message` text."""
    tracking = uuid.uuid4().hex
    stamp = utc_now().strftime("%m/%d/%Y %H:%M:%S")
    body = {
        "Message": f"ErrorCode:{error.code};{error.message}",
        "ExceptionMessage": f"Tracking ID:{tracking}-G:0-TimeStamp:{stamp}",
    }
    headers = {"iothub-errorcode": error.code}
    if error.retry_after is not None:
        headers["Retry-After"] = str(error.retry_after)
    return Response(error.status, body, headers)
