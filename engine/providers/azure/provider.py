"""Azure IoT Hub + DPS provider: bulk reads projected to the desired shape, and one handler per (kind, action).

Reads, in bulk (research/quotas.md §8.3):
- devices: the twin query `SELECT * FROM devices`, page by page through the continuation token. One twin carries the
  identity fields fleetctl manages (status, authentication type, thumbprints, iotEdge, the device etag) with the tags
  and desired properties, so a plan never GETs a device — except to fingerprint the symmetric keys of devices whose
  manifest declares keys (the query does not return keys): one identity GET per such device, run concurrently.
- DPS: the enrollment-group and enrollment queries; keys only through `attestationmechanism`, again only for
  records whose manifest declares keys.
- hub CA certificates: one ARM list call.

State is projected onto what the manifest declares: twin tags and desired properties only on the declared paths, so a
tag someone else owns neither shows as drift nor makes a saved plan stale. Reported properties are never read into
the state. Every token is the service's etag: the device etag (identity), the DPS record etag, the ARM certificate
etag; updates send them as If-Match. The twin etag also changes when the device reports properties, so a twin PATCH
that meets 412 re-reads the twin and retries only when the paths fleetctl manages are as the plan saw them.

Ownership markers (what prune may delete):
- Device: the twin tag `fleetctl: {"managed": true}`, written in the same bulk registry call that creates the device;
  it is excluded from the state (tags are user data).
- EnrollmentGroup / Enrollment: the initial-twin tag `fleetctl: {"provisionedBy": "<Kind>/<name>"}`. DPS records have
  no tags of their own, and the initial twin is the only free-form field that is not configuration (`capabilities`
  is). Devices DPS provisions inherit the tag: it records where they came from and does not make them managed.
- HubCertificate: none (ARM certificates carry no tags and a name convention would be a guess), so a hub certificate
  is never pruned: an undeclared one is listed as unmanaged.

Creates of devices go through the bulk registry API (`POST /devices`, importMode create): one call creates the
identity, its twin tags/desired and the ownership tag at once. `batches` lets engine.run hand the provider up to 100
device creates per call. With `azure.importExport` on the Target, a wave with at least `threshold` device creates and
deletes goes through one import job instead (engine/providers/azure/importjob.py; engine/bulk.py `choose`).

Pacing: every call takes a token from its throttle class's bucket first (engine/ratelimit.py: `azure_operation_class`
maps the operation, `azure_hub_quotas` seeds the buckets from FLEETCTL_AZURE_HUB_TIER, e.g. `S1:10`, with
FLEETCTL_QUOTAS on top). FLEETCTL_RATE_LIMIT=auto paces a cloud hub and leaves a loopback emulator unpaced unless
it says `on`. A 429 answer halves its class's rate (AIMD) before the retry policy backs off. ARM and blob requests
have no hub quota and are not paced.
"""
from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, NamedTuple, TypeVar
from urllib.parse import urlparse

from engine import errors
from engine.bulk import choose, device_mode
from engine.diagnostics import Diagnostic, FleetctlError, error, warning
from engine.journal import read_entries
from engine.manifest.confine import FilePolicy
from engine.manifest.fleet import resolve_secret_value
from engine.model import Action, ActualResource, Address, Change, DesiredResource, SecretRef, secret_fingerprint
from engine.providers.azure.client import (BULK_LIMIT, DPS_SCOPE, HUB_SCOPE, ArmTarget, AzureClient, CredentialError,
                                           StaticTokenCredential, entra_credential, probe_credential)
from engine.providers.azure.importjob import ACTIVE, ImportExport, ImportJob
from engine.providers.azure.kinds import KEY_FIELDS, MANAGED, MARKER_TAG, PROVISIONED_BY
from engine.providers.azure.planning import TWIN_FIELDS, Proof, device_parts, proof_of_possession, sign_command
from engine.progress import SILENT, ProgressSink
from engine.providers.base import ApplyResult, ReadResult
from engine.ratelimit import RateLimiter, azure_hub_quotas, azure_operation_class, limiter_from_env
from engine.retry import RetryPolicy

T = TypeVar("T")
READ_WORKERS = 16
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
DEFAULT_ARM = "https://management.azure.com"
MUTATING = ("create", "update", "put", "delete", "bulk", "generate", "verify", "cancel")
DEFAULT_JOURNAL = ".fleetctl/journal.jsonl"     # as engine/cli.py: where a pending proof of possession was recorded
PROOF_PENDING = "proof-pending"                # journal event: the code an apply was issued and left to be signed
UNPACED = ("arm", "storage")         # no hub quota covers ARM certificate or blob requests
DPS_FIELDS = ("allocationPolicy", "customAllocationDefinition", "iotHubs", "iotHubHostName", "reprovisionPolicy",
              "initialTwin", "capabilities", "provisioningStatus", "deviceId")
BULK_ERRORS: dict[str, type[errors.ProviderError]] = {
    "DeviceAlreadyExists": errors.Conflict, "DeviceNotFound": errors.NotFound,
    "PreconditionFailed": errors.PreconditionFailed, "ArgumentInvalid": errors.Invalid,
    "IotHubQuotaExceeded": errors.Throttled, "ThrottlingException": errors.Throttled}
