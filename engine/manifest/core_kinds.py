"""fleetctl.io/v1 kinds: Target (where resources live; credentials only by reference)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from engine.kinds import KindDecl, register
from engine.manifest.confine import FilePolicy
from engine.manifest.secrets import resolve_secret_value
from engine.manifest.types import IAM_ROLE_ARN, Secret, SecretRefModel, Strict
from engine.model import SecretRef


class AwsBulkRegistrationSpec(Strict):
    """Initial provisioning of large batches by AWS IoT bulk registration (StartThingRegistrationTask):
    engine/providers/aws/bulkreg.py. Without this section every change is applied by its own API calls."""

    bucket: str = Field(
        pattern=r"^[a-zA-Z0-9._-]{3,256}$",
        description="S3 bucket fleetctl writes the task's input file to (it must exist; AWS writes "
        "no secret there: names, attributes, group names, public certificates)",
    )
    prefix: str = Field(
        "fleetctl/bulk-registration/",
        pattern=r"^[a-zA-Z0-9!_.*'()/-]{0,900}$",
        description="key prefix of the input files",
    )
    roleArn: str = Field(
        pattern=IAM_ROLE_ARN, min_length=20, description="IAM role AWS IoT assumes to read the input file"
    )
    threshold: int = Field(
        1000,
        ge=1,
        description="fewest new things/certificates of one shape in one apply wave "
        "that go by a registration task instead of per-device calls",
    )
    pollSeconds: float = Field(2.0, gt=0, le=60, description="DescribeThingRegistrationTask interval while a task runs")
    waitSeconds: float = Field(
        3600.0,
        ge=0,
        description="how long to wait for a task another apply started before "
        "failing (AWS runs one task at a time per account)",
    )


class AwsAssumeRoleSpec(Strict):
    """The IAM role fleetctl assumes for this Target (issue 15.2): one CI identity (e.g. a GitHub OIDC role)
    reaches every account. Source credentials: the Target's profile, else the standard chain. botocore refreshes
    the role's credentials before they expire, so a long apply outlives durationSeconds."""

    roleArn: str = Field(
        pattern=IAM_ROLE_ARN,
        max_length=2048,
        description="role to assume, e.g. arn:aws:iam::111122223333:role/fleetctl-apply",
    )
    externalId: str | None = Field(
        None,
        min_length=2,
        max_length=1224,
        pattern=r"^[A-Za-z0-9+=,.@:/_-]+$",
        description="ExternalId the role's trust policy requires (not a secret)",
    )
    sessionName: str = Field(
        "fleetctl",
        min_length=2,
        max_length=64,
        pattern=r"^[A-Za-z0-9+=,.@_-]+$",
        description="RoleSessionName: names fleetctl in CloudTrail",
    )
    durationSeconds: int | None = Field(
        None,
        ge=900,
        le=43200,
        description="lifetime of each set of role credentials (refreshed); default: the role's default, one hour",
    )


class AwsTargetSpec(Strict):
    region: str = Field(pattern=r"^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", description="AWS region, e.g. eu-west-2")
    profile: str | None = Field(None, description="AWS profile; default: the standard credential chain")
    endpointUrl: str | None = Field(None, description="override endpoint; default: AWS_ENDPOINT_URL or AWS")
    accountId: str | None = Field(
        None, pattern=r"^[0-9]{12}$", description="the account this Target must be: plan and apply refuse another one"
    )
    assumeRole: AwsAssumeRoleSpec | None = Field(
        None, description="assume this IAM role (from the profile or the standard chain) for every call"
    )
    bulkRegistration: AwsBulkRegistrationSpec | None = Field(
        None, description="create large batches of things/certificates by AWS bulk registration tasks"
    )


class AzureHubSpec(Strict):
    hostName: str
    connectionString: Secret | None = Field(
        None, description="shared-access-key connection string (auth: connectionString); not used with auth: entraId"
    )
    name: str | None = None
    resourceGroup: str | None = None
    subscriptionId: str | None = None


class AzureDpsSpec(Strict):
    hostName: str
    idScope: str | None = None
    connectionString: Secret | None = Field(
        None, description="shared-access-key connection string (auth: connectionString); not used with auth: entraId"
    )


class AzureArmSpec(Strict):
    subscriptionId: str
    resourceGroup: str
    hubName: str
    endpoint: str | None = Field(
        None, description="ARM base URL; default FLEETCTL_ARM_ENDPOINT or management.azure.com"
    )


