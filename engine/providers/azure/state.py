"""The Azure services' records projected onto the canonical shape the manifests declare (what the diff compares).

Why its own module: the reads (registry.py, dps.py) build the state from these projections, and the writes use them
too — a twin PATCH that meets 412 compares the re-read twin's managed paths with the plan's, a DPS update keeps the
record's ownership marker — so both sides share one definition.

Twin tags and desired properties are cut to the declared paths only, so a tag someone else owns neither shows as
drift nor makes a saved plan stale; the ownership marker tag is split off (tags are user data); reported properties
are never read. Symmetric keys are kept only as keyed fingerprints of the keys a manifest declares.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.model import DesiredResource, secret_fingerprint
from engine.providers.azure.kinds import KEY_FIELDS, MANAGED, MARKER_TAG, PROVISIONED_BY
from engine.providers.azure.planning import TWIN_FIELDS

AUTH_FROM_WIRE = {"sas": "symmetricKey", "certificateAuthority": "x509CA", "selfSigned": "selfSigned"}


def without_meta(desired: Mapping[str, Any]) -> dict[str, Any]:
    """Desired properties without the service's `$metadata`/`$version` entries."""
    return {k: v for k, v in desired.items() if not k.startswith("$")}


def project(actual: Any, declared: Any) -> Any:
    """`actual` cut down to the paths `declared` names (maps recursively; other values whole)."""
    if isinstance(declared, dict) and isinstance(actual, dict):
        return {k: project(actual[k], v) for k, v in declared.items() if k in actual}
    return actual


def split_marker(tags: Mapping[str, Any] | None) -> tuple[dict[str, Any], Any]:
    """(the tags without fleetctl's ownership marker, the marker or None)."""
    rest = dict(tags or {})
    return rest, rest.pop(MARKER_TAG, None)


def device_state(twin: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
    """(canonical state, carries the ownership tag) of a device from its twin (a query row or a twin GET)."""
    tags, marker = split_marker(twin.get("tags"))
    wire = twin.get("authenticationType") or "none"
    auth: dict[str, Any] = {"type": AUTH_FROM_WIRE.get(wire, wire)}
    if wire == "selfSigned":
        thumbs = twin.get("x509Thumbprint") or {}
        auth.update(
            {slot: (thumbs.get(slot) or "").upper() or None for slot in ("primaryThumbprint", "secondaryThumbprint")}
        )
    state = {
        "authentication": auth,
        "status": twin.get("status"),
        "iotEdge": bool((twin.get("capabilities") or {}).get("iotEdge")),
        "tags": tags,
        "desired": without_meta((twin.get("properties") or {}).get("desired") or {}),
    }
    return state, isinstance(marker, dict) and marker.get(MANAGED) is True


def for_declared(state: Mapping[str, Any], spec: Mapping[str, Any]) -> dict[str, Any]:
    """The state fields a desired spec declares (twin maps only on their declared paths); keys are added apart."""
    return {
        k: project(state.get(k), spec[k]) if k in TWIN_FIELDS else state.get(k) for k in spec if k not in KEY_FIELDS
    }


def key_fingerprints(symmetric: Mapping[str, Any] | None, spec: Mapping[str, Any]) -> dict[str, Any]:
    """Fingerprints of the keys the spec declares; the key values go no further than this function."""
    keys = symmetric or {}
    return {name: secret_fingerprint(keys[name]) if keys.get(name) else None for name in KEY_FIELDS if name in spec}


def dps_state(record: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
    """(canonical state, carries the ownership tag) of an enrollment group or enrollment."""
    wire = record.get("attestation") or {}
    attestation: dict[str, Any] = {"type": wire.get("type")}
    x509 = wire.get("x509") or {}
    if x509.get("caReferences"):
        refs = x509["caReferences"]
        attestation["caReferences"] = {"primary": refs.get("primary"), "secondary": refs.get("secondary")}
    for section in ("signingCertificates", "clientCertificates"):
        if x509.get(section):
            attestation[section] = {
                slot: ((x509[section].get(slot) or {}).get("info") or {}).get("sha1Thumbprint")
                for slot in ("primary", "secondary")
            }
    twin = record.get("initialTwin") or {}
    tags, marker = split_marker(twin.get("tags"))
    state: dict[str, Any] = {
        "attestation": attestation,
        "allocationPolicy": record.get("allocationPolicy"),
        "customAllocationDefinition": record.get("customAllocationDefinition"),
        "iotHubs": sorted(hub.lower() for hub in record.get("iotHubs") or []),
        "reprovisionPolicy": record.get("reprovisionPolicy"),
        "initialTwin": {"tags": tags, "desired": without_meta((twin.get("properties") or {}).get("desired") or {})},
        "iotEdge": bool((record.get("capabilities") or {}).get("iotEdge")),
        "provisioningStatus": record.get("provisioningStatus"),
    }
    if "registrationId" in record:
        state.update(registrationId=record["registrationId"], deviceId=record.get("deviceId"))
    return state, isinstance(marker, dict) and PROVISIONED_BY in marker


def dps_names(
    kind: str, records: list[dict[str, Any]], id_field: str, declared: Mapping[str, DesiredResource]
) -> dict[str, str]:
    """DPS id → the manifest name it belongs to. By id first (DPS ignores case); then a record fleetctl created for a
    manifest whose id changed since (its ownership tag names the manifest) is that manifest's: a replace."""
    by_id = {(d.spec.get("registrationId") or name).lower(): name for name, d in declared.items()}
    out = {r[id_field]: by_id[r[id_field].lower()] for r in records if r[id_field].lower() in by_id}
    taken = set(out.values())
    prefix = kind.split(".")[1] + "/"
    for record in records:
        _, marker = split_marker((record.get("initialTwin") or {}).get("tags"))
        origin = marker.get(PROVISIONED_BY, "") if isinstance(marker, dict) else ""
        name = origin[len(prefix) :] if origin.startswith(prefix) else None
        if record[id_field] not in out and name is not None and name in declared and name not in taken:
            out[record[id_field]] = name
            taken.add(name)
    return out
