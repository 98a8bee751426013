"""The one package that imports the Azure SDKs: IoT Hub registry and twins, DPS enrollments, ARM hub certificates.

Everything above this package sees plain JSON-able dicts and lists in the services' own wire shapes (camelCase,
e.g. `deviceId`, `properties.desired`, `attestation`), and fleetctl's own errors (`engine.errors`) carrying the
service error code and request id. SDK model objects and SDK exceptions never leave it.

- Hub: `azure.iot.hub.IoTHubRegistryManager` (2.7.0). Reads go through the query API with continuation
  (`query_devices`), never one GET per device.
- DPS: `azure.iot.deviceprovisioning.DeviceProvisioningClient` (1.0.0b1, the only release). Its query paging
  (`ItemPaged` over `x-ms-continuation`) works, so azure-core is not needed directly.
- ARM: `azure.mgmt.iothub.IotHubClient` (api-version 2023-06-30) with any TokenCredential: the Entra ID chain
  (`entra_credential`: azure-identity's DefaultAzureCredential) or, as an explicit fallback, FLEETCTL_ARM_TOKEN
  (`StaticTokenCredential`).
- Authentication of the data planes: a Target's `azure.auth` picks shared-access-key connection strings
  (`IoTHubRegistryManager.from_connection_string`, `DeviceProvisioningClient.from_connection_string`) or Microsoft
  Entra ID tokens (`IoTHubRegistryManager.from_token_credential`, `DeviceProvisioningClient(endpoint, credential)`),
  scopes `https://iothubs.azure.net/.default` and `https://azure-devices-provisioning.net/.default`; RBAC roles
  IoT Hub Registry Contributor + IoT Hub Twin Contributor and Device Provisioning Service Data Contributor.
- Request ids: every response's `x-ms-request-id` (ARM: and `x-ms-correlation-request-id`) is captured by the SDKs'
  own hooks — msrest's requests response hooks for the hub, `cls=` callbacks for DPS, azure-core's
  `raw_response_hook` (CustomHookPolicy) for ARM — per thread, so the provider journals them on success too
  (`captured`), without re-issuing any request.
- Import/export jobs: the hub SDK's generated `protocol.jobs` operations (`create_import_export_job`,
  `get_import_export_job`, `get_import_export_jobs`, `cancel_import_export_job`, the calls IoTHubJobManager makes),
  and `azure.storage.blob.ContainerClient` (12.31) on the container SAS URL the Target names, for the job's
  `devices.txt` and `importErrors.log`. A SAS URL is a secret: it never appears in what this package returns or
  raises (job records are returned without their container URIs; `sig=` is cut out of every error message).

SDK retries are switched off: the engine owns retries (it retries only `Throttled` and `Transient`, with backoff),
and an SDK that silently sleeps on 429 would hide quota costs from benchmarks. Every wire call is counted in
`self.calls` under its SDK operation name (each query page counts once). Keys are never logged.

The package is the one place the Azure SDKs are imported (tests/test_architecture.py): `credentials` (Entra ID),
`errors` (exception translation) and `api` (AzureClient and the SDK model builders).
"""

from __future__ import annotations

from engine.providers.azure.client.api import BULK_LIMIT, AzureClient, import_file
from engine.providers.azure.client.credentials import (
    ARM_SCOPE,
    DPS_SCOPE,
    HUB_SCOPE,
    ArmTarget,
    CredentialError,
    StaticTokenCredential,
    credential_failure,
    entra_credential,
    probe_credential,
)
from engine.providers.azure.client.errors import redact, translate

__all__ = [
    "ARM_SCOPE",
    "BULK_LIMIT",
    "DPS_SCOPE",
    "HUB_SCOPE",
    "ArmTarget",
    "AzureClient",
    "CredentialError",
    "StaticTokenCredential",
    "credential_failure",
    "entra_credential",
    "import_file",
    "probe_credential",
    "redact",
    "translate",
]