class AzureImportExportSpec(Strict):
    """IoT Hub import jobs for large applies (research/quotas.md §2.2): one job carries a wave's device creates and
    deletes through a blob container instead of one registry request per 100 devices."""

    containerUrl: Secret = Field(
        description="SAS URL of a blob container (permissions read, write, delete, list) "
        "the hub reads devices.txt from and writes importErrors.log to; a secret "
        "reference: the URL's signature grants access to the container"
    )
    threshold: int = Field(
        1000,
        ge=2,
        description="device creates/deletes in one apply wave from which they go "
        "through one import job instead of bulk registry calls",
    )
    pollSeconds: float = Field(5.0, ge=0.05, le=60, description="how often apply asks the hub for the job's status")
    timeoutSeconds: float = Field(
        3600,
        gt=0,
        description="how long apply waits for a job (and for another job "
        "running on the hub) before it reports the job and stops",
    )


AzureAuth = Literal["entraId", "connectionString"]


class AzureTargetSpec(Strict):
    auth: AzureAuth | None = Field(
        None,
        description="how fleetctl authenticates to the hub and DPS data planes: entraId (Microsoft Entra ID "
        "tokens from azure-identity's DefaultAzureCredential; RBAC roles IoT Hub Registry "
        "Contributor, IoT Hub Twin Contributor, Device Provisioning Service Data Contributor) or "
        "connectionString (shared access keys). Default: connectionString when the hub declares "
        "a connection string, else entraId. ARM (hub certificates) always uses Entra ID "
        "(or FLEETCTL_ARM_TOKEN)",
    )
    hub: AzureHubSpec | None = None
    dps: AzureDpsSpec | None = None
    arm: AzureArmSpec | None = None
    importExport: AzureImportExportSpec | None = None

    @property
    def auth_mode(self) -> AzureAuth:
        """The effective `auth`: as declared, else connectionString when the hub names one, else entraId."""
        if self.auth is not None:
            return self.auth
        return "connectionString" if self.hub is not None and self.hub.connectionString is not None else "entraId"

    @model_validator(mode="after")
    def _connection_strings(self) -> AzureTargetSpec:
        if self.auth_mode == "connectionString":
            missing = [
                name
                for name, section in (("hub", self.hub), ("dps", self.dps))
                if section is not None and section.connectionString is None
            ]
            if missing:
                raise ValueError(
                    f"auth: connectionString needs {' and '.join(f'{m}.connectionString' for m in missing)}"
                    " (or set auth: entraId to use Microsoft Entra ID tokens)"
                )
        return self


class FilesSpec(Strict):
    """Directories outside the fleet folder that `{file: …}` references may read (engine/manifest/confine.py)."""

    allow: list[str] = Field(
        default_factory=list,
        max_length=64,
        description="absolute (or ~/…) directories file references may resolve into, besides "
        "the fleet folder, e.g. ~/.fleetctl/keys for device private keys kept on "
        "the operator's machine; fleet-wide (every Target's list counts); `/`, the "
        "home directory and folders holding the fleet are refused",
    )


class TargetSpec(Strict):
    aws: AwsTargetSpec | None = None
    azure: AzureTargetSpec | None = None
    files: FilesSpec | None = Field(None, description="where file references may point outside the fleet folder")
    prune: bool = Field(False, description="delete managed-but-undeclared resources (also: --prune)")
    optional: bool = Field(
        False,
        description="plan this target only when its credential references resolve; "
        "otherwise plan and drift skip it with a warning (sandbox or "
        "per-developer targets). Default: a missing credential is an error",
    )

    @model_validator(mode="after")
    def _one_cloud(self) -> TargetSpec:
        if (self.aws is None) == (self.azure is None):
            raise ValueError("a Target has exactly one of: aws, azure")
        return self


register(
    KindDecl(
        "fleetctl.io",
        "Target",
        "fleetctl",
        TargetSpec,
        rank=0,
        targeted=False,
        description="An AWS account+region or an Azure IoT Hub (+DPS).",
    )
)


def _secret_refs(value: Any) -> list[SecretRefModel]:
    if isinstance(value, SecretRefModel):
        return [value]
    if isinstance(value, AzureTargetSpec) and value.auth_mode == "entraId":  # connection strings unused
        return [ref for section in (value.arm, value.importExport) for ref in _secret_refs(section)]
    if isinstance(value, BaseModel):
        return [ref for name in type(value).model_fields for ref in _secret_refs(getattr(value, name))]
    return []


def unresolved_credentials(
    spec: TargetSpec, root: Path, env: Mapping[str, str], policy: FilePolicy | None = None
) -> list[str]:
    """Why each credential reference of a Target cannot be resolved (empty when all resolve); never a value.
    `policy`: the fleet's file fence (default: the fleet folder and this Target's own files.allow)."""
    policy = policy or FilePolicy.for_targets(root, [spec])
    problems = (resolve_secret_value(SecretRef(ref.source, ref.ref), root, env, policy) for ref in _secret_refs(spec))
    return [str(p) for p in problems if isinstance(p, Exception)]
