"""fleetctl's own error vocabulary for provider calls.

Provider client modules translate SDK exceptions into these, so no SDK exception ever reaches the engine
(kopf's APIError hierarchy is the model). The engine decides what to do by class: only `Throttled` and
`Transient` are retried; everything else fails the change it belongs to.
"""

from __future__ import annotations

from typing import Any


class ProviderError(Exception):
    """A provider call failed. `request_id` is the cloud request id when the service returned one."""

    retryable = False

    def __init__(
        self, message: str, *, code: str | None = None, request_id: str | None = None, status: int | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.request_id = request_id
        self.status = status

    def __str__(self) -> str:  # what users see: service code first, then the message
        return f"{self.code}: {self.message}" if self.code else self.message


class NotFound(ProviderError):
    """The resource does not exist (HTTP 404, ResourceNotFoundException)."""


class Conflict(ProviderError):
    """The resource exists already or is in a state that forbids the call (HTTP 409, DeleteConflict)."""


class PreconditionFailed(ProviderError):
    """An optimistic-concurrency check failed (HTTP 412, etag / expectedVersion mismatch)."""


class Invalid(ProviderError):
    """The service rejected the request as malformed (HTTP 400)."""


class Forbidden(ProviderError):
    """Authentication or authorisation failed (HTTP 401/403)."""


class Throttled(ProviderError):
    """The service asked us to slow down (HTTP 429, ThrottlingException). Retried with backoff."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class Transient(ProviderError):
    """A transient failure (HTTP 5xx that the service documents as retryable, connection reset). Retried."""

    retryable = True


class Unsupported(ProviderError):
    """The backend does not implement this operation (e.g. moto's NotImplemented 500 with an HTML body)."""
