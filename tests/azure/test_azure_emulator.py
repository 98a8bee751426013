"""The emulator as the sandbox runs it: a subprocess that writes azure.json and stops on SIGTERM; its control
endpoints (stats, reset, config); latency injection; and routing errors."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from engine.errors import NotFound, Throttled
from engine.providers.azure.client import ArmTarget, AzureClient, entra_credential

ROOT = Path(__file__).resolve().parents[2]


def _wait_for(path: Path, process: subprocess.Popen, seconds: float = 15.0) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists():
            return json.loads(path.read_text())
        if process.poll() is not None:
            raise AssertionError(f"the emulator exited early: {process.stderr.read() if process.stderr else ''}")
        time.sleep(0.05)
    raise AssertionError("azure.json never appeared")


def test_subprocess_writes_azure_json_and_stops_on_sigterm(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "engine.sandbox.azure_emulator", "--state-dir", str(tmp_path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        described = _wait_for(tmp_path / "azure.json", process)
        assert stat.S_IMODE(os.stat(tmp_path / "azure.json").st_mode) == 0o600
        assert described["host"] == f"127.0.0.1:{described['port']}"
        assert described["hub_connection_string"].startswith(f"HostName={described['host']};")
        arm = ArmTarget(
            described["arm_base_url"],
            described["subscription_id"],
            described["resource_group"],
            described["hub_name"],
            entra_credential(
                {
                    "AZURE_AUTHORITY_HOST": described["authority_host"],
                    "AZURE_TENANT_ID": described["tenant_id"],
                    "AZURE_CLIENT_ID": described["client_id"],
                    "AZURE_CLIENT_SECRET": described["client_secret"],
                    "REQUESTS_CA_BUNDLE": described["ca_bundle"],
                }
            ),
        )
        client = AzureClient(
            described["hub_connection_string"], described["dps_connection_string"], arm, described["ca_bundle"]
        )
        client.create_device("from-subprocess", {"type": "sas"})
        assert [twin["deviceId"] for twin in client.query_devices()] == ["from-subprocess"]
        assert client.list_hub_certificates() == []
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    assert process.stdout is not None and process.stdout.read() == ""  # library code prints nothing


def test_control_endpoints(emulator, client: AzureClient) -> None:
    base = f"https://{emulator.host}/_emulator"
    client.create_device("d1", {"type": "sas"})
    client.get_twin("d1")
    stats = requests.get(f"{base}/stats", verify=emulator.ca_bundle, timeout=10).json()
    assert stats["requests"] == {"registry": 1, "twin_read": 1}
    assert stats["operations"]["GET /twins/{device_id}"] == 1
    configured = requests.post(
        f"{base}/config", json={"rates": {"twin_read": 1}}, verify=emulator.ca_bundle, timeout=10
    )
    assert configured.status_code == 200 and configured.json()["rates"] == {"twin_read": 1.0}
    client.get_twin("d1")
    with pytest.raises(Throttled):
        client.get_twin("d1")
    bad = requests.post(f"{base}/config", json={"rates": {"nonsense": 1}}, verify=emulator.ca_bundle, timeout=10)
    assert bad.status_code == 400
    reported = requests.patch(f"{base}/twins/d1/reported", json={"fw": "1.0"}, verify=emulator.ca_bundle, timeout=10)
    assert reported.json()["properties"]["reported"]["fw"] == "1.0"
    assert requests.post(f"{base}/reset", verify=emulator.ca_bundle, timeout=10).status_code == 204
    assert emulator.stats()["total"] == 0
    with pytest.raises(NotFound):
        client.get_device("d1")


def test_latency_injection(emulator, client: AzureClient) -> None:
    emulator.configure(latency_ms=60)
    started = time.monotonic()
    with pytest.raises(NotFound):
        client.get_device("nobody")
    assert time.monotonic() - started >= 0.06


def test_unknown_routes(emulator) -> None:
    unknown = requests.get(f"https://{emulator.host}/nothing-here", verify=emulator.ca_bundle, timeout=10)
    assert unknown.status_code == 404
    wrong_method = requests.post(f"https://{emulator.host}/twins/d1", verify=emulator.ca_bundle, timeout=10)
    assert wrong_method.status_code == 405


def test_tls_is_really_verified(emulator) -> None:
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"https://{emulator.host}/_emulator/stats", timeout=10)


def test_requests_ca_bundle_alone_is_enough(emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment-variable route: no verify setting in code, for the hub SDK (msrest) and DPS (azure-core)."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", emulator.ca_bundle)
    client = AzureClient(emulator.hub_connection_string, emulator.dps_connection_string)
    client.create_device("env-ca", {"type": "sas"})
    assert client.list_enrollment_groups() == []
    assert Path(emulator.ca_bundle).stat().st_size > Path(emulator.ca_pem_path).stat().st_size
