"""AzureClient: the SDK calls themselves, counted, with their responses as plain JSON dicts and their errors
translated (engine/providers/azure/client/__init__.py says which SDK serves which plane)."""

from __future__ import annotations

import collections
import json
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import requests
from azure.core.exceptions import AzureError
from azure.iot.deviceprovisioning import DeviceProvisioningClient
from azure.iot.hub import IoTHubRegistryManager
from azure.iot.hub.models import (
    AuthenticationMechanism,
    DeviceCapabilities,
    ExportImportDevice,
    PropertyContainer,
    QuerySpecification,
    SymmetricKey,
    Twin,
    TwinProperties,
    X509Thumbprint,
)
from azure.iot.hub.protocol.models import JobProperties
from azure.mgmt.iothub import IotHubClient
from azure.mgmt.iothub.models import CertificateDescription, CertificateProperties, CertificateVerificationDescription
from azure.storage.blob import ContainerClient
from msrest.exceptions import ClientException
from urllib3.util.retry import Retry

from engine.errors import (
    Invalid,
    NotFound,
    ProviderError,
)
from engine.providers.azure.client.credentials import ArmTarget
from engine.providers.azure.client.errors import redact, translate

BULK_LIMIT = 100
AUTH_TYPES = {
    "sas": "sas",
    "symmetricKey": "sas",
    "selfSigned": "selfSigned",
    "certificateAuthority": "certificateAuthority",
    "x509CA": "certificateAuthority",
}
JOB_FIELDS = (
    "jobId",
    "type",
    "status",
    "progress",
    "startTimeUtc",
    "endTimeUtc",
    "failureReason",
    "inputBlobName",
    "outputBlobName",
    "excludeKeysInExport",
)


def _authentication(auth: Mapping[str, Any]) -> AuthenticationMechanism:
    """Build the SDK mechanism from fleetctl's flat auth dict (see AzureClient.create_device)."""
    kind = AUTH_TYPES.get(str(auth.get("type")))
    if kind is None:
        raise Invalid(f"unknown authentication type {auth.get('type')!r}; use one of {', '.join(AUTH_TYPES)}")
    if kind == "sas":
        return AuthenticationMechanism(
            type="sas",
            symmetric_key=SymmetricKey(primary_key=auth.get("primaryKey"), secondary_key=auth.get("secondaryKey")),
        )
    if kind == "selfSigned":
        return AuthenticationMechanism(
            type="selfSigned",
            x509_thumbprint=X509Thumbprint(
                primary_thumbprint=auth.get("primaryThumbprint"), secondary_thumbprint=auth.get("secondaryThumbprint")
            ),
        )
    return AuthenticationMechanism(type="certificateAuthority")


def _import_device(entry: Mapping[str, Any], mode: str) -> ExportImportDevice:
    desired = entry.get("desired")
    return ExportImportDevice(
        id=entry["device_id"],
        e_tag=entry.get("etag"),
        import_mode=mode,
        status=entry.get("status"),
        authentication=_authentication(entry["auth"]) if entry.get("auth") else None,
        twin_etag=entry.get("twin_etag"),
        tags=entry.get("tags"),
        properties=PropertyContainer(desired=desired) if desired is not None else None,
        capabilities=DeviceCapabilities(iot_edge=entry["iot_edge"]) if "iot_edge" in entry else None,
    )


def import_file(entries: list[tuple[Mapping[str, Any], str]]) -> bytes:
    """devices.txt of an import job: one ExportImportDevice per line (entries as for `bulk_devices`, each with its
    importMode), serialised by the SDK's own model so the job reads exactly what the bulk API would get."""
    lines = (json.dumps(_import_device(entry, mode).serialize(), separators=(",", ":")) for entry, mode in entries)
    return "".join(line + "\n" for line in lines).encode("utf-8")


def _plain(model: Any) -> Any:
    """An SDK model as the JSON the service sent (camelCase keys); lists element-wise; dicts unchanged."""
    if model is None or isinstance(model, (dict, str, int, float, bool)):
        return model
    if isinstance(model, list):
        return [_plain(item) for item in model]
    return model.serialize(keep_readonly=True)


