"""The example fleet's Azure part (fleet/azure, the `azure-prod` Target) and every snippet of fleet/azure/README.md.

The quick start runs exactly as the README writes it, in a shell, against `fleetctl sandbox up` (moto and the Azure
emulator as background processes), on a copy of the example fleet.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from engine.pki import cert_info, issued_by
from engine.sandbox.azure import AzureEmulator
from engine.sandbox.azure.arm import sandbox_verification_code
from engine.sandbox.certs import make_ca
from tests.conftest import FLEET, run_cli

README = FLEET / "azure" / "README.md"
SANDBOX_CODE = sandbox_verification_code("00000000-0000-0000-0000-000000000000", "fleetctl-sandbox-hub")
AZURE_VARIABLES = ("FLEETCTL_HUB_CONNECTION_STRING", "FLEETCTL_DPS_CONNECTION_STRING", "FLEETCTL_ARM_ENDPOINT")


def _blocks(text: str) -> list[str]:
    return re.findall(r"```sh\n(.*?)```", text, re.S)


@pytest.fixture
def example(tmp_path: Path) -> Path:
    dest = tmp_path / "fleet"
    shutil.copytree(FLEET, dest, ignore=shutil.ignore_patterns("out", ".fleetctl"))
    return dest


@pytest.fixture
def sandbox_env(emulator: AzureEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """What `fleetctl sandbox up` exports for Azure, the emulator in its demo mode (fixed verification codes)."""
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


def test_committed_certificates_fit_together() -> None:
    certs = FLEET / "azure" / "certs"
    root, verification, device = (
        cert_info((certs / f"{name}.pem").read_text()) for name in ("rootca", "rootca-verification", "device1")
    )
    assert root.is_ca and not device.is_ca and device.subject_cn == "device1"
    assert issued_by(device.pem, root.pem) and issued_by(verification.pem, root.pem)
    assert verification.subject_cn == SANDBOX_CODE
    assert not [p for p in certs.iterdir() if "PRIVATE KEY" in p.read_text()]


def test_example_plans_applies_and_converges_on_the_sandbox(sandbox_env, example, tmp_path) -> None:
    plan = run_cli("plan", str(example), "--target", "azure-prod", "--out", str(tmp_path / "plan.json"))
    assert plan.exit_code == 0, plan.output
    changes = json.loads((tmp_path / "plan.json").read_text())["changes"]
    assert [c["address"] for c in changes] == [
        "azure/azure-prod/HubCertificate/rootca",
        "azure/azure-prod/EnrollmentGroup/dps-group",
        "azure/azure-prod/Device/device1",
        "azure/azure-prod/Device/device2",
    ]
    applied = run_cli("apply", str(tmp_path / "plan.json"), "--fleet", str(example))
    assert applied.exit_code == 0, applied.output
    assert "4 applied, 0 failed" in applied.stdout
    again = run_cli("plan", str(example), "--target", "azure-prod", "--detailed-exitcode")
    assert again.exit_code == 0 and "No changes." in again.stdout
    drift = run_cli("drift", str(example), "--target", "azure-prod")
    assert drift.exit_code == 0


def test_without_azure_settings_the_optional_target_is_skipped(example, monkeypatch) -> None:
    for name in AZURE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert run_cli("validate", str(example)).exit_code == 0
    res = run_cli("plan", str(example), "--target", "azure-prod", "--detailed-exitcode")
    assert res.exit_code == 0, res.output
    assert (
        "warning: fleetctl/Target/azure-prod: optional target 'azure-prod' is not planned: secret environment "
        "variable FLEETCTL_HUB_CONNECTION_STRING is not set"
    ) in res.stdout
    drift = run_cli("drift", str(example), "--target", "azure-prod")
    assert drift.exit_code == 0 and "optional target 'azure-prod' is not planned" in drift.stderr
    # without `optional: true`, a missing credential is an error, not a silent skip
    targets = example / "targets.yaml"
    targets.write_text(targets.read_text().replace("  optional: true\n", ""))
    res = run_cli("plan", str(example), "--target", "azure-prod")
    assert res.exit_code == 1
    assert (
        "azure.hub.connectionString: secret environment variable FLEETCTL_HUB_CONNECTION_STRING is not set"
        in res.stderr
    )


def test_readme_regeneration_snippet(tmp_path) -> None:
    (snippet,) = [b for b in _blocks(README.read_text()) if "engine.sandbox.certs" in b]
    (tmp_path / "fleet").mkdir()
    command = snippet.strip().replace("python ", f"{sys.executable} ", 1)
    subprocess.run(command, shell=True, check=True, cwd=tmp_path, timeout=60)
    out = tmp_path / "fleet/azure/certs"
    root = cert_info((out / "rootca.pem").read_text())
    verification = cert_info((out / "rootca-verification.pem").read_text())
    assert verification.subject_cn == SANDBOX_CODE and issued_by(verification.pem, root.pem)
    assert cert_info((out / "device1.pem").read_text()).subject_cn == "device1"
    assert sorted(p.name for p in out.iterdir()) == ["device1.pem", "rootca-verification.pem", "rootca.pem"]


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_readme_openssl_command_makes_a_verification_certificate_the_hub_accepts(client, tmp_path) -> None:
    """The README's step 3, run as written with a CA made here (its key exists only in this test's folder)."""
    ca = make_ca("operator root CA")
    (tmp_path / "rootCA.pem").write_text(ca.pem)
    (tmp_path / "rootCA.key").write_text(ca.key_pem())
    uploaded = client.put_hub_certificate("rootca", ca.pem)
    nonce = client.generate_verification_code("rootca", uploaded["etag"])
    code = nonce["properties"]["verificationCode"]
    (command,) = re.findall(r"`(openssl req .*?)`", README.read_text())
    subprocess.run(
        command.replace("<code>", code), shell=True, check=True, cwd=tmp_path, timeout=60, capture_output=True
    )
    proof = (tmp_path / "rootca-verification.pem").read_text()
    verified = client.verify_hub_certificate("rootca", nonce["etag"], proof)
    assert verified["properties"]["isVerified"] is True


def test_readme_quick_start_runs_as_written(tmp_path) -> None:
    """`eval "$(fleetctl sandbox up)"` then `fleetctl apply fleet --auto-approve`, in one shell, as a user would;
    then the plan is empty; the sandbox is stopped whatever happens."""
    (quick_start,) = [b for b in _blocks(README.read_text()) if "sandbox up" in b]
    shutil.copytree(FLEET, tmp_path / "fleet", ignore=shutil.ignore_patterns("out", ".fleetctl"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLEETCTL_", "AWS_", "REQUESTS_CA_BUNDLE"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    script = f"set -eu\n{quick_start}fleetctl plan fleet --detailed-exitcode\n"
    try:
        res = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    finally:
        subprocess.run(["fleetctl", "sandbox", "down"], cwd=tmp_path, env=env, capture_output=True, timeout=60)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "Apply " in res.stdout and " 0 failed, 0 skipped" in res.stdout
    assert "+ azure/azure-prod/HubCertificate/rootca" in res.stdout
    assert res.stdout.rstrip().endswith("No changes. The actual state matches the manifests.")
    assert not (tmp_path / ".fleetctl/sandbox/pids.json").exists()
