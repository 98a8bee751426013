"""Security-relevant changes on Azure (issue 12 point 2), end to end on fleetctl's emulators: the example fleet's
first plan uploads a hub CA, creates an X.509 enrollment group that admits every device the CA signs and adds a
symmetric-key device; each is flagged on its change line and listed under "Needs attention", and the JSON carries
the field. After apply, a symmetric-key individual enrollment declared in a pull request is flagged too."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from engine.sandbox.azure import AzureEmulator
from tests.conftest import FLEET, run_cli


@pytest.fixture
def example(tmp_path: Path) -> Path:
    dest = tmp_path / "fleet"
    shutil.copytree(FLEET, dest, ignore=shutil.ignore_patterns("out", ".fleetctl"))
    return dest


@pytest.fixture
def azure_env(emulator: AzureEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    emulator.configure(fixed_verification_codes=True)
    for key, value in {
        "FLEETCTL_HUB_CONNECTION_STRING": emulator.hub_connection_string,
        "FLEETCTL_DPS_CONNECTION_STRING": emulator.dps_connection_string,
        "REQUESTS_CA_BUNDLE": emulator.ca_bundle,
        "FLEETCTL_ARM_ENDPOINT": emulator.arm_base_url,
        **emulator.entra_env(),
        "FLEETCTL_JOURNAL": str(tmp_path / "journal.jsonl"),
        "FLEETCTL_NOW": "2026-11-21T10:00:00Z",
    }.items():
        monkeypatch.setenv(key, value)
    yield emulator
    emulator.configure(fixed_verification_codes=False)


ENROLLMENT = """---
apiVersion: azure.fleetctl.io/v1
kind: Enrollment
metadata: {name: reader-7, target: azure-prod}
spec:
  attestation: {symmetricKey: {}}
  iotHubs: [fleetctl-sandbox-hub.azure-devices.net]
"""


def test_symmetric_key_devices_hub_cas_and_enrollment_groups_stand_out(azure_env, example, tmp_path) -> None:
    res = run_cli("plan", str(example), "--target", "azure-prod", "--out", str(tmp_path / "plan.json"))
    assert res.exit_code == 0, res.output
    data = json.loads((tmp_path / "plan.json").read_text())
    assert [(x["address"], x["code"], x["severity"]) for x in data["attention"]] == [
        ("azure/azure-prod/HubCertificate/rootca", "ca-registered", "high"),
        ("azure/azure-prod/EnrollmentGroup/dps-group", "provisioning-enabled", "high"),
        ("azure/azure-prod/Device/device2", "symmetric-key", "high"),
    ]
    by = {c["address"]: c for c in data["changes"]}
    assert "attention" not in by["azure/azure-prod/Device/device1"]  # X.509: nothing to flag
    assert by["azure/azure-prod/Device/device2"]["attention"] == [
        {
            "code": "symmetric-key",
            "message": "adds a symmetric-key (SAS) device: whoever holds its key connects as it",
            "severity": "high",
        }
    ]
    lines = res.stdout.splitlines()
    assert lines[2] == "Needs attention (3: 3 high):"
    assert (
        "  ! [!symmetric-key] azure/azure-prod/Device/device2: adds a symmetric-key (SAS) device: whoever holds "
        "its key connects as it" in lines
    )
    assert "  + azure/azure-prod/Device/device2  [!symmetric-key]" in lines
    assert "  + azure/azure-prod/Device/device1" in lines
    assert (
        "  ! [!provisioning-enabled] azure/azure-prod/EnrollmentGroup/dps-group: creates the enrollment group "
        "with provisioning enabled: every device it admits (certificates CA rootca signs) registers"
    ) in lines
    md = run_cli("plan", str(example), "--target", "azure-prod", "--format", "markdown").stdout
    assert "> - 🔴 **symmetric-key** `azure/azure-prod/Device/device2`" in md

    assert run_cli("apply", str(tmp_path / "plan.json"), "--fleet", str(example)).exit_code == 0
    devices = example / "azure" / "devices.yaml"
    devices.write_text(devices.read_text() + ENROLLMENT)
    res = run_cli("plan", str(example), "--target", "azure-prod", "--format", "json", "--detailed-exitcode")
    assert res.exit_code == 2, res.output
    assert [(x["address"], x["code"], x["message"]) for x in json.loads(res.stdout)["attention"]] == [
        (
            "azure/azure-prod/Enrollment/reader-7",
            "symmetric-key",
            "adds a symmetric-key enrollment: whoever holds its key provisions",
        )
    ]