AUTH_FROM_WIRE = {"sas": "symmetricKey", "certificateAuthority": "x509CA", "selfSigned": "selfSigned"}


# --------------------------------------------------------------------------------------------- construction
def _host(connection_string: str) -> str:
    fields = dict(part.split("=", 1) for part in connection_string.split(";") if "=" in part)
    return fields.get("HostName", "")


def _is_loopback(host: str) -> bool:
    return host.rsplit(":", 1)[0].strip("[]").lower() in LOOPBACK


def _secret(target: str, what: str, ref: Any, env: Mapping[str, str], policy: FilePolicy | None = None) -> str:
    value = resolve_secret_value(SecretRef(ref.source, ref.ref), Path.cwd(), env, policy)
    if isinstance(value, Exception):
        raise FleetctlError(error(f"target '{target}': {what}: {value}"))
    return value


def _connection(target: str, section: str, spec: Any, env: Mapping[str, str], policy: FilePolicy | None = None) -> str:
    """A connection string, checked against the Target's host name: fleetctl must not talk to another hub than the
    one the manifests name (a loopback host is the sandbox standing in for it)."""
    value = _secret(target, f"azure.{section}.connectionString", spec.connectionString, env, policy)
    host = _host(value)
    if not host:
        raise FleetctlError(error(f"target '{target}': azure.{section}.connectionString has no HostName"))
    if not _is_loopback(host) and host.lower() != spec.hostName.lower():
        raise FleetctlError(error(f"target '{target}': azure.{section}.connectionString is for {host}, but the "
                                  f"Target's {section}.hostName is {spec.hostName}"))
    return value


def _arm(target: str, azure: Any, env: Mapping[str, str], credential: Callable[[], Any]) -> ArmTarget | None:
    """Where the hub's ARM resource is: the `arm` section, else hub.name/resourceGroup/subscriptionId. Its
    credential: the Entra ID chain, or FLEETCTL_ARM_TOKEN when set (an explicit fallback: a token minted with
    `az account get-access-token`, valid for about an hour)."""
    arm, hub = azure.arm, azure.hub
    if arm is not None:
        subscription, group, name, endpoint = arm.subscriptionId, arm.resourceGroup, arm.hubName, arm.endpoint
    elif hub is not None and hub.name and hub.resourceGroup and hub.subscriptionId:
        subscription, group, name, endpoint = hub.subscriptionId, hub.resourceGroup, hub.name, None
    else:
        return None
    base = endpoint or env.get("FLEETCTL_ARM_ENDPOINT") or DEFAULT_ARM
    token = env.get("FLEETCTL_ARM_TOKEN")
    return ArmTarget(base, subscription, group, name, StaticTokenCredential(token) if token else credential())


def _entra(target: str, env: Mapping[str, str]) -> Callable[[], Any]:
    """The Target's Entra ID credential, built once on first use (azure-identity caches its tokens in it)."""
    made: list[Any] = []

    def credential() -> Any:
        if not made:
            try:
                made.append(entra_credential(env))
            except ValueError as exc:      # e.g. AZURE_TOKEN_CREDENTIALS names no credential azure-identity knows
                raise FleetctlError(error(f"target '{target}': {exc}")) from None
        return made[0]
    return credential


def _data_plane(target: str, azure: Any, env: Mapping[str, str], policy: FilePolicy | None,
                credential: Callable[[], Any]) -> tuple[AzureClient, str]:
    """The client of the hub (+DPS) as the Target's `auth` says, and the hub host it talks to. With entraId a token
    for each data plane is fetched first, so a missing credential is one plain error naming the chain tried."""
    arm = _arm(target, azure, env, credential)
    bundle = env.get("REQUESTS_CA_BUNDLE") or None
    if azure.auth_mode == "connectionString":
        hub = _connection(target, "hub", azure.hub, env, policy)
        dps = _connection(target, "dps", azure.dps, env, policy) if azure.dps is not None else None
        return AzureClient(hub, dps, arm, ca_bundle=bundle), _host(hub)
    hub_host = env.get("FLEETCTL_HUB_HOST") or azure.hub.hostName
    dps_host = (env.get("FLEETCTL_DPS_HOST") or azure.dps.hostName) if azure.dps is not None else None
    for host, section in ((hub_host, "hub"), (dps_host, "dps")):
        declared = getattr(azure, section).hostName if host else ""
        if host and not _is_loopback(host) and host.lower() != declared.lower():
            raise FleetctlError(error(f"target '{target}': FLEETCTL_{section.upper()}_HOST is {host}, but the "
                                      f"Target's {section}.hostName is {declared}"))
    token = credential()
    try:
        probe_credential(token, HUB_SCOPE)
        if dps_host:
            probe_credential(token, DPS_SCOPE)
        client = AzureClient(None, None, arm, ca_bundle=bundle, credential=token, hub_host=hub_host,
                             dps_host=dps_host)
    except CredentialError as exc:
        raise FleetctlError(error(f"target '{target}' (azure.auth: entraId): {exc}",
                                  "or declare the hub's and DPS's connection strings with azure.auth: "
                                  "connectionString")) from None
    return client, hub_host


