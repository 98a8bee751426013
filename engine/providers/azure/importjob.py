"""One IoT Hub import job for a wave of device creates and deletes (research/quotas.md §2.2, §8.3).

Why: at S1 an identity-registry request costs 1 of 100 per minute per unit. An import job reads a JSON-lines blob
(`devices.txt`, one ExportImportDevice per line, each with its importMode) from a container the operator owns and
applies it inside the hub, outside the request throttles; its per-device failures come back as lines of
`importErrors.log` in the same container. engine/bulk.py decides when a wave takes this path (the Target's
`azure.importExport.threshold`).

How one job runs (`ImportJob.run`):
1. the lines: creates as `create` (identity, status, capabilities, twin tags with the ownership marker and desired
   properties: the same entry the bulk path sends), deletes as `deleteIfMatchETag` with the etag the plan recorded
   (`delete` without one) — `bulk.device_mode` decides, for both paths;
2. wait while another import/export job runs on the hub (IoT Hub runs one at a time; a second create is refused
   with JobQuotaExceeded): poll it until it ends or `timeoutSeconds` pass, then report it by id instead of
   starting a second one;
3. upload the lines under a fresh blob name (an earlier job's input is never overwritten), remove the previous
   `importErrors.log`, create the job, poll it every `pollSeconds` (job requests are paced as `jobs`-class calls);
4. map the outcome back to the changes: a line of `importErrors.log` naming a device fails that change with the
   hub's error (409001 → Conflict, 404001 → NotFound, 412xxx → PreconditionFailed, 400xxx → Invalid); a delete of a
   device that is already gone succeeds, as the individual path does; a failed or cancelled job fails every
   change with its id and reason; error lines that name no device make every other change's outcome unknown
   (reported as failures: re-plan shows the truth);
5. delete the input blob (it holds symmetric keys when the manifests declare them).

An interrupted apply (fleetctl killed while the job runs) leaves the job running on the hub: the journal holds a
`begin` without an end for each change and a `task-started` entry with the job id (through engine.run's batch hook)
without its `task-ended`, the next plan names the running job (a warning from `read`), and the next apply waits for
it before starting its own; the plan it applies was made against what the job had done by then,
and every line carries its own guard (create fails on an existing device, deletes check the etag).

Updates are not sent as import lines: an import `update` overwrites the identity with the line (symmetric keys
included, which the query read does not return) and twin data in an import replaces tags and desired properties
rather than merging the paths fleetctl manages, so an update through a job could clobber what fleetctl does not
own. Updates keep their individual, etag-checked PATCH.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from engine import errors
from engine.bulk import device_mode
from engine.diagnostics import Diagnostic, warning
from engine.model import Action, Change
from engine.providers.azure.client import import_file
from engine.providers.azure.session import AzureSession
from engine.providers.azure.target import ImportExport

__all__ = ["ACTIVE", "ImportExport", "ImportJob", "job_line", "running_jobs"]

ACTIVE = ("enqueued", "running", "queued", "scheduled")
FINAL = ("completed", "failed", "cancelled")
ERRORS_BLOB = "importErrors.log"
ERROR_NAMES = {
    400004: "ArgumentInvalid",
    400011: "DeviceDefinedMultipleTimes",
    400012: "InvalidDeviceFormat",
    404001: "DeviceNotFound",
    409001: "DeviceAlreadyExists",
    412001: "PreconditionFailed",
    412002: "PreconditionFailed",
}
ERRORS_BY_STATUS: dict[int, type[errors.ProviderError]] = {
    400: errors.Invalid,
    403: errors.Forbidden,
    404: errors.NotFound,
    409: errors.Conflict,
    412: errors.PreconditionFailed,
    429: errors.Throttled,
}


def job_line(change: Change, entry: Mapping[str, Any]) -> tuple[Mapping[str, Any], str]:
    """(client entry, importMode) of one change; the entry is the bulk path's for creates."""
    mode = device_mode(change)
    if mode is None:
        raise errors.Invalid(f"{change.address} ({change.action.value}) cannot go through an import job")
    if change.action is Action.DELETE:
        entry = {"device_id": change.address.name, "etag": change.ids.get("etag") if change.ids else None}
    return entry, mode


