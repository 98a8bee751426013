"""fleetctl.io/v1 kinds: Target (where resources live; credentials only by reference)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from pydantic import BaseModel, Field, model_validator

from engine.kinds import KindDecl, register
from engine.manifest.fleet import resolve_secret_value
from engine.manifest.types import Secret, SecretRefModel, Strict
from engine.model import SecretRef


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
    optional: bool = Field(False, description="plan this target only when its credential references resolve; "
                                              "otherwise plan and drift skip it with a warning (sandbox or "
                                              "per-developer targets). Default: a missing credential is an error")

    @model_validator(mode="after")
    def _one_cloud(self) -> "TargetSpec":
        if (self.aws is None) == (self.azure is None):
            raise ValueError("a Target has exactly one of: aws, azure")
        return self


register(KindDecl("fleetctl.io", "Target", "fleetctl", TargetSpec, rank=0, targeted=False,
                  description="An AWS account+region or an Azure IoT Hub (+DPS)."))


def _secret_refs(value: Any) -> list[SecretRefModel]:
    if isinstance(value, SecretRefModel):
        return [value]
    if isinstance(value, BaseModel):
        return [ref for name in type(value).model_fields for ref in _secret_refs(getattr(value, name))]
    return []


def unresolved_credentials(spec: TargetSpec, root: Path, env: Mapping[str, str]) -> list[str]:
    """Why each credential reference of a Target cannot be resolved (empty when all resolve); never a value."""
    problems = (resolve_secret_value(SecretRef(ref.source, ref.ref), root, env) for ref in _secret_refs(spec))
    return [str(p) for p in problems if isinstance(p, Exception)]
