"""Microsoft Entra ID for the Azure planes: the credential chain, its failure summarised, the one-token probe, and
where the hub's ARM resource lives (engine/providers/azure/client/__init__.py says how the SDKs are used)."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from azure.core.credentials import AccessToken
from azure.core.exceptions import AzureError
from azure.identity import ClientSecretCredential, DefaultAzureCredential

from engine.errors import (
    ProviderError,
)

logging.getLogger("azure.identity").addHandler(logging.NullHandler())  # its warnings: summarised in our errors
HUB_SCOPE = "https://iothubs.azure.net/.default"
DPS_SCOPE = "https://azure-devices-provisioning.net/.default"
ARM_SCOPE = "https://management.azure.com/.default"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@dataclass(frozen=True)
class ArmTarget:
    """Where the hub's ARM resource lives; `credential` is any azure-core TokenCredential."""

    base_url: str
    subscription_id: str
    resource_group: str
    hub_name: str
    credential: Any


class StaticTokenCredential:
    """A TokenCredential that hands out a fixed bearer token: enough for the local ARM emulator, not for Azure."""

    def __init__(self, token: str = "fleetctl-sandbox") -> None:
        self._token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self._token, int(time.time()) + 3600)


CREDENTIAL_FIX = (
    "fix: set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (a service principal), or "
    "AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_FEDERATED_TOKEN_FILE (workload identity federation; "
    "azure/login with OIDC in GitHub Actions), or run `az login`, or run on a managed identity; "
    'in the sandbox: eval "$(fleetctl sandbox env)"'
)


class CredentialError(ProviderError):
    """No credential of the chain produced a token (never retried; the message names the chain and each failure)."""

    def __init__(self, summary: str, scope: str | None = None, **kwargs: Any) -> None:
        where = f" for {scope}" if scope else ""
        super().__init__(
            f"no Microsoft Entra ID credential produced a token{where} (tried: {summary}); {CREDENTIAL_FIX}", **kwargs
        )


def _is_loopback_url(url: str) -> bool:
    host = (urlparse(url).hostname or "").lower()
    return host in LOOPBACK


def entra_credential(env: Mapping[str, str]) -> Any:
    """The Microsoft Entra ID chain: azure-identity's DefaultAzureCredential (environment credentials, workload
    identity federation as in GitHub Actions OIDC, managed identity, `az login`, ...), honouring AZURE_AUTHORITY_HOST
    and AZURE_TOKEN_CREDENTIALS as azure-identity documents them.

    When `env` (the Target's settings, normally os.environ) holds a client secret (AZURE_TENANT_ID, AZURE_CLIENT_ID,
    AZURE_CLIENT_SECRET) it is used first through ClientSecretCredential, exactly what EnvironmentCredential would
    build but from `env` rather than the process environment. For a loopback authority (the sandbox's local Entra
    tenant) MSAL's instance discovery, which asks login.microsoftonline.com about the host, is turned off."""
    authority = env.get("AZURE_AUTHORITY_HOST") or None
    options: dict[str, Any] = {"authority": authority} if authority else {}
    if authority and _is_loopback_url(authority):
        options["disable_instance_discovery"] = True
    if env.get("REQUESTS_CA_BUNDLE"):  # the token endpoint is verified like the services (sandbox: its CA)
        options["connection_verify"] = env["REQUESTS_CA_BUNDLE"]
    tenant, client, secret = (env.get(name) for name in ("AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET"))
    if tenant and client and secret:
        return ClientSecretCredential(tenant, client, secret, **options)
    return DefaultAzureCredential(**options)


def credential_failure(exc: BaseException) -> str:
    """azure-identity's failure summarised: the credentials tried and why each failed, one clause each (its
    messages name settings and hints, never a token or secret); troubleshooting URLs and blank lines are dropped."""
    text = str(exc.message if isinstance(exc, AzureError) and getattr(exc, "message", None) else exc)
    attempts = []
    for line in text.splitlines():
        line = line.strip()
        name, sep, why = line.partition(":")
        if sep and name.endswith("Credential") and " " not in name:
            why = re.split(r"(?<=\.)\s+(?:Visit|To mitigate|For more|Please visit|See) ", why.strip())[0]
            attempts.append(f"{name}: {why.strip()}")
    if attempts:
        return "; ".join(attempts)
    first = re.split(r"(?<=\.)\s+(?:Visit|To mitigate|For more|Please visit|See) ", " ".join(text.split()))[0]
    return first or type(exc).__name__


def probe_credential(credential: Any, scope: str) -> None:
    """Get one token for `scope` (azure-identity caches it for the SDK calls that follow), so a missing or
    refused credential is one plain error before any call instead of a failure per call."""
    try:
        credential.get_token(scope)
    except (AzureError, ValueError, OSError) as exc:
        summary = credential_failure(exc)
        if isinstance(credential, ClientSecretCredential):
            summary = f"ClientSecretCredential from AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET: {summary}"
        raise CredentialError(summary, scope, code="CredentialUnavailable") from None
