"""`AzureEmulator`: one HTTPS server on 127.0.0.1 serving the IoT Hub, DPS and ARM certificate APIs.

No emulator of these APIs exists, so fleetctl ships its own (DESIGN §3). One server serves all three, told apart by
path: `/subscriptions/…` is ARM (bearer token), `/devices`, `/twins`, `/statistics` are the hub (SAS signed with the
`iothubowner` key), `/enrollmentGroups`, `/enrollments`, `/registrations` are DPS (SAS signed with the
`provisioningserviceowner` key); both connection strings name the same `HostName=127.0.0.1:PORT`. `/<account>/…`
is a minimal Blob Storage endpoint (service SAS; storage.py) for IoT Hub import/export jobs (`/jobs/…`, jobs.py),
which read and write its containers through the SAS URIs they are given. `/_emulator/…`
is the emulator's own unauthenticated control surface (stats, reset, quota config, device-side reported
properties). The real SDKs reach it through ordinary settings only: connection strings, the CA bundle this class
writes (REQUESTS_CA_BUNDLE or connection_verify), and an ARM base URL plus any credential.

Run as a subprocess with `python -m engine.sandbox.azure_emulator --state-dir DIR [--port N]`: it writes
`DIR/azure.json` (mode 0600, it holds the keys) and serves until SIGTERM.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import click

from engine.providers.azure.sas import SasTokenError, verify_sas_token

from .arm import ArmResource, ArmService, arm_error
from .certs import TlsFiles, write_tls_files
from .common import Counter, Request, Response, Router, ServiceError
from .dps import DpsService, dps_error
from .entra import ARM_AUDIENCES, DPS_AUDIENCE, HUB_AUDIENCE, EntraIssuer, IssuerCredential
from .hub import HubService, hub_error, new_key
from .jobs import JobService
from .quota import Accounting
from .server import EmulatorServer
from .storage import BlobService

DEFAULT_SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
HUB_POLICY = "iothubowner"
DPS_POLICY = "provisioningserviceowner"
HUB_ROOTS = ("devices", "twins", "statistics", "jobs")
STORAGE_ACCOUNT = "fleetctlsandbox"
JOBS_CONTAINER = "fleetctl-jobs"  # made at start; `import_container_url` is a SAS URL for it
DPS_ROOTS = ("enrollmentgroups", "enrollments", "registrations")


@dataclass(frozen=True)
class _Api:
    """How one of the three APIs authenticates, routes and renders errors."""

    router: Router
    authenticate: Callable[[Request], None]
    render_error: Callable[[ServiceError], Response]
    unauthorized_code: str
    throttle_code: str


class AzureEmulator:
    """Stateful local IoT Hub + DPS + ARM certificate service over HTTPS; state lives as long as the server."""

    def __init__(
        self,
        *,
        port: int = 0,
        state_dir: str | os.PathLike[str] | None = None,
        rates: Mapping[str, float] | None = None,
        page_size: int = 1000,
        latency_ms: float = 0.0,
        subscription_id: str = DEFAULT_SUBSCRIPTION,
        resource_group: str = "fleetctl-sandbox",
        hub_name: str = "fleetctl-sandbox-hub",
        dps_name: str = "fleetctl-sandbox-dps",
        fixed_verification_codes: bool = False,
        job_rate: float | None = None,
        shaping_ms: float = 0.0,
        storage_account: str = STORAGE_ACCOUNT,
    ) -> None:
        self._requested_port = port
        self._state_dir_arg = Path(state_dir) if state_dir is not None else None
        self._state_dir: Path | None = None
        self.subscription_id, self.resource_group = subscription_id, resource_group
        self.hub_name, self.dps_name = hub_name, dps_name
        self._keys = {"hub": {HUB_POLICY: new_key()}, "dps": {DPS_POLICY: new_key()}}
        self.entra = EntraIssuer()  # the sandbox's Entra tenant: token endpoint + bearer checks (entra.py)
        self._lock = threading.RLock()
        self._accounting = Accounting()
        counter = Counter()
        self.hub_service = HubService(counter=counter, page_cap=page_size)
        self.dps_service = DpsService(page_cap=page_size)
        if storage_account in HUB_ROOTS + DPS_ROOTS + ("subscriptions", "_emulator"):
            raise ValueError(f"storage account {storage_account!r} would shadow an API path")
        self.storage_account = storage_account
        self.blob_service = BlobService({storage_account: new_key()})
        self.blob_service.create_container(storage_account, JOBS_CONTAINER)
        self.job_service = JobService(self.hub_service, self.blob_service, self._lock)
        self.arm_service = ArmService(
            counter=counter,
            subscription_id=subscription_id,
            resource_group=resource_group,
            resources=[ArmResource("IotHubs", hub_name, 201), ArmResource("provisioningServices", dps_name, 200)],
            fixed_codes=fixed_verification_codes,
        )
        self._latency_ms = 0.0
        self.configure(
            rates=rates, page_size=page_size, latency_ms=latency_ms, job_rate=job_rate or 0, shaping_ms=shaping_ms
        )
        self._apis = {
            "hub": _Api(
                self.hub_service.router,
                self._sas(self._keys["hub"], (HUB_AUDIENCE,)),
                hub_error,
                "IotHubUnauthorizedAccess",
                "ThrottlingException",
            ),
            "dps": _Api(
                self.dps_service.router,
                self._sas(self._keys["dps"], (DPS_AUDIENCE,)),
                dps_error,
                "Unauthorized",
                "TooManyRequests",
            ),
            "arm": _Api(self.arm_service.router, self._bearer, arm_error, "AuthenticationFailed", "TooManyRequests"),
        }
        self._control = self._control_router()
        self._server: EmulatorServer | None = None
        self._tls: TlsFiles | None = None

    # ------------------------------------------------------------- lifecycle
    def start(self) -> AzureEmulator:
        if self._server is not None:
            return self
        self._state_dir = self._state_dir_arg or Path(tempfile.mkdtemp(prefix="fleetctl-azure-"))
        tls = write_tls_files(self._state_dir / "azure-tls")
        self._tls = tls
        self._server = EmulatorServer(
            ("127.0.0.1", self._requested_port), self._dispatch, cert_file=str(tls.cert_pem), key_file=str(tls.key_pem)
        )
        self.entra.base_url = f"https://127.0.0.1:{self._server.server_address[1]}"
        self._server.start("fleetctl-azure-emulator")
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.stop()
        self._server = None
        if self._state_dir_arg is None and self._state_dir is not None:
            shutil.rmtree(self._state_dir, ignore_errors=True)

    def __enter__(self) -> AzureEmulator:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    # ------------------------------------------------------------ properties
    def _running(self) -> tuple[EmulatorServer, TlsFiles]:
        if self._server is None or self._tls is None:
            raise RuntimeError("the emulator is not started")
        return self._server, self._tls

    @property
    def port(self) -> int:
        return int(self._running()[0].server_address[1])

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def ca_pem_path(self) -> str:
        """The emulator's CA certificate alone (for `connection_verify` / `connection.verify`)."""
        return str(self._running()[1].ca_pem)

    @property
    def ca_bundle(self) -> str:
        """The emulator's CA plus the usual public roots: safe to export as REQUESTS_CA_BUNDLE for a whole shell."""
        return str(self._running()[1].bundle_pem)

    @property
    def hub_connection_string(self) -> str:
        return f"HostName={self.host};SharedAccessKeyName={HUB_POLICY};SharedAccessKey={self._keys['hub'][HUB_POLICY]}"

    @property
    def dps_connection_string(self) -> str:
        return f"HostName={self.host};SharedAccessKeyName={DPS_POLICY};SharedAccessKey={self._keys['dps'][DPS_POLICY]}"

    @property
    def arm_base_url(self) -> str:
        return f"https://{self.host}"

    @property
    def blob_endpoint(self) -> str:
        """The storage account's endpoint, path-style: `https://127.0.0.1:PORT/<account>`."""
        return f"https://{self.host}/{self.storage_account}"

    def container_sas_url(
        self,
        container: str = JOBS_CONTAINER,
        permissions: str = "racwdl",
        expiry: dt.datetime | None = None,
        **options: Any,
    ) -> str:
        """A service SAS URL for a container, signed with the account key (what a storage owner hands out)."""
        expiry = expiry or dt.datetime.now(dt.UTC) + dt.timedelta(days=30)
        return self.blob_service.sas_url(
            f"https://{self.host}", self.storage_account, container, permissions, expiry, **options
        )

    def create_container(self, name: str) -> None:
        self.blob_service.create_container(self.storage_account, name)

    def describe(self) -> dict[str, Any]:
        """Everything a client needs (what `azure.json` holds); it contains the shared access keys."""
        return {
            "port": self.port,
            "host": self.host,
            "ca_bundle": self.ca_bundle,
            "ca_pem_path": self.ca_pem_path,
            "hub_connection_string": self.hub_connection_string,
            "dps_connection_string": self.dps_connection_string,
            "arm_base_url": self.arm_base_url,
            "subscription_id": self.subscription_id,
            "resource_group": self.resource_group,
            "hub_name": self.hub_name,
            "dps_name": self.dps_name,
            "storage_account": self.storage_account,
            "blob_endpoint": self.blob_endpoint,
            "import_container_url": self.container_sas_url(),
            "authority_host": self.authority_host,
            "tenant_id": self.entra.tenant_id,
            "client_id": self.entra.client_id,
            "client_secret": self.entra.client_secret,
            "pid": os.getpid(),
        }

    @property
    def authority_host(self) -> str:
        """The sandbox's Entra authority (AZURE_AUTHORITY_HOST): its token endpoint is `/{tenant}/oauth2/v2.0/token`."""
        return f"https://{self.host}"

    def entra_env(self) -> dict[str, str]:
        """The settings azure-identity's EnvironmentCredential reads to get tokens from the sandbox tenant (they hold
        the sandbox-only client secret)."""
        return {
            "AZURE_AUTHORITY_HOST": self.authority_host,
            "AZURE_TENANT_ID": self.entra.tenant_id,
            "AZURE_CLIENT_ID": self.entra.client_id,
            "AZURE_CLIENT_SECRET": self.entra.client_secret,
        }

    def credential(self) -> IssuerCredential:
        """A TokenCredential minting valid tokens in-process (tests that hold the emulator object)."""
        return IssuerCredential(self.entra)

    # --------------------------------------------------------------- control
    def stats(self) -> dict[str, Any]:
        """Requests per operation class (registry, twin_read, twin_update, query, jobs, dps, arm, storage) and per
        route; `jobs`: device operations carried out by import/export jobs (they count against no throttle)."""
        return {**self._accounting.snapshot(), "jobs": self.job_service.stats()}

    def reset(self) -> None:
        """Forget every device, enrollment, certificate, job and blob, and the request counts; keys stay valid."""
        self.job_service.reset()
        with self._lock:
            for service in (self.hub_service, self.dps_service, self.arm_service):
                service.reset()
        self.blob_service.reset()
        self._accounting.clear()

    def configure(
        self,
        *,
        rates: Mapping[str, float] | None = None,
        page_size: int | None = None,
        latency_ms: float | None = None,
        fixed_verification_codes: bool | None = None,
        job_rate: float | None = None,
        shaping_ms: float | None = None,
    ) -> None:
        """Quota-faithful mode: per-class rates (req/s, 429 beyond; `{}` lifts them), traffic shaping (a request
        whose token is due within `shaping_ms` waits instead of a 429), the query page cap, injected latency, the
        device operations per second of import/export jobs (0 lifts it); and whether certificate verification codes
        are the sandbox's fixed ones (demo) or random (Azure). None keeps the current value."""
        if shaping_ms is not None:
            if shaping_ms < 0:
                raise ValueError("shaping_ms must not be negative")
            self._accounting.shaping = float(shaping_ms) / 1000.0
        if job_rate is not None:
            if job_rate < 0:
                raise ValueError("job_rate must be positive (0 runs jobs as fast as the emulator goes)")
            self.job_service.rate = float(job_rate) or None
        if fixed_verification_codes is not None:
            self.arm_service.fixed_codes = fixed_verification_codes
        if rates is not None:
            self._accounting.set_rates(rates)
        if page_size is not None:
            if page_size < 1:
                raise ValueError("page_size must be positive")
            self.hub_service.page_cap = self.dps_service.page_cap = page_size
        if latency_ms is not None:
            self._latency_ms = max(0.0, float(latency_ms))

    def report_properties(self, device_id: str, patch: dict[str, Any]) -> dict[str, Any]:
        """Patch a device's reported properties as the device itself would (the service API cannot)."""
        with self._lock:
            return self.hub_service.report(device_id, patch)

    # -------------------------------------------------------------- dispatch
    def _sas(self, keys: dict[str, str], audiences: tuple[str, ...]) -> Callable[[Request], None]:
        """A data plane's check: a shared access signature, or an Entra bearer token for the service's audience."""

        def authenticate(request: Request) -> None:
            if (request.header("authorization") or "").lower().startswith("bearer "):
                self.entra.check(request.header("authorization"), audiences, code="Unauthorized")
                return
            host = request.header("host") or self.host
            try:
                verify_sas_token(
                    request.header("authorization") or "", keys=keys, requested_uri=f"{host}{request.path}"
                )
            except SasTokenError as exc:
                raise ServiceError(401, "Unauthorized", f"Unauthorized: {exc}") from None

        return authenticate

    def _api_for(self, path: str) -> _Api:
        root = path.strip("/").split("/", 1)[0].lower()
        if root == "subscriptions":
            return self._apis["arm"]
        return self._apis["dps"] if root in DPS_ROOTS else self._apis["hub"]

    def _dispatch(self, request: Request) -> tuple[int, dict[str, str], bytes]:
        if request.path.startswith("/_emulator/"):
            return _encode(self._control_call(request))
        if self.entra.handles(request.path):
            return _encode(self.entra.dispatch(request))
        if self.blob_service.handles(request.path):
            self._accounting.admit("storage", f"{request.method} blob")  # counted; storage has no hub throttle
            if self._latency_ms:
                time.sleep(self._latency_ms / 1000.0)
            stored = self.blob_service.dispatch(
                request.method, request.path, request.query, request.headers, request.body
            )
            return stored.status, stored.headers, stored.body
        api = self._api_for(request.path)
        try:
            route, params = api.router.match(request.method, request.path)
        except ServiceError as error:
            return _encode(api.render_error(error))
        retry_after = self._accounting.admit(route.op_class, route.operation)
        if self._latency_ms:
            time.sleep(self._latency_ms / 1000.0)
        correlation = (
            {"x-ms-correlation-request-id": request.header("x-ms-correlation-request-id") or str(uuid.uuid4())}
            if api.render_error is arm_error
            else {}
        )
        try:
            self._admit(request, api, retry_after)
            with self._lock:
                return _encode(route.handler(request, **params), correlation)
        except ServiceError as error:
            return _encode(api.render_error(error), correlation)

    def _bearer(self, request: Request) -> None:
        """ARM's front door: an Entra bearer token for the management audience, nothing else."""
        if not request.header("authorization"):
            raise ServiceError(
                401, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing."
            )
        self.entra.check(request.header("authorization"), ARM_AUDIENCES, code="InvalidAuthenticationToken")

    @staticmethod
    def _admit(request: Request, api: _Api, retry_after: int | None) -> None:
        if not request.query.get("api-version"):
            code = "MissingApiVersionParameter" if api.render_error is arm_error else "ArgumentInvalid"
            raise ServiceError(400, code, "The api-version query parameter is required.")
        try:
            api.authenticate(request)
        except ServiceError as error:
            code = error.code if api.render_error is arm_error else api.unauthorized_code  # ARM names the cause
            raise ServiceError(401, code, error.message) from None
        if retry_after is not None:
            raise ServiceError(
                429, api.throttle_code, "Request rate is too high; retry later.", retry_after=retry_after
            )

    def _control_router(self) -> Router:
        router = Router()
        router.add("GET", "/_emulator/stats", "control", lambda request: Response(200, self.stats()))
        router.add("POST", "/_emulator/reset", "control", self._control_reset)
        router.add("POST", "/_emulator/config", "control", self._control_config)
        router.add(
            "PATCH",
            "/_emulator/twins/{device_id}/reported",
            "control",
            lambda request, device_id: Response(200, self.report_properties(device_id, request.json_object())),
        )
        return router

    def _control_reset(self, request: Request) -> Response:
        self.reset()
        return Response(204)

    def _control_config(self, request: Request) -> Response:
        self.configure(**request.json_object())
        return Response(200, self.stats())

    def _control_call(self, request: Request) -> Response:
        try:
            route, params = self._control.match(request.method, request.path)
            return route.handler(request, **params)
        except ServiceError as error:
            return Response(error.status, {"error": {"code": error.code, "message": error.message}})
        except (TypeError, ValueError) as error:
            return Response(400, {"error": {"code": "ArgumentInvalid", "message": str(error)}})


