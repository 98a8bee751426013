"""The Device Provisioning Service: azure.EnrollmentGroup and azure.Enrollment — the bulk read and the writes.

Read in bulk: the enrollment-group and enrollment queries; keys only through `attestationmechanism`, and only for
records whose manifest declares keys. Every write sends the record's etag as If-Match and a full record: the
current one's fields the manifest leaves out, overlaid with the declared ones.

Ownership marker: the initial-twin tag `fleetctl: {"provisionedBy": "<Kind>/<name>"}`. DPS records have no tags of
their own, and the initial twin is the only free-form field that is not configuration (`capabilities` is). Devices
DPS provisions inherit the tag: it records where they came from and does not make them managed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from engine import errors
from engine.model import ActualResource, Change, DesiredResource
from engine.providers.azure.client import AzureClient
from engine.providers.azure.kinds import KEY_FIELDS, MARKER_TAG, PROVISIONED_BY
from engine.providers.azure.session import AzureSession, parallel
from engine.providers.azure.state import dps_names, dps_state, for_declared, key_fingerprints, split_marker

DPS_KINDS = ("azure.EnrollmentGroup", "azure.Enrollment")
DPS_FIELDS = (
    "allocationPolicy",
    "customAllocationDefinition",
    "iotHubs",
    "iotHubHostName",
    "reprovisionPolicy",
    "initialTwin",
    "capabilities",
    "provisioningStatus",
    "deviceId",
)


class DpsOps(NamedTuple):
    """The client calls of one DPS collection (enrollment groups or individual enrollments)."""

    prefix: str
    get: Callable[..., dict[str, Any]]
    keys: Callable[..., dict[str, Any]]
    put: Callable[..., dict[str, Any]]
    delete: Callable[..., None]


def dps_ops(k: AzureClient, kind: str) -> DpsOps:
    if kind == "azure.EnrollmentGroup":
        return DpsOps(
            "enrollment_group",
            k.get_enrollment_group,
            k.get_enrollment_group_attestation,
            k.put_enrollment_group,
            k.delete_enrollment_group,
        )
    return DpsOps("enrollment", k.get_enrollment, k.get_enrollment_attestation, k.put_enrollment, k.delete_enrollment)


# ------------------------------------------------------------------------------------------------ read
def read_dps(p: AzureSession, kind: str, declared: dict[str, DesiredResource], prune: bool) -> list[ActualResource]:
    """The declared records of `kind` (with `prune`, all of them) from one query, keys fingerprinted."""
    group = kind == "azure.EnrollmentGroup"
    ops = dps_ops(p.client, kind)
    records = p.call(f"{ops.prefix}.query", p.client.list_enrollment_groups if group else p.client.list_enrollments)
    id_field = "enrollmentGroupId" if group else "registrationId"
    named = dps_names(kind, records, id_field, declared)
    rows = []
    for record in records:
        dps_id = record[id_field]
        name = named.get(dps_id)
        d = declared.get(name) if name else None
        if d is None and not prune:
            continue
        state, managed = dps_state(record)
        if d is not None:
            state = for_declared(state, d.spec)
        rows.append((name or dps_id, dps_id, state, managed, record, d))

    def with_keys(row: tuple[Any, ...]) -> ActualResource:
        name, dps_id, state, managed, record, d = row
        if d is not None and any(k in d.spec for k in KEY_FIELDS):
            symmetric = None
            if (record.get("attestation") or {}).get("type") == "symmetricKey":
                mechanism = p.call(f"{ops.prefix}.get_attestation_mechanism", ops.keys, dps_id)
                symmetric = mechanism.get("symmetricKey")
            state = {**state, **key_fingerprints(symmetric, d.spec)}
        return ActualResource(
            p.addr(kind.split(".")[1], name),
            kind,
            state,
            token=record.get("etag") or "",
            managed=managed,
            ids={"etag": record.get("etag"), "id": dps_id},
        )

    return parallel(with_keys, rows)


# ------------------------------------------------------------------------------------------------ writes
def _attestation(c: Change, secrets: Mapping[str, str], kept_keys: Mapping[str, Any]) -> dict[str, Any]:
    """The wire attestation, always built from the manifest (DPS returns certificates only as `info` blocks)."""
    wanted = c.desired["attestation"]
    if wanted["type"] == "symmetricKey":
        keys = {name: secrets.get(name) if name in c.desired else kept_keys.get(name) for name in KEY_FIELDS}
        return {"type": "symmetricKey", "symmetricKey": keys}
    if "caReferences" in wanted:
        return {"type": "x509", "x509": {"caReferences": wanted["caReferences"]}}
    section = "signingCertificates" if "signingCertificates" in wanted else "clientCertificates"
    pems = c.inputs.get("certificates") or {}
    return {"type": "x509", "x509": {section: {slot: {"certificate": pem} for slot, pem in pems.items() if pem}}}


def _dps_body(
    c: Change, secrets: Mapping[str, str], current: Mapping[str, Any] | None, kept_keys: Mapping[str, Any]
) -> dict[str, Any]:
    """A full record: the current one's fields the manifest leaves out, overlaid with the declared ones."""
    d = c.desired
    body: dict[str, Any] = {k: current[k] for k in DPS_FIELDS if current and k in current}
    body["attestation"] = _attestation(c, secrets, kept_keys)
    for field in (
        "allocationPolicy",
        "customAllocationDefinition",
        "iotHubs",
        "reprovisionPolicy",
        "provisioningStatus",
        "deviceId",
    ):
        if field in d:
            body[field] = d[field]
    if "iotEdge" in d:
        body["capabilities"] = {"iotEdge": d["iotEdge"]}
    twin = dict(body.get("initialTwin") or {})
    _, marker = split_marker(twin.get("tags"))
    if current is None:
        marker = {PROVISIONED_BY: f"{c.kind.split('.')[1]}/{c.address.name}"}
    if "initialTwin" in d:
        twin = {"tags": dict(d["initialTwin"]["tags"]), "properties": {"desired": d["initialTwin"]["desired"]}}
    if marker is not None:
        twin["tags"] = {**(twin.get("tags") or {}), MARKER_TAG: marker}
    body["initialTwin"] = twin or None
    return body