def hub_tier(env: Mapping[str, str]) -> tuple[str, int]:
    """(tier, units) from FLEETCTL_AZURE_HUB_TIER (`S1`, `S3:2`; default S1×1); ValueError names the setting."""
    text = (env.get("FLEETCTL_AZURE_HUB_TIER") or "S1").strip()
    tier, _, units = text.partition(":")
    if units and not units.strip().isdigit():
        raise ValueError(f"FLEETCTL_AZURE_HUB_TIER={text!r}: the units must be a whole number (expected TIER or "
                         "TIER:UNITS, e.g. S1 or S3:2)")
    count = int(units or 1)
    try:
        azure_hub_quotas(tier, count)
    except ValueError as exc:
        raise ValueError(f"FLEETCTL_AZURE_HUB_TIER={text!r}: {exc}") from None
    return tier.upper(), count


def _limiter(target: str, hub_host: str, env: Mapping[str, str], tier: str, units: int) -> RateLimiter | None:
    """The hub's pacing: None when FLEETCTL_RATE_LIMIT leaves it unpaced."""
    try:
        return limiter_from_env(env, azure_hub_quotas(tier, units), f"https://{hub_host}")
    except ValueError as exc:
        raise FleetctlError(error(f"target '{target}': {exc}")) from None


def _import_export(target: str, spec: Any, env: Mapping[str, str], policy: FilePolicy | None = None) -> ImportExport:
    """The Target's import/export settings with its container SAS URL resolved and checked (never echoed)."""
    url = _secret(target, "azure.importExport.containerUrl", spec.containerUrl, env, policy).strip()
    parts = urlparse(url)
    if parts.scheme != "https" or not parts.netloc or not parts.path.strip("/") or "sig=" not in parts.query:
        raise FleetctlError(error(f"target '{target}': azure.importExport.containerUrl is not a blob container SAS "
                                  "URL", "expected https://ACCOUNT.blob.core.windows.net/CONTAINER?sv=…&sig=… "
                                  "(permissions read, write, delete, list); the value is not shown"))
    return ImportExport(url, spec.threshold, spec.pollSeconds, spec.timeoutSeconds)


def make_provider(target: str, spec: Any, env: Mapping[str, str], **options: Any) -> "AzureProvider":
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
        client, hub_host = _data_plane(target, azure, env, policy, _entra(target, env))
    jobs = _import_export(target, azure.importExport, env, policy) if azure.importExport is not None else None
    return AzureProvider(target, client, has_dps=azure.dps is not None,
                         has_arm=azure.arm is not None or bool(azure.hub.name and azure.hub.resourceGroup
                                                               and azure.hub.subscriptionId),
                         limiter=options.get("limiter", _limiter(target, hub_host, env, tier, units)),
                         tier=tier, units=units, import_export=jobs, bulk=options.get("bulk", True),
                         journal=Path(env.get("FLEETCTL_JOURNAL") or DEFAULT_JOURNAL))


# ------------------------------------------------------------------------------------------- projections
def _without_meta(desired: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in desired.items() if not k.startswith("$")}


def project(actual: Any, declared: Any) -> Any:
    """`actual` cut down to the paths `declared` names (maps recursively; other values whole)."""
    if isinstance(declared, dict) and isinstance(actual, dict):
        return {k: project(actual[k], v) for k, v in declared.items() if k in actual}
    return actual


def _split_marker(tags: Mapping[str, Any] | None) -> tuple[dict[str, Any], Any]:
    rest = dict(tags or {})
    return rest, rest.pop(MARKER_TAG, None)


