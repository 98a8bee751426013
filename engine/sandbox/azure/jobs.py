"""IoT Hub import/export jobs, as azure-iot-hub 2.7.0 calls them (`protocol.jobs`, api-version 2021-04-12):
`POST /jobs/create`, `GET /jobs`, `GET /jobs/{id}`, `DELETE /jobs/{id}` (cancel), with `JobProperties` bodies.

What is enforced (research/quotas.md §2.2, the "Import and export IoT Hub device identities in bulk" article):
- one import or export job at a time per hub, whatever the tier: a second create while one is `enqueued` or
  `running` answers 403 `JobQuotaExceeded` (the SDKs' JobQuotaExceededException);
- the container URIs carry a service SAS that is checked when the job is created (400
  `BlobContainerValidationError` when the input cannot be read or the output written) and again when it runs,
  through the emulator's own blob endpoint (engine/sandbox/azure/storage.py): the job reads `inputBlobName`
  (default `devices.txt`) from the input container and writes there as the service does;
- a job runs on its own thread: `enqueued` → `running` → `completed` (or `failed` with `failureReason`, or
  `cancelled`), with `progress` in percent;
- import: one JSON device per line, `importMode` per line (default createOrUpdate), applied by
  `HubService.import_device` — the registry code the REST and bulk APIs use — under the emulator lock, one device at
  a time (API calls interleave). Each failed line becomes a line of `importErrors.log` in the output container,
  `{"deviceId", "errorCode", "errorStatus"}` with the service's numeric codes (409001 DeviceAlreadyExists, 404001
  DeviceNotFound, 412001 PreconditionFailed, 400004 ArgumentInvalid, 400011 DeviceDefinedMultipleTimes, 400012 for
  a line that is not a device); the blob is always written, empty when every line applied;
- export: every device as an ExportImportDevice line (identity, etags and twin) to `outputBlobName` (default
  `devices.txt`); `excludeKeysInExport` writes symmetric keys as null.

Throughput: the service documents none (quotas.md §2.2 [U]; a peer assumes ~1,000,000 devices per hour on S3 [P]).
`rate` (devices per second, the emulator's `--job-rate`) paces a job's device operations; None runs them as fast as
the emulator goes. Job device operations count against no request throttle: the create and poll requests are
`jobs`-class requests like any other.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .common import Request, Response, ServiceError, iso, utc_now
from .hub import HubService
from .storage import BlobService, Grant, StorageError

ACTIVE = ("enqueued", "running")
DEFAULT_BLOB = "devices.txt"
ERRORS_BLOB = "importErrors.log"
ERROR_NUMBERS = {
    "ArgumentInvalid": 400004,
    "DeviceDefinedMultipleTimes": 400011,
    "DeviceNotFound": 404001,
    "DeviceAlreadyExists": 409001,
    "PreconditionFailed": 412001,
    "TooManyDevices": 413002,
}
BAD_LINE = 400012


@dataclass
class Job:
    job_id: str
    type: str
    input_uri: str | None
    output_uri: str
    input_blob: str
    output_blob: str
    exclude_keys: bool
    started: str
    status: str = "enqueued"
    progress: int = 0
    ended: str | None = None
    failure: str | None = None
    stop: threading.Event = field(default_factory=threading.Event)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "jobId": self.job_id,
            "startTimeUtc": self.started,
            "type": self.type,
            "status": self.status,
            "progress": self.progress,
            "outputBlobContainerUri": self.output_uri,
            "excludeKeysInExport": self.exclude_keys,
            "storageAuthenticationType": "keyBased",
            "includeConfigurations": False,
        }
        if self.type == "import":
            out.update(inputBlobContainerUri=self.input_uri, inputBlobName=self.input_blob)
        else:
            out["outputBlobName"] = self.output_blob
        if self.ended:
            out["endTimeUtc"] = self.ended
        if self.failure:
            out["failureReason"] = self.failure
        return out


def _invalid(message: str) -> ServiceError:
    return ServiceError(400, "ArgumentInvalid", message)


class JobService:
    """The import/export jobs of one emulated hub; its routes join the hub's router (throttle class `jobs`)."""

    def __init__(
        self,
        hub: HubService,
        blobs: BlobService,
        lock: threading.RLock,
        *,
        loopback_hosts: tuple[str, ...] = ("127.0.0.1", "localhost"),
        rate: float | None = None,
        start_delay: float = 0.05,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.hub, self.blobs, self.lock = hub, blobs, lock
        self.loopback_hosts = loopback_hosts
        self.rate = rate
        self.start_delay = start_delay
        self.sleep = sleep
        self.jobs: dict[str, Job] = {}
        self.devices: Counter[str] = Counter()  # device operations carried out by jobs, per job type
        self._jobs_lock = threading.Lock()
        for method, pattern, handler in (
            ("POST", "/jobs/create", self.create),
            ("GET", "/jobs", self.list_jobs),
            ("GET", "/jobs/{job_id}", self.get),
            ("DELETE", "/jobs/{job_id}", self.cancel),
        ):
            hub.router.add(method, pattern, "jobs", handler)

    def reset(self) -> None:
        with self._jobs_lock:
            for job in self.jobs.values():
                job.stop.set()
            self.jobs.clear()
            self.devices.clear()

    def stats(self) -> dict[str, Any]:
        with self._jobs_lock:
            return {
                "deviceOperations": dict(self.devices),
                "byStatus": dict(Counter(job.status for job in self.jobs.values())),
            }

    # ------------------------------------------------------------------ routes
    def _open(self, uri: Any, name: str, letter: str) -> Grant:
        if not isinstance(uri, str) or not uri:
            raise _invalid(f"{name} is required")
        try:
            grant = self.blobs.open_container(uri, self.loopback_hosts)
            grant.require(letter)
        except StorageError as error:
            raise ServiceError(
                400, "BlobContainerValidationError", f"Unable to access the blob container of {name}: {error.code}"
            ) from None
        return grant

    def create(self, request: Request) -> Response:
        body = request.json_object()
        kind = str(body.get("type") or "").lower()
        if kind not in ("import", "export"):
            raise _invalid(f"job type {body.get('type')!r}: only import and export jobs are created here")
        if str(body.get("storageAuthenticationType") or "keyBased") != "keyBased":
            raise _invalid("identity-based storage authentication is not implemented by the emulator; use a SAS URI")
        with self._jobs_lock:
            if any(job.status in ACTIVE for job in self.jobs.values()):
                raise ServiceError(
                    403,
                    "JobQuotaExceeded",
                    "Failed to create job since there is another job running (one import/export job at a time per hub)",
                )
        self._open(body.get("outputBlobContainerUri"), "outputBlobContainerUri", "w")
        if kind == "import":
            self._open(body.get("inputBlobContainerUri"), "inputBlobContainerUri", "r")
        job = Job(
            str(uuid.uuid4()),
            kind,
            body.get("inputBlobContainerUri") if kind == "import" else None,
            body["outputBlobContainerUri"],
            str(body.get("inputBlobName") or DEFAULT_BLOB),
            str(body.get("outputBlobName") or DEFAULT_BLOB),
            bool(body.get("excludeKeysInExport")),
            iso(utc_now()),
        )
        with self._jobs_lock:
            if any(other.status in ACTIVE for other in self.jobs.values()):  # lost a race with another create
                raise ServiceError(403, "JobQuotaExceeded", "Failed to create job since there is another job running")
            self.jobs[job.job_id] = job
        threading.Thread(target=self._run, args=(job,), name=f"hub-job-{job.job_id[:8]}", daemon=True).start()
        return Response(200, job.to_json())

    def _find(self, job_id: str) -> Job:
        job = self.jobs.get(job_id)
        if job is None:
            raise ServiceError(404, "JobNotFound", f"The job with id {job_id} was not found")
        return job

    def get(self, request: Request, job_id: str) -> Response:
        with self._jobs_lock:
            return Response(200, self._find(job_id).to_json())

    def list_jobs(self, request: Request) -> Response:
        with self._jobs_lock:
            return Response(200, [job.to_json() for job in self.jobs.values()])

    def cancel(self, request: Request, job_id: str) -> Response:
        with self._jobs_lock:
            job = self._find(job_id)
            if job.status in ACTIVE:
                job.status, job.ended = "cancelled", iso(utc_now())
                job.stop.set()
        return Response(204)

    # ------------------------------------------------------------------ the runner
    def _finish(self, job: Job, status: str, failure: str | None = None) -> None:
        with self._jobs_lock:
            if job.status in ACTIVE:
                job.status, job.failure, job.ended = status, failure, iso(utc_now())
                if status == "completed":
                    job.progress = 100

    def _run(self, job: Job) -> None:
        if job.stop.wait(self.start_delay):
            return
        with self._jobs_lock:
            if job.status != "enqueued":
                return
            job.status = "running"
        try:
            if job.type == "import":
                self._import(job)
            else:
                self._export(job)
        except StorageError as error:
            self._finish(job, "failed", f"blob storage: {error.code}: {error.message}")
        except Exception as error:  # noqa: BLE001 - a job fails, the emulator keeps serving
            self._finish(job, "failed", f"internal error: {type(error).__name__}")
            return
        self._finish(job, "completed")

    def _pace(self, started: float, done: int) -> None:
        if self.rate:
            delay = started + done / self.rate - time.monotonic()
            if delay > 0:
                self.sleep(delay)

    def _progress(self, job: Job, done: int, total: int) -> None:
        with self._jobs_lock:
            job.progress = int(100 * done / total) if total else 100
            self.devices[job.type] += 1

    def _import(self, job: Job) -> None:
        source = self.blobs.open_container(job.input_uri or "", self.loopback_hosts)
        sink = self.blobs.open_container(job.output_uri, self.loopback_hosts)
        text = self.blobs.get(source, job.input_blob).data.decode("utf-8-sig")
        lines = [line for line in text.splitlines() if line.strip()]
        errors: list[dict[str, Any]] = []
        seen: set[str] = set()
        started = time.monotonic()
        for index, line in enumerate(lines):
            if job.stop.is_set():
                break
            self._pace(started, index)
            error = self._import_line(line, seen)
            if error is not None:
                errors.append(error)
            self._progress(job, index + 1, len(lines))
        log = "".join(json.dumps(error, separators=(",", ":")) + "\n" for error in errors)
        self.blobs.put(sink, ERRORS_BLOB, log.encode("utf-8"), "text/plain")

    def _import_line(self, line: str, seen: set[str]) -> dict[str, Any] | None:
        try:
            entry = json.loads(line)
        except ValueError:
            entry = None
        device_id = entry.get("id") if isinstance(entry, dict) else None
        if not isinstance(device_id, str) or not device_id:
            return {"errorCode": BAD_LINE, "errorStatus": "Invalid device format in line: " + line[:200]}
        mode = str(entry.get("importMode") or "createOrUpdate")
        if device_id in seen:
            return {
                "deviceId": device_id,
                "errorCode": ERROR_NUMBERS["DeviceDefinedMultipleTimes"],
                "errorStatus": f"The device {device_id} is defined more than once in the import file",
            }
        seen.add(device_id)
        try:
            with self.lock:
                self.hub.import_device(device_id, mode, entry)
        except ServiceError as error:
            return {
                "deviceId": device_id,
                "errorCode": ERROR_NUMBERS.get(error.code, error.status * 1000),
                "errorStatus": f"ErrorCode:{error.code};{error.message}",
            }
        return None

    def _export(self, job: Job) -> None:
        sink = self.blobs.open_container(job.output_uri, self.loopback_hosts)
        with self.lock:
            ids = list(self.hub.index.after(None))
        out: list[str] = []
        started = time.monotonic()
        for index, device_id in enumerate(ids):
            if job.stop.is_set():
                return
            self._pace(started, index)
            with self.lock:
                line = self.hub.export_line(device_id, exclude_keys=job.exclude_keys)
            if line is not None:
                out.append(json.dumps(line, separators=(",", ":")))
            self._progress(job, index + 1, len(ids))
        self.blobs.put(sink, job.output_blob, ("\n".join(out) + ("\n" if out else "")).encode("utf-8"), "text/plain")