def _dps_id(c: Change) -> str:
    return c.desired.get("registrationId") or c.address.name


def dps_create(p: AzureSession, c: Change, secrets: Mapping[str, str]) -> dict[str, Any]:
    ops = dps_ops(p.client, c.kind)
    p.call(f"{ops.prefix}.create_or_update", ops.put, _dps_id(c), _dps_body(c, secrets, None, {}), None)
    return {}


def dps_update(p: AzureSession, c: Change, secrets: Mapping[str, str]) -> dict[str, Any]:
    ops = dps_ops(p.client, c.kind)
    dps_id = c.ids.get("id") or _dps_id(c)
    current = p.call(f"{ops.prefix}.get", ops.get, dps_id)
    kept: Mapping[str, Any] = {}
    if (
        c.desired["attestation"]["type"] == "symmetricKey"
        and not all(k in c.desired for k in KEY_FIELDS)
        and (current.get("attestation") or {}).get("type") == "symmetricKey"
    ):
        kept = p.call(f"{ops.prefix}.get_attestation_mechanism", ops.keys, dps_id).get("symmetricKey") or {}
    p.call(f"{ops.prefix}.create_or_update", ops.put, dps_id, _dps_body(c, secrets, current, kept), c.ids.get("etag"))
    return {}


def dps_delete(p: AzureSession, c: Change, secrets: Mapping[str, str]) -> dict[str, Any]:
    ops = dps_ops(p.client, c.kind)
    try:
        p.call(f"{ops.prefix}.delete", ops.delete, c.ids.get("id") or c.address.name, c.ids.get("etag"))
    except errors.NotFound:
        pass
    return {}


def dps_replace(p: AzureSession, c: Change, secrets: Mapping[str, str]) -> dict[str, Any]:
    dps_delete(p, c, secrets)
    return dps_create(p, c, secrets)