def _record(model: Any) -> dict[str, Any]:
    """`_plain` of one SDK model or response dict: the JSON object the service sent."""
    record: dict[str, Any] = _plain(model)
    return record


def _records(models: Any) -> list[dict[str, Any]]:
    """`_plain` of a list of SDK models: the JSON objects the service sent."""
    records: list[dict[str, Any]] = _plain(models)
    return records


def _disable_retries(policy: Retry) -> None:
    """Turn msrest's urllib3 Retry off in place (the session may already hold this very object): no retry on 5xx,
    none on 429 + Retry-After, and the error response is returned to the SDK instead of a MaxRetryError."""
    policy.total = policy.connect = policy.read = 0
    policy.raise_on_status = False
    policy.respect_retry_after_header = False


@contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except (ClientException, AzureError, requests.RequestException) as exc:
        raise translate(exc) from exc


class AzureClient:
    """Thin, counted, error-translating access to one hub (plus its DPS and ARM resource, when given)."""

    def __init__(
        self,
        hub_connection_string: str | None,
        dps_connection_string: str | None = None,
        arm: ArmTarget | None = None,
        ca_bundle: str | None = None,
        *,
        credential: Any = None,
        hub_host: str | None = None,
        dps_host: str | None = None,
    ) -> None:
        """Connection strings, or (`credential` with `hub_host` and optionally `dps_host`) Entra ID tokens."""
        self.calls: collections.Counter[str] = collections.Counter()
        self._seen = threading.local()
        verify: dict[str, Any] = {"connection_verify": ca_bundle} if ca_bundle else {}  # SDK keyword arguments
        if hub_connection_string is not None:
            self._hub = IoTHubRegistryManager.from_connection_string(hub_connection_string)
        elif credential is not None and hub_host:
            with _translated():  # the AMQP half asks for a token at once
                self._hub = IoTHubRegistryManager.from_token_credential(hub_host, credential)
        else:
            raise ValueError("AzureClient needs a hub connection string or a credential and the hub host name")
        config = self._hub.protocol.config
        config.hooks.append(self._hub_response)
        config.keep_alive = True  # msrest otherwise closes its session after each request: a TLS handshake and a
        #                             CA-bundle load per call (≈70 ms measured), which would dominate a twin update
        if ca_bundle:
            config.connection.verify = ca_bundle
        _disable_retries(config.retry_policy.policy)
        self._dps: DeviceProvisioningClient | None
        if dps_connection_string:
            self._dps = DeviceProvisioningClient.from_connection_string(dps_connection_string, retry_total=0, **verify)
        elif credential is not None and dps_host:
            self._dps = DeviceProvisioningClient(f"https://{dps_host}", credential, retry_total=0, **verify)
        else:
            self._dps = None
        self._arm_target = arm
        self._arm = (
            IotHubClient(
                arm.credential,
                arm.subscription_id,
                base_url=arm.base_url,
                retry_total=0,
                raw_response_hook=self._arm_response,
                **verify,
            )
            if arm
            else None
        )
        self._verify = verify
        self._containers: dict[str, ContainerClient] = {}
        self._containers_lock = threading.Lock()

    # ------------------------------------------------------------ request ids
    def _note(self, headers: Mapping[str, str], *, arm: bool = False) -> None:
        ids = {"requestId": headers.get("x-ms-request-id")}
        if arm:
            ids["correlationId"] = headers.get("x-ms-correlation-request-id")
        seen = getattr(self._seen, "ids", None)
        if seen is not None:
            seen.append({k: v for k, v in ids.items() if v})

    def _hub_response(self, response: Any, *args: Any, **kwargs: Any) -> None:
        """msrest's requests response hook (hub): runs in the calling thread for every response."""
        self._note(response.headers)

    def _arm_response(self, pipeline_response: Any) -> None:
        """azure-core's raw_response_hook (ARM's CustomHookPolicy)."""
        self._note(pipeline_response.http_response.headers, arm=True)

    def _dps_cls(self, pipeline_response: Any, deserialized: Any, headers: Any) -> Any:
        """The DPS operations' `cls=` callback: note the ids and return what the operation would have."""
        self._note(pipeline_response.http_response.headers)
        return deserialized

    def capture(self) -> None:
        """Start collecting this thread's request ids (the provider calls it before each attempt)."""
        self._seen.ids = []

    def captured(self) -> list[dict[str, str]]:
        """The request ids (`requestId`, ARM also `correlationId`) of this thread's responses since `capture`."""
        return list(getattr(self._seen, "ids", None) or [])

    @contextmanager
    def _call(self, name: str) -> Iterator[None]:
        """Count one wire call under `name` and translate whatever the SDK raises."""
        self.calls[name] += 1
        with _translated():
            yield

    def _dps_client(self) -> DeviceProvisioningClient:
        if self._dps is None:
            raise ProviderError("no DPS connection string is configured for this target", code="NotConfigured")
        return self._dps

    def _arm_client(self) -> tuple[IotHubClient, ArmTarget]:
        if self._arm is None or self._arm_target is None:
            raise ProviderError("no ARM target is configured for this hub", code="NotConfigured")
        return self._arm, self._arm_target

    # ------------------------------------------------------------------ devices
    def query_devices(self, where: str | None = None, page_size: int = 1000) -> Iterator[dict[str, Any]]:
        """Every twin matching `where` (IoT Hub query language), page by page through the continuation token.

        Calls the generated operation behind `query_iot_hub` (`protocol.query.get_twins`) with `raw=True` and
        reads the response JSON: converting 1,000 Twin models back to dicts per page would double the CPU cost.
        """
        token: str | None = None
        while True:
            twins, token = self.query_devices_page(where, token, page_size)
            yield from twins
            if not token:
                return

    def query_devices_page(
        self, where: str | None = None, continuation: str | None = None, page_size: int = 1000
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of twins and the continuation token of the next page (None after the last), so a caller that
        retries a throttled page resumes where it stopped instead of starting the query over."""
        query = QuerySpecification(query="SELECT * FROM devices" + (f" WHERE {where}" if where else ""))
        with self._call("query_iot_hub"):
            raw = self._hub.protocol.query.get_twins(query, continuation, str(page_size), None, True)
            twins = raw.response.json()
        return twins, raw.headers.get("x-ms-continuation") or None

    def get_device(self, device_id: str) -> dict[str, Any]:
        with self._call("get_device"):
            return _record(self._hub.get_device(device_id))

    def create_device(
        self, device_id: str, auth: Mapping[str, Any], status: str = "enabled", iot_edge: bool = False
    ) -> dict[str, Any]:
        """Create an identity. `auth` is flat: `{"type": "sas"|"symmetricKey", "primaryKey", "secondaryKey"}`
        (keys optional: the service generates them), `{"type": "selfSigned", "primaryThumbprint",
        "secondaryThumbprint"}` or `{"type": "certificateAuthority"|"x509CA"}`."""
        return self._write_device(device_id, auth, status, iot_edge, etag=None)

    def update_device(
        self, device_id: str, auth: Mapping[str, Any], status: str, iot_edge: bool, etag: str | None
    ) -> dict[str, Any]:
        """Replace an identity with If-Match `etag` (None means `*`, i.e. unconditional)."""
        return self._write_device(device_id, auth, status, iot_edge, etag=etag or "*")

    def _write_device(
        self, device_id: str, auth: Mapping[str, Any], status: str, iot_edge: bool, etag: str | None
    ) -> dict[str, Any]:
        mechanism = _authentication(auth)
        verb = "create" if etag is None else "update"
        name = {"sas": "sas", "selfSigned": "x509", "certificateAuthority": "certificate_authority"}[mechanism.type]
        method = getattr(self._hub, f"{verb}_device_with_{name}")
        arguments: list[Any] = [device_id] if etag is None else [device_id, etag]
        if mechanism.type == "sas":
            arguments += [mechanism.symmetric_key.primary_key, mechanism.symmetric_key.secondary_key]
        elif mechanism.type == "selfSigned":
            arguments += [mechanism.x509_thumbprint.primary_thumbprint, mechanism.x509_thumbprint.secondary_thumbprint]
        with self._call(f"{verb}_device_with_{name}"):
            return _record(method(*arguments, status, iot_edge))

    def delete_device(self, device_id: str, etag: str | None) -> None:
        with self._call("delete_device"):
            self._hub.delete_device(device_id, etag)

    def bulk_devices(self, devices: list[Mapping[str, Any]], mode: str) -> dict[str, Any]:
        """Bulk registry operation in chunks of 100. Each entry: `device_id` and optionally `auth` (as in
        create_device), `status`, `iot_edge`, `etag`, `twin_etag`, `tags`, `desired`. `mode` is the importMode
        (create, update, updateIfMatchETag, delete, deleteIfMatchETag, updateTwin, updateTwinIfMatchETag).
        Returns `{"isSuccessful", "errors": [{deviceId, errorCode, errorStatus, ...}], "warnings"}`."""
        merged: dict[str, Any] = {"isSuccessful": True, "errors": [], "warnings": []}
        for start in range(0, len(devices), BULK_LIMIT):
            chunk = [_import_device(entry, mode) for entry in devices[start : start + BULK_LIMIT]]
            with self._call("bulk_create_or_update_devices"):
                result = _plain(self._hub.bulk_create_or_update_devices(chunk))
            if "isSuccessful" not in result:  # the SDK also "parses" a whole-request 400 into an empty result
                raise Invalid("the hub rejected the bulk registry request as a whole", code="BulkRequestRejected")
            merged["isSuccessful"] = merged["isSuccessful"] and bool(result.get("isSuccessful"))
            merged["errors"] += result.get("errors") or []
            merged["warnings"] += result.get("warnings") or []
        return merged

    # -------------------------------------------------------------------- twins
    def get_twin(self, device_id: str) -> dict[str, Any]:
        with self._call("get_twin"):
            return _record(self._hub.get_twin(device_id))

    def update_twin(self, device_id: str, patch: Mapping[str, Any], etag: str | None) -> dict[str, Any]:
        """PATCH `{"tags": {...}, "properties": {"desired": {...}}}` (merge; null deletes) with If-Match."""
        desired = (patch.get("properties") or {}).get("desired")
        twin = Twin(tags=patch.get("tags"), properties=TwinProperties(desired=desired) if desired is not None else None)
        with self._call("update_twin"):
            return _record(self._hub.update_twin(device_id, twin, etag or "*"))

    # ------------------------------------------------------------ import/export jobs
    def _container(self, container_url: str) -> ContainerClient:
        with self._containers_lock:
            found = self._containers.get(container_url)
            if found is None:
                try:
                    found = ContainerClient.from_container_url(container_url, retry_total=0, **self._verify)
                except ValueError as exc:
                    raise Invalid(
                        f"the import/export container URL is not valid: {redact(str(exc))}", code="InvalidContainerUrl"
                    ) from None
                self._containers[container_url] = found
            return found

    def upload_blob(self, container_url: str, name: str, data: bytes) -> None:
        """Put Blob (block blob, replacing one of the same name) through the container's SAS URL."""
        with self._call("blob.upload_blob"):
            self._container(container_url).upload_blob(name, data, overwrite=True)

    def download_blob(self, container_url: str, name: str) -> bytes | None:
        """The blob's bytes, or None when there is no such blob."""
        try:
            with self._call("blob.download_blob"):
                return self._container(container_url).download_blob(name).readall()
        except NotFound:
            return None

    def delete_blob(self, container_url: str, name: str) -> bool:
        """Delete a blob; False when there was none."""
        try:
            with self._call("blob.delete_blob"):
                self._container(container_url).delete_blob(name)
        except NotFound:
            return False
        return True

    @staticmethod
    def _job(model: Any) -> dict[str, Any]:
        """A job record without its container URIs (they hold the SAS)."""
        record = _plain(model) or {}
        return {k: record[k] for k in JOB_FIELDS if record.get(k) is not None}

    def create_import_job(self, container_url: str, input_blob_name: str) -> dict[str, Any]:
        """ImportDevices: the hub reads `input_blob_name` (one ExportImportDevice per line) from the container and
        writes importErrors.log back to it. Raises Conflict (JobQuotaExceeded) while another job runs."""
        job = JobProperties(
            type="import",
            input_blob_container_uri=container_url,
            output_blob_container_uri=container_url,
            input_blob_name=input_blob_name,
            storage_authentication_type="keyBased",
        )
        with self._call("jobs.create_import_export_job"):
            return self._job(self._hub.protocol.jobs.create_import_export_job(job))

    def create_export_job(
        self, container_url: str, output_blob_name: str = "devices.txt", exclude_keys: bool = True
    ) -> dict[str, Any]:
        """ExportDevices to `output_blob_name` in the container (keys written as null unless `exclude_keys` is False)."""
        job = JobProperties(
            type="export",
            output_blob_container_uri=container_url,
            output_blob_name=output_blob_name,
            exclude_keys_in_export=exclude_keys,
            storage_authentication_type="keyBased",
        )
        with self._call("jobs.create_import_export_job"):
            return self._job(self._hub.protocol.jobs.create_import_export_job(job))

    def get_job(self, job_id: str) -> dict[str, Any]:
        with self._call("jobs.get_import_export_job"):
            return self._job(self._hub.protocol.jobs.get_import_export_job(job_id))

    def list_jobs(self) -> list[dict[str, Any]]:
        """The hub's import/export jobs (running and recent)."""
        with self._call("jobs.get_import_export_jobs"):
            return [self._job(job) for job in self._hub.protocol.jobs.get_import_export_jobs() or []]

    def cancel_job(self, job_id: str) -> None:
        with self._call("jobs.cancel_import_export_job"):
            self._hub.protocol.jobs.cancel_import_export_job(job_id)

    # ---------------------------------------------------------------------- DPS
    def _dps_collection(self, group: bool) -> tuple[Any, str]:
        client = self._dps_client()
        return (client.enrollment_group, "enrollmentGroupId") if group else (client.enrollment, "registrationId")

    def _dps_list(self, group: bool, page_size: int | None) -> list[dict[str, Any]]:
        operations, _ = self._dps_collection(group)
        name = f"{'enrollment_group' if group else 'enrollment'}.query"
        items: list[dict[str, Any]] = []
        pages = operations.query({"query": "SELECT *"}, top=page_size).by_page()
        while True:
            with _translated():  # ItemPaged fetches lazily: count only pages really fetched
                page = next(pages, None)
            if page is None:
                return items
            self.calls[name] += 1
            items.extend(page)

    def _dps_get(self, group: bool, item_id: str, *, attestation: bool = False) -> dict[str, Any]:
        operations, _ = self._dps_collection(group)
        method = "get_attestation_mechanism" if attestation else "get"
        with self._call(f"{'enrollment_group' if group else 'enrollment'}.{method}"):
            found: dict[str, Any] = getattr(operations, method)(item_id)  # the DPS SDK returns JSON
            return found

    def _dps_put(self, group: bool, item_id: str, body: Mapping[str, Any], etag: str | None) -> dict[str, Any]:
        operations, id_field = self._dps_collection(group)
        with self._call(f"{'enrollment_group' if group else 'enrollment'}.create_or_update"):
            stored: dict[str, Any] = operations.create_or_update(
                item_id, {**body, id_field: item_id}, if_match=etag, cls=self._dps_cls
            )
            return stored

    def _dps_delete(self, group: bool, item_id: str, etag: str | None) -> None:
        operations, _ = self._dps_collection(group)
        with self._call(f"{'enrollment_group' if group else 'enrollment'}.delete"):
            operations.delete(item_id, if_match=etag, cls=self._dps_cls)

    def list_enrollment_groups(self, page_size: int | None = None) -> list[dict[str, Any]]:
        """Every enrollment group (query with continuation). Symmetric keys are withheld by the service."""
        return self._dps_list(True, page_size)

    def get_enrollment_group(self, group_id: str) -> dict[str, Any]:
        return self._dps_get(True, group_id)

    def get_enrollment_group_attestation(self, group_id: str) -> dict[str, Any]:
        """The attestation with its symmetric keys (GET and query leave them out)."""
        return self._dps_get(True, group_id, attestation=True)

    def put_enrollment_group(self, group_id: str, body: Mapping[str, Any], etag: str | None = None) -> dict[str, Any]:
        """Create (etag None) or update (If-Match etag, `*` for unconditional) an enrollment group."""
        return self._dps_put(True, group_id, body, etag)

    def delete_enrollment_group(self, group_id: str, etag: str | None) -> None:
        self._dps_delete(True, group_id, etag)

    def list_enrollments(self, page_size: int | None = None) -> list[dict[str, Any]]:
        return self._dps_list(False, page_size)

    def get_enrollment(self, registration_id: str) -> dict[str, Any]:
        return self._dps_get(False, registration_id)

    def get_enrollment_attestation(self, registration_id: str) -> dict[str, Any]:
        return self._dps_get(False, registration_id, attestation=True)

    def put_enrollment(self, registration_id: str, body: Mapping[str, Any], etag: str | None = None) -> dict[str, Any]:
        return self._dps_put(False, registration_id, body, etag)

    def delete_enrollment(self, registration_id: str, etag: str | None) -> None:
        self._dps_delete(False, registration_id, etag)

    # ---------------------------------------------------------------------- ARM
    def list_hub_certificates(self) -> list[dict[str, Any]]:
        client, target = self._arm_client()
        with self._call("certificates.list_by_iot_hub"):
            return _records(client.certificates.list_by_iot_hub(target.resource_group, target.hub_name).value or [])

    def get_hub_certificate(self, name: str) -> dict[str, Any]:
        client, target = self._arm_client()
        with self._call("certificates.get"):
            return _record(client.certificates.get(target.resource_group, target.hub_name, name))

    def put_hub_certificate(
        self, name: str, pem: str, etag: str | None = None, *, is_verified: bool | None = None
    ) -> dict[str, Any]:
        """Upload (etag None) or replace (If-Match etag) a CA certificate; `is_verified=True` skips the proof."""
        client, target = self._arm_client()
        description = CertificateDescription(properties=CertificateProperties(certificate=pem, is_verified=is_verified))
        with self._call("certificates.create_or_update"):
            return _record(
                client.certificates.create_or_update(
                    target.resource_group, target.hub_name, name, description, if_match=etag
                )
            )

    def generate_verification_code(self, name: str, etag: str) -> dict[str, Any]:
        """Returns the certificate with `properties.verificationCode` and its new etag."""
        client, target = self._arm_client()
        with self._call("certificates.generate_verification_code"):
            return _record(
                client.certificates.generate_verification_code(target.resource_group, target.hub_name, name, etag)
            )

    def verify_hub_certificate(self, name: str, etag: str, verification_pem: str) -> dict[str, Any]:
        """Proof of possession: a certificate with CN = the verification code, signed by the uploaded CA."""
        client, target = self._arm_client()
        body = CertificateVerificationDescription(certificate=verification_pem)
        with self._call("certificates.verify"):
            return _record(client.certificates.verify(target.resource_group, target.hub_name, name, etag, body))

    def delete_hub_certificate(self, name: str, etag: str) -> None:
        client, target = self._arm_client()
        with self._call("certificates.delete"):
            client.certificates.delete(target.resource_group, target.hub_name, name, etag)
