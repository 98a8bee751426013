"""A local Microsoft Entra ID for the sandbox: an RS256 token issuer, its token endpoint, and the bearer check the
emulated IoT Hub, DPS and ARM APIs run on every request.

Azure's services accept Entra access tokens only for their own audience, unexpired, from the tenant's issuer and
signed by one of Entra's keys; an emulator that accepts any bearer token passes flows Azure refuses. So the sandbox
runs its own issuer: a key pair made at start (`cryptography`), tokens signed and checked with PyJWT (a dependency
of MSAL, hence always installed alongside azure-identity), and an OAuth 2.0 client-credentials token endpoint with
the OpenID discovery document MSAL reads first, so the real azure-identity chain (`EnvironmentCredential` inside
`DefaultAzureCredential`, or `ClientSecretCredential`) gets its tokens offline through `AZURE_AUTHORITY_HOST`:

    GET  /{tenant}/v2.0/.well-known/openid-configuration      (MSAL's tenant discovery)
    GET  /{tenant}/discovery/v2.0/keys                        (the public key, JWKS)
    POST /{tenant}/oauth2/v2.0/token                          (grant_type=client_credentials, scope=AUDIENCE/.default)

MSAL's instance discovery would ask login.microsoftonline.com about an unknown authority host; fleetctl turns it
off for a loopback authority (engine/providers/azure/client/credentials.py). The client secret is a sandbox-only value; it is
written only to `azure.json` (0600) and the sandbox env file's export lines.

Errors follow the services: the token endpoint answers like Entra (`{"error": "invalid_client", ...}` with an
AADSTS code in the description), and a refused bearer token is a 401 the calling API renders in its own shape.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from .common import Request, Response, ServiceError

SANDBOX_TENANT = "72f988bf-0000-4000-8000-f1ee7c7150bc"
HUB_AUDIENCE = "https://iothubs.azure.net"
DPS_AUDIENCE = "https://azure-devices-provisioning.net"
ARM_AUDIENCES = ("https://management.azure.com", "https://management.core.windows.net")
LIFETIME = 3600
LEEWAY = 0  # Azure allows a few minutes of clock skew; the sandbox shares the clock, so none is needed


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


@dataclass
class EntraIssuer:
    """The sandbox tenant: one application (client id + secret) and one signing key."""

    tenant_id: str = SANDBOX_TENANT
    client_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    client_secret: str = field(default_factory=lambda: "fleetctl-sandbox~" + secrets.token_urlsafe(24))
    base_url: str = ""  # https://127.0.0.1:PORT, set when the server is bound
    key: rsa.RSAPrivateKey = field(default_factory=lambda: rsa.generate_private_key(65537, 2048))

    @property
    def kid(self) -> str:
        public = self.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return hashlib.sha256(public).hexdigest()[:32]

    @property
    def issuer(self) -> str:
        return f"{self.base_url}/{self.tenant_id}/v2.0"

    # ---------------------------------------------------------------- tokens
    def mint(
        self,
        audience: str,
        *,
        lifetime: float = LIFETIME,
        now: float | None = None,
        key: rsa.RSAPrivateKey | None = None,
        issuer: str | None = None,
    ) -> str:
        """An access token for `audience` (a resource URI, or a scope ending in /.default). Tests pass another `key`,
        a past `now` or another `issuer` to make tokens the services must refuse."""
        moment = time.time() if now is None else now
        claims = {
            "aud": audience.removesuffix("/.default").rstrip("/"),
            "iss": issuer or self.issuer,
            "iat": int(moment),
            "nbf": int(moment),
            "exp": int(moment + lifetime),
            "tid": self.tenant_id,
            "appid": self.client_id,
            "azp": self.client_id,
            "sub": self.client_id,
            "oid": str(uuid.uuid5(uuid.NAMESPACE_URL, self.client_id)),
            "idtyp": "app",
            "ver": "2.0",
        }
        return jwt.encode(claims, key or self.key, algorithm="RS256", headers={"kid": self.kid})

    def check(self, authorization: str | None, audiences: tuple[str, ...], *, code: str) -> dict[str, Any]:
        """The claims of a valid `Bearer` token for one of `audiences`; ServiceError 401 (`code`) naming why not."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ServiceError(401, code, "The access token is missing or not a bearer token.")
        try:
            return jwt.decode(
                token.strip(),
                self.key.public_key(),
                algorithms=["RS256"],
                audience=list(audiences),
                issuer=self.issuer,
                leeway=LEEWAY,
                options={"require": ["exp", "iat", "nbf", "aud", "iss"]},
            )
        except jwt.ExpiredSignatureError:
            raise ServiceError(401, code, "The access token has expired (ExpiredAuthenticationToken).") from None
        except jwt.InvalidAudienceError:
            raise ServiceError(
                401,
                code,
                "The access token has the wrong audience: this service accepts tokens for "
                f"{' or '.join(audiences)} (InvalidAudience).",
            ) from None
        except jwt.InvalidIssuerError:
            raise ServiceError(401, code, "The access token is from another issuer (InvalidIssuer).") from None
        except jwt.InvalidSignatureError:
            raise ServiceError(401, code, "The access token's signature is not valid (InvalidSignature).") from None
        except jwt.PyJWTError as exc:
            raise ServiceError(401, code, f"The access token is invalid: {exc}.") from None

    # ------------------------------------------------------------ endpoints
    def handles(self, path: str) -> bool:
        return path.strip("/").split("/", 1)[0].lower() in (self.tenant_id, "organizations", "common")

    def dispatch(self, request: Request) -> Response:
        tail = request.path.strip("/").split("/", 1)[1] if "/" in request.path.strip("/") else ""
        if request.method == "GET" and tail.lower() == "v2.0/.well-known/openid-configuration":
            return Response(200, self.openid_configuration())
        if request.method == "GET" and tail.lower() == "discovery/v2.0/keys":
            return Response(200, self.jwks())
        if request.method == "POST" and tail.lower() == "oauth2/v2.0/token":
            return self.token(request)
        return Response(404, {"error": "not_found", "error_description": f"no such endpoint: {request.path}"})

    def openid_configuration(self) -> dict[str, Any]:
        root = f"{self.base_url}/{self.tenant_id}"
        return {
            "issuer": self.issuer,
            "token_endpoint": f"{root}/oauth2/v2.0/token",
            "authorization_endpoint": f"{root}/oauth2/v2.0/authorize",
            "jwks_uri": f"{root}/discovery/v2.0/keys",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "response_types_supported": ["code", "token"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "tenant_region_scope": "EU",
            "grant_types_supported": ["client_credentials"],
        }

    def jwks(self) -> dict[str, Any]:
        numbers = self.key.public_key().public_numbers()
        return {
            "keys": [
                {
                    "kty": "RSA",
                    "use": "sig",
                    "alg": "RS256",
                    "kid": self.kid,
                    "n": _b64url_uint(numbers.n),
                    "e": _b64url_uint(numbers.e),
                }
            ]
        }

    def token(self, request: Request) -> Response:
        form = dict(parse_qsl(request.body.decode("utf-8", "replace")))
        client_id, secret = form.get("client_id"), form.get("client_secret")
        basic = request.header("authorization") or ""
        if basic.lower().startswith("basic "):
            client_id, _, secret = base64.b64decode(basic[6:]).decode("utf-8", "replace").partition(":")
        if form.get("grant_type") != "client_credentials":
            return _oauth_error(
                400,
                "unsupported_grant_type",
                "AADSTS70003: the sandbox issues tokens for the client_credentials grant only.",
            )
        if client_id != self.client_id:
            return _oauth_error(
                400,
                "unauthorized_client",
                f"AADSTS700016: Application with identifier '{client_id}' was not found in the directory.",
            )
        if not secret or not secrets.compare_digest(secret, self.client_secret):
            return _oauth_error(401, "invalid_client", "AADSTS7000215: Invalid client secret provided.")
        scopes = [s for s in (form.get("scope") or "").split() if s.endswith("/.default")]
        if len(scopes) != 1:
            return _oauth_error(
                400,
                "invalid_scope",
                "AADSTS1002012: the client_credentials grant needs exactly one scope of the form RESOURCE/.default.",
            )
        return Response(
            200,
            {
                "token_type": "Bearer",
                "expires_in": LIFETIME,
                "ext_expires_in": LIFETIME,
                "access_token": self.mint(scopes[0]),
            },
        )


def _oauth_error(status: int, error: str, description: str) -> Response:
    return Response(
        status,
        {
            "error": error,
            "error_description": description,
            "error_codes": [int(description.split(":")[0].removeprefix("AADSTS"))],
            "timestamp": time.strftime("%Y-%m-%d %H:%M:%SZ"),
            "trace_id": str(uuid.uuid4()),
            "correlation_id": str(uuid.uuid4()),
        },
    )


class IssuerCredential:
    """An azure-core TokenCredential minting tokens straight from a sandbox issuer (in-process tests and tools that
    hold the emulator object); the CLI path gets the same tokens through the token endpoint instead."""

    def __init__(self, issuer: EntraIssuer) -> None:
        self._issuer = issuer

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken  # azure-core: the SDKs' own credential protocol

        return AccessToken(self._issuer.mint(scopes[0]), int(time.time()) + LIFETIME)