def _encode(response: Response, extra: Mapping[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """Wire form of a response; every answer carries `x-ms-request-id` (and ARM's `x-ms-correlation-request-id`),
    as Azure's do, so clients can record them on success as well as on failure."""
    headers = {"x-ms-request-id": str(uuid.uuid4()), **(extra or {}), **response.headers}
    if response.body is None:
        return response.status, headers, b""
    headers["Content-Type"] = "application/json; charset=utf-8"
    return response.status, headers, json.dumps(response.body, separators=(",", ":")).encode("utf-8")


def _parse_rates(text: str | None) -> dict[str, float]:
    rates: dict[str, float] = {}
    for item in filter(None, (text or "").split(",")):
        name, _, value = item.partition("=")
        rates[name.strip()] = float(value)
    return rates


def write_description(emulator: AzureEmulator, path: Path) -> None:
    """Write `azure.json` atomically with mode 0600 (it holds the shared access keys)."""
    temporary = path.with_name(path.name + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(emulator.describe(), handle, indent=2)
    os.replace(temporary, path)


@click.command(
    context_settings={"help_option_names": ["-h", "--help"]},
    help="fleetctl's local Azure IoT Hub + DPS + ARM emulator (HTTPS).",
)
@click.option(
    "--state-dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="where azure.json and the TLS files go",
)
@click.option("--port", type=int, default=0, help="port on 127.0.0.1 (default: any free port)")
@click.option("--rates", default=None, help="quota mode, e.g. registry=100,query=20 (requests per second per class)")
@click.option("--page-size", type=int, default=1000, help="largest query page served")
@click.option("--latency-ms", type=float, default=0.0, help="latency added to every API call")
@click.option(
    "--shaping-ms",
    type=float,
    default=0.0,
    help="quota mode: hold a request up to this long for its token before answering 429 (IoT Hub queues "
    "bursts before it throttles; the queue size is not documented)",
)
@click.option(
    "--job-rate",
    type=float,
    default=0.0,
    help="device operations per second of import/export jobs (default 0: as fast as it goes; a peer "
    "assumes ~278/s, 1M per hour, on S3)",
)
@click.option(
    "--fixed-verification-codes",
    is_flag=True,
    help="demo setting: hand out the sandbox's one fixed verification code per hub, which the example "
    "fleet's committed verification certificate is made from (default: a new random code on every "
    "generateVerificationCode, as Azure does)",
)
def main(
    state_dir: Path,
    port: int,
    rates: str | None,
    page_size: int,
    latency_ms: float,
    shaping_ms: float,
    job_rate: float,
    fixed_verification_codes: bool,
) -> None:
    """`python -m engine.sandbox.azure_emulator`: serve until SIGTERM/SIGINT, described in STATE_DIR/azure.json."""
    state_dir.mkdir(parents=True, exist_ok=True)
    emulator = AzureEmulator(
        port=port,
        state_dir=state_dir,
        rates=_parse_rates(rates),
        page_size=page_size,
        latency_ms=latency_ms,
        job_rate=job_rate,
        shaping_ms=shaping_ms,
        fixed_verification_codes=fixed_verification_codes,
    ).start()
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    try:
        write_description(emulator, state_dir / "azure.json")
        while not stopping.wait(0.5):
            pass
    finally:
        emulator.stop()
