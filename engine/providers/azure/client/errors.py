"""SDK and transport exceptions as fleetctl's errors (engine/errors.py): the service's code and request id kept,
every SAS signature cut out of messages."""

from __future__ import annotations

import json
import re
from typing import Any

from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
from msrest.exceptions import HttpOperationError

from engine.errors import (
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    PreconditionFailed,
    ProviderError,
    Throttled,
    Transient,
)
from engine.providers.azure.client.credentials import CredentialError, credential_failure

STATUS_ERRORS: dict[int, type[ProviderError]] = {
    400: Invalid,
    401: Forbidden,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    412: PreconditionFailed,
    429: Throttled,
}
TRANSIENT_STATUSES = {408, 500, 502, 503, 504}
CODE_ERRORS: dict[str, type[ProviderError]] = {"JobQuotaExceeded": Conflict}  # 403 on the wire: another job runs
_SIGNATURE = re.compile(r"(sig=)[^&\s'\"<>]+", re.IGNORECASE)


def redact(text: str) -> str:
    """A message with every SAS signature (`sig=…`) cut out: URLs in transport errors carry their query string."""
    return _SIGNATURE.sub(r"\1(sensitive)", text)


def _body_fields(text: str) -> tuple[str | None, str | None, str | None]:
    """(code, message, tracking id) from IoT Hub, DPS or ARM error bodies."""
    if text.lstrip().startswith("<?xml") or text.lstrip().startswith("<Error"):  # Blob Storage
        code_tag = re.search(r"<Code>(.*?)</Code>", text, re.S)
        message_tag = re.search(r"<Message>(.*?)</Message>", text, re.S)
        detail = re.search(r"<AuthenticationErrorDetail>(.*?)</AuthenticationErrorDetail>", text, re.S)
        words = message_tag.group(1).splitlines()[0] if message_tag else "Blob Storage refused the request"
        if detail:
            words += f" ({detail.group(1).split('. String to sign')[0]})"
        return (code_tag.group(1) if code_tag else None), words, None
    try:
        body = json.loads(text) if text else {}
    except ValueError:
        return None, " ".join(text.split()) or None, None  # whole, its whitespace folded (never cut)
    if not isinstance(body, dict):
        return None, None, None
    if isinstance(body.get("error"), dict):  # ARM front door / OData
        return body["error"].get("code"), body["error"].get("message"), None
    if "Message" in body:  # IoT Hub: "ErrorCode:X;message"
        head, _, message = str(body["Message"]).partition(";")
        code = head.removeprefix("ErrorCode:") if head.startswith("ErrorCode:") else None
        tracking = str(body.get("ExceptionMessage", "")).removeprefix("Tracking ID:").split("-G:")[0] or None
        return code, message or body["Message"], tracking
    code = body.get("code") if body.get("code") is not None else body.get("errorCode")
    return (str(code) if code is not None else None), body.get("message"), body.get("trackingId")


def _response_text(response: Any) -> str:
    text = response.text
    return text() if callable(text) else (text or "")


def _from_response(exc: Exception, response: Any) -> ProviderError:
    status = int(response.status_code)
    headers = response.headers
    code, message, tracking = _body_fields(_response_text(response))
    code = headers.get("iothub-errorcode") or code or headers.get("x-ms-error-code")
    request_id = headers.get("x-ms-request-id") or tracking
    kind = (
        CODE_ERRORS.get(code or "")
        or STATUS_ERRORS.get(status)
        or (Transient if status in TRANSIENT_STATUSES else ProviderError)
    )
    text = redact(message or f"HTTP {status} from the Azure service")
    if kind is Throttled:
        retry_after = headers.get("Retry-After")
        return Throttled(
            text,
            retry_after=float(retry_after) if retry_after else None,
            code=code,
            request_id=request_id,
            status=status,
        )
    return kind(text, code=code, request_id=request_id, status=status)


def translate(exc: Exception) -> ProviderError:
    """Map an SDK or transport exception to fleetctl's error vocabulary."""
    response = getattr(exc, "response", None)
    if isinstance(exc, ClientAuthenticationError) and response is None:  # the credential, not the service
        return CredentialError(credential_failure(exc), code="CredentialUnavailable")
    if isinstance(exc, (HttpOperationError, HttpResponseError)) and response is not None:
        return _from_response(exc, response)
    message = redact(str(exc).splitlines()[0]) if str(exc) else type(exc).__name__
    if "CERTIFICATE_VERIFY_FAILED" in str(exc) or "SSLError" in str(exc):
        return ProviderError(f"TLS verification failed: {message}", code="TlsError")
    return Transient(message, code=type(exc).__name__)
