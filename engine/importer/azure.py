"""The Azure importer: devices, hub CA certificates and DPS enrollments, read through AzureProvider.read.

Reading is the provider's own bulk read with `prune=True` (everything the hub, DPS and ARM hold): the twin query
page by page, the DPS queries, one ARM list. Each kind is recorded in the checkpoint once read, so an import
interrupted later (writing, checking) does not read again; an interruption inside the read starts it over (the
provider reads each kind with few calls: a 1,000-device query page per call).

Secrets: symmetric keys (devices, enrollment groups, enrollments) are never read by the import. The manifests
reference them as `{env: FLEETCTL_<NAME>_PRIMARY_KEY}` (and SECONDARY), listed in IMPORT-SECRETS.md: set them to the
current keys and the next plan compares their fingerprints. Deleting a key reference instead leaves that key to
the service, unmanaged, as Azure's own generated keys are.

Public material: a hub CA certificate's PEM comes with the ARM list. DPS keeps only thumbprints of X.509
attestations' certificates, so an X.509 enrollment (or a group attested by a signing certificate rather than a
verified hub CA) cannot be written from what DPS returns: it is skipped with a note.

Adoption (`--adopt`) is not offered for Azure yet: its markers (the device twin tag, the DPS initial-twin tag) have
no adoption hook in the provider, so the import writes no annotation and says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine import errors
from engine.diagnostics import FleetctlError, error
from engine.importer.model import PublicFile, Unimportable, secret_slot
from engine.importer.registry import Exporter, ProviderImporter, Session
from engine.model import ActualResource

KINDS = ("azure.HubCertificate", "azure.EnrollmentGroup", "azure.Enrollment", "azure.Device")


def _keys(r: ActualResource) -> dict[str, Any]:
    what = f"{r.kind.split('.')[1]} {r.address.name}"
    return {
        field: secret_slot(r.address, field, f"{label} symmetric key of {what}")
        for field, label in (("primaryKey", "primary"), ("secondaryKey", "secondary"))
    }


def _device(r: ActualResource, files: Mapping[str, str]) -> dict[str, Any]:
    s = r.state
    auth = dict(s.get("authentication") or {})
    kind = auth.get("type")
    if kind == "symmetricKey":
        authentication: dict[str, Any] = {"type": kind, **_keys(r)}
    elif kind == "selfSigned":
        authentication = {
            "type": kind,
            **{k: auth[k] for k in ("primaryThumbprint", "secondaryThumbprint") if auth.get(k)},
        }
    elif kind == "x509CA":
        authentication = {"type": kind}
    else:
        raise Unimportable(f"its authentication type is {kind!r}, which fleetctl does not manage")
    spec: dict[str, Any] = {
        "authentication": authentication,
        "status": s.get("status") or "enabled",
        "iotEdge": bool(s.get("iotEdge")),
    }
    for section in ("tags", "desired"):
        if s.get(section):
            spec[section] = s[section]
    return spec


def _hub_certificate(r: ActualResource, files: Mapping[str, str]) -> dict[str, Any]:
    if not r.state.get("isVerified"):
        raise Unimportable(
            "it is not verified yet: finish its proof of possession (or declare it with a "
            "verification certificate) first"
        )
    if "certificatePem" not in files:
        raise Unimportable("its certificate was not returned by the ARM list")
    return {"certificatePem": PublicFile(f"certs/hub/{r.address.name}.pem", files["certificatePem"])}


def _allocation(s: Mapping[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = {
        k: s[k] for k in ("allocationPolicy", "customAllocationDefinition", "reprovisionPolicy") if s.get(k)
    }
    if s.get("iotHubs"):
        spec["iotHubs"] = list(s["iotHubs"])
    twin = s.get("initialTwin") or {}
    if twin.get("tags") or twin.get("desired"):
        spec["initialTwin"] = {"tags": twin.get("tags") or {}, "desired": twin.get("desired") or {}}
    spec["iotEdge"] = bool(s.get("iotEdge"))
    spec["provisioningStatus"] = s.get("provisioningStatus") or "enabled"
    return spec


def _enrollment_group(r: ActualResource, files: Mapping[str, str]) -> dict[str, Any]:
    att = r.state.get("attestation") or {}
    if att.get("type") == "symmetricKey":
        attestation: dict[str, Any] = {"symmetricKey": _keys(r)}
    elif att.get("type") == "x509" and att.get("caReferences"):
        refs = att["caReferences"]
        attestation = {
            "x509": {
                "caCertificate": refs["primary"],
                **({"secondaryCaCertificate": refs["secondary"]} if refs.get("secondary") else {}),
            }
        }
    else:
        raise Unimportable(
            "it is attested by a signing certificate, of which DPS keeps only the thumbprint: "
            "declare it with the certificate's PEM"
        )
    return {"attestation": attestation, **_allocation(r.state)}


def _enrollment(r: ActualResource, files: Mapping[str, str]) -> dict[str, Any]:
    att = r.state.get("attestation") or {}
    if att.get("type") != "symmetricKey":
        raise Unimportable(
            f"its attestation is {att.get('type')}: DPS keeps only certificate thumbprints, so "
            "declare it with the device certificate's PEM"
        )
    spec: dict[str, Any] = {}
    if r.state.get("registrationId") and r.state["registrationId"] != r.address.name:
        spec["registrationId"] = r.state["registrationId"]
    if r.state.get("deviceId"):
        spec["deviceId"] = r.state["deviceId"]
    return {**spec, "attestation": {"symmetricKey": _keys(r)}, **_allocation(r.state)}


EXPORTERS: dict[str, Exporter] = {
    "azure.Device": _device,
    "azure.HubCertificate": _hub_certificate,
    "azure.EnrollmentGroup": _enrollment_group,
    "azure.Enrollment": _enrollment,
}


class AzureImporter(ProviderImporter):
    provider = "azure"
    kinds = KINDS
    filter_keys = {
        "name": "the resource's name (device id, enrollment id, certificate name)",
        "tags.KEY": "devices whose twin tag KEY matches",
    }
    exporters = EXPORTERS

    def read(self, session: Session) -> list[ActualResource]:
        cp = session.checkpoint
        known = cp.known()
        wanted = sorted(k for k in KINDS if k in session.read_kinds)
        if all(k in known for k in wanted):
            session.resumed = wanted
            session.say("restored from the checkpoint: " + ", ".join(k.split(".")[1] for k in wanted))
            return [r for k in wanted for r in known[k]]
        try:
            result = self.connect(session).read(session.declared, prune=True)
        except errors.ProviderError as exc:
            raise FleetctlError(
                error(f"reading azure target '{session.target}' failed: {exc}", "check the Target's connection strings")
            ) from None
        session.diagnostics.extend(result.diagnostics)
        for kind in wanted:
            resources = [r for r in result.actual if r.kind == kind]
            cp.kind_done(kind, resources)
            session.say(f"{kind.split('.')[1]}: {len(resources):,} read")
        return [r for r in result.actual if r.kind in wanted]

    def facts(self, resource: ActualResource) -> dict[str, Any]:
        facts: dict[str, Any] = {"name": resource.address.name}
        if resource.kind == "azure.Device":
            for key, value in (resource.state.get("tags") or {}).items():
                facts[f"tags.{key}"] = value if not isinstance(value, (dict, list)) else None
        return facts

    def materials(self, session: Session, selected: list[ActualResource]) -> dict[str, dict[str, str]]:
        wanted = {r.address.name: str(r.address) for r in selected if r.kind == "azure.HubCertificate"}
        if not wanted:
            return {}
        have = session.checkpoint.materials()
        if all(a in have for a in wanted.values()):
            return have
        provider = self.connect(session)
        listed = provider.call("certificates.list_by_iot_hub", provider.client.list_hub_certificates)
        batch = {
            wanted[c["name"]]: {"certificatePem": (c.get("properties") or {}).get("certificate") or ""}
            for c in listed
            if c.get("name") in wanted
        }
        batch = {
            a: f if f["certificatePem"] else {"error": "its certificate was not returned by the ARM list"}
            for a, f in batch.items()
        }
        session.checkpoint.add_materials(batch)
        return {**have, **batch}


def make_importer() -> AzureImporter:
    return AzureImporter()
