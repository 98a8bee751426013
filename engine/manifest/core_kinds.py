"""fleetctl.io/v1 kinds: Target (where resources live; credentials only by reference)."""
from __future__ import annotations

from pydantic import Field, model_validator

from engine.kinds import KindDecl, register
from engine.manifest.types import Secret, Strict


class AwsTargetSpec(Strict):
    region: str = Field(pattern=r"^[a-z]{2}(-gov)?-[a-z]+-\d$", description="AWS region, e.g. eu-west-2")
    profile: str | None = Field(None, description="AWS profile; default: the standard credential chain")
    endpointUrl: str | None = Field(None, description="override endpoint; default: AWS_ENDPOINT_URL or AWS")
    accountId: str | None = Field(None, pattern=r"^\d{12}$")


class AzureHubSpec(Strict):
    hostName: str
    connectionString: Secret
    name: str | None = None
    resourceGroup: str | None = None
    subscriptionId: str | None = None


class AzureDpsSpec(Strict):
    hostName: str
    idScope: str | None = None
    connectionString: Secret


class AzureArmSpec(Strict):
    subscriptionId: str
    resourceGroup: str
    hubName: str
    endpoint: str | None = Field(None, description="ARM base URL; default FLEETCTL_ARM_ENDPOINT or management.azure.com")


class AzureTargetSpec(Strict):
    hub: AzureHubSpec | None = None
    dps: AzureDpsSpec | None = None
    arm: AzureArmSpec | None = None


class TargetSpec(Strict):
    aws: AwsTargetSpec | None = None
    azure: AzureTargetSpec | None = None
    prune: bool = Field(False, description="delete managed-but-undeclared resources (also: --prune)")

    @model_validator(mode="after")
    def _one_cloud(self) -> "TargetSpec":
        if (self.aws is None) == (self.azure is None):
            raise ValueError("a Target has exactly one of: aws, azure")
        return self


register(KindDecl("fleetctl.io", "Target", "fleetctl", TargetSpec, rank=0, targeted=False,
                  description="An AWS account+region or an Azure IoT Hub (+DPS)."))