def _device_error(line: Mapping[str, Any], job_id: str) -> errors.ProviderError:
    raw = line.get("errorCode")
    try:
        number = (
            int(raw) if raw is not None else 0
        )  # the service writes numbers (409001); some SDK samples read them as strings
    except (TypeError, ValueError):
        number = 0
    code = ERROR_NAMES.get(number) or (str(raw) if raw is not None else None)
    status = str(line.get("errorStatus") or "")
    if status.startswith("ErrorCode:"):
        status = status.partition(";")[2]
    if "{" in status:  # the service quotes a rejected line: it may hold keys
        status = "the hub rejected the device's line"
    cls = ERRORS_BY_STATUS.get(number // 1000, errors.ProviderError)
    return cls(
        f"{status[:300] or code} (import job {job_id})", code=code, request_id=job_id, status=number // 1000 or None
    )


def running_jobs(p: AzureSession) -> list[Diagnostic]:
    """A warning per import/export job running on the hub (an interrupted apply's job, or another client's)."""
    if p.import_export is None:
        return []
    try:
        jobs = p.call("jobs.get_import_export_jobs", p.client.list_jobs)
    except errors.ProviderError as exc:  # the plan stands without it; apply checks again before a job
        return [
            warning(f"could not list the import/export jobs of target '{p.target}': {exc}", address=f"azure/{p.target}")
        ]
    return [
        warning(
            f"import/export job {job.get('jobId')} ({job.get('type')}, {job.get('status')}, "
            f"{job.get('progress', 0)}% done) is running on the hub of target '{p.target}'",
            "devices may still change while it runs (an interrupted apply leaves its job running); "
            "apply waits for it before it starts an import job of its own",
            address=f"azure/{p.target}",
        )
        for job in jobs
        if job.get("status") in ACTIVE
    ]


@dataclass
class ImportJob:
    provider: AzureSession
    config: ImportExport
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic

    # ------------------------------------------------------------------ hub calls (paced, retried, counted)
    def _jobs(self) -> list[dict[str, Any]]:
        return self.provider.call("jobs.get_import_export_jobs", self.provider.client.list_jobs)

    def _job(self, job_id: str) -> dict[str, Any]:
        return self.provider.call("jobs.get_import_export_job", self.provider.client.get_job, job_id)

    def wait_idle(self, deadline: float) -> None:
        """Return once no import/export job runs on the hub; Conflict naming the job when `deadline` passes."""
        while True:
            active = [job for job in self._jobs() if job.get("status") in ACTIVE]
            if not active:
                return
            job = active[0]
            if self.clock() >= deadline:
                raise errors.Conflict(
                    f"import/export job {job.get('jobId')} ({job.get('type')}, {job.get('status')}, "
                    f"{job.get('progress', 0)}%) is still running on the hub and IoT Hub runs one at a time: "
                    "fleetctl did not start another; re-run plan and apply when it has finished",
                    code="JobQuotaExceeded",
                    request_id=job.get("jobId"),
                )
            self.sleep(self.config.poll_seconds)

    def _create(self, blob: str, deadline: float) -> dict[str, Any]:
        client, url = self.provider.client, self.config.container_url
        while True:
            try:
                return self.provider.call("jobs.create_import_export_job", client.create_import_job, url, blob)
            except errors.Conflict:  # another client started a job between our check and our create
                self.wait_idle(deadline)

    def _until_final(self, job: dict[str, Any], deadline: float) -> dict[str, Any]:
        while job.get("status") not in FINAL:
            if self.clock() >= deadline:
                raise errors.ProviderError(
                    f"import job {job['jobId']} did not finish within {self.config.timeout_seconds:g} s "
                    f"({job.get('status')}, {job.get('progress', 0)}%); it keeps running on the hub: re-run plan "
                    "when it has finished (fleetctl starts no other job while it runs)",
                    code="ImportJobTimeout",
                    request_id=job["jobId"],
                )
            self.sleep(self.config.poll_seconds)
            job = self._job(job["jobId"])
        return job

    # ------------------------------------------------------------------ the job
    def run(self, changes: list[Change], entries: Sequence[Mapping[str, Any]]) -> list[errors.ProviderError | None]:
        """Apply `changes` (creates/deletes of azure.Device) through one job; the outcome of each, in order.
        Raises when the job could not be started (nothing was applied)."""
        p, client, url = self.provider, self.provider.client, self.config.container_url
        started = self.clock()
        deadline = started + self.config.timeout_seconds
        lines = [job_line(c, e) for c, e in zip(changes, entries, strict=True)]
        blob = f"fleetctl-import-{uuid.uuid4().hex}.txt"
        self.wait_idle(deadline)
        p.call("blob.delete_blob", client.delete_blob, url, ERRORS_BLOB)
        p.call("blob.upload_blob", client.upload_blob, url, blob, import_file(lines))
        try:
            job = self._create(blob, deadline)
        except errors.ProviderError:
            self._discard(blob)  # no job will read it; it may hold symmetric keys
            raise
        job_id = str(job.get("jobId"))
        record = {"jobId": job_id, "type": "import", "devices": len(changes), "status": job.get("status")}
        p.record_job(record)
        p.emit(
            "task-started",
            "jobs.create_import_export_job",
            job_id,
            taskId=job_id,
            task="IoT Hub import job",
            input=blob,
            changes=len(changes),
        )
        final = self._until_final(job, deadline)  # a timeout leaves the task open: the job goes on
        record.update(status=final.get("status"), seconds=round(self.clock() - started, 3))
        p.emit("task-ended", "jobs.get_import_export_job", job_id, taskId=job_id, status=final.get("status"))
        try:
            return self._outcomes(changes, final)
        finally:
            self._discard(blob)

    def _discard(self, blob: str) -> None:
        try:
            self.provider.call("blob.delete_blob", self.provider.client.delete_blob, self.config.container_url, blob)
        except errors.ProviderError:
            pass  # best effort: the outcome of the changes is what apply reports

    def _outcomes(self, changes: list[Change], job: dict[str, Any]) -> list[errors.ProviderError | None]:
        job_id = str(job.get("jobId"))
        if job.get("status") != "completed":
            ended = errors.ProviderError(
                f"import job {job_id} {job.get('status')}: "
                f"{job.get('failureReason') or 'no reason given'}; re-run plan to see "
                "what it applied",
                code=f"ImportJob{str(job.get('status')).title()}",
                request_id=job_id,
            )
            return [ended] * len(changes)
        log = self.provider.call(
            "blob.download_blob", self.provider.client.download_blob, self.config.container_url, ERRORS_BLOB
        )
        if log is None:
            unknown = errors.ProviderError(
                f"import job {job_id} completed without writing {ERRORS_BLOB}: the "
                "outcome of each device is unknown; re-run plan",
                code="ImportJobNoLog",
                request_id=job_id,
            )
            return [unknown] * len(changes)
        by_device: dict[str, errors.ProviderError] = {}
        unattributed = 0
        for text in log.decode("utf-8-sig").splitlines():
            if not text.strip():
                continue
            try:
                line = json.loads(text)
            except ValueError:
                line = None
            device = line.get("deviceId") if isinstance(line, dict) else None
            if not device:
                unattributed += 1
                continue
            by_device.setdefault(str(device), _device_error(line, job_id))
        out: list[errors.ProviderError | None] = []
        for c in changes:
            failure: errors.ProviderError | None = by_device.get(c.address.name)
            if failure is not None and c.action is Action.DELETE and isinstance(failure, errors.NotFound):
                failure = None  # gone already: the desired outcome
            if failure is None and unattributed:
                failure = errors.ProviderError(
                    f"import job {job_id} reported {unattributed} error(s) on lines it "
                    "could not attribute to a device: the outcome of this change is "
                    "unknown; re-run plan",
                    code="ImportJobUnattributedErrors",
                    request_id=job_id,
                )
            out.append(failure)
        failures = sum(1 for o in out if o is not None)
        if failures:
            self.provider.paths["import-job errors"] += failures
        return out
