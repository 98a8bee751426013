"""IoT Hub import jobs end to end: the emulator's Blob Storage endpoint (service SAS checked as the service checks it),
its `/jobs` API, and the Azure provider carrying a wave of device creates (and deletes) through one job.

The blob side is exercised with the real azure-storage-blob SDK (tokens made by its own `generate_container_sas`),
the hub side with the real azure-iot-hub SDK; nothing is mocked.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from azure.core.exceptions import HttpResponseError
from azure.storage.blob import ContainerClient, generate_blob_sas, generate_container_sas

from engine import errors, run
from engine.diagnostics import FleetctlError
from engine.journal import read_entries
from engine.manifest.fleet import load_fleet
from engine.plan.model import load_plan
from engine.providers.azure.client import AzureClient
from engine.providers.azure.importjob import ImportExport, ImportJob
from engine.providers.azure.provider import make_provider
from engine.sandbox.azure import AzureEmulator
from engine.sandbox.azure.emulator import JOBS_CONTAINER
from engine.sandbox.azure.storage import sign, string_to_sign
from tests.conftest import ROOT, run_cli

HUB_HOST = "fleetctl-sandbox-hub.azure-devices.net"
KEY = base64.b64encode(b"k" * 31 + b"!").decode()


def target(threshold: int = 50, poll: float = 0.05, timeout: float = 60) -> str:
    return f"""\
apiVersion: fleetctl.io/v1
kind: Target
metadata: {{name: hub}}
spec:
  prune: true
  azure:
    hub: {{hostName: {HUB_HOST}, connectionString: {{env: FLEETCTL_HUB_CONNECTION_STRING}}}}
    importExport:
      containerUrl: {{env: FLEETCTL_IMPORT_CONTAINER_URL}}
      threshold: {threshold}
      pollSeconds: {poll}
      timeoutSeconds: {timeout}
