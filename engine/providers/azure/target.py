"""A Target's `azure` section resolved: the data-plane client (connection strings or Microsoft Entra ID), the hub's
ARM resource, the hub tier and its pacing, the import/export container.

Why its own module: this is configuration, checked before any service call (a connection string for another hub
than the Target names, a credential chain that yields no token, a container URL that is not a SAS URL are plain
errors naming the setting); provider.py's `make_provider` assembles the Provider from it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from engine.diagnostics import FleetctlError, error
from engine.manifest.confine import FilePolicy
from engine.manifest.secrets import resolve_secret_value
from engine.model import SecretRef
from engine.providers.azure.client import (
    DPS_SCOPE,
    HUB_SCOPE,
    ArmTarget,
    AzureClient,
    CredentialError,
    StaticTokenCredential,
    entra_credential,
    probe_credential,
)
from engine.quotas import azure_hub_quotas
from engine.ratelimit import RateLimiter, limiter_from_env

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
DEFAULT_ARM = "https://management.azure.com"


@dataclass(frozen=True)
class ImportExport:
    """The Target's `azure.importExport`, resolved. `container_url` is a secret (its SAS signature)."""

    container_url: str = field(repr=False)
    threshold: int = 1000
    poll_seconds: float = 5.0
    timeout_seconds: float = 3600.0


def host_of(connection_string: str) -> str:
    """The HostName of a connection string ("" when it has none)."""
    fields = dict(part.split("=", 1) for part in connection_string.split(";") if "=" in part)
    return fields.get("HostName", "")


def is_loopback(host: str) -> bool:
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
    host = host_of(value)
    if not host:
        raise FleetctlError(error(f"target '{target}': azure.{section}.connectionString has no HostName"))
    if not is_loopback(host) and host.lower() != spec.hostName.lower():
        raise FleetctlError(
            error(
                f"target '{target}': azure.{section}.connectionString is for {host}, but the "
                f"Target's {section}.hostName is {spec.hostName}"
            )
        )
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


def has_arm(azure: Any) -> bool:
    """Whether the Target names the hub's ARM resource (the `arm` section, or hub.name/resourceGroup/subscriptionId)."""
    return azure.arm is not None or bool(azure.hub.name and azure.hub.resourceGroup and azure.hub.subscriptionId)


def entra(target: str, env: Mapping[str, str]) -> Callable[[], Any]:
    """The Target's Entra ID credential, built once on first use (azure-identity caches its tokens in it)."""
    made: list[Any] = []

    def credential() -> Any:
        if not made:
            try:
                made.append(entra_credential(env))
            except ValueError as exc:  # e.g. AZURE_TOKEN_CREDENTIALS names no credential azure-identity knows
                raise FleetctlError(error(f"target '{target}': {exc}")) from None
        return made[0]

    return credential


def data_plane(
    target: str, azure: Any, env: Mapping[str, str], policy: FilePolicy | None, credential: Callable[[], Any]
) -> tuple[AzureClient, str]:
    """The client of the hub (+DPS) as the Target's `auth` says, and the hub host it talks to. With entraId a token
    for each data plane is fetched first, so a missing credential is one plain error naming the chain tried."""
    arm = _arm(target, azure, env, credential)
    bundle = env.get("REQUESTS_CA_BUNDLE") or None
    if azure.auth_mode == "connectionString":
        hub = _connection(target, "hub", azure.hub, env, policy)
        dps = _connection(target, "dps", azure.dps, env, policy) if azure.dps is not None else None
        return AzureClient(hub, dps, arm, ca_bundle=bundle), host_of(hub)
    hub_host = env.get("FLEETCTL_HUB_HOST") or azure.hub.hostName
    dps_host = (env.get("FLEETCTL_DPS_HOST") or azure.dps.hostName) if azure.dps is not None else None
    for host, section in ((hub_host, "hub"), (dps_host, "dps")):
        declared = getattr(azure, section).hostName if host else ""
        if host and not is_loopback(host) and host.lower() != declared.lower():
            raise FleetctlError(
                error(
                    f"target '{target}': FLEETCTL_{section.upper()}_HOST is {host}, but the "
                    f"Target's {section}.hostName is {declared}"
                )
            )
    token = credential()
    try:
        probe_credential(token, HUB_SCOPE)
        if dps_host:
            probe_credential(token, DPS_SCOPE)
        client = AzureClient(None, None, arm, ca_bundle=bundle, credential=token, hub_host=hub_host, dps_host=dps_host)
    except CredentialError as exc:
        raise FleetctlError(
            error(
                f"target '{target}' (azure.auth: entraId): {exc}",
                "or declare the hub's and DPS's connection strings with azure.auth: connectionString",
            )
        ) from None
    return client, hub_host


def hub_tier(env: Mapping[str, str]) -> tuple[str, int]:
    """(tier, units) from FLEETCTL_AZURE_HUB_TIER (`S1`, `S3:2`; default S1×1); ValueError names the setting."""
    text = (env.get("FLEETCTL_AZURE_HUB_TIER") or "S1").strip()
    tier, _, units = text.partition(":")
    if units and not units.strip().isdigit():
        raise ValueError(
            f"FLEETCTL_AZURE_HUB_TIER={text!r}: the units must be a whole number (expected TIER or "
            "TIER:UNITS, e.g. S1 or S3:2)"
        )
    count = int(units or 1)
    try:
        azure_hub_quotas(tier, count)
    except ValueError as exc:
        raise ValueError(f"FLEETCTL_AZURE_HUB_TIER={text!r}: {exc}") from None
    return tier.upper(), count


def limiter(target: str, hub_host: str, env: Mapping[str, str], tier: str, units: int) -> RateLimiter | None:
    """The hub's pacing: None when FLEETCTL_RATE_LIMIT leaves it unpaced."""
    try:
        return limiter_from_env(env, azure_hub_quotas(tier, units), f"https://{hub_host}")
    except ValueError as exc:
        raise FleetctlError(error(f"target '{target}': {exc}")) from None


def import_export(target: str, spec: Any, env: Mapping[str, str], policy: FilePolicy | None = None) -> ImportExport:
    """The Target's import/export settings with its container SAS URL resolved and checked (never echoed)."""
    url = _secret(target, "azure.importExport.containerUrl", spec.containerUrl, env, policy).strip()
    parts = urlparse(url)
    if parts.scheme != "https" or not parts.netloc or not parts.path.strip("/") or "sig=" not in parts.query:
        raise FleetctlError(
            error(
                f"target '{target}': azure.importExport.containerUrl is not a blob container SAS URL",
                "expected https://ACCOUNT.blob.core.windows.net/CONTAINER?sv=…&sig=… "
                "(permissions read, write, delete, list); the value is not shown",
            )
        )
    return ImportExport(url, spec.threshold, spec.pollSeconds, spec.timeoutSeconds)