def device_state(twin: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
    """(canonical state, carries the ownership tag) of a device from its twin (a query row or a twin GET)."""
    tags, marker = _split_marker(twin.get("tags"))
    wire = twin.get("authenticationType") or "none"
    auth: dict[str, Any] = {"type": AUTH_FROM_WIRE.get(wire, wire)}
    if wire == "selfSigned":
        thumbs = twin.get("x509Thumbprint") or {}
        auth.update({slot: (thumbs.get(slot) or "").upper() or None
                     for slot in ("primaryThumbprint", "secondaryThumbprint")})
    state = {"authentication": auth, "status": twin.get("status"),
             "iotEdge": bool((twin.get("capabilities") or {}).get("iotEdge")), "tags": tags,
             "desired": _without_meta((twin.get("properties") or {}).get("desired") or {})}
    return state, isinstance(marker, dict) and marker.get(MANAGED) is True


def _for_declared(state: Mapping[str, Any], spec: Mapping[str, Any]) -> dict[str, Any]:
    """The state fields a desired spec declares (twin maps only on their declared paths); keys are added apart."""
    return {k: project(state.get(k), spec[k]) if k in TWIN_FIELDS else state.get(k)
            for k in spec if k not in KEY_FIELDS}


def _key_fingerprints(symmetric: Mapping[str, Any] | None, spec: Mapping[str, Any]) -> dict[str, Any]:
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
            attestation[section] = {slot: ((x509[section].get(slot) or {}).get("info") or {}).get("sha1Thumbprint")
                                    for slot in ("primary", "secondary")}
    twin = record.get("initialTwin") or {}
    tags, marker = _split_marker(twin.get("tags"))
    state: dict[str, Any] = {
        "attestation": attestation, "allocationPolicy": record.get("allocationPolicy"),
        "customAllocationDefinition": record.get("customAllocationDefinition"),
        "iotHubs": sorted(hub.lower() for hub in record.get("iotHubs") or []),
        "reprovisionPolicy": record.get("reprovisionPolicy"),
        "initialTwin": {"tags": tags, "desired": _without_meta((twin.get("properties") or {}).get("desired") or {})},
        "iotEdge": bool((record.get("capabilities") or {}).get("iotEdge")),
        "provisioningStatus": record.get("provisioningStatus")}
    if "registrationId" in record:
        state.update(registrationId=record["registrationId"], deviceId=record.get("deviceId"))
    return state, isinstance(marker, dict) and PROVISIONED_BY in marker


def _dps_names(kind: str, records: list[dict[str, Any]], id_field: str,
               declared: Mapping[str, DesiredResource]) -> dict[str, str]:
    """DPS id → the manifest name it belongs to. By id first (DPS ignores case); then a record fleetctl created for a
    manifest whose id changed since (its ownership tag names the manifest) is that manifest's: a replace."""
    by_id = {(d.spec.get("registrationId") or name).lower(): name for name, d in declared.items()}
    out = {r[id_field]: by_id[r[id_field].lower()] for r in records if r[id_field].lower() in by_id}
    taken = set(out.values())
    prefix = kind.split(".")[1] + "/"
    for record in records:
        _, marker = _split_marker(((record.get("initialTwin") or {}).get("tags")))
        origin = marker.get(PROVISIONED_BY, "") if isinstance(marker, dict) else ""
        name = origin[len(prefix):] if origin.startswith(prefix) else None
        if record[id_field] not in out and name in declared and name not in taken:
            out[record[id_field]] = name
            taken.add(name)
    return out


def _parallel(fn: Callable[[Any], T], items: Iterable[Any]) -> list[T]:
    items = list(items)
    if len(items) <= 1:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(max_workers=READ_WORKERS) as pool:
        return list(pool.map(fn, items))


# ------------------------------------------------------------------------------------------------ provider
class AzureProvider:
    """One Azure Target: its hub (devices, twins), its DPS (enrollments) and the hub's ARM certificate store."""

    def __init__(self, target: str, client: AzureClient, *, has_dps: bool = True, has_arm: bool = True,
                 retry: RetryPolicy | None = None, page_size: int = 1000, limiter: RateLimiter | None = None,
                 tier: str = "S1", units: int = 1, import_export: ImportExport | None = None,
                 bulk: bool = True, journal: Path | None = None) -> None:
        self.target = target
        self.client = client
        self.has_dps = has_dps
        self.has_arm = has_arm
        self.page_size = page_size
        self.retry = retry or RetryPolicy()
        self.retry.on_retry = self._count_retry
        self.throttles = 0
        self.paths: Counter[str] = Counter()        # how changes were carried out: bulk-create calls and devices
        self.limiter = limiter                      # per-class token buckets at the hub's quotas; None: unpaced
        self.tier, self.units = tier, units
        self.import_export = import_export
        self.journal = journal                      # read for the verification codes earlier applies left pending
        self.bulk = bulk                            # False: every change on its own (benchmarks compare the paths)
        self.progress: ProgressSink = SILENT        # long reads report here (engine/run.py sets the command's sink)
        self.jobs: list[dict[str, Any]] = []        # import jobs this provider ran (ids, devices, status, seconds)
        self._job_members: set[Address] = set()     # changes `batches` routed to an import job
        self._lock = threading.Lock()
        self._local = threading.local()

    # ------------------------------------------------------------------ plumbing
    def addr(self, kind: str, name: str) -> Address:
        return Address.of("azure", self.target, kind, name)

    def set_hook(self, hook: Any) -> None:
        self._local.hook = hook

    def stats(self) -> dict[str, Any]:
        calls = dict(self.client.calls)
        mutating = sum(n for op, n in calls.items() if _mutating(op))
        out = {"calls": calls, "total": sum(calls.values()), "mutating": mutating, "throttles": self.throttles,
               "paths": dict(self.paths)}
        if self.jobs:
            out["importJobs"] = [dict(job) for job in self.jobs]
        if self.limiter is not None:
            out["rateLimiter"] = self.limiter.stats()
        return out

    def emit(self, phase: str, op: str, request_id: str | None, **extra: Any) -> None:
        """A batch event for the journal through engine.run's hook, when one is set (e.g. `task-started` with an
        import job's id: a `task-started` without `task-ended` shows an apply killed while its job ran)."""
        hook = getattr(self._local, "hook", None)
        if hook is not None:
            hook(op, phase, request_id, None, **extra)

    def record_job(self, record: dict[str, Any]) -> None:
        with self._lock:
            self.jobs.append(record)
            self.paths["import-job jobs"] += 1
            self.paths["import-job devices"] += int(record.get("devices") or 0)

    def _count_retry(self, exc: errors.ProviderError, attempt: int) -> None:
        if isinstance(exc, errors.Throttled):
            self.throttles += 1

    def call(self, op: str, fn: Callable[..., T], *args: Any) -> T:
        """One service call: retried on throttling/transient errors only; mutating calls reported to the journal."""
        hook = getattr(self._local, "hook", None) if _mutating(op) else None
        if hook:
            hook(op, "begin", None, None)
        try:
            result = self.retry.run(lambda: self._paced(op, fn, args))
        except errors.ProviderError as exc:
            if hook:
                hook(op, "failure", exc.request_id, exc)
            raise
        if hook:
            seen = self._captured()
            ids = [entry["requestId"] for entry in seen if entry.get("requestId")]
            extra: dict[str, Any] = {}
            correlation = [entry["correlationId"] for entry in seen if entry.get("correlationId")]
            if correlation:
                extra["correlationRequestId"] = correlation[-1]
            if len(ids) > 1:                       # one logical call, several wire calls (bulk chunks of 100)
                extra["requestIds"] = ids
            hook(op, "success", ids[-1] if ids else None, None, **extra)
        return result

    def _captured(self) -> list[dict[str, str]]:
        captured = getattr(self.client, "captured", None)
        return captured() if captured is not None else []

    def _paced(self, op: str, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        """One attempt of a call, after a token from its throttle class (a 429 lowers that class's rate). The
        client collects the attempt's request ids (`x-ms-request-id`, ARM also the correlation id) for the journal."""
        capture = getattr(self.client, "capture", None)
        if capture is not None:
            capture()
        api = azure_operation_class(op)
        if self.limiter is None or api in UNPACED:
            return fn(*args)
        with self.limiter.guard(api):
            return fn(*args)

    # ------------------------------------------------------------------ read
    def read(self, desired: list[DesiredResource], *, prune: bool = False) -> ReadResult:
        """Actual state of the declared resources (and, with `prune`, of everything the hub and DPS hold)."""
        by_kind: dict[str, dict[str, DesiredResource]] = {}
        for d in desired:
            by_kind.setdefault(d.kind, {})[d.address.name] = d
        out: list[ActualResource] = []
        if self.has_arm and (prune or "azure.HubCertificate" in by_kind):
            out += self._read_certificates(by_kind.get("azure.HubCertificate", {}), prune)
        for kind in ("azure.EnrollmentGroup", "azure.Enrollment"):
            if self.has_dps and (prune or kind in by_kind):
                out += self._read_dps(kind, by_kind.get(kind, {}), prune)
        if prune or "azure.Device" in by_kind:
            out += self._read_devices(by_kind.get("azure.Device", {}), prune)
        return ReadResult(out, self._running_jobs())

    def _running_jobs(self) -> list[Diagnostic]:
        """A warning per import/export job running on the hub (an interrupted apply's job, or another client's)."""
        if self.import_export is None:
            return []
        try:
            jobs = self.call("jobs.get_import_export_jobs", self.client.list_jobs)
        except errors.ProviderError as exc:      # the plan stands without it; apply checks again before a job
            return [warning(f"could not list the import/export jobs of target '{self.target}': {exc}",
                            address=f"azure/{self.target}")]
        return [warning(f"import/export job {job.get('jobId')} ({job.get('type')}, {job.get('status')}, "
                        f"{job.get('progress', 0)}% done) is running on the hub of target '{self.target}'",
                        "devices may still change while it runs (an interrupted apply leaves its job running); "
                        "apply waits for it before it starts an import job of its own",
                        address=f"azure/{self.target}")
                for job in jobs if job.get("status") in ACTIVE]

    def _query(self) -> Iterable[dict[str, Any]]:
        token: str | None = None
        while True:
            page, token = self.call("query_iot_hub", self.client.query_devices_page, None, token, self.page_size)
            yield from page
            if not token:
                return

    def _read_devices(self, declared: dict[str, DesiredResource], prune: bool) -> list[ActualResource]:
        rows: list[tuple[str, dict[str, Any], bool, Mapping[str, Any]]] = []
        progress = self.progress.task(f"read {self.target}", len(declared) or None, unit="device twins", final=False)
        for twin in self._query():
            progress.advance()
            device_id = twin["deviceId"]
            d = declared.get(device_id)
            if d is None and not prune:
                continue
            state, managed = device_state(twin)
            if d is not None:
                state = _for_declared(state, d.spec)
            rows.append((device_id, state, managed, twin))
        progress.close()
        keyed = [row[0] for row in rows if row[0] in declared and any(k in declared[row[0]].spec for k in KEY_FIELDS)]
        if keyed:
            def keys(device_id: str) -> tuple[str, dict[str, Any]]:
                identity = self.call("get_device", self.client.get_device, device_id)
                auth = identity.get("authentication") or {}
                symmetric = auth.get("symmetricKey") if auth.get("type") == "sas" else None
                return device_id, _key_fingerprints(symmetric, declared[device_id].spec)
            fingerprints = dict(_parallel(keys, keyed))
        else:
            fingerprints = {}
        return [ActualResource(self.addr("Device", device_id), "azure.Device",
                               {**state, **fingerprints.get(device_id, {})}, token=twin.get("deviceEtag") or "",
                               managed=managed, ids={"etag": twin.get("deviceEtag"), "twinEtag": twin.get("etag")})
                for device_id, state, managed, twin in rows]

    def _read_dps(self, kind: str, declared: dict[str, DesiredResource], prune: bool) -> list[ActualResource]:
        group = kind == "azure.EnrollmentGroup"
        ops = _dps_ops(self.client, kind)
        records = self.call(f"{ops.prefix}.query",
                            self.client.list_enrollment_groups if group else self.client.list_enrollments)
        id_field = "enrollmentGroupId" if group else "registrationId"
        named = _dps_names(kind, records, id_field, declared)
        rows = []
        for record in records:
            dps_id = record[id_field]
            name = named.get(dps_id)
            d = declared.get(name) if name else None
            if d is None and not prune:
                continue
            state, managed = dps_state(record)
            if d is not None:
                state = _for_declared(state, d.spec)
            rows.append((name or dps_id, dps_id, state, managed, record, d))

        def with_keys(row: tuple) -> ActualResource:
            name, dps_id, state, managed, record, d = row
            if d is not None and any(k in d.spec for k in KEY_FIELDS):
                symmetric = None
                if (record.get("attestation") or {}).get("type") == "symmetricKey":
                    mechanism = self.call(f"{ops.prefix}.get_attestation_mechanism", ops.keys, dps_id)
                    symmetric = mechanism.get("symmetricKey")
                state = {**state, **_key_fingerprints(symmetric, d.spec)}
            return ActualResource(self.addr(kind.split(".")[1], name), kind, state, token=record.get("etag") or "",
                                  managed=managed, ids={"etag": record.get("etag"), "id": dps_id})

        return _parallel(with_keys, rows)

    def _read_certificates(self, declared: dict[str, DesiredResource], prune: bool) -> list[ActualResource]:
        out = []
        certificates = self.call("certificates.list_by_iot_hub", self.client.list_hub_certificates)
        unverified = [c["name"] for c in certificates
                      if c["name"] in declared and not (c.get("properties") or {}).get("isVerified")]
        pending = self._pending_codes() if unverified else {}
        for cert in certificates:
            name, props = cert["name"], cert.get("properties") or {}
            if name not in declared and not prune:
                continue
            state = {"thumbprint": (props.get("thumbprint") or "").upper(), "isVerified": bool(props.get("isVerified"))}
            ids = {"etag": cert.get("etag")}
            code, etag = pending.get(str(self.addr("HubCertificate", name)), (None, None))
            if code and etag == cert.get("etag") and not state["isVerified"]:
                ids["verificationCode"] = code      # still the hub's current code: nothing changed the certificate
            out.append(ActualResource(self.addr("HubCertificate", name), "azure.HubCertificate", state,
                                      token=cert.get("etag") or "", managed=name in declared, ids=ids))
        return out

    def _pending_codes(self) -> dict[str, tuple[str, str]]:
        """address → (verification code, certificate etag after it was issued) of the last proof of possession an
        apply left pending (journal event `proof-pending`). Azure's GET never returns the code, and every new code
        changes the etag, so a recorded code whose etag is still the certificate's is the hub's current one."""
        if self.journal is None or not self.journal.is_file():
            return {}
        found: dict[str, tuple[str, str]] = {}
        try:
            for entry in read_entries(self.journal):
                if entry.get("event") == PROOF_PENDING and entry.get("address"):
                    found[entry["address"]] = (str(entry.get("verificationCode")), str(entry.get("certificateEtag")))
        except (OSError, ValueError):
            return {}                 # an unreadable journal only costs the plan the code: apply reports it again
        return found

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
            chosen = choose(len(devices), tier=self.tier, units=self.units, import_jobs=True,
                            threshold=self.import_export.threshold)
            if chosen.path == "import-job":
                with self._lock:
                    self._job_members.update(c.address for c in devices)
                return [devices]
        creates = [c for c in changes if c.kind == "azure.Device" and c.action is Action.CREATE]
        if len(creates) < 2:
            return []
        return [creates[i:i + BULK_LIMIT] for i in range(0, len(creates), BULK_LIMIT)]

    def apply_batch(self, changes: list[Change], secrets: list[Mapping[str, str]]) -> list[errors.ProviderError | None]:
        """Carry out a batch `batches` formed; the outcome of each change, in order. Bulk: one registry call
        creating the devices; raises when the call as a whole fails (then none of them was created). Import job:
        see importjob.py; raises when the job could not be started."""
        if self.import_export is not None and changes and all(c.address in self._job_members for c in changes):
            entries = [_device_entry(c, s) if c.action is Action.CREATE else {} for c, s in zip(changes, secrets)]
            return ImportJob(self, self.import_export).run(changes, entries)
        entries = [_device_entry(c, s) for c, s in zip(changes, secrets)]
        result = self.call("bulk_create_or_update_devices", self.client.bulk_devices, entries, "create")
        self.paths["bulk-create calls"] += 1
        self.paths["bulk-create devices"] += len(entries)
        failures = {e.get("deviceId"): e for e in result.get("errors") or []}
        return [_bulk_error(failures[c.address.name]) if c.address.name in failures else None for c in changes]


# ====================================================================== apply handlers
def _mutating(op: str) -> bool:
    """Calls that change the hub, DPS or ARM (journaled, counted as mutating); blob requests change none of them."""
    return not op.startswith("blob.") and op.rsplit(".", 1)[-1].startswith(MUTATING)


def _bulk_error(entry: Mapping[str, Any]) -> errors.ProviderError:
    code = str(entry.get("errorCode") or "")
    return BULK_ERRORS.get(code, errors.ProviderError)(str(entry.get("errorStatus") or code), code=code or None)


def _auth(desired: Mapping[str, Any], secrets: Mapping[str, str], current: Mapping[str, Any] | None) -> dict[str, Any]:
    """The client's flat auth dict for the desired authentication. Keys: the declared ones from `secrets`; the
    others kept from `current` (the identity as the hub holds it) or, on create, left to the service."""
    auth = desired["authentication"]
    if auth["type"] == "x509CA":
        return {"type": "certificateAuthority"}
    if auth["type"] == "selfSigned":
        return {"type": "selfSigned", "primaryThumbprint": auth.get("primaryThumbprint"),
                "secondaryThumbprint": auth.get("secondaryThumbprint")}
    kept = (current or {}).get("symmetricKey") or {} if (current or {}).get("type") == "sas" else {}
    return {"type": "sas", **{name: secrets.get(name) if name in desired else kept.get(name) for name in KEY_FIELDS}}


def _device_entry(c: Change, secrets: Mapping[str, str]) -> dict[str, Any]:
    d = c.desired
    entry: dict[str, Any] = {"device_id": c.address.name, "auth": _auth(d, secrets, None),
                             "status": d.get("status", "enabled"), "iot_edge": bool(d.get("iotEdge")),
                             "tags": {**d.get("tags", {}), MARKER_TAG: {MANAGED: True}}}
    if d.get("desired"):
        entry["desired"] = d["desired"]
    return entry


def _device_create(p: AzureProvider, c: Change, secrets: Mapping[str, str]) -> dict:
    (outcome,) = p.apply_batch([c], [secrets])
    if outcome is not None:
        raise outcome
    return {}


def _device_update(p: AzureProvider, c: Change, secrets: Mapping[str, str]) -> dict:
    name, d = c.address.name, c.desired
    identity, twin = device_parts(c)
    if identity:
        current = p.call("get_device", p.client.get_device, name)
        status = d.get("status") or current.get("status")
        edge = d["iotEdge"] if "iotEdge" in d else bool((current.get("capabilities") or {}).get("iotEdge"))
        p.call("update_device", p.client.update_device, name, _auth(d, secrets, current.get("authentication")),
               status, edge, c.ids.get("etag"))
    if twin:
        patch: dict[str, Any] = {}
        if any(path.startswith("tags") for path in twin):
            patch["tags"] = d["tags"]
        if any(path.startswith("desired") for path in twin):
            patch["properties"] = {"desired": d["desired"]}
        _patch_twin(p, c, patch)
    return {}


def _patch_twin(p: AzureProvider, c: Change, patch: dict[str, Any]) -> None:
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
    now = _for_declared(device_state(twin)[0], managed)
    if now != {k: c.actual.get(k) for k in managed}:
        raise errors.PreconditionFailed(f"the twin's managed tags or desired properties of {name} changed since the "
                                        "plan was made; re-run plan", code="PreconditionFailed")
    p.call("update_twin", p.client.update_twin, name, patch, twin.get("etag"))


def _device_delete(p: AzureProvider, c: Change, secrets: Mapping[str, str]) -> dict:
    try:
        p.call("delete_device", p.client.delete_device, c.address.name, c.ids.get("etag"))
    except errors.NotFound:
        pass           # gone already: the desired outcome
    return {}


class _DpsOps(NamedTuple):
    """The client calls of one DPS collection (enrollment groups or individual enrollments)."""

    prefix: str
    get: Callable[..., dict[str, Any]]
    keys: Callable[..., dict[str, Any]]
    put: Callable[..., dict[str, Any]]
    delete: Callable[..., None]


def _dps_ops(k: AzureClient, kind: str) -> _DpsOps:
    if kind == "azure.EnrollmentGroup":
        return _DpsOps("enrollment_group", k.get_enrollment_group, k.get_enrollment_group_attestation,
                       k.put_enrollment_group, k.delete_enrollment_group)
    return _DpsOps("enrollment", k.get_enrollment, k.get_enrollment_attestation, k.put_enrollment, k.delete_enrollment)


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


def _dps_body(c: Change, secrets: Mapping[str, str], current: Mapping[str, Any] | None,
              kept_keys: Mapping[str, Any]) -> dict[str, Any]:
    """A full record: the current one's fields the manifest leaves out, overlaid with the declared ones."""
    d = c.desired
    body: dict[str, Any] = {k: current[k] for k in DPS_FIELDS if current and k in current}
    body["attestation"] = _attestation(c, secrets, kept_keys)
    for field in ("allocationPolicy", "customAllocationDefinition", "iotHubs", "reprovisionPolicy",
                  "provisioningStatus", "deviceId"):
        if field in d:
            body[field] = d[field]
    if "iotEdge" in d:
        body["capabilities"] = {"iotEdge": d["iotEdge"]}
    twin = dict(body.get("initialTwin") or {})
    _, marker = _split_marker(twin.get("tags"))
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


def _dps_create(p: AzureProvider, c: Change, secrets: Mapping[str, str]) -> dict:
    ops = _dps_ops(p.client, c.kind)
    p.call(f"{ops.prefix}.create_or_update", ops.put, _dps_id(c), _dps_body(c, secrets, None, {}), None)
    return {}


def _dps_update(p: AzureProvider, c: Change, secrets: Mapping[str, str]) -> dict:
    ops = _dps_ops(p.client, c.kind)
    dps_id = c.ids.get("id") or _dps_id(c)
    current = p.call(f"{ops.prefix}.get", ops.get, dps_id)
    kept: Mapping[str, Any] = {}
    if c.desired["attestation"]["type"] == "symmetricKey" and not all(k in c.desired for k in KEY_FIELDS) \
            and (current.get("attestation") or {}).get("type") == "symmetricKey":
        kept = p.call(f"{ops.prefix}.get_attestation_mechanism", ops.keys, dps_id).get("symmetricKey") or {}
    p.call(f"{ops.prefix}.create_or_update", ops.put, dps_id, _dps_body(c, secrets, current, kept), c.ids.get("etag"))
    return {}


def _dps_delete(p: AzureProvider, c: Change, secrets: Mapping[str, str]) -> dict:
    ops = _dps_ops(p.client, c.kind)
    try:
        p.call(f"{ops.prefix}.delete", ops.delete, c.ids.get("id") or c.address.name, c.ids.get("etag"))
    except errors.NotFound:
        pass
    return {}


def _dps_replace(p: AzureProvider, c: Change, secrets: Mapping[str, str]) -> dict:
    _dps_delete(p, c, secrets)
    return _dps_create(p, c, secrets)


def _certificate_upload(p: AzureProvider, c: Change, secrets: Mapping[str, str]) -> dict:
    """Upload (create) or replace (thumbprint changed) the CA certificate, then prove possession of its key."""
    name, etag = c.address.name, c.ids.get("etag")
    if c.action is Action.CREATE or any(f.path == "thumbprint" for f in c.fields):
        uploaded = p.call("certificates.create_or_update", p.client.put_hub_certificate, name,
                          c.inputs["certificatePem"], etag)
        etag = uploaded.get("etag")
    _prove(p, c, etag)
    return {}


def _prove(p: AzureProvider, c: Change, etag: str | None) -> None:
    """Proof of possession as far as the manifest allows; raises ProofOfPossessionPending with the hub's code when
    the declared verification certificate is not made from it (or none is declared)."""
    proof = proof_of_possession(c)
    if proof is Proof.NONE:
        return
    name = c.address.name
    pem, code = c.inputs.get("verificationCertificatePem"), c.inputs.get("verificationCode")
    if proof is Proof.DECLARED:
        try:
            p.call("certificates.verify", p.client.verify_hub_certificate, name, etag, pem)
            return
        except errors.Invalid:
            pass                   # no code issued yet, or another one: ask for a fresh code below
        etag = p.call("certificates.get", p.client.get_hub_certificate, name).get("etag")
    nonce = p.call("certificates.generate_verification_code", p.client.generate_verification_code, name, etag)
    issued = (nonce.get("properties") or {}).get("verificationCode")
    if pem and code == issued:
        p.call("certificates.verify", p.client.verify_hub_certificate, name, nonce.get("etag"), pem)
        return
    p.emit(PROOF_PENDING, "certificates.generate_verification_code", None, verificationCode=issued,
           certificateEtag=nonce.get("etag"))
    stale = (f" The declared verificationCertificatePem has CN={code}, a code the hub issued earlier: Azure issues a "
             "new random code on every request, so a verification certificate made before this apply cannot match."
             if pem and code else "")
    raise errors.ProviderError(
        f"the certificate is uploaded but not verified: the hub's verification code is {issued}. Make a "
        f"certificate with CN={issued} signed with the CA's key (outside fleetctl, which never reads the CA key), "
        f"e.g. {sign_command(issued)}, declare it as verificationCertificatePem, commit it, and run plan and apply "
        f"again (the plan shows isVerified: false → true).{stale}",
        code="ProofOfPossessionPending")


Handler = Callable[[AzureProvider, Change, Mapping[str, str]], dict]
HANDLERS: dict[tuple[str, Action], Handler] = {
    ("azure.Device", Action.CREATE): _device_create, ("azure.Device", Action.UPDATE): _device_update,
    ("azure.Device", Action.DELETE): _device_delete,
    ("azure.HubCertificate", Action.CREATE): _certificate_upload,
    ("azure.HubCertificate", Action.UPDATE): _certificate_upload,
    ("azure.EnrollmentGroup", Action.CREATE): _dps_create, ("azure.EnrollmentGroup", Action.UPDATE): _dps_update,
    ("azure.EnrollmentGroup", Action.DELETE): _dps_delete,
    ("azure.Enrollment", Action.CREATE): _dps_create, ("azure.Enrollment", Action.UPDATE): _dps_update,
    ("azure.Enrollment", Action.DELETE): _dps_delete, ("azure.Enrollment", Action.REPLACE): _dps_replace,
}