"""


def devices(n: int, start: int = 0, keyed: int = 0) -> str:
    """N devices with twin tags and desired properties; the first `keyed` declare a symmetric key (from the env)."""
    docs = []
    for i in range(start, start + n):
        auth = "{type: symmetricKey, primaryKey: {env: DEVICE_KEY}}" if i - start < keyed else "{type: x509CA}"
        docs.append(
            f"apiVersion: azure.fleetctl.io/v1\nkind: Device\nmetadata: {{name: nina-{i:04d}, target: hub}}\n"
            f"spec:\n  authentication: {auth}\n  tags: {{site: paris, batch: '{i // 100}'}}\n"
            f"  desired: {{telemetryInterval: 30}}\n"
        )
    return "---\n".join(docs)


@pytest.fixture
def env(emulator: AzureEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    values = {
        "FLEETCTL_HUB_CONNECTION_STRING": emulator.hub_connection_string,
        "FLEETCTL_IMPORT_CONTAINER_URL": emulator.container_sas_url(),
        "REQUESTS_CA_BUNDLE": emulator.ca_bundle,
        "FLEETCTL_JOURNAL": str(tmp_path / "journal.jsonl"),
        "FLEETCTL_NOW": "2026-11-21T10:00:00Z",
        "FLEETCTL_GIT_COMMIT": "0" * 40,
        "FLEETCTL_ACTOR": "ci-test",
        "DEVICE_KEY": KEY,
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    for name in ("FLEETCTL_RATE_LIMIT", "FLEETCTL_QUOTAS", "FLEETCTL_AZURE_HUB_TIER"):
        monkeypatch.delenv(name, raising=False)
    return values


@pytest.fixture
def fleet(tmp_path: Path) -> Path:
    root = tmp_path / "fleet"
    root.mkdir()
    (root / "targets.yaml").write_text(target())
    return root


@pytest.fixture
def hub(emulator: AzureEmulator) -> AzureClient:
    return AzureClient(emulator.hub_connection_string, ca_bundle=emulator.ca_bundle)


def _container(url: str, emulator: AzureEmulator) -> ContainerClient:
    return ContainerClient.from_container_url(url, connection_verify=emulator.ca_bundle, retry_total=0)


def _sdk_sas(emulator: AzureEmulator, permission: str, expiry_hours: float = 1, **options) -> str:
    key = emulator.blob_service.accounts[emulator.storage_account]
    expiry = dt.datetime.now(dt.UTC) + dt.timedelta(hours=expiry_hours)
    token = generate_container_sas(
        emulator.storage_account, JOBS_CONTAINER, account_key=key, permission=permission, expiry=expiry, **options
    )
    return f"{emulator.blob_endpoint}/{JOBS_CONTAINER}?{token}"


def _code(excinfo: pytest.ExceptionInfo[HttpResponseError]) -> tuple[int, str]:
    return excinfo.value.status_code, excinfo.value.response.headers.get("x-ms-error-code")


# ----------------------------------------------------------------------------------------- the blob endpoint
def test_blob_endpoint_checks_service_sas_tokens_like_the_service(emulator: AzureEmulator) -> None:
    good = _container(_sdk_sas(emulator, "racwdl"), emulator)  # a token the storage SDK itself made
    good.upload_blob("devices.txt", b'{"id":"a"}\n')
    assert [b.name for b in good.list_blobs()] == ["devices.txt"]
    assert good.download_blob("devices.txt").readall() == b'{"id":"a"}\n'
    assert (
        emulator.blob_service.sas_url(
            "x", emulator.storage_account, JOBS_CONTAINER, "r", dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
        ).count("sig=")
        == 1
    )

    with pytest.raises(HttpResponseError) as expired:
        _container(_sdk_sas(emulator, "racwdl", expiry_hours=-1), emulator).download_blob("devices.txt").readall()
    assert _code(expired) == (403, "AuthenticationFailed") and "not valid in the specified time frame" in str(
        expired.value
    )

    url = _sdk_sas(emulator, "racwdl")
    base, query = url.split("?")[0], dict(parse_qsl(urlsplit(url).query))
    other_key = base64.b64encode(b"x" * 64).decode()  # the same fields signed with another key
    forged = f"{base}?{urlencode({**query, 'sig': sign(other_key, string_to_sign(query, f'/blob/{emulator.storage_account}/{JOBS_CONTAINER}'))})}"
    with pytest.raises(HttpResponseError) as bad_signature:
        _container(forged, emulator).download_blob("devices.txt").readall()
    assert _code(bad_signature) == (403, "AuthenticationFailed") and "Signature did not match" in str(
        bad_signature.value
    )

    widened = url.replace("sp=racwdl", "sp=racwdlx")  # permissions edited after signing
    with pytest.raises(HttpResponseError) as edited:
        list(_container(widened, emulator).list_blobs())
    assert _code(edited) == (403, "AuthenticationFailed")

    read_only = _container(_sdk_sas(emulator, "rl"), emulator)
    assert read_only.download_blob("devices.txt").readall() == b'{"id":"a"}\n'
    with pytest.raises(HttpResponseError) as no_write:
        read_only.upload_blob("devices.txt", b"x", overwrite=True)
    assert _code(no_write) == (403, "AuthorizationPermissionMismatch")
    with pytest.raises(HttpResponseError) as no_list:
        list(_container(_sdk_sas(emulator, "r"), emulator).list_blobs())
    assert _code(no_list) == (403, "AuthorizationPermissionMismatch")

    key = emulator.blob_service.accounts[emulator.storage_account]
    blob_token = generate_blob_sas(
        emulator.storage_account,
        JOBS_CONTAINER,
        "devices.txt",
        account_key=key,
        permission="r",
        expiry=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1),
    )
    one_blob = _container(f"{emulator.blob_endpoint}/{JOBS_CONTAINER}?{blob_token}", emulator)
    assert one_blob.download_blob("devices.txt").readall() == b'{"id":"a"}\n'
    with pytest.raises(HttpResponseError) as other_blob:
        one_blob.download_blob("importErrors.log").readall()
    assert _code(other_blob) == (403, "AuthenticationFailed")
    with pytest.raises(HttpResponseError) as anonymous:
        _container(f"{emulator.blob_endpoint}/{JOBS_CONTAINER}", emulator).download_blob("devices.txt").readall()
    assert _code(anonymous) == (404, "ResourceNotFound")


def test_a_sas_bound_to_source_addresses_admits_only_them(emulator: AzureEmulator) -> None:
    """`sip`: the emulator's callers are 127.0.0.1; an IPv6 or other range is the service's 403, not a 500."""
    _container(_sdk_sas(emulator, "racwdl"), emulator).upload_blob("devices.txt", b"{}\n")
    for allowed in ("127.0.0.1", "127.0.0.0-127.0.0.255"):
        assert (
            _container(_sdk_sas(emulator, "r", ip=allowed), emulator).download_blob("devices.txt").readall() == b"{}\n"
        )
    for refused in ("10.0.0.1-10.0.0.9", "::1", "::-::ffff"):
        with pytest.raises(HttpResponseError) as caught:
            _container(_sdk_sas(emulator, "r", ip=refused), emulator).download_blob("devices.txt").readall()
        assert _code(caught) == (403, "AuthorizationSourceIPMismatch"), refused


# ------------------------------------------------------------------------------------------ the jobs API
def test_one_import_export_job_at_a_time_and_the_job_reads_and_writes_through_its_sas(
    emulator: AzureEmulator, hub: AzureClient
) -> None:
    url = emulator.container_sas_url()
    lines = "".join(json.dumps({"id": f"j{i}", "importMode": "create", "tags": {"n": i}}) + "\n" for i in range(40))
    hub.upload_blob(url, "in.txt", lines.encode() + b"not json\n")
    emulator.configure(job_rate=100)  # 40 devices: ~0.4 s
    job = hub.create_import_job(url, "in.txt")
    assert job["status"] == "enqueued" and "inputBlobContainerUri" not in job  # the SAS is not handed back
    with pytest.raises(errors.Conflict) as second:
        hub.create_export_job(url)
    assert second.value.code == "JobQuotaExceeded"
    while (state := hub.get_job(job["jobId"]))["status"] in ("enqueued", "running"):
        time.sleep(0.05)
    assert state["status"] == "completed" and state["progress"] == 100
    assert emulator.stats()["jobs"]["deviceOperations"] == {"import": 41}
    assert "registry" not in emulator.stats()["requests"]  # job device operations count against no throttle
    log = [json.loads(x) for x in hub.download_blob(url, "importErrors.log").decode().splitlines()]
    assert log == [{"errorCode": 400012, "errorStatus": "Invalid device format in line: not json"}]
    assert hub.get_twin("j7")["tags"] == {"n": 7}

    export = hub.create_export_job(url, "export.txt", exclude_keys=True)  # the first job ended: allowed now
    while hub.get_job(export["jobId"])["status"] not in ("completed", "failed"):
        time.sleep(0.05)
    exported = [json.loads(x) for x in hub.download_blob(url, "export.txt").decode().splitlines()]
    assert len(exported) == 40 and exported[0]["authentication"]["symmetricKey"] == {
        "primaryKey": None,
        "secondaryKey": None,
    }
    j7 = next(line for line in exported if line["id"] == "j7")
    assert j7["tags"] == {"n": 7} and j7["twinETag"] == hub.get_twin("j7")["etag"] and j7["eTag"]

    read_only = emulator.container_sas_url(permissions="rl")  # the hub cannot write importErrors.log with it
    with pytest.raises(errors.Invalid) as refused:
        hub.create_import_job(read_only, "in.txt")
    assert refused.value.code == "BlobContainerValidationError" and "sig=" not in str(refused.value)
    assert [j["status"] for j in hub.list_jobs()] == ["completed", "completed"]


# ---------------------------------------------------------------------------------- the provider, end to end
def _ctx(env: dict[str, str]) -> run.Context:
    return run.Context(env=dict(os.environ), journal_path=Path(env["FLEETCTL_JOURNAL"]))


def _specs(root: Path) -> dict:
    return {name: m.spec for name, m in load_fleet(root, resolve_secrets=False).targets().items()}


def test_a_large_wave_goes_through_one_import_job_and_replans_empty(env, fleet, emulator, hub, tmp_path) -> None:
    (fleet / "devices.yaml").write_text(devices(300, keyed=2))
    planned = run.plan(fleet, _ctx(env))
    assert len(planned.plan.changes) == 300
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(planned.plan.dumps())
    ctx = _ctx(env)
    report = run.apply(load_plan(str(plan_file)), ctx, fleet, _specs(fleet))
    assert report.ok and len(report.applied) == 300
    stats = report.stats["azure/hub"]
    assert stats["paths"] == {"import-job jobs": 1, "import-job devices": 300}
    assert stats["calls"].get("bulk_create_or_update_devices") is None
    assert emulator.stats()["jobs"]["deviceOperations"] == {"import": 300}
    assert "POST /devices" not in emulator.stats()["operations"]  # no bulk registry call

    twin = hub.get_twin("nina-0150")
    assert twin["tags"] == {"site": "paris", "batch": "1", "fleetctl": {"managed": True}}
    assert twin["properties"]["desired"]["telemetryInterval"] == 30
    assert hub.get_device("nina-0000")["authentication"]["symmetricKey"]["primaryKey"] == KEY
    assert [b.name for b in _container(env["FLEETCTL_IMPORT_CONTAINER_URL"], emulator).list_blobs()] == [
        "importErrors.log"
    ]  # the input blob (it held a key) is gone

    entries = list(read_entries(Path(env["FLEETCTL_JOURNAL"])))
    per_change = [e for e in entries if e.get("address", "").startswith("azure/")]
    assert sum(e["event"] == "begin" for e in per_change) == 300
    assert sum(e["event"] == "success" for e in per_change) == 300
    job_id = stats["importJobs"][0]["jobId"]
    assert [e["event"] for e in entries if e.get("taskId") == job_id] == ["task-started", "task-ended"]

    again = run.plan(fleet, _ctx(env))
    assert again.plan.changes == () and not [d for d in again.plan.diagnostics if "running" in d.summary]
    for text in (plan_file.read_text(), Path(env["FLEETCTL_JOURNAL"]).read_text(), json.dumps(report.stats)):
        assert "sig=" not in text and env["FLEETCTL_IMPORT_CONTAINER_URL"] not in text and KEY not in text


def test_a_per_device_error_in_importErrors_log_fails_that_change_alone(env, fleet, emulator, hub, tmp_path) -> None:
    (fleet / "devices.yaml").write_text(devices(60))
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(run.plan(fleet, _ctx(env)).plan.dumps())
    hub.create_device("nina-0007", {"type": "sas"})  # a race after apply's stale check (check=False below)
    report = run.apply(load_plan(str(plan_file)), _ctx(env), fleet, _specs(fleet), check=False)
    assert len(report.applied) == 59
    [(address, message)] = report.failed
    assert address == "azure/hub/Device/nina-0007" and message.startswith("DeviceAlreadyExists:")
    job_id = report.stats["azure/hub"]["importJobs"][0]["jobId"]
    assert f"import job {job_id}" in message
    failure = [e for e in read_entries(Path(env["FLEETCTL_JOURNAL"])) if e["event"] == "failure"]
    assert [e["address"] for e in failure] == [address] and job_id in failure[0]["error"]
    assert "fleetctl" not in (hub.get_twin("nina-0007").get("tags") or {})  # someone else's: not taken over


def test_deletes_through_a_job_check_the_planned_etag(env, fleet, emulator, hub) -> None:
    (fleet / "devices.yaml").write_text(devices(60))
    assert run.apply(run.plan(fleet, _ctx(env)).plan, _ctx(env), fleet, _specs(fleet)).ok
    (fleet / "devices.yaml").write_text(devices(5))
    plan = run.plan(fleet, _ctx(env)).plan  # prune: 55 managed devices to delete
    deletes = [c for c in plan.changes if c.action.value == "delete"]
    assert len(deletes) == 55 and all(c.ids.get("etag") for c in deletes)
    ctx = _ctx(env)
    provider = run.get_provider(ctx, ("azure", "hub"), _specs(fleet))
    [batch] = provider.batches(deletes)  # one job carries them (engine.run waves hold one each)
    assert len(batch) == 55
    current = hub.get_device("nina-0033")
    hub.update_device("nina-0033", {"type": "certificateAuthority"}, "disabled", False, current["etag"])
    hub.delete_device("nina-0044", None)  # already gone: the desired outcome
    outcomes = dict(zip((c.address.name for c in batch), provider.apply_batch(batch, [{}] * len(batch)), strict=True))
    assert {name: type(o).__name__ for name, o in outcomes.items() if o is not None} == {
        "nina-0033": "PreconditionFailed"
    }
    remaining = sorted(t["deviceId"] for t in hub.query_devices())
    assert remaining == [f"nina-{i:04d}" for i in range(5)] + ["nina-0033"]
    assert ctx.providers[("azure", "hub")].stats()["paths"]["import-job devices"] == 55


def test_apply_waits_for_a_running_job_and_names_it_when_it_outlasts_the_timeout(env, fleet, emulator, hub) -> None:
    url = env["FLEETCTL_IMPORT_CONTAINER_URL"]
    hub.upload_blob(url, "other.txt", "".join(json.dumps({"id": f"o{i}"}) + "\n" for i in range(60)).encode())
    emulator.configure(job_rate=60)  # someone else's job: ~1 s
    other = hub.create_import_job(url, "other.txt")
    (fleet / "devices.yaml").write_text(devices(50))
    planned = run.plan(fleet, _ctx(env))
    [running] = [d for d in planned.plan.diagnostics if other["jobId"] in d.summary]
    assert "is running on the hub" in running.summary

    provider = make_provider("hub", load_fleet(fleet, resolve_secrets=False).targets()["hub"].spec, os.environ)
    impatient = ImportJob(provider, ImportExport(url, 50, poll_seconds=0.05, timeout_seconds=0.2))
    with pytest.raises(errors.Conflict) as refused:
        impatient.wait_idle(time.monotonic() + 0.2)
    assert other["jobId"] in str(refused.value) and "one at a time" in str(refused.value)

    emulator.configure(job_rate=0)
    report = run.apply(planned.plan, _ctx(env), fleet, _specs(fleet), check=False)  # waits, then its own job
    assert report.ok and len(report.applied) == 50
    jobs = hub.list_jobs()
    assert [j["status"] for j in jobs] == ["completed", "completed"] and jobs[0]["jobId"] == other["jobId"]


def test_an_apply_killed_while_its_job_runs_is_visible_and_the_next_plan_converges(
    env, fleet, emulator, hub, tmp_path
) -> None:
    (fleet / "devices.yaml").write_text(devices(200))
    emulator.configure(job_rate=40)  # the job takes ~5 s: time to kill fleetctl during it
    journal = Path(env["FLEETCTL_JOURNAL"])
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine.cli", "apply", str(fleet), "--auto-approve"],
        cwd=ROOT,
        env={**os.environ, "FLEETCTL_JOURNAL": str(journal)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not any(e.get("event") == "task-started" for e in read_entries(journal)):
            assert proc.poll() is None and time.monotonic() < deadline, "the apply ended before its job started"
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    [started] = [e for e in read_entries(journal) if e.get("event") == "task-started"]
    job_id = started["taskId"]
    assert [j["status"] for j in hub.list_jobs() if j["jobId"] == job_id] in (["enqueued"], ["running"])

    midway = run.plan(fleet, _ctx(env))  # visible: the running job and the open changes
    summaries = " ".join(d.summary for d in midway.plan.diagnostics)
    assert job_id in summaries and len(midway.plan.interrupted) == 200
    emulator.configure(job_rate=0)  # let it finish now
    while hub.get_job(job_id)["status"] in ("enqueued", "running"):
        time.sleep(0.1)
    after = run.plan(fleet, _ctx(env))  # the job finished what fleetctl started
    assert after.plan.changes == () and len(hub.query_devices_page(None, None, 1000)[0]) == 200


def test_import_export_settings_are_checked_and_never_echoed(env, fleet, emulator) -> None:
    (fleet / "targets.yaml").write_text(
        target().replace("{env: FLEETCTL_IMPORT_CONTAINER_URL}", "https://acct.blob.core.windows.net/c?sig=abc")
    )
    invalid = run_cli("validate", str(fleet))
    assert invalid.exit_code == 1 and "literal value where a secret reference belongs" in invalid.output
    assert "sig=abc" not in invalid.output

    (fleet / "targets.yaml").write_text(target())
    spec = load_fleet(fleet, resolve_secrets=False).targets()["hub"].spec
    with pytest.raises(FleetctlError) as not_sas:
        make_provider("hub", spec, {**os.environ, "FLEETCTL_IMPORT_CONTAINER_URL": "https://acct/c?sv=1&se=2"})
    assert "not a blob container SAS URL" in str(not_sas.value) and "sv=1" not in str(not_sas.value)
    (fleet / "devices.yaml").write_text(devices(3))
    result = run_cli("plan", str(fleet), "--out", str(fleet.parent / "p.json"))
    assert result.exit_code == 0 and "sig=" not in result.output
    assert "sig=" not in (fleet.parent / "p.json").read_text()
    assert "FLEETCTL_IMPORT_CONTAINER_URL" in (fleet.parent / "p.json").read_text()  # by reference only

    (fleet / "devices.yaml").write_text(devices(60))
    expired = emulator.container_sas_url(expiry=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5))
    ctx = run.Context(
        env={**os.environ, "FLEETCTL_IMPORT_CONTAINER_URL": expired}, journal_path=Path(env["FLEETCTL_JOURNAL"])
    )
    report = run.apply(run.plan(fleet, _ctx(env)).plan, ctx, fleet, _specs(fleet))
    assert len(report.failed) == 60 and not report.applied
    assert {m.split(":")[0] for _, m in report.failed} == {"AuthenticationFailed"}
    assert "not valid in the specified time frame" in report.failed[0][1]
    assert (
        "sig=" not in Path(env["FLEETCTL_JOURNAL"]).read_text()
        and AzureClient(emulator.hub_connection_string, ca_bundle=emulator.ca_bundle).list_jobs() == []
    )  # no job was started
