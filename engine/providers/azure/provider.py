"""Azure IoT Hub + DPS provider: the Provider protocol over one Target — read, apply dispatch and batching.

The work is split by resource family, each module with its bulk read and its writes (the seam):
- registry.py      azure.Device: identities and twins (twin query; bulk registry creates; etag-checked updates)
- dps.py           azure.EnrollmentGroup, azure.Enrollment (DPS queries; full-record PUTs with If-Match)
- certificates.py  azure.HubCertificate (one ARM list call; upload and proof of possession)
- importjob.py     a wave of device creates/deletes as one IoT Hub import job
Below them: session.py (the client, paced/retried/journaled calls, counts), state.py (records projected onto the
declared shape), target.py (the Target's azure section resolved: clients, credential, tier, import/export). Each
kind's rules (managed, immutable, sensitive fields, references) stay declared once, in kinds.py and planning.py.

State is projected onto what the manifest declares, so a tag someone else owns neither shows as drift nor makes a
saved plan stale; every token is the service's etag (device, DPS record, ARM certificate) and updates send it as
If-Match. Ownership markers (what prune may delete): the device twin tag `fleetctl: {"managed": true}`; the DPS
initial-twin tag `fleetctl: {"provisionedBy": "<Kind>/<name>"}`; hub certificates have none and are never pruned.

Batching (`batches`/`apply_batch`, engine/run/applying.py): device creates ≤100 per bulk registry call; with
`azure.importExport` on the Target, a wave with at least `threshold` device creates and deletes goes through one
import job instead (engine/bulk.py `choose`).

Pacing: every call takes a token from its throttle class's bucket first (engine/ratelimit.py; engine/quotas.py `azure_operation_class`
maps the operation, `azure_hub_quotas` seeds the buckets from FLEETCTL_AZURE_HUB_TIER, e.g. `S1:10`, with
FLEETCTL_QUOTAS on top). FLEETCTL_RATE_LIMIT=auto paces a cloud hub and leaves a loopback emulator unpaced unless
it says `on`. A 429 answer halves its class's rate (AIMD) before the retry policy backs off (session.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from engine import errors
from engine.bulk import choose, device_mode
from engine.diagnostics import FleetctlError, error
from engine.manifest.confine import FilePolicy
from engine.model import Action, Change, DesiredResource
from engine.providers.azure import target as settings
from engine.providers.azure.certificates import DEFAULT_JOURNAL, certificate_upload, read_certificates
from engine.providers.azure.client import BULK_LIMIT
from engine.providers.azure.dps import DPS_KINDS, dps_create, dps_delete, dps_replace, dps_update, read_dps
from engine.providers.azure.importjob import ImportJob, running_jobs
from engine.providers.azure.registry import bulk_create, device_delete, device_entry, device_update, read_devices
from engine.providers.azure.session import AzureSession
from engine.providers.azure.target import hub_tier
from engine.providers.base import ApplyResult, ReadResult

__all__ = ["AzureProvider", "HANDLERS", "hub_tier", "make_provider"]


def make_provider(target: str, spec: Any, env: Mapping[str, str], **options: Any) -> AzureProvider:
    azure = spec.azure
    if azure.hub is None:
        raise FleetctlError(error(f"target '{target}' has no azure.hub section: fleetctl reads devices from the hub"))
    try:
        tier, units = hub_tier(env)
    except ValueError as exc:
        raise FleetctlError(error(f"target '{target}': {exc}")) from None
    client = options.get("client")
    hub_host = azure.hub.hostName
    policy = FilePolicy.for_targets(Path.cwd(), [spec, *(options.get("fleet_targets") or {}).values()])
    if client is None:
        client, hub_host = settings.data_plane(target, azure, env, policy, settings.entra(target, env))
    jobs = settings.import_export(target, azure.importExport, env, policy) if azure.importExport is not None else None
    return AzureProvider(
        target,
        client,
        has_dps=azure.dps is not None,
        has_arm=settings.has_arm(azure),
        limiter=options.get("limiter", settings.limiter(target, hub_host, env, tier, units)),
        tier=tier,
        units=units,
        import_export=jobs,
        bulk=options.get("bulk", True),
        journal=Path(env.get("FLEETCTL_JOURNAL") or DEFAULT_JOURNAL),
    )


class AzureProvider(AzureSession):
    """One Azure Target as a Provider: its hub (devices, twins), its DPS (enrollments) and the hub's ARM
    certificate store."""

    # ------------------------------------------------------------------ read
    def read(self, desired: list[DesiredResource], *, prune: bool = False) -> ReadResult:
        """Actual state of the declared resources (and, with `prune`, of everything the hub and DPS hold)."""
        by_kind: dict[str, dict[str, DesiredResource]] = {}
        for d in desired:
            by_kind.setdefault(d.kind, {})[d.address.name] = d
        out = []
        if self.has_arm and (prune or "azure.HubCertificate" in by_kind):
            out += read_certificates(self, by_kind.get("azure.HubCertificate", {}), prune)
        for kind in DPS_KINDS:
            if self.has_dps and (prune or kind in by_kind):
                out += read_dps(self, kind, by_kind.get(kind, {}), prune)
        if prune or "azure.Device" in by_kind:
            out += read_devices(self, by_kind.get("azure.Device", {}), prune)
        return ReadResult(out, running_jobs(self))

    # ------------------------------------------------------------------ apply
    def apply(self, change: Change, secrets: Mapping[str, str]) -> ApplyResult:
        handler = HANDLERS.get((change.kind, change.action))
        if handler is None:
            raise errors.Invalid(f"fleetctl cannot {change.action.value} {change.kind}")
        return ApplyResult(outputs=handler(self, change, secrets) or {})

    def batches(self, changes: list[Change]) -> list[list[Change]]:
        """The changes of one apply wave this provider carries out together: with an import/export container and at
        least its threshold of device creates and deletes, all of them in one import job; otherwise device creates,
        ≤100 per bulk call."""
        if not self.bulk:
            return []
        if self.import_export is not None:
            devices = [c for c in changes if device_mode(c) is not None]
            chosen = choose(
                len(devices), tier=self.tier, units=self.units, import_jobs=True, threshold=self.import_export.threshold
            )
            if chosen.path == "import-job":
                with self.lock:
                    self.job_members.update(c.address for c in devices)
                return [devices]
        creates = [c for c in changes if c.kind == "azure.Device" and c.action is Action.CREATE]
        if len(creates) < 2:
            return []
        return [creates[i : i + BULK_LIMIT] for i in range(0, len(creates), BULK_LIMIT)]

    def apply_batch(self, changes: list[Change], secrets: list[Mapping[str, str]]) -> list[errors.ProviderError | None]:
        """Carry out a batch `batches` formed; the outcome of each change, in order. Bulk: one registry call
        creating the devices; raises when the call as a whole fails (then none of them was created). Import job:
        see importjob.py; raises when the job could not be started."""
        if self.import_export is not None and changes and all(c.address in self.job_members for c in changes):
            entries = [
                device_entry(c, s) if c.action is Action.CREATE else {} for c, s in zip(changes, secrets, strict=True)
            ]
            return ImportJob(self, self.import_export).run(changes, entries)
        return bulk_create(self, changes, secrets)


def _device_create(p: AzureProvider, c: Change, secrets: Mapping[str, str]) -> dict[str, Any]:
    """A single device create takes the batch path too (bulk registry call, or the import job it was routed to)."""
    (outcome,) = p.apply_batch([c], [secrets])
    if outcome is not None:
        raise outcome
    return {}


Handler = Callable[[AzureProvider, Change, Mapping[str, str]], dict[str, Any]]
HANDLERS: dict[tuple[str, Action], Handler] = {
    ("azure.Device", Action.CREATE): _device_create,
    ("azure.Device", Action.UPDATE): device_update,
    ("azure.Device", Action.DELETE): device_delete,
    ("azure.HubCertificate", Action.CREATE): certificate_upload,
    ("azure.HubCertificate", Action.UPDATE): certificate_upload,
    ("azure.EnrollmentGroup", Action.CREATE): dps_create,
    ("azure.EnrollmentGroup", Action.UPDATE): dps_update,
    ("azure.EnrollmentGroup", Action.DELETE): dps_delete,
    ("azure.Enrollment", Action.CREATE): dps_create,
    ("azure.Enrollment", Action.UPDATE): dps_update,
    ("azure.Enrollment", Action.DELETE): dps_delete,
    ("azure.Enrollment", Action.REPLACE): dps_replace,
}
