"""The identity registry: azure.Device identities and their twins — the bulk read, the bulk create, update, delete.

Read in bulk (research/quotas.md §8.3): the twin query `SELECT * FROM devices`, page by page through the continuation
token. One twin carries the identity fields fleetctl manages (status, authentication type, thumbprints, iotEdge, the
device etag) with the tags and desired properties, so a plan never GETs a device — except to fingerprint the
symmetric keys of devices whose manifest declares keys (the query does not return keys): one identity GET per such
device, run concurrently.

Creates go through the bulk registry API (`POST /devices`, importMode create): one call creates the identity, its
twin tags/desired and the ownership tag `fleetctl: {"managed": true}` at once (provider.py's `batches` hands up to
100 creates per call, or a wave to an import job, importjob.py). Updates send the device etag as If-Match; the twin
etag also changes when the device reports properties, so a twin PATCH that meets 412 re-reads the twin and retries
only when the paths fleetctl manages are as the plan saw them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from engine import errors
from engine.model import ActualResource, Change, DesiredResource
from engine.providers.azure.kinds import KEY_FIELDS, MANAGED, MARKER_TAG
from engine.providers.azure.planning import TWIN_FIELDS, device_parts
from engine.providers.azure.session import AzureSession, parallel
from engine.providers.azure.state import device_state, for_declared, key_fingerprints

BULK_ERRORS: dict[str, type[errors.ProviderError]] = {
    "DeviceAlreadyExists": errors.Conflict,
    "DeviceNotFound": errors.NotFound,
    "PreconditionFailed": errors.PreconditionFailed,
    "ArgumentInvalid": errors.Invalid,
    "IotHubQuotaExceeded": errors.Throttled,
    "ThrottlingException": errors.Throttled,
}


# ------------------------------------------------------------------------------------------------ read
def _query(p: AzureSession) -> Iterable[dict[str, Any]]:
    token: str | None = None
    while True:
        page, token = p.call("query_iot_hub", p.client.query_devices_page, None, token, p.page_size)
        yield from page
        if not token:
            return


def read_devices(p: AzureSession, declared: dict[str, DesiredResource], prune: bool) -> list[ActualResource]:
    """The declared devices (with `prune`, every device of the hub) from the twin query, keys fingerprinted."""
    rows: list[tuple[str, dict[str, Any], bool, Mapping[str, Any]]] = []
    progress = p.progress.task(f"read {p.target}", len(declared) or None, unit="device twins", final=False)
    for twin in _query(p):
        progress.advance()
        device_id = twin["deviceId"]
        d = declared.get(device_id)
        if d is None and not prune:
            continue
        state, managed = device_state(twin)
        if d is not None:
            state = for_declared(state, d.spec)
        rows.append((device_id, state, managed, twin))
    progress.close()
    keyed = [row[0] for row in rows if row[0] in declared and any(k in declared[row[0]].spec for k in KEY_FIELDS)]
    if keyed:

        def keys(device_id: str) -> tuple[str, dict[str, Any]]:
            identity = p.call("get_device", p.client.get_device, device_id)
            auth = identity.get("authentication") or {}
            symmetric = auth.get("symmetricKey") if auth.get("type") == "sas" else None
            return device_id, key_fingerprints(symmetric, declared[device_id].spec)

        fingerprints = dict(parallel(keys, keyed))
    else:
        fingerprints = {}
    return [
        ActualResource(
            p.addr("Device", device_id),
            "azure.Device",
            {**state, **fingerprints.get(device_id, {})},
            token=twin.get("deviceEtag") or "",
            managed=managed,
            ids={"etag": twin.get("deviceEtag"), "twinEtag": twin.get("etag")},
        )
        for device_id, state, managed, twin in rows
    ]


# ------------------------------------------------------------------------------------------------ writes
def bulk_error(entry: Mapping[str, Any]) -> errors.ProviderError:
    """The fleetctl error of one failed entry of a bulk registry call."""
    code = str(entry.get("errorCode") or "")
    return BULK_ERRORS.get(code, errors.ProviderError)(str(entry.get("errorStatus") or code), code=code or None)


def _auth(desired: Mapping[str, Any], secrets: Mapping[str, str], current: Mapping[str, Any] | None) -> dict[str, Any]:
    """The client's flat auth dict for the desired authentication. Keys: the declared ones from `secrets`; the
    others kept from `current` (the identity as the hub holds it) or, on create, left to the service."""
    auth = desired["authentication"]
    if auth["type"] == "x509CA":
        return {"type": "certificateAuthority"}
    if auth["type"] == "selfSigned":
        return {
            "type": "selfSigned",
            "primaryThumbprint": auth.get("primaryThumbprint"),
            "secondaryThumbprint": auth.get("secondaryThumbprint"),
        }
    kept = (current or {}).get("symmetricKey") or {} if (current or {}).get("type") == "sas" else {}
    return {"type": "sas", **{name: secrets.get(name) if name in desired else kept.get(name) for name in KEY_FIELDS}}


def device_entry(c: Change, secrets: Mapping[str, str]) -> dict[str, Any]:
    """The client entry creating one device (bulk registry call or import-job line), ownership tag included."""
    d = c.desired
    entry: dict[str, Any] = {
        "device_id": c.address.name,
        "auth": _auth(d, secrets, None),
        "status": d.get("status", "enabled"),
        "iot_edge": bool(d.get("iotEdge")),
        "tags": {**d.get("tags", {}), MARKER_TAG: {MANAGED: True}},
    }
    if d.get("desired"):
        entry["desired"] = d["desired"]
    return entry


def bulk_create(
    p: AzureSession, changes: list[Change], secrets: list[Mapping[str, str]]
) -> list[errors.ProviderError | None]:
    """Create devices in one bulk registry call; the outcome of each, in order. Raises when the call as a whole
    fails (then none of them was created)."""
    entries = [device_entry(c, s) for c, s in zip(changes, secrets, strict=True)]
    result = p.call("bulk_create_or_update_devices", p.client.bulk_devices, entries, "create")
    p.paths["bulk-create calls"] += 1
    p.paths["bulk-create devices"] += len(entries)
    failures = {e.get("deviceId"): e for e in result.get("errors") or []}
    return [bulk_error(failures[c.address.name]) if c.address.name in failures else None for c in changes]


def device_update(p: AzureSession, c: Change, secrets: Mapping[str, str]) -> dict[str, Any]:
    name, d = c.address.name, c.desired
    identity, twin = device_parts(c)
    if identity:
        current = p.call("get_device", p.client.get_device, name)
        status = d.get("status") or current.get("status")
        edge = d["iotEdge"] if "iotEdge" in d else bool((current.get("capabilities") or {}).get("iotEdge"))
        p.call(
            "update_device",
            p.client.update_device,
            name,
            _auth(d, secrets, current.get("authentication")),
            status,
            edge,
            c.ids.get("etag"),
        )
    if twin:
        patch: dict[str, Any] = {}
        if any(path.startswith("tags") for path in twin):
            patch["tags"] = d["tags"]
        if any(path.startswith("desired") for path in twin):
            patch["properties"] = {"desired": d["desired"]}
        _patch_twin(p, c, patch)
    return {}


def _patch_twin(p: AzureSession, c: Change, patch: dict[str, Any]) -> None:
    """PATCH (merge) with If-Match the twin etag of the plan. The twin etag also moves when the device reports
    properties, so on 412 re-read the twin: if the paths fleetctl manages are still as planned, retry with the new
    etag; otherwise refuse, naming the concurrent change."""
    name = c.address.name
    try:
        p.call("update_twin", p.client.update_twin, name, patch, c.ids.get("twinEtag"))
        return
    except errors.PreconditionFailed:
        twin = p.call("get_twin", p.client.get_twin, name)
    managed = {k: c.desired[k] for k in TWIN_FIELDS if k in c.desired}
    now = for_declared(device_state(twin)[0], managed)
    if now != {k: c.actual.get(k) for k in managed}:
        raise errors.PreconditionFailed(
            f"the twin's managed tags or desired properties of {name} changed since the plan was made; re-run plan",
            code="PreconditionFailed",
        )
    p.call("update_twin", p.client.update_twin, name, patch, twin.get("etag"))


def device_delete(p: AzureSession, c: Change, secrets: Mapping[str, str]) -> dict[str, Any]:
    try:
        p.call("delete_device", p.client.delete_device, c.address.name, c.ids.get("etag"))
    except errors.NotFound:
        pass  # gone already: the desired outcome
    return {}
