"""One Azure Target's session: the client, the call plumbing every resource family shares, and what a run counts.

Why its own module: the reads and writes of each family (registry.py, dps.py, certificates.py, importjob.py) make
their service calls through `AzureSession.call`, and provider.py builds the Provider on top of it, so the families
depend on this layer and never on provider.py (the import direction: client → session → families → provider).

`call` is one logical service call: retried on throttling/transient errors only (engine/retry.py, on tenacity), each attempt
paced first (a token from its throttle class's bucket, engine/ratelimit.py; a 429 halves that class's rate before the
retry policy backs off), mutating calls reported to the journal through engine.run's hook with the request ids the
client captured. ARM and blob requests have no hub quota and are not paced.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from engine import errors
from engine.model import Address
from engine.progress import SILENT, ProgressSink
from engine.providers.azure.client import AzureClient
from engine.providers.azure.target import ImportExport
from engine.quotas import azure_operation_class
from engine.ratelimit import RateLimiter
from engine.retry import RetryPolicy

T = TypeVar("T")
READ_WORKERS = 16
MUTATING = ("create", "update", "put", "delete", "bulk", "generate", "verify", "cancel")
UNPACED = ("arm", "storage")  # no hub quota covers ARM certificate or blob requests


def mutating(op: str) -> bool:
    """Calls that change the hub, DPS or ARM (journaled, counted as mutating); blob requests change none of them."""
    return not op.startswith("blob.") and op.rsplit(".", 1)[-1].startswith(MUTATING)


def parallel(fn: Callable[[Any], T], items: Iterable[Any]) -> list[T]:
    """`fn` over `items`, READ_WORKERS at a time (per-record reads such as key GETs), results in order."""
    items = list(items)
    if len(items) <= 1:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(max_workers=READ_WORKERS) as pool:
        return list(pool.map(fn, items))


class AzureSession:
    """One Azure Target: its hub (devices, twins), its DPS (enrollments) and the hub's ARM certificate store, as the
    resource families call them."""

    def __init__(
        self,
        target: str,
        client: AzureClient,
        *,
        has_dps: bool = True,
        has_arm: bool = True,
        retry: RetryPolicy | None = None,
        page_size: int = 1000,
        limiter: RateLimiter | None = None,
        tier: str = "S1",
        units: int = 1,
        import_export: ImportExport | None = None,
        bulk: bool = True,
        journal: Path | None = None,
    ) -> None:
        self.target = target
        self.client = client
        self.has_dps = has_dps
        self.has_arm = has_arm
        self.page_size = page_size
        self.retry = retry or RetryPolicy()
        self.retry.on_retry = self.count_retry
        self.throttles = 0
        self.paths: Counter[str] = Counter()  # how changes were carried out: bulk-create calls and devices
        self.limiter = limiter  # per-class token buckets at the hub's quotas; None: unpaced
        self.tier, self.units = tier, units
        self.import_export = import_export
        self.journal = journal  # read for the verification codes earlier applies left pending
        self.bulk = bulk  # False: every change on its own (benchmarks compare the paths)
        self.progress: ProgressSink = SILENT  # long reads report here (engine/run/ sets the command's sink)
        self.jobs: list[dict[str, Any]] = []  # import jobs this provider ran (ids, devices, status, seconds)
        self.job_members: set[Address] = set()  # changes `batches` routed to an import job
        self.lock = threading.Lock()
        self._local = threading.local()

    def addr(self, kind: str, name: str) -> Address:
        return Address.of("azure", self.target, kind, name)

    def set_hook(self, hook: Any) -> None:
        self._local.hook = hook

    def stats(self) -> dict[str, Any]:
        calls = dict(self.client.calls)
        out = {
            "calls": calls,
            "total": sum(calls.values()),
            "mutating": sum(n for op, n in calls.items() if mutating(op)),
            "throttles": self.throttles,
            "paths": dict(self.paths),
        }
        if self.jobs:
            out["importJobs"] = [dict(job) for job in self.jobs]
        if self.limiter is not None:
            out["rateLimiter"] = self.limiter.stats()
        return out

    def emit(self, phase: str, op: str, request_id: str | None, **extra: Any) -> None:
        """A batch event for the journal through engine.run's hook, when one is set (e.g. `task-started` with an
        import job's id: a `task-started` without `task-ended` shows an apply killed while its job ran)."""
        hook = getattr(self._local, "hook", None)
        if hook is not None:
            hook(op, phase, request_id, None, **extra)

    def record_job(self, record: dict[str, Any]) -> None:
        with self.lock:
            self.jobs.append(record)
            self.paths["import-job jobs"] += 1
            self.paths["import-job devices"] += int(record.get("devices") or 0)

    def count_retry(self, exc: errors.ProviderError, attempt: int) -> None:
        """The retry policy's callback before each retry: a throttled attempt is counted in `stats()`."""
        if isinstance(exc, errors.Throttled):
            self.throttles += 1

    def call(self, op: str, fn: Callable[..., T], *args: Any) -> T:
        """One service call: retried on throttling/transient errors only; mutating calls reported to the journal."""
        hook = getattr(self._local, "hook", None) if mutating(op) else None
        if hook:
            hook(op, "begin", None, None)
        try:
            result = self.retry.run(lambda: self._paced(op, fn, args))
        except errors.ProviderError as exc:
            if hook:
                hook(op, "failure", exc.request_id, exc, **self._attempts())
            raise
        if hook:
            seen = self._captured()
            ids = [entry["requestId"] for entry in seen if entry.get("requestId")]
            extra: dict[str, Any] = {}
            correlation = [entry["correlationId"] for entry in seen if entry.get("correlationId")]
            if correlation:
                extra["correlationRequestId"] = correlation[-1]
            if len(ids) > 1:  # one logical call, several wire calls (bulk chunks of 100)
                extra["requestIds"] = ids
            hook(op, "success", ids[-1] if ids else None, None, **extra, **self._attempts())
        return result

    def _attempts(self) -> dict[str, int]:
        """`attempts` for the journal line of a call the retry policy had to repeat (throttled or transient)."""
        n = self.retry.attempts()
        return {"attempts": n} if n > 1 else {}

    def _captured(self) -> list[dict[str, str]]:
        captured = getattr(self.client, "captured", None)
        return captured() if captured is not None else []

    def _paced(self, op: str, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        """One attempt of a call, after a token from its throttle class (a 429 lowers that class's rate). The
        client collects the attempt's request ids (`x-ms-request-id`, ARM also the correlation id) for the journal."""
        capture = getattr(self.client, "capture", None)
        if capture is not None:
            capture()
        api = azure_operation_class(op)
        if self.limiter is None or api in UNPACED:
            return fn(*args)
        with self.limiter.guard(api):
            return fn(*args)
