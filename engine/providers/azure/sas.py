"""Azure shared access signature (SAS) tokens: build, parse and verify.

IoT Hub and DPS authenticate service calls with `SharedAccessSignature sr=…&sig=…&se=…&skn=…`, where `sig` is
base64(HMAC-SHA256(base64decode(key), quote_plus(sr) + "\\n" + se)). fleetctl needs the construction twice: the
local emulators verify every token the real SDKs send, and tests build wrong or expired tokens on purpose. One
implementation serves both, so the emulator cannot drift from the client side. It uses the standard library only
(no SDK import) and never logs or returns a key.

The construction is the one in Microsoft's IoT Hub security guide and in the u-blox application note (its worked
example, hub `iot-xxxx-test-hub-2.azure-devices.net`, expiry 1591876214, is reproduced byte for byte by
`generate_sas_token` and checked by a test).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote_plus, unquote_plus, urlencode

SCHEME = "SharedAccessSignature"


class SasTokenError(ValueError):
    """A token is malformed, expired, signed with the wrong key or not valid for the resource."""


@dataclass(frozen=True)
class SasToken:
    """The parsed fields of a token; `resource_uri` and `signature` are URL-decoded."""

    resource_uri: str
    signature: str
    expiry: int
    key_name: str | None


def string_to_sign(resource_uri: str, expiry: int) -> str:
    """What the HMAC covers: the URL-encoded resource URI, a newline and the expiry (seconds since the epoch)."""
    return f"{quote_plus(resource_uri)}\n{int(expiry)}"


def sign(resource_uri: str, key: str, expiry: int) -> str:
    """The base64 signature (not yet URL-encoded) of `resource_uri` until `expiry` with the base64 `key`."""
    try:
        key_bytes = base64.b64decode(key, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SasTokenError("the shared access key is not valid base64") from exc
    digest = hmac.new(key_bytes, string_to_sign(resource_uri, expiry).encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def generate_sas_token(
    resource_uri: str,
    key: str,
    policy_name: str | None = None,
    *,
    ttl: int = 3600,
    expiry: int | None = None,
    now: float | None = None,
) -> str:
    """Build the `Authorization` header value.

    `expiry` (absolute, seconds since the epoch) wins over `ttl`; `now` is injectable for tests. A `policy_name` of
    None leaves `skn` out (device tokens); an empty string keeps `skn=` (as the u-blox example does).
    """
    se = int(expiry) if expiry is not None else int((time.time() if now is None else now) + ttl)
    fields = {"sr": resource_uri, "sig": sign(resource_uri, key, se), "se": str(se)}
    if policy_name is not None:
        fields["skn"] = policy_name
    return f"{SCHEME} {urlencode(fields)}"


def parse_sas_token(header: str) -> SasToken:
    """Split an `Authorization` value into its fields; raise SasTokenError when it is not a SAS token."""
    scheme, _, rest = (header or "").strip().partition(" ")
    if scheme != SCHEME or not rest:
        raise SasTokenError("not a SharedAccessSignature token")
    fields: dict[str, str] = {}
    for name, value in parse_qsl(rest.strip(), keep_blank_values=True):
        if name in fields:
            raise SasTokenError(f"field {name!r} appears twice")
        fields[name] = value
    missing = [name for name in ("sr", "sig", "se") if name not in fields]
    if missing:
        raise SasTokenError(f"missing field(s) {', '.join(missing)}")
    try:
        expiry = int(fields["se"])
    except ValueError as exc:
        raise SasTokenError("se is not an integer") from exc
    return SasToken(
        resource_uri=fields["sr"], signature=fields["sig"], expiry=expiry, key_name=fields.get("skn") or None
    )


def _normalise_uri(uri: str) -> str:
    lowered = unquote_plus(uri).strip().lower()
    for prefix in ("https://", "http://"):
        if lowered.startswith(prefix):
            lowered = lowered[len(prefix) :]
    return lowered.rstrip("/")


def covers(token_uri: str, requested_uri: str) -> bool:
    """A token for `host` grants every path below it; one for `host/devices/x` only that subtree."""
    granted, wanted = _normalise_uri(token_uri), _normalise_uri(requested_uri)
    return wanted == granted or wanted.startswith(granted + "/")


def verify_sas_token(
    header: str | SasToken, *, keys: Mapping[str, str], requested_uri: str, now: float | None = None
) -> str:
    """Check a token against the policies in `keys` (name → base64 key); return the policy name.

    Raises SasTokenError naming what is wrong (unknown policy, resource, expiry, signature) and never the key.
    """
    token = parse_sas_token(header) if isinstance(header, str) else header
    if token.key_name is None or token.key_name not in keys:
        raise SasTokenError(f"unknown shared access policy {token.key_name!r}")
    if not covers(token.resource_uri, requested_uri):
        raise SasTokenError(f"the token's resource {token.resource_uri!r} does not cover this request")
    if token.expiry <= (time.time() if now is None else now):
        raise SasTokenError("the token has expired")
    expected = sign(token.resource_uri, keys[token.key_name], token.expiry)
    if not hmac.compare_digest(expected.encode("ascii"), token.signature.encode("utf-8", "replace")):
        raise SasTokenError("the signature does not match")
    return token.key_name
